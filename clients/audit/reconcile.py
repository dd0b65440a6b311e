"""Match every escrow decrypt in the key server's audit log to a grant in the transparency log.

SPEC P6: a screener may decrypt a message's key only after the gateway logged a
grant for that message to that person. The key server's audit device names the
message (the derivation context, in clear) and the key server's entity; the
grant names the same entity (``key_server_entity``, the ``sub`` of the identity
token). Pure functions: parsed audit events and decoded log events in, a
``Reconciliation`` out. docs/audit.md states the matching rule.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from sealpost.crypto.logentry import LogAction, LogEvent
from sealpost.escrow.auditlog import (
    AuditEntryType,
    AuditOperation,
    AuditOutcome,
    EscrowAuditEvent,
)

#: Default allowance for clock differences between the gateway and the key server.
DEFAULT_LEEWAY_MS: Final = 5_000
#: Extra fields of a REVIEW_GRANTED event (gateway/services/review.py).
ENTITY_FIELD: Final = "key_server_entity"
BASIS_FIELD: Final = "legal_basis"
RETROSPECTIVE_FIELD: Final = "retrospective_request"


def millis(when: datetime) -> int:
    """Milliseconds since the Unix epoch of an aware datetime."""
    return int(when.timestamp() * 1000)


def utc(ms: int) -> datetime:
    """The aware UTC datetime of milliseconds since the epoch."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class DecryptStatus(enum.StrEnum):
    """What the key server's audit log says became of a decrypt."""

    OPENED = "opened"
    #: A batch answered in part, or no response was logged: treated as opened.
    POSSIBLY_OPENED = "possibly-opened"
    REFUSED = "refused"


@dataclass(frozen=True)
class Decrypt:
    """One message key a key-server identity asked to decrypt."""

    request_id: str
    time: datetime
    entity_id: str
    display_name: str
    #: None when the context is not readable (HMAC-ed or malformed).
    message_id: bytes | None
    status: DecryptStatus
    #: "file:line" of the request entry.
    source: str
    error: str | None = None

    @property
    def time_ms(self) -> int:
        """The request time in milliseconds since the epoch."""
        return millis(self.time)

    @property
    def who(self) -> str:
        """The identity as the audit log names it."""
        if self.display_name and self.entity_id:
            return f"{self.display_name} ({self.entity_id})"
        return self.display_name or self.entity_id or "(no identity)"


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


def with_signing_times(grants: Sequence[Grant], heads: Sequence[tuple[int, int]]) -> list[Grant]:
    """Each grant with the earliest timestamp of a verified head covering its leaf.

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
    out: list[Grant] = []
    for grant in grants:
        position = bisect.bisect_right(sizes, grant.log_index)  # first head with size > index
        signed = earliest[position] if position < len(earliest) else None
        out.append(_replace_signed(grant, signed))
    return out


def _replace_signed(grant: Grant, signed: int | None) -> Grant:
    return Grant(
        log_index=grant.log_index,
        time_ms=grant.time_ms,
        actor=grant.actor,
        message_id=grant.message_id,
        grant_id=grant.grant_id,
        detainee_id=grant.detainee_id,
        entity=grant.entity,
        legal_basis=grant.legal_basis,
        retrospective_request=grant.retrospective_request,
        signed_at_ms=signed,
    )


@dataclass
class _Request:
    request: EscrowAuditEvent | None = None
    response: EscrowAuditEvent | None = None


def _status(response: EscrowAuditEvent | None) -> tuple[DecryptStatus, str | None]:
    if response is None:
        return DecryptStatus.POSSIBLY_OPENED, "no response entry was logged"
    if response.outcome is AuditOutcome.SUCCEEDED:
        return DecryptStatus.OPENED, None
    if response.outcome is AuditOutcome.PARTIAL:
        return DecryptStatus.POSSIBLY_OPENED, response.error or "batch partly refused"
    return DecryptStatus.REFUSED, response.error


@dataclass(frozen=True)
class KeyServerLog:
    """What the key server's audit log says about the escrow key."""

    decrypts: tuple[Decrypt, ...]
    #: First and last time of any escrow entry (encrypts too): the period the log covers.
    period: tuple[datetime, datetime] | None

    def merged(self, other: KeyServerLog) -> KeyServerLog:
        """Both logs together (several audit devices or rotated files)."""
        ends = [p for p in (self.period, other.period) if p is not None]
        period = (min(p[0] for p in ends), max(p[1] for p in ends)) if ends else None
        decrypts = sorted([*self.decrypts, *other.decrypts], key=lambda d: (d.time, d.source))
        return KeyServerLog(tuple(decrypts), period)


