"""What the key server's audit devices say: decrypts, changes, escrows, whether devices agree.

SPEC P14: the key server runs two audit devices on separate storage, and the
auditor compares them rather than merging them. Each device may come in several
files (rotated parts). Entries are keyed by the key server's request id, so the
same request counts once however many devices logged it; an escrow-relevant entry
that one device has and another lacks, inside the time that device covers, is a
finding, and so is one the devices describe differently.

Pure functions: parsed audit events in (escrow/auditlog.py), a ``KeyServerLog`` out.
"""

from __future__ import annotations

import enum
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sealpost.escrow.auditlog import (
    AuditEntryType,
    AuditEvent,
    AuditOperation,
    AuditOutcome,
    ChangeKind,
    EscrowAuditEvent,
)


def millis(when: datetime) -> int:
    """Milliseconds since the Unix epoch of an aware datetime."""
    return int(when.timestamp() * 1000)


class DecryptStatus(enum.StrEnum):
    """What the key server's audit log says became of a decrypt (or a change)."""

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
        return _who(self.display_name, self.entity_id)


def _who(display_name: str, entity_id: str) -> str:
    if display_name and entity_id:
        return f"{display_name} ({entity_id})"
    return display_name or entity_id or "(no identity)"


@dataclass(frozen=True)
class Change:
    """One request that changed (or took out) something around the escrow key."""

    request_id: str
    time: datetime
    kind: ChangeKind
    path: str
    operation: str
    entity_id: str
    display_name: str
    #: OPENED: it took effect; POSSIBLY_OPENED: no response logged; REFUSED: it did not.
    status: DecryptStatus
    clear_settings: tuple[tuple[str, str], ...]
    source: str
    error: str | None = None

    @property
    def time_ms(self) -> int:
        """The request time in milliseconds since the epoch."""
        return millis(self.time)

    @property
    def who(self) -> str:
        """The identity as the audit log names it."""
        return _who(self.display_name, self.entity_id)

    def setting(self, name: str) -> str | None:
        """A parameter's clear value ("true", "3"), if the audit device logged it in clear."""
        return dict(self.clear_settings).get(name)


@dataclass(frozen=True)
class Escrow:
    """An escrow encrypt that named a watched message id (a privileged message, SPEC P4)."""

    request_id: str
    time: datetime
    message_id: bytes
    display_name: str
    institution_id: str | None
    source: str

    @property
    def time_ms(self) -> int:
        """The request time in milliseconds since the epoch."""
        return millis(self.time)


@dataclass(frozen=True)
class DeviceFinding:
    """An entry one audit device has and another lacks, or that they describe differently."""

    request_id: str
    entry_type: AuditEntryType
    time: datetime
    #: What the entry is about, for people: "decrypt of <id>", "key-config <path>".
    what: str
    present_in: tuple[str, ...]
    missing_from: tuple[str, ...]
    #: "missing" or "differs".
    kind: str


@dataclass(frozen=True)
class DeviceComparison:
    """How the audit devices compared (SPEC P14)."""

    #: Device names, as given.
    devices: tuple[str, ...]
    #: First and last escrow-relevant entry of each device.
    spans: tuple[tuple[str, datetime | None, datetime | None], ...]
    findings: tuple[DeviceFinding, ...]
    #: Entries outside some device's span: that device's copy cannot say (information).
    uncovered: int = 0

    @property
    def compared(self) -> bool:
        """True when there were at least two devices to compare."""
        return len(self.devices) >= 2


@dataclass(frozen=True)
class KeyServerLog:
    """What the key server's audit devices say about the escrow key and around it."""

    decrypts: tuple[Decrypt, ...]
    #: First and last time of any escrow entry (encrypts too): the period the log covers.
    period: tuple[datetime, datetime] | None
    changes: tuple[Change, ...] = ()
    #: Encrypts naming a watched message id (privileged messages).
    watched_escrows: tuple[Escrow, ...] = ()
    devices: DeviceComparison | None = None


