"""Policy: who may write to whom, what is screened, and when a screener may look.

Pure decisions over plain values (STYLE principle 1); the services fetch the
facts, call these functions, and persist the outcome. Sources: SPEC.md
section 1 (regimes, RSJ ruling on volume caps, art. 36-37 Pbw) and section 4
(P2, P4, P5).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from sealpost.gateway import states
from sealpost.gateway.errors import FailedPrecondition, PermissionDenied
from sealpost.v1 import common_pb2

BLOCKED: Final = common_pb2.REGIME_POLICY_BLOCKED
SCREEN_ALL: Final = common_pb2.REGIME_POLICY_SCREEN_ALL
SCREEN_ON_ORDER: Final = common_pb2.REGIME_POLICY_SCREEN_ON_ORDER

INBOUND: Final = common_pb2.DIRECTION_INBOUND
OUTBOUND: Final = common_pb2.DIRECTION_OUTBOUND
BOTH: Final = common_pb2.DIRECTION_BOTH

HELD: Final = common_pb2.DETAINEE_STATUS_HELD
TRANSFERRED: Final = common_pb2.DETAINEE_STATUS_TRANSFERRED
RELEASED_DETAINEE: Final = common_pb2.DETAINEE_STATUS_RELEASED

APPROVED: Final = common_pb2.CONTACT_STATUS_APPROVED
REQUESTED: Final = common_pb2.CONTACT_STATUS_REQUESTED
EXPIRED: Final = common_pb2.CONTACT_STATUS_EXPIRED
#: How long a contact request waits for the institution's decision before it expires.
CONTACT_REQUEST_TTL_MS: Final = 30 * 24 * 3600 * 1000


@dataclass(frozen=True)
class Regime:
    """A named regime and how it treats messaging."""

    name: str
    policy: int
    description: str


#: The default configuration (SPEC.md section 1): the service is stopped in the
#: EBI, for detainees on the GVM list and in terrorist wings (motions of 2 June
#: 2022); in the regular regime messages are read only under a screening order.
DEFAULT_REGIMES: Final = (
    Regime("regular", SCREEN_ON_ORDER, "Regular regime: screened when a screening order applies."),
    Regime("ebi", BLOCKED, "Extra Beveiligde Inrichting (maximum security): service blocked."),
    Regime("gvm", BLOCKED, "Detainees on the GVM list: service blocked."),
    Regime("terrorist-wing", BLOCKED, "Terrorist wing (TA): service blocked."),
)


@dataclass(frozen=True)
class OrderWindow:
    """The facts of one screening order that matter for a decision."""

    direction: int
    starts_at_ms: int
    ends_at_ms: int
    ended_early_at_ms: int | None = None

    def covers(self, direction: int, at_ms: int) -> bool:
        """True when the order applies to a message of ``direction`` accepted at ``at_ms``."""
        end = (
            self.ends_at_ms
            if self.ended_early_at_ms is None
            else min(self.ends_at_ms, self.ended_early_at_ms)
        )
        return self.direction in (direction, BOTH) and self.starts_at_ms <= at_ms < end


@dataclass(frozen=True)
class RetrospectiveWindow:
    """The facts of one retrospective request that matter for a decision."""

    status: int
    direction: int
    period_start_ms: int
    period_end_ms: int
    valid_until_ms: int | None

    def covers(self, direction: int, at_ms: int, now_ms: int) -> bool:
        """True when the request is approved, unexpired, and covers the message."""
        return (
            self.status == common_pb2.RETROSPECTIVE_STATUS_APPROVED
            and self.valid_until_ms is not None
            and now_ms < self.valid_until_ms
            and self.direction in (direction, BOTH)
            and self.period_start_ms <= at_ms < self.period_end_ms
        )


def check_send(
    *, detainee_status: int, regime_policy: int, contact_status: int | None, privileged: bool
) -> None:
    """Raise unless a message may be accepted for this detainee and contact.

    There is no cap on the number of messages: the RSJ ruled a cap unlawful
    (R-20/6121/GA, 28 Oct 2020), so floods are met by a per-account rate limit only.
    """
    if detainee_status == RELEASED_DETAINEE:
        raise FailedPrecondition("the recipient's mailbox is closed: messages cannot be delivered")
    if contact_status != APPROVED:
        raise FailedPrecondition("this contact is not approved by the detainee's institution")
    if regime_policy == BLOCKED and not privileged:
        raise FailedPrecondition("messaging is not available for this recipient")


def check_complaint_release(
    *, detainee_status: int, detainee_institution: str, message_institution: str
) -> None:
    """Raise unless a withheld message may still reach its detainee after a complaint.

    The institution that withheld it delivers it: the detainee must still be held there
    (a mailbox that was closed or moved elsewhere gets nothing from the old institution).
    """
    if detainee_status == RELEASED_DETAINEE:
        raise FailedPrecondition(
            "the detainee's mailbox is closed: the message cannot be delivered"
        )
    if detainee_institution != message_institution:
        raise FailedPrecondition(
            "the detainee is no longer held at the institution that withheld the message"
        )


def check_watch_list_detainee(
    *, detainee_status: int, detainee_institution: str, institution: str
) -> None:
    """Raise unless an institution may keep a watch list for this detainee: held there now.

    A list is the institution's, about a detainee it holds; it does not follow a transfer
    (the new institution keeps its own) and none is started for a released detainee.
    """
    if detainee_status != HELD or detainee_institution != institution:
        raise FailedPrecondition("the detainee is not held at this institution")


def reason_for_relative(*, state: int, reason: int | None, told: bool | None) -> int:
    """The withholding reason category a relative is told, or UNSPECIFIED for none.

    Only for a message withheld while its detainee's regime told relatives the reason
    (``told``, kept on the message when it was withheld). By default relatives read
    "not delivered" and nothing more (SPEC section 3, step 6); a regime may choose to
    tell the category, never the screener's note.
    """
    if state == states.WITHHELD and told and reason:
        return reason
    return common_pb2.WITHHOLD_REASON_UNSPECIFIED


def route_after_escrow(
    *, regime_policy: int, direction: int, accepted_at_ms: int, orders: Iterable[OrderWindow]
) -> states.State:
    """QUEUED when policy puts the message under screening, RELEASED otherwise."""
    if regime_policy == SCREEN_ALL:
        return states.QUEUED
    if any(order.covers(direction, accepted_at_ms) for order in orders):
        return states.QUEUED
    return states.RELEASED


@dataclass(frozen=True)
class IntakeOutcome:
    """What becomes of a message taken in: whether it is escrowed, and the state it ends in."""

    escrowed: bool
    state: states.State


def intake_outcome(
    *,
    privileged: bool,
    regime_policy: int,
    direction: int,
    accepted_at_ms: int,
    orders: Iterable[OrderWindow],
) -> IntakeOutcome:
    """The one rule of intake (SPEC P2, P4, P5), for a relative's message and a reply alike.

    Privileged correspondence is released at once, without escrow, and is never
    screened. Every other message is escrowed first, then queued for a screener when the
    regime screens everything or a screening order covers it, and released otherwise.
    """
    if privileged:
        return IntakeOutcome(escrowed=False, state=states.RELEASED)
    return IntakeOutcome(
        escrowed=True,
        state=route_after_escrow(
            regime_policy=regime_policy,
            direction=direction,
            accepted_at_ms=accepted_at_ms,
            orders=orders,
        ),
    )


def review_basis(
    *,
    privileged: bool,
    state: int,
    regime_policy: int,
    direction: int,
    accepted_at_ms: int,
    now_ms: int,
    orders: Iterable[OrderWindow],
    retrospective: RetrospectiveWindow | None = None,
) -> int:
    """The legal basis for opening one message, or PermissionDenied (SPEC P4, P5).

    The regime and screening orders are a basis for messages in the screening
    queue; anything else (a delivered message, say) needs an approved,
    unexpired retrospective request covering it.
    """
    if privileged:
        raise PermissionDenied("privileged correspondence cannot be reviewed")
    if retrospective is not None:
        if retrospective.covers(direction, accepted_at_ms, now_ms):
            return common_pb2.LEGAL_BASIS_RETROSPECTIVE_REQUEST
        raise PermissionDenied("the retrospective request does not cover this message now")
    if state == states.QUEUED:
        if regime_policy == SCREEN_ALL:
            return common_pb2.LEGAL_BASIS_REGIME_SCREEN_ALL
        if any(order.covers(direction, accepted_at_ms) for order in orders):
            return common_pb2.LEGAL_BASIS_SCREENING_ORDER
    raise PermissionDenied("there is no legal basis to review this message")


def contact_status(stored: int, requested_at_ms: int, now_ms: int) -> int:
    """A contact's status as everyone sees it: a request left undecided too long is EXPIRED.

    The same rule for every request, so an expired one says nothing about whether the
    id is a detainee's (SPEC P11).
    """
    if stored == REQUESTED and now_ms - requested_at_ms >= CONTACT_REQUEST_TTL_MS:
        return EXPIRED
    return stored


def contact_deliverable(status: int, detainee_status: int | None) -> bool:
    """Whether a relative is told that messages can reach the detainee.

    Only on an approved contact; before approval nothing about the detainee is told.
    """
    return status == APPROVED and detainee_status not in (None, RELEASED_DETAINEE)


#: How long a review grant covers decrypts (SPEC P14): the key server may decrypt the
#: message's key from the grant's time until this much later, and only while the basis
#: still holds (queued, or inside a retrospective approval). The review tool decrypts
#: at once and asks for a new grant after this; the auditor flags any decrypt outside
#: [grant - clock leeway, grant + GRANT_VALIDITY_MS + clock leeway] (docs/audit.md).
GRANT_VALIDITY_MS: Final = 15 * 60 * 1000


#: The states that are news to a relative, told by e-mail with no content: their own
#: message delivered or not (what GetMessageStatus says), a reply they may now read.
NEWS_STATES: Final[dict[int, frozenset[states.State]]] = {
    INBOUND: frozenset(
        s
        for s in states.TRANSITIONS
        if states.delivery_status(s) != common_pb2.DELIVERY_STATUS_PENDING
    ),
    OUTBOUND: frozenset({states.RELEASED}),
}
