"""Policy decisions: sending, routing after escrow, and the legal basis for review."""

from __future__ import annotations

import pytest

from sealpost.gateway import policy, states
from sealpost.gateway.errors import FailedPrecondition, PermissionDenied
from sealpost.v1 import common_pb2

DAY = 86_400_000
T0 = 1_800_000_000_000
APPROVED = common_pb2.CONTACT_STATUS_APPROVED


def test_default_regimes_follow_the_spec() -> None:
    by_name = {r.name: r.policy for r in policy.DEFAULT_REGIMES}
    assert by_name == {
        "regular": policy.SCREEN_ON_ORDER,
        "ebi": policy.BLOCKED,
        "gvm": policy.BLOCKED,
        "terrorist-wing": policy.BLOCKED,
    }


@pytest.mark.parametrize(
    ("status", "regime", "contact", "privileged", "error"),
    [
        (policy.HELD, policy.SCREEN_ON_ORDER, APPROVED, False, None),
        (policy.HELD, policy.SCREEN_ALL, APPROVED, False, None),
        (policy.TRANSFERRED, policy.SCREEN_ON_ORDER, APPROVED, False, None),
        (policy.HELD, policy.BLOCKED, APPROVED, False, "not available"),
        (policy.HELD, policy.BLOCKED, APPROVED, True, None),  # privileged always allowed
        (policy.HELD, policy.SCREEN_ON_ORDER, None, False, "not approved"),
        (
            policy.HELD,
            policy.SCREEN_ON_ORDER,
            common_pb2.CONTACT_STATUS_REQUESTED,
            False,
            "not approved",
        ),
        (
            policy.HELD,
            policy.SCREEN_ON_ORDER,
            common_pb2.CONTACT_STATUS_REVOKED,
            True,
            "not approved",
        ),
        (policy.RELEASED_DETAINEE, policy.SCREEN_ON_ORDER, APPROVED, True, "mailbox is closed"),
    ],
)
def test_check_send(
    status: int, regime: int, contact: int | None, privileged: bool, error: str | None
) -> None:
    if error is None:
        policy.check_send(
            detainee_status=status,
            regime_policy=regime,
            contact_status=contact,
            privileged=privileged,
        )
    else:
        with pytest.raises(FailedPrecondition, match=error):
            policy.check_send(
                detainee_status=status,
                regime_policy=regime,
                contact_status=contact,
                privileged=privileged,
            )


ORDER = policy.OrderWindow(policy.INBOUND, T0, T0 + 10 * DAY)


@pytest.mark.parametrize(
    ("regime", "orders", "direction", "at", "expected"),
    [
        (policy.SCREEN_ALL, [], policy.INBOUND, T0, states.QUEUED),
        (policy.SCREEN_ON_ORDER, [], policy.INBOUND, T0, states.RELEASED),
        (policy.SCREEN_ON_ORDER, [ORDER], policy.INBOUND, T0, states.QUEUED),
        (policy.SCREEN_ON_ORDER, [ORDER], policy.INBOUND, T0 - 1, states.RELEASED),
        (policy.SCREEN_ON_ORDER, [ORDER], policy.INBOUND, T0 + 10 * DAY, states.RELEASED),
        (policy.SCREEN_ON_ORDER, [ORDER], policy.OUTBOUND, T0, states.RELEASED),
        (
            policy.SCREEN_ON_ORDER,
            [policy.OrderWindow(policy.BOTH, T0, T0 + DAY)],
            policy.OUTBOUND,
            T0,
            states.QUEUED,
        ),
        (
            policy.SCREEN_ON_ORDER,
            [policy.OrderWindow(policy.INBOUND, T0, T0 + DAY, ended_early_at_ms=T0 + 5)],
            policy.INBOUND,
            T0 + 6,
            states.RELEASED,
        ),
    ],
)
def test_route_after_escrow(
    regime: int, orders: list[policy.OrderWindow], direction: int, at: int, expected: int
) -> None:
    assert (
        policy.route_after_escrow(
            regime_policy=regime, direction=direction, accepted_at_ms=at, orders=orders
        )
        == expected
    )


def _basis(**overrides: object) -> int:
    arguments: dict[str, object] = {
        "privileged": False,
        "state": states.QUEUED,
        "regime_policy": policy.SCREEN_ON_ORDER,
        "direction": policy.INBOUND,
        "accepted_at_ms": T0,
        "now_ms": T0 + DAY,
        "orders": [ORDER],
        "retrospective": None,
    }
    arguments.update(overrides)
    return policy.review_basis(**arguments)  # type: ignore[arg-type]


def test_review_basis_order_and_regime() -> None:
    assert _basis() == common_pb2.LEGAL_BASIS_SCREENING_ORDER
    assert _basis(regime_policy=policy.SCREEN_ALL, orders=[]) == (
        common_pb2.LEGAL_BASIS_REGIME_SCREEN_ALL
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"privileged": True},
        {"privileged": True, "regime_policy": policy.SCREEN_ALL},
        {"orders": []},
        {"state": states.RELEASED},
        {"state": states.DELIVERED, "regime_policy": policy.SCREEN_ALL},
        {"direction": policy.OUTBOUND},
        {"accepted_at_ms": T0 - 1},
    ],
)
def test_review_refused_without_basis(overrides: dict[str, object]) -> None:
    with pytest.raises(PermissionDenied):
        _basis(**overrides)


APPROVED_RETRO = policy.RetrospectiveWindow(
    common_pb2.RETROSPECTIVE_STATUS_APPROVED, policy.BOTH, T0 - DAY, T0 + DAY, T0 + 2 * DAY
)