@dataclass(frozen=True)
class Device:
    """One audit device: its name and its files' events (rotated parts, in any order)."""

    name: str
    parts: Sequence[tuple[str, Iterable[AuditEvent]]]


@dataclass
class _Pair:
    request: AuditEvent | None = None
    response: AuditEvent | None = None
    source: str = ""

    @property
    def first(self) -> AuditEvent:
        first = self.request or self.response
        assert first is not None
        return first


def _status(response: AuditEvent | None) -> tuple[DecryptStatus, str | None]:
    if response is None:
        return DecryptStatus.POSSIBLY_OPENED, "no response entry was logged"
    if response.outcome is AuditOutcome.SUCCEEDED:
        return DecryptStatus.OPENED, None
    if response.outcome is AuditOutcome.PARTIAL:
        return DecryptStatus.POSSIBLY_OPENED, response.error or "batch partly refused"
    return DecryptStatus.REFUSED, response.error


def _fingerprint(event: AuditEvent) -> tuple[object, ...]:
    """What two devices must agree on about one entry (HMAC-ed values differ per device)."""
    if isinstance(event, EscrowAuditEvent):
        return (event.operation, event.contexts, event.entity_id, event.outcome)
    return (event.kind, event.path, event.operation, event.entity_id, event.clear_settings)


def _what(event: AuditEvent) -> str:
    if isinstance(event, EscrowAuditEvent):
        ids = [m.hex() if m else "(unreadable)" for m in event.message_ids]
        shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
        return f"{event.operation.value} of {shown or 'nothing'} by {event.display_name or '?'}"
    return f"{event.kind.value} {event.operation} {event.path} by {event.display_name or '?'}"


@dataclass
class _DeviceIndex:
    name: str
    entries: dict[tuple[str, AuditEntryType], tuple[datetime, tuple[object, ...]]] = field(
        default_factory=dict
    )
    first: datetime | None = None
    last: datetime | None = None

    def add(self, event: AuditEvent) -> None:
        key = (event.request_id, event.entry_type)
        self.entries.setdefault(key, (event.time, _fingerprint(event)))
        self.first = event.time if self.first is None else min(self.first, event.time)
        self.last = event.time if self.last is None else max(self.last, event.time)

    def covers(self, when: datetime, leeway: timedelta) -> bool:
        return (
            self.first is not None
            and self.last is not None
            and self.first - leeway <= when <= self.last + leeway
        )


def _compare(
    indices: Sequence[_DeviceIndex],
    described: dict[tuple[str, AuditEntryType], AuditEvent],
    leeway: timedelta,
) -> DeviceComparison:
    findings: list[DeviceFinding] = []
    uncovered = 0
    if len(indices) >= 2:
        for key, event in described.items():
            present = [i for i in indices if key in i.entries]
            absent = [i for i in indices if key not in i.entries]
            missing = tuple(i.name for i in absent if i.covers(event.time, leeway))
            uncovered += len(absent) - len(missing)
            differs = len({i.entries[key][1] for i in present}) > 1
            if missing or differs:
                findings.append(
                    DeviceFinding(
                        request_id=key[0],
                        entry_type=key[1],
                        time=event.time,
                        what=_what(event),
                        present_in=tuple(i.name for i in present),
                        missing_from=missing,
                        kind="missing" if missing else "differs",
                    )
                )
    findings.sort(key=lambda f: (f.time, f.request_id, f.entry_type.value))
    return DeviceComparison(
        devices=tuple(i.name for i in indices),
        spans=tuple((i.name, i.first, i.last) for i in indices),
        findings=tuple(findings),
        uncovered=uncovered,
    )