def decrypts_from_events(events: Iterable[EscrowAuditEvent], source: str) -> KeyServerLog:
    """One Decrypt per message key in each decrypt request, its request and response paired.

    The time is the request's (the key server logs the request before acting). Reads
    the events once, keeping only decrypts, so a large audit log streams through.
    """
    requests: dict[str, _Request] = {}
    first_time: datetime | None = None
    last_time: datetime | None = None
    for event in events:
        first_time = event.time if first_time is None else min(first_time, event.time)
        last_time = event.time if last_time is None else max(last_time, event.time)
        if event.operation is not AuditOperation.DECRYPT:
            continue
        pair = requests.setdefault(event.request_id, _Request())
        if event.entry_type is AuditEntryType.REQUEST:
            pair.request = event
        else:
            pair.response = event
    out: list[Decrypt] = []
    for request_id, pair in requests.items():
        first = pair.request or pair.response
        assert first is not None
        status, error = _status(pair.response)
        for message_id in first.message_ids or (None,):
            out.append(
                Decrypt(
                    request_id=request_id,
                    time=first.time,
                    entity_id=first.entity_id,
                    display_name=first.display_name,
                    message_id=message_id,
                    status=status,
                    source=f"{source}:{first.line_number}",
                    error=error,
                )
            )
    out.sort(key=lambda d: (d.time, d.source))
    period = None if first_time is None or last_time is None else (first_time, last_time)
    return KeyServerLog(tuple(out), period)


class Reason(enum.StrEnum):
    """Why a decrypt has no matching grant."""

    NO_GRANT = "no grant for this message"
    OTHER_IDENTITY = "the message's grants name another key-server identity"
    GRANT_LATER = "the grant was logged after the decrypt"
    NOT_SIGNED = "the grant was not in a signed tree head before the decrypt"
    UNREADABLE_CONTEXT = "the message id is not readable in the audit log"
    NO_IDENTITY = "not decrypted by a staff identity"


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

    def clean(self, *, allow_unused: bool = False) -> bool:
        """True when every decrypt has a grant (and, unless allowed, every grant was used)."""
        return not self.unmatched and (allow_unused or not self.unused_grants)


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


def _match(
    decrypt: Decrypt,
    grants: Sequence[Grant],
    leeway_ms: int,
    require_signed: bool,
) -> Grant | Unmatched:
    """The latest grant that allows ``decrypt``, or why there is none."""
    own = _own_grants(decrypt, grants)
    if isinstance(own, Unmatched):
        return own
    limit = decrypt.time_ms + leeway_ms
    timely = [g for g in own if g.time_ms <= limit]
    if not timely:
        first = min(g.time_ms for g in own)
        return Unmatched(decrypt, Reason.GRANT_LATER, f"first grant at {utc(first).isoformat()}")
    if require_signed:
        timely = [g for g in timely if g.signed_at_ms is not None and g.signed_at_ms <= limit]
        if not timely:
            return Unmatched(decrypt, Reason.NOT_SIGNED)
    return max(timely, key=lambda g: (g.time_ms, g.log_index))


def reconcile(
    decrypts: Iterable[Decrypt],
    grants: Iterable[Grant],
    *,
    period: tuple[datetime, datetime] | None,
    leeway_ms: int = DEFAULT_LEEWAY_MS,
    require_signed: bool = False,
) -> Reconciliation:
    """Match decrypts to grants: same message, same key-server entity, granted in time.

    With ``require_signed`` the grant must also have been in a signed tree head by the
    time of the decrypt (plus the leeway), as SPEC P6 demands of the gateway.
    """
    if leeway_ms < 0:
        raise ValueError("the leeway cannot be negative")
    all_grants = list(grants)
    by_message: dict[bytes, list[Grant]] = {}
    for grant in all_grants:
        by_message.setdefault(grant.message_id, []).append(grant)
    matched: list[tuple[Decrypt, Grant]] = []
    unmatched: list[Unmatched] = []
    refused: list[Decrypt] = []
    used: set[int] = set()
    for decrypt in decrypts:
        if decrypt.status is DecryptStatus.REFUSED:
            refused.append(decrypt)
            continue
        candidates = by_message.get(decrypt.message_id, []) if decrypt.message_id else []
        found = _match(decrypt, candidates, leeway_ms, require_signed)
        if isinstance(found, Unmatched):
            unmatched.append(found)
        else:
            matched.append((decrypt, found))
            used.add(found.log_index)
    unused: list[Grant] = []
    outside: list[Grant] = []
    for grant in all_grants:
        if grant.log_index in used:
            continue
        inside = period is not None and (
            millis(period[0]) - leeway_ms <= grant.time_ms <= millis(period[1])
        )
        (unused if inside else outside).append(grant)
    notes: list[str] = []
    if period is None:
        notes.append("the key server's audit log holds no escrow entries")
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
    )
