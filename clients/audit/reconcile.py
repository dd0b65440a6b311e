"""Reconcile the key server's audit devices with the transparency log (SPEC P6, P14).

SPEC P6: a screener may decrypt a message's key only after the gateway logged a
grant for that message to that person. The key server's audit device names the
message (the derivation context, in clear) and the key server's entity; the
grant names the same entity (``key_server_entity``, the ``sub`` of the identity
token). SPEC P14 bounds the grant: it covers decrypts for ``GRANT_VALIDITY_MS``
(gateway/policy.py) and only while its legal basis holds, which the message's
own timeline of MESSAGE_* events shows (``Timeline``). Beyond decrypts, every
key-server change is matched to a recorded action (clients/audit/changes.py),
escrows of privileged messages are flagged, and the audit devices are compared
(clients/audit/keyserver.py).

Pure functions: parsed audit events and decoded log events in, a
``Reconciliation`` out. docs/audit.md states the matching rules.
"""

from __future__ import annotations

import bisect
import dataclasses
import enum
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from sealpost.clients.audit.changes import ChangeReconciliation, match_changes
from sealpost.clients.audit.keyserver import (
    Decrypt,
    DecryptStatus,
    DeviceComparison,
    Escrow,
    KeyServerLog,
    decrypts_from_events,
    millis,
)
from sealpost.clients.audit.replay import ESCROW_AUDIT_BASIS
from sealpost.crypto.logentry import LogAction, LogEvent
from sealpost.gateway.keyevents import RecordedAction
from sealpost.gateway.policy import GRANT_VALIDITY_MS

__all__ = [
    "BASIS_FIELD",
    "DEFAULT_LEEWAY_MS",
    "ENTITY_FIELD",
    "GRANT_VALIDITY_MS",
    "PRIVILEGED_FIELD",
    "RETROSPECTIVE_FIELD",
    "Decrypt",
    "DecryptStatus",
    "Grant",
    "KeyServerLog",
    "LogFacts",
    "Reason",
    "Reconciliation",
    "Timeline",
    "Unmatched",
    "approvals_from_events",
    "decrypts_from_events",
    "grant_from_event",
    "millis",
    "privileged_messages",
    "reconcile",
    "timelines_from_events",
    "utc",
    "with_signing_times",
]

#: Default allowance for clock differences between the gateway and the key server.
DEFAULT_LEEWAY_MS: Final = 5_000
#: Extra fields of a REVIEW_GRANTED event (gateway/services/review.py).
ENTITY_FIELD: Final = "key_server_entity"
BASIS_FIELD: Final = "legal_basis"
RETROSPECTIVE_FIELD: Final = "retrospective_request"
RETROSPECTIVE_BASIS: Final = "LEGAL_BASIS_RETROSPECTIVE_REQUEST"
#: Extra field of a RETROSPECTIVE_APPROVED event (gateway/services/review.py).
VALID_UNTIL_FIELD: Final = "valid_until_ms"
#: Extra field of a MESSAGE_ACCEPTED event saying whether the message is privileged.
PRIVILEGED_FIELD: Final = "privileged"
#: The events that take a message out of the screening queue.
LEAVING: Final = frozenset(
    {
        LogAction.MESSAGE_RELEASED,
        LogAction.MESSAGE_WITHHELD,
        LogAction.MESSAGE_REJECTED,
        LogAction.MESSAGE_DELIVERED,
    }
)
#: The events a message's timeline is made of.
TIMELINE_ACTIONS: Final = (LogAction.MESSAGE_QUEUED, *sorted(LEAVING))