def test_retrospective_basis() -> None:
    assert (
        _basis(state=states.DELIVERED, orders=[], retrospective=APPROVED_RETRO)
        == common_pb2.LEGAL_BASIS_RETROSPECTIVE_REQUEST
    )


@pytest.mark.parametrize(
    "window",
    [
        policy.RetrospectiveWindow(
            common_pb2.RETROSPECTIVE_STATUS_PENDING, policy.BOTH, T0 - DAY, T0 + DAY, None
        ),
        policy.RetrospectiveWindow(
            common_pb2.RETROSPECTIVE_STATUS_REJECTED, policy.BOTH, T0 - DAY, T0 + DAY, T0 + 2 * DAY
        ),
        # Only an approval opens messages, whatever time bound a row carries.
        policy.RetrospectiveWindow(
            common_pb2.RETROSPECTIVE_STATUS_PENDING, policy.BOTH, T0 - DAY, T0 + DAY, T0 + 2 * DAY
        ),
        policy.RetrospectiveWindow(
            common_pb2.RETROSPECTIVE_STATUS_UNSPECIFIED,
            policy.BOTH,
            T0 - DAY,
            T0 + DAY,
            T0 + 2 * DAY,
        ),
        policy.RetrospectiveWindow(  # expired
            common_pb2.RETROSPECTIVE_STATUS_APPROVED, policy.BOTH, T0 - DAY, T0 + DAY, T0 + DAY
        ),
        policy.RetrospectiveWindow(  # period does not cover the message
            common_pb2.RETROSPECTIVE_STATUS_APPROVED, policy.BOTH, T0 + 1, T0 + DAY, T0 + 2 * DAY
        ),
        policy.RetrospectiveWindow(  # other direction
            common_pb2.RETROSPECTIVE_STATUS_APPROVED,
            policy.OUTBOUND,
            T0 - DAY,
            T0 + DAY,
            T0 + 2 * DAY,
        ),
    ],
)
def test_retrospective_refusals(window: policy.RetrospectiveWindow) -> None:
    with pytest.raises(PermissionDenied):
        _basis(state=states.DELIVERED, orders=[], retrospective=window)


def test_privileged_refused_even_with_retrospective() -> None:
    with pytest.raises(PermissionDenied, match="privileged"):
        _basis(privileged=True, retrospective=APPROVED_RETRO)


def test_intake_outcome_is_the_one_rule_of_intake() -> None:
    order = policy.OrderWindow(policy.BOTH, 0, 10_000)
    privileged = policy.intake_outcome(
        privileged=True,
        regime_policy=policy.SCREEN_ALL,
        direction=policy.INBOUND,
        accepted_at_ms=5,
        orders=[order],
    )
    assert privileged == policy.IntakeOutcome(escrowed=False, state=states.RELEASED)
    for regime, orders, state in (
        (policy.SCREEN_ALL, [], states.QUEUED),
        (policy.SCREEN_ON_ORDER, [order], states.QUEUED),
        (policy.SCREEN_ON_ORDER, [], states.RELEASED),
    ):
        outcome = policy.intake_outcome(
            privileged=False,
            regime_policy=regime,
            direction=policy.OUTBOUND,
            accepted_at_ms=5,
            orders=orders,
        )
        assert outcome == policy.IntakeOutcome(escrowed=True, state=state)


@pytest.mark.parametrize(
    ("status", "held_at", "refusal"),
    [
        (policy.HELD, "pi-a", None),
        (policy.RELEASED_DETAINEE, "pi-a", "mailbox is closed"),
        (policy.HELD, "pi-b", "no longer held"),
    ],
)
def test_check_complaint_release(status: int, held_at: str, refusal: str | None) -> None:
    """A withheld message reaches its detainee only at the institution that withheld it."""

    def check() -> None:
        policy.check_complaint_release(
            detainee_status=status, detainee_institution=held_at, message_institution="pi-a"
        )

    if refusal is None:
        check()
    else:
        with pytest.raises(FailedPrecondition, match=refusal):
            check()


@pytest.mark.parametrize(
    ("state", "reason", "told", "expected"),
    [
        (states.WITHHELD, common_pb2.WITHHOLD_REASON_PUBLIC_ORDER, True, 2),
        # Default: the regime told nothing, so "not delivered" and no more.
        (states.WITHHELD, common_pb2.WITHHOLD_REASON_PUBLIC_ORDER, False, 0),
        (states.WITHHELD, common_pb2.WITHHOLD_REASON_PUBLIC_ORDER, None, 0),
        # Released after a complaint, or never withheld: nothing to tell.
        (states.RELEASED, common_pb2.WITHHOLD_REASON_PUBLIC_ORDER, True, 0),
        (states.DELIVERED, common_pb2.WITHHOLD_REASON_PUBLIC_ORDER, True, 0),
        (states.REJECTED, None, True, 0),
    ],
)
def test_reason_for_relative(
    state: int, reason: int | None, told: bool | None, expected: int
) -> None:
    assert policy.reason_for_relative(state=state, reason=reason, told=told) == expected


@pytest.mark.parametrize(
    ("status", "held_at", "allowed"),
    [
        (policy.HELD, "pi-a", True),
        (policy.HELD, "pi-b", False),
        (policy.RELEASED_DETAINEE, "pi-a", False),
    ],
)
def test_a_watch_list_is_kept_only_for_a_detainee_held_at_the_institution(
    status: int, held_at: str, allowed: bool
) -> None:
    def check() -> None:
        policy.check_watch_list_detainee(
            detainee_status=status, detainee_institution=held_at, institution="pi-a"
        )

    if allowed:
        check()
    else:
        with pytest.raises(FailedPrecondition, match="not held at this institution"):
            check()
