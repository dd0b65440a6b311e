"""The message state machine: every allowed transition works, every other one is refused."""

from __future__ import annotations

import itertools

import pytest

from sealpost.gateway import states
from sealpost.gateway.errors import FailedPrecondition
from sealpost.v1 import common_pb2

ALL = [
    states.ACCEPTED,
    states.ESCROWED,
    states.QUEUED,
    states.RELEASED,
    states.DELIVERED,
    states.WITHHELD,
    states.REJECTED,
]

EXPECTED = {
    (states.ACCEPTED, states.ESCROWED),
    (states.ACCEPTED, states.REJECTED),
    (states.ESCROWED, states.QUEUED),
    (states.ESCROWED, states.RELEASED),
    (states.ESCROWED, states.REJECTED),
    (states.QUEUED, states.RELEASED),
    (states.QUEUED, states.WITHHELD),
    (states.QUEUED, states.REJECTED),
    (states.RELEASED, states.DELIVERED),
    (states.RELEASED, states.REJECTED),
    # Only after a successful complaint (release_after_complaint).
    (states.WITHHELD, states.RELEASED),
}
EXPECTED_PRIVILEGED = {
    (states.ACCEPTED, states.RELEASED),
    (states.ACCEPTED, states.REJECTED),
    (states.RELEASED, states.DELIVERED),
    (states.RELEASED, states.REJECTED),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(ALL, ALL)))
def test_non_privileged_transitions(current: states.State, target: states.State) -> None:
    if (current, target) in EXPECTED:
        assert states.transition(current, target, privileged=False) == target
    else:
        with pytest.raises(FailedPrecondition, match="cannot go from"):
            states.transition(current, target, privileged=False)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(ALL, ALL)))
def test_privileged_transitions(current: states.State, target: states.State) -> None:
    if (current, target) in EXPECTED_PRIVILEGED:
        assert states.transition(current, target, privileged=True) == target
    else:
        with pytest.raises(FailedPrecondition):
            states.transition(current, target, privileged=True)


def test_no_release_without_escrow_unless_privileged() -> None:
    # SPEC P2: fail closed.
    with pytest.raises(FailedPrecondition):
        states.transition(states.ACCEPTED, states.RELEASED, privileged=False)


def test_privileged_messages_are_never_queued_or_escrowed() -> None:
    # SPEC P4.
    for target in (states.ESCROWED, states.QUEUED, states.WITHHELD):
        with pytest.raises(FailedPrecondition):
            states.transition(states.ACCEPTED, target, privileged=True)


def test_final_states_have_no_way_out() -> None:
    for final in states.FINAL:
        assert states.TRANSITIONS[final] == frozenset()


def test_a_withheld_message_leaves_only_by_release() -> None:
    assert states.TRANSITIONS[states.WITHHELD] == frozenset({states.RELEASED})
    assert states.WITHHELD in states.SETTLED


@pytest.mark.parametrize("current", ALL)
def test_only_a_withheld_message_is_released_after_a_complaint(current: states.State) -> None:
    # A queued message needs a screener's verdict; a complaint does not replace it.
    if current == states.WITHHELD:
        assert states.release_after_complaint(current, privileged=False) == states.RELEASED
    else:
        with pytest.raises(FailedPrecondition, match="only a withheld message"):
            states.release_after_complaint(current, privileged=False)


def test_privileged_mail_is_never_released_after_a_complaint() -> None:
    # It is never withheld, so there is nothing to release.
    with pytest.raises(FailedPrecondition):
        states.release_after_complaint(states.WITHHELD, privileged=True)


@pytest.mark.parametrize(
    ("state", "status"),
    [
        (states.ACCEPTED, common_pb2.DELIVERY_STATUS_PENDING),
        (states.ESCROWED, common_pb2.DELIVERY_STATUS_PENDING),
        (states.QUEUED, common_pb2.DELIVERY_STATUS_PENDING),
        (states.RELEASED, common_pb2.DELIVERY_STATUS_PENDING),
        (states.DELIVERED, common_pb2.DELIVERY_STATUS_DELIVERED),
        (states.WITHHELD, common_pb2.DELIVERY_STATUS_NOT_DELIVERED),
        (states.REJECTED, common_pb2.DELIVERY_STATUS_NOT_DELIVERED),
    ],
)
def test_relatives_see_only_delivered_or_not(state: states.State, status: int) -> None:
    # A withheld message looks exactly like a rejected one: screening is not disclosed.
    assert states.delivery_status(state) == status


@pytest.mark.parametrize("current", ALL)
def test_only_a_message_waiting_for_a_screener_is_triaged(current: states.State) -> None:
    if current == states.QUEUED:
        states.check_triage(current, privileged=False)
    else:
        with pytest.raises(FailedPrecondition, match="only a message waiting for a screener"):
            states.check_triage(current, privileged=False)


@pytest.mark.parametrize("current", ALL)
def test_privileged_mail_is_never_triaged(current: states.State) -> None:
    with pytest.raises(FailedPrecondition, match="privileged mail is never triaged"):
        states.check_triage(current, privileged=True)