def utc(ms: int) -> datetime:
    """The aware UTC datetime of milliseconds since the epoch."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True)
class Grant:
    """A REVIEW_GRANTED event from the transparency log."""

    log_index: int
    time_ms: int
    actor: str
    message_id: bytes
    grant_id: str
    detainee_id: str
    entity: str
    legal_basis: str
    retrospective_request: str = ""
    #: When a signed head first covered the grant; None when not known or not covered.
    signed_at_ms: int | None = None

    @property
    def officer(self) -> str:
        """The staff name, without the ``staff:`` prefix."""
        return self.actor.removeprefix("staff:")


def grant_from_event(index: int, event: LogEvent) -> Grant | None:
    """The grant an event records, or None for any other event or one without a message."""
    if event.action is not LogAction.REVIEW_GRANTED:
        return None
    subjects = dict(event.subjects)
    message = event.message_id()
    if message is None:
        return None
    return Grant(
        log_index=index,
        time_ms=event.time_ms,
        actor=event.actor,
        message_id=bytes.fromhex(message),
        grant_id=subjects.get("grant", ""),
        detainee_id=subjects.get("detainee", ""),
        entity=event.extra.get(ENTITY_FIELD, ""),
        legal_basis=event.extra.get(BASIS_FIELD, ""),
        retrospective_request=event.extra.get(RETROSPECTIVE_FIELD, ""),
    )


def signing_times(heads: Sequence[tuple[int, int]]) -> Callable[[int], int | None]:
    """For a leaf index, the earliest timestamp of a verified head covering it (or None).

    ``heads`` are (tree_size, timestamp_ms) of heads the stored leaves reproduce.
    """
    ordered = sorted(heads)
    sizes = [size for size, _ in ordered]
    # earliest[i]: the earliest timestamp among heads i.. (all of size >= sizes[i]).
    earliest: list[int] = []
    best: int | None = None
    for _, stamp in reversed(ordered):
        best = stamp if best is None else min(best, stamp)
        earliest.append(best)
    earliest.reverse()

    def signed(index: int) -> int | None:
        position = bisect.bisect_right(sizes, index)  # first head with size > index
        return earliest[position] if position < len(earliest) else None

    return signed


def with_signing_times(grants: Sequence[Grant], heads: Sequence[tuple[int, int]]) -> list[Grant]:
    """Each grant with the earliest timestamp of a verified head covering its leaf."""
    signed = signing_times(heads)
    return [dataclasses.replace(g, signed_at_ms=signed(g.log_index)) for g in grants]


def actions_with_signing_times(
    actions: Sequence[RecordedAction], heads: Sequence[tuple[int, int]]
) -> list[RecordedAction]:
    """Each recorded key-server action with the earliest verified head covering its leaf."""
    signed = signing_times(heads)
    return [dataclasses.replace(a, signed_at_ms=signed(a.log_index)) for a in actions]


# --------------------------------------------------------------------------- message states


@dataclass(frozen=True)
class Timeline:
    """One message's MESSAGE_QUEUED and leaving events, (time_ms, log index, action) in order."""

    events: tuple[tuple[int, int, LogAction], ...]

    def queued_at(self) -> tuple[int, int] | None:
        """(time, log index) of the message's entry into the screening queue, if any."""
        for time_ms, index, action in self.events:
            if action is LogAction.MESSAGE_QUEUED:
                return time_ms, index
        return None

    def left_queue(self) -> tuple[int, LogAction] | None:
        """(time, action) of the first event after queueing that took the message out."""
        queued = self.queued_at()
        if queued is None:
            return None
        for time_ms, index, action in self.events:
            if index > queued[1] and action in LEAVING:
                return time_ms, action
        return None


def timelines_from_events(
    events: Iterable[tuple[int, LogEvent]], wanted: Collection[bytes]
) -> dict[bytes, Timeline]:
    """The timelines of the ``wanted`` messages from MESSAGE_* events (others are skipped)."""
    found: dict[bytes, list[tuple[int, int, LogAction]]] = {}
    for index, event in events:
        if event.action not in TIMELINE_ACTIONS:
            continue
        hex_id = event.message_id()
        message = bytes.fromhex(hex_id) if hex_id else None
        if message is not None and message in wanted:
            found.setdefault(message, []).append((event.time_ms, index, event.action))
    return {m: Timeline(tuple(sorted(e, key=lambda x: x[1]))) for m, e in found.items()}


