"""The message state machine: the only place that decides which state may follow which.

    ACCEPTED ──► ESCROWED ──► QUEUED ──► RELEASED ──► DELIVERED
        │            │           │           │
        │            └──────────►┼──► RELEASED│
        │                        └──► WITHHELD└──► REJECTED
        │                                 │
        │                                 └──► RELEASED (a successful complaint only)
        ├──► RELEASED   (privileged only: no escrow, never screened)
        └──► REJECTED   (e.g. the detainee was released before intake)

A message is never RELEASED from ACCEPTED unless it is privileged (SPEC P2:
fail closed, no delivery without escrow); ``transition`` enforces that. A WITHHELD
message leaves that state only when a complaint against the withholding succeeds
(``release_after_complaint``), never by an ordinary verdict.
"""

from __future__ import annotations

from typing import Final, TypeAlias

from sealpost.gateway.errors import FailedPrecondition
from sealpost.v1 import common_pb2

State: TypeAlias = common_pb2.MessageState.ValueType

ACCEPTED: Final = common_pb2.MESSAGE_STATE_ACCEPTED
ESCROWED: Final = common_pb2.MESSAGE_STATE_ESCROWED
QUEUED: Final = common_pb2.MESSAGE_STATE_QUEUED
RELEASED: Final = common_pb2.MESSAGE_STATE_RELEASED
DELIVERED: Final = common_pb2.MESSAGE_STATE_DELIVERED
WITHHELD: Final = common_pb2.MESSAGE_STATE_WITHHELD
REJECTED: Final = common_pb2.MESSAGE_STATE_REJECTED

#: Allowed transitions for non-privileged messages.
TRANSITIONS: Final[dict[State, frozenset[State]]] = {
    ACCEPTED: frozenset({ESCROWED, REJECTED}),
    ESCROWED: frozenset({QUEUED, RELEASED, REJECTED}),
    QUEUED: frozenset({RELEASED, WITHHELD, REJECTED}),
    RELEASED: frozenset({DELIVERED, REJECTED}),
    DELIVERED: frozenset(),
    WITHHELD: frozenset({RELEASED}),
    REJECTED: frozenset(),
}

#: Privileged messages skip escrow and screening altogether (SPEC P4).
PRIVILEGED_TRANSITIONS: Final[dict[State, frozenset[State]]] = {
    ACCEPTED: frozenset({RELEASED, REJECTED}),
    RELEASED: frozenset({DELIVERED, REJECTED}),
    DELIVERED: frozenset(),
    REJECTED: frozenset(),
}

FINAL: Final = frozenset({DELIVERED, REJECTED})
#: States that stay as they are without a new decision: a detainee's release leaves them
#: (a withheld message moves on only when a complaint against the withholding succeeds).
SETTLED: Final = FINAL | {WITHHELD}


def name(state: State) -> str:
    """ACCEPTED, ESCROWED, ... for messages and logs."""
    return common_pb2.MessageState.Name(state).removeprefix("MESSAGE_STATE_")


def transition(current: State, target: State, *, privileged: bool) -> State:
    """Return ``target`` if the move from ``current`` is allowed, else raise FailedPrecondition."""
    table = PRIVILEGED_TRANSITIONS if privileged else TRANSITIONS
    if target not in table.get(current, frozenset()):
        kind = "privileged message" if privileged else "message"
        raise FailedPrecondition(f"a {kind} cannot go from {name(current)} to {name(target)}")
    return target


def release_after_complaint(current: State, *, privileged: bool) -> State:
    """RELEASED, if a successful complaint may release a message in ``current``; else raise.

    Only a WITHHELD message: a message in the screening queue still needs a screener's
    verdict, and one released or delivered needs no complaint.
    """
    if current != WITHHELD:
        raise FailedPrecondition(
            f"only a withheld message is released after a complaint, not one {name(current)}"
        )
    return transition(current, RELEASED, privileged=privileged)


def check_triage(current: State, *, privileged: bool) -> None:
    """Raise unless triage may look at a message in ``current`` (SPEC P16).

    Only a message waiting for a screener (QUEUED): it has a legal basis for review, the
    regime or a screening order that put it in the queue. Never privileged mail, which
    never waits for a screener; the check names it anyway, so that no later change of the
    states can let a privileged message be triaged.
    """
    if privileged:
        raise FailedPrecondition("privileged mail is never triaged")
    if current != QUEUED:
        raise FailedPrecondition(
            f"only a message waiting for a screener is triaged, not one {name(current)}"
        )


def delivery_status(state: State) -> common_pb2.DeliveryStatus.ValueType:
    """What a relative is told: pending, delivered or not delivered; never why."""
    if state == DELIVERED:
        return common_pb2.DELIVERY_STATUS_DELIVERED
    if state in (WITHHELD, REJECTED):
        return common_pb2.DELIVERY_STATUS_NOT_DELIVERED
    return common_pb2.DELIVERY_STATUS_PENDING