@dataclass
class _Collector:
    """One pass over every device's events: request/response pairs, watched escrows, spans."""

    watch: Container[bytes]
    compare: bool
    pairs: dict[str, _Pair] = field(default_factory=dict)
    described: dict[tuple[str, AuditEntryType], AuditEvent] = field(default_factory=dict)
    watched: dict[str, Escrow] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)
    first: datetime | None = None
    last: datetime | None = None

    def add(self, event: AuditEvent, source: str) -> None:
        if self.compare:
            self.described.setdefault((event.request_id, event.entry_type), event)
        if isinstance(event, EscrowAuditEvent):
            self.first = event.time if self.first is None else min(self.first, event.time)
            self.last = event.time if self.last is None else max(self.last, event.time)
            if event.operation is AuditOperation.ENCRYPT:
                if event.outcome is AuditOutcome.REFUSED:
                    self.refused.add(event.request_id)
                else:
                    _watch(event, self.watch, self.watched, source)
                return
        pair = self.pairs.setdefault(event.request_id, _Pair())
        if event.entry_type is AuditEntryType.REQUEST and pair.request is None:
            pair.request = event
            pair.source = f"{source}:{event.line_number}"
        elif event.entry_type is AuditEntryType.RESPONSE and pair.response is None:
            pair.response = event
            pair.source = pair.source or f"{source}:{event.line_number}"

    def decrypts_and_changes(self) -> tuple[list[Decrypt], list[Change]]:
        decrypts: list[Decrypt] = []
        changes: list[Change] = []
        for request_id, pair in self.pairs.items():
            first = pair.first
            status, error = _status(pair.response)
            if isinstance(first, EscrowAuditEvent):
                decrypts.extend(
                    Decrypt(
                        request_id=request_id,
                        time=first.time,
                        entity_id=first.entity_id,
                        display_name=first.display_name,
                        message_id=message_id,
                        status=status,
                        source=pair.source,
                        error=error,
                    )
                    for message_id in first.message_ids or (None,)
                )
            else:
                changes.append(
                    Change(
                        request_id=request_id,
                        time=first.time,
                        kind=first.kind,
                        path=first.path,
                        operation=first.operation,
                        entity_id=first.entity_id,
                        display_name=first.display_name,
                        status=status,
                        clear_settings=first.clear_settings,
                        source=pair.source,
                        error=error,
                    )
                )
        decrypts.sort(key=lambda d: (d.time, d.source))
        changes.sort(key=lambda c: (c.time, c.source))
        return decrypts, changes


def read_devices(
    devices: Sequence[Device],
    *,
    watch: Container[bytes] = frozenset(),
    leeway_ms: int = 5_000,
) -> KeyServerLog:
    """Decrypts, changes and escrows of watched ids from every device, each request once.

    With two or more devices they are also compared (``KeyServerLog.devices``). The
    events stream through once; per request only its request and response entries
    are kept, and of encrypts only those naming a watched id.
    """
    collector = _Collector(watch, compare=len(devices) >= 2)
    indices: list[_DeviceIndex] = []
    for device in devices:
        index = _DeviceIndex(device.name)
        indices.append(index)
        for source, events in device.parts:
            for event in events:
                index.add(event)
                collector.add(event, source)
    decrypts, changes = collector.decrypts_and_changes()
    first, last = collector.first, collector.last
    escrows = (e for e in collector.watched.values() if e.request_id not in collector.refused)
    return KeyServerLog(
        decrypts=tuple(decrypts),
        period=None if first is None or last is None else (first, last),
        changes=tuple(changes),
        watched_escrows=tuple(sorted(escrows, key=lambda e: (e.time, e.source))),
        devices=_compare(indices, collector.described, timedelta(milliseconds=leeway_ms)),
    )


def _watch(
    event: EscrowAuditEvent, watch: Container[bytes], found: dict[str, Escrow], source: str
) -> None:
    """Keep an encrypt that names a watched message id, once per request."""
    if event.request_id in found:
        return
    for message_id in event.message_ids:
        if message_id is not None and message_id in watch:
            found[event.request_id] = Escrow(
                request_id=event.request_id,
                time=event.time,
                message_id=message_id,
                display_name=event.display_name,
                institution_id=event.institution_id,
                source=f"{source}:{event.line_number}",
            )
            return


def decrypts_from_events(events: Iterable[AuditEvent], source: str) -> KeyServerLog:
    """One device in one file: ``read_devices`` for a single source."""
    return read_devices([Device(source, [(source, events)])])