def approvals_from_events(events: Iterable[tuple[int, LogEvent]]) -> dict[str, int]:
    """Retrospective request id -> the approval's valid_until_ms (the latest approval wins)."""
    found: dict[str, int] = {}
    for _index, event in events:
        if event.action is not LogAction.RETROSPECTIVE_APPROVED:
            continue
        request = dict(event.subjects).get("retrospective_request")
        until = event.extra.get(VALID_UNTIL_FIELD, "")
        if request and until.isascii() and until.isdigit():
            found[request] = int(until)
    return found


def privileged_messages(
    accepted: Iterable[LogEvent], stored_privileged: Collection[bytes]
) -> frozenset[bytes]:
    """Which messages are privileged (SPEC P4), the one place that decides it for the auditor.

    A MESSAGE_ACCEPTED leaf with a ``privileged`` field ("true"/"false") decides for its
    message; messages whose leaf has no such field (older leaves) fall back to
    ``stored_privileged``, the gateway's message table. Once every leaf carries the
    field, the table is no longer needed.
    """
    from_log: set[bytes] = set()
    not_privileged: set[bytes] = set()
    for event in accepted:
        value = event.extra.get(PRIVILEGED_FIELD)
        hex_id = event.message_id()
        if value is None or hex_id is None:
            continue
        message = bytes.fromhex(hex_id)
        if value == "true":
            from_log.add(message)
        elif message in stored_privileged:
            not_privileged.add(message)
    return frozenset(from_log | (set(stored_privileged) - not_privileged))


@dataclass(frozen=True)
class LogFacts:
    """What the transparency log says that the reconciliation needs."""

    grants: Sequence[Grant]
    #: Timelines of the granted messages (``timelines_from_events``).
    timelines: Mapping[bytes, Timeline]
    #: Retrospective request id -> valid_until_ms of its approval.
    approvals: Mapping[str, int] = field(default_factory=dict)
    #: Recorded key-server actions (gateway/keyevents.py).
    actions: Sequence[RecordedAction] = ()
    #: Privileged message ids (``privileged_messages``): none may be escrowed.
    privileged: Collection[bytes] = frozenset()


class Reason(enum.StrEnum):
    """Why a decrypt has no matching grant."""

    NO_GRANT = "no grant for this message"
    OTHER_IDENTITY = "the message's grants name another key-server identity"
    GRANT_LATER = "the grant was logged after the decrypt"
    NOT_SIGNED = "the grant was not in a signed tree head before the decrypt"
    UNREADABLE_CONTEXT = "the message id is not readable in the audit log"
    NO_IDENTITY = "not decrypted by a staff identity"
    GRANT_EXPIRED = "the grant's time had run out"
    NOT_QUEUED = "the message was not in the screening queue"
    LEFT_QUEUE = "the message had left the screening queue"
    NO_APPROVAL = "the retrospective request has no approval in the log"
    APPROVAL_EXPIRED = "the retrospective approval had expired"


@dataclass(frozen=True)
class Unmatched:
    """A decrypt without a grant, and why."""

    decrypt: Decrypt
    reason: Reason
    detail: str = ""


@dataclass(frozen=True)
class Reconciliation:
    """The outcome: matched pairs, what is unmatched on either side, what is informational."""

    matched: tuple[tuple[Decrypt, Grant], ...]
    unmatched: tuple[Unmatched, ...]
    refused: tuple[Decrypt, ...]
    unused_grants: tuple[Grant, ...]
    #: Grants outside the audit log's period: the audit log cannot say whether they were used.
    outside_period: tuple[Grant, ...]
    period: tuple[datetime, datetime] | None
    leeway_ms: int
    require_signed: bool
    notes: tuple[str, ...] = field(default=())
    grant_validity_ms: int = GRANT_VALIDITY_MS
    #: Key-server changes against recorded actions.
    changes: ChangeReconciliation | None = None
    #: Escrow encrypts of privileged messages (SPEC P4: they carry no escrow).
    privileged_escrows: tuple[Escrow, ...] = ()
    #: The audit devices compared; None when only one was given.
    devices: DeviceComparison | None = None

    def clean(self, *, allow_unused: bool = False) -> bool:
        """True when nothing is unmatched, nothing privileged was escrowed, devices agree."""
        return (
            not self.unmatched
            and (allow_unused or not self.unused_grants)
            and (self.changes is None or not self.changes.unmatched)
            and not self.privileged_escrows
            and (self.devices is None or not self.devices.findings)
        )


def _own_grants(decrypt: Decrypt, grants: Sequence[Grant]) -> list[Grant] | Unmatched:
    """The message's grants to the decrypting identity, or why there are none."""
    if decrypt.message_id is None:
        return Unmatched(decrypt, Reason.UNREADABLE_CONTEXT)
    if not decrypt.entity_id:
        return Unmatched(decrypt, Reason.NO_IDENTITY, decrypt.display_name)
    if not grants:
        return Unmatched(decrypt, Reason.NO_GRANT)
    own = [g for g in grants if g.entity == decrypt.entity_id]
    if not own:
        names = ", ".join(sorted({f"{g.officer} ({g.entity or 'no entity'})" for g in grants}))
        return Unmatched(decrypt, Reason.OTHER_IDENTITY, f"granted to {names}")
    return own


@dataclass(frozen=True)
class _Rules:
    """What a grant must satisfy beyond message, identity and order (SPEC P14)."""

    leeway_ms: int
    require_signed: bool
    validity_ms: int
    timelines: Mapping[bytes, Timeline]
    approvals: Mapping[str, int]

    def basis_held(self, decrypt: Decrypt, grant: Grant) -> Unmatched | None:
        """Why the grant's legal basis no longer held at the decrypt, or None if it did."""
        if grant.legal_basis == ESCROW_AUDIT_BASIS:
            # An escrow audit checks the key, whatever became of the message; which
            # messages it may check is decided by the log (the state check verifies it).
            return None
        if grant.retrospective_request or grant.legal_basis == RETROSPECTIVE_BASIS:
            return self._approval_held(decrypt, grant)
        at, leeway = decrypt.time_ms, self.leeway_ms
        timeline = self.timelines.get(grant.message_id, Timeline(()))
        queued = timeline.queued_at()
        if queued is None or at + leeway < queued[0]:
            return Unmatched(decrypt, Reason.NOT_QUEUED, grant.legal_basis)
        left = timeline.left_queue()
        if left is not None and at - leeway > left[0]:
            state = left[1].name.removeprefix("MESSAGE_").lower()
            return Unmatched(decrypt, Reason.LEFT_QUEUE, f"{state} at {utc(left[0]).isoformat()}")
        return None

    def _approval_held(self, decrypt: Decrypt, grant: Grant) -> Unmatched | None:
        """A retrospective grant holds while the request's approval is valid."""
        until = self.approvals.get(grant.retrospective_request)
        if until is None:
            return Unmatched(decrypt, Reason.NO_APPROVAL, grant.retrospective_request)
        if decrypt.time_ms - self.leeway_ms > until:
            return Unmatched(
                decrypt, Reason.APPROVAL_EXPIRED, f"valid until {utc(until).isoformat()}"
            )
        return None

    def check(self, decrypt: Decrypt, grant: Grant) -> Unmatched | None:
        """Why ``grant`` (made at or before the decrypt) does not cover it, or None."""
        limit = decrypt.time_ms + self.leeway_ms
        if decrypt.time_ms - self.leeway_ms > grant.time_ms + self.validity_ms:
            minutes = self.validity_ms / 60_000
            return Unmatched(
                decrypt,
                Reason.GRANT_EXPIRED,
                f"granted at {utc(grant.time_ms).isoformat()}, valid {minutes:g} min",
            )
        if self.require_signed and (grant.signed_at_ms is None or grant.signed_at_ms > limit):
            return Unmatched(decrypt, Reason.NOT_SIGNED)
        return self.basis_held(decrypt, grant)


def _match(decrypt: Decrypt, grants: Sequence[Grant], rules: _Rules) -> Grant | Unmatched:
    """The latest grant that covers ``decrypt``, or why the latest one made before it does not."""
    own = _own_grants(decrypt, grants)
    if isinstance(own, Unmatched):
        return own
    limit = decrypt.time_ms + rules.leeway_ms
    timely = sorted(
        (g for g in own if g.time_ms <= limit),
        key=lambda g: (g.time_ms, g.log_index),
        reverse=True,
    )
    if not timely:
        first = min(g.time_ms for g in own)
        return Unmatched(decrypt, Reason.GRANT_LATER, f"first grant at {utc(first).isoformat()}")
    why: Unmatched | None = None
    for grant in timely:
        problem = rules.check(decrypt, grant)
        if problem is None:
            return grant
        why = why or problem
    assert why is not None
    return why


def reconcile(
    server: KeyServerLog,
    facts: LogFacts,
    *,
    leeway_ms: int = DEFAULT_LEEWAY_MS,
    require_signed: bool = False,
    grant_validity_ms: int = GRANT_VALIDITY_MS,
) -> Reconciliation:
    """Reconcile what the key server's audit devices say with what the log records.

    A decrypt matches a grant for the same message, to the same key-server entity,
    made at or before it, no longer than ``grant_validity_ms`` before it, while the
    grant's basis held; with ``require_signed`` the grant must also have been in a
    signed tree head by then (SPEC P6, P14). Key-server changes are matched to
    recorded actions (clients/audit/changes.py); escrows of privileged messages and
    differences between audit devices are findings. The leeway allows for clock
    differences between the gateway and the key server, at both ends of each window.
    """
    if leeway_ms < 0:
        raise ValueError("the leeway cannot be negative")
    rules = _Rules(leeway_ms, require_signed, grant_validity_ms, facts.timelines, facts.approvals)
    by_message: dict[bytes, list[Grant]] = {}
    for grant in facts.grants:
        by_message.setdefault(grant.message_id, []).append(grant)
    matched: list[tuple[Decrypt, Grant]] = []
    unmatched: list[Unmatched] = []
    refused: list[Decrypt] = []
    used: set[int] = set()
    for decrypt in server.decrypts:
        if decrypt.status is DecryptStatus.REFUSED:
            refused.append(decrypt)
            continue
        candidates = by_message.get(decrypt.message_id, []) if decrypt.message_id else []
        found = _match(decrypt, candidates, rules)
        if isinstance(found, Unmatched):
            unmatched.append(found)
        else:
            matched.append((decrypt, found))
            used.add(found.log_index)
    unused: list[Grant] = []
    outside: list[Grant] = []
    period = server.period
    for grant in facts.grants:
        if grant.log_index in used:
            continue
        inside = period is not None and (
            millis(period[0]) - leeway_ms <= grant.time_ms <= millis(period[1])
        )
        (unused if inside else outside).append(grant)
    notes: list[str] = []
    if period is None:
        notes.append("the key server's audit log holds no escrow entries")
    devices = server.devices
    if devices is None or not devices.compared:
        notes.append(
            "one audit device only: the devices were not compared (give each device's "
            "file with its own --audit-log)"
        )
    elif devices.uncovered:
        notes.append(
            f"{devices.uncovered} device entries fall outside another device's copy, "
            "which therefore cannot confirm them"
        )
    privileged = set(facts.privileged)
    return Reconciliation(
        matched=tuple(matched),
        unmatched=tuple(unmatched),
        refused=tuple(refused),
        unused_grants=tuple(unused),
        outside_period=tuple(outside),
        period=period,
        leeway_ms=leeway_ms,
        require_signed=require_signed,
        notes=tuple(notes),
        grant_validity_ms=grant_validity_ms,
        changes=match_changes(
            server.changes, facts.actions, leeway_ms=leeway_ms, require_signed=require_signed
        ),
        privileged_escrows=tuple(e for e in server.watched_escrows if e.message_id in privileged),
        devices=devices if devices is not None and devices.compared else None,
    )
