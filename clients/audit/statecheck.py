"""Hold the gateway's tables against the state its transparency log recomputes (SPEC P12).

The reading is here (read-only, like the rest of the auditor); the rules and the
comparison are pure (clients/audit/replay.py). Each stored row is put in the form the
replay uses: ids as the log writes them (message and key ids in hex), escrow blobs
as their log digest. Stored envelopes and key records are also checked against what
they claim to be: an envelope must hash to its stored digest, a key record's body
must be the key its id names.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from google.protobuf.message import DecodeError
from sqlalchemy import Connection, Table, inspect, select

from sealpost.clients.audit import database
from sealpost.clients.audit.replay import FindingKind, Replay, StateFinding, compare_table, replay
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto import keyrecords
from sealpost.crypto.errors import CryptoError
from sealpost.crypto.logentry import escrow_digest, watch_list_digest
from sealpost.gateway.storage import schema
from sealpost.i18n import _
from sealpost.v1 import envelope_pb2, keys_pb2

#: Rows read per query from the large tables.
_BATCH: Final = 5_000

Progress = Callable[[str], None]
Columns = Mapping[str, object]


@dataclass
class StateReport:
    """What the replay and the comparison found."""

    events: int
    rows: dict[str, int] = field(default_factory=dict)
    findings: list[StateFinding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every table follows the log and the log keeps its rules."""
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON object."""
        return {
            "ok": self.ok,
            "events": self.events,
            "rows": self.rows,
            "findings": [f.to_json() for f in self.findings],
        }

    def lines(self) -> list[str]:
        """Human-readable lines: a summary, then every finding."""
        checked = sum(self.rows.values())
        if self.ok:
            return [
                _(
                    "OK: {rows} rows in {tables} tables follow the log's {events} events, and "
                    "the log keeps its rules.",
                    rows=checked,
                    tables=len(self.rows),
                    events=self.events,
                )
            ]
        broken = sum(1 for f in self.findings if f.kind is FindingKind.RULE_BROKEN)
        lines = [
            _(
                "FAIL: {differ} rows differ from the log and {broken} log entries break its "
                "rules ({rows} rows, {events} events)",
                differ=len(self.findings) - broken,
                broken=broken,
                rows=checked,
                events=self.events,
            )
        ]
        lines += [f"  {f.kind.value:<15} {f.line()}" for f in self.findings]
        return lines


def _rows(connection: Connection, table: Table) -> Iterator[Any]:
    """Every row of ``table``, streamed from the database in batches."""
    streaming = connection.execution_options(yield_per=_BATCH)
    yield from streaming.execute(select(table))


def _messages(
    connection: Connection, findings: list[StateFinding]
) -> Iterator[tuple[str, Columns]]:
    for row in _rows(connection, schema.messages):
        key = bytes(row.message_id).hex()
        try:
            stored = envelope_pb2.Envelope.FromString(bytes(row.envelope))
            digest = crypto_envelope.envelope_digest(stored)
        except (DecodeError, CryptoError):
            digest = b""
        if not hmac.compare_digest(digest, bytes(row.envelope_digest)):
            findings.append(
                StateFinding(
                    FindingKind.COLUMN_DIFFERS,
                    "the stored envelope is not the one its digest names",
                    table="messages",
                    row=key,
                    column="envelope",
                    database=digest.hex() or "unreadable",
                    log=bytes(row.envelope_digest).hex(),
                )
            )
        yield (
            key,
            {
                "direction": row.direction,
                "detainee_id": row.detainee_id,
                "institution_id": row.institution_id,
                "account_id": row.account_id,
                "sender_key_id": bytes(row.sender_key_id),
                "envelope_digest": bytes(row.envelope_digest),
                "privileged": row.privileged,
                "state": row.state,
                "accepted_at_ms": row.accepted_at_ms,
                "state_changed_at_ms": row.state_changed_at_ms,
                "queued_at_ms": row.queued_at_ms,
                "escrow_digest": None
                if row.escrow is None
                else escrow_digest(bytes(row.escrow)).hex(),
                "verdict": row.verdict,
                "withhold_reason": row.withhold_reason,
                "verdict_by": row.verdict_by,
                "delivered_at_ms": row.delivered_at_ms,
                "delivery_reference": row.delivery_reference,
                "log_index": row.log_index,
                "release_log_index": row.release_log_index,
                "escrow_log_index": row.escrow_log_index,
                "withhold_reason_told": row.withhold_reason_told,
            },
        )


def _key_records(
    connection: Connection, findings: list[StateFinding]
) -> Iterator[tuple[str, Columns]]:
    for row in _rows(connection, schema.key_records):
        key = bytes(row.id).hex()
        try:
            record = keyrecords.parse_key_record(bytes(row.record))
            body = keys_pb2.KeyRecordBody.FromString(record.body)
            intact = (
                hmac.compare_digest(keyrecords.key_record_id(record.body), bytes(row.id))
                and body.purpose == row.purpose
                and body.subject == row.subject
            )
        except (DecodeError, CryptoError):
            intact = False
        if not intact:
            findings.append(
                StateFinding(
                    FindingKind.COLUMN_DIFFERS,
                    "the stored key record is not the key its id, purpose and subject name",
                    table="key_records",
                    row=key,
                    column="record",
                )
            )
        yield (
            key,
            {"purpose": row.purpose, "subject": row.subject, "revoked_at_ms": row.revoked_at_ms},
        )


def _successions(
    connection: Connection, findings: list[StateFinding]
) -> Iterator[tuple[str, Columns]]:
    """Hand-overs of the directory key, each held to the id the log recorded for it."""
    if not inspect(connection).has_table(schema.directory_successions.name):
        return
    for row in _rows(connection, schema.directory_successions):
        key = bytes(row.id).hex()
        if not hmac.compare_digest(keyrecords.succession_id(bytes(row.succession)), bytes(row.id)):
            findings.append(
                StateFinding(
                    FindingKind.COLUMN_DIFFERS,
                    "the stored hand-over of the directory key is not the one its id names",
                    table="directory_successions",
                    row=key,
                    column="succession",
                )
            )
        yield (
            key,
            {
                "previous_key_id": bytes(row.previous_key_id).hex(),
                "next_key_id": bytes(row.next_key_id).hex(),
            },
        )


def _simple(
    connection: Connection, table: Table, key: Callable[[Any], str], columns: Iterable[str]
) -> Iterator[tuple[str, Columns]]:
    names = list(columns)
    for row in _rows(connection, table):
        yield key(row), {name: getattr(row, name) for name in names}


def _tables(
    connection: Connection, findings: list[StateFinding]
) -> dict[str, Iterator[tuple[str, Columns]]]:
    """Each compared table's rows, keyed and named as the replay keys and names them."""
    s = schema
    return {
        "institutions": _simple(connection, s.institutions, lambda r: r.id, ()),
        "regimes": _simple(
            connection, s.regimes, lambda r: r.name, ("policy", "tell_relatives_reason")
        ),
        "detainees": _simple(
            connection, s.detainees, lambda r: r.id, ("institution_id", "regime", "status")
        ),
        "accounts": _simple(connection, s.accounts, lambda r: r.id, ()),
        "key_records": _key_records(connection, findings),
        "directory_successions": _successions(connection, findings),
        "mailbox_keys": _simple(
            connection,
            s.mailbox_keys,
            lambda r: f"{bytes(r.key_id).hex()}/{r.institution_id}",
            ("detainee_id",),
        ),
        "correspondents": _simple(
            connection,
            s.correspondents,
            lambda r: r.account_id,
            ("kind", "verified_by", "verified_at_ms", "revoked_at_ms", "revoked_by"),
        ),
        "contacts": _simple(
            connection,
            s.contacts,
            lambda r: r.id,
            ("account_id", "detainee_id", "status", "decided_by", "decided_at_ms"),
        ),
        "screening_orders": _simple(
            connection,
            s.screening_orders,
            lambda r: r.id,
            (
                "detainee_id",
                "legal_ground",
                "direction",
                "starts_at_ms",
                "ends_at_ms",
                "ordered_by",
                "created_at_ms",
                "ended_early_at_ms",
            ),
        ),
        "messages": _messages(connection, findings),
        "grants": _simple(
            connection,
            s.grants,
            lambda r: r.id,
            (
                "message_id",
                "staff",
                "legal_basis",
                "retrospective_request_id",
                "granted_at_ms",
                "log_index",
            ),
        ),
        "retrospective_requests": _simple(
            connection,
            s.retrospective_requests,
            lambda r: r.id,
            (
                "detainee_id",
                "institution_id",
                "direction",
                "period_start_ms",
                "period_end_ms",
                "case_reference",
                "requested_by",
                "status",
                "decided_by",
                "decided_at_ms",
                "valid_until_ms",
                "created_at_ms",
            ),
        ),
        "terminals": _simple(
            connection,
            s.terminals,
            lambda r: r.id,
            ("institution_id", "fingerprint", "issued_at_ms", "expires_at_ms", "revoked_at_ms"),
        ),
        "handovers": _simple(
            connection,
            s.handovers,
            lambda r: (
                f"{r.detainee_id}/{r.from_institution_id}/{r.to_institution_id}/{r.created_at_ms}"
            ),
            ("completed_at_ms",),
        ),
        "staff_members": _simple(
            connection,
            s.staff_members,
            lambda r: r.name,
            ("subject", "roles", "institutions", "recorded_at_ms", "log_index"),
        ),
        "watch_lists": _watch_lists(connection),
    }


def _watch_lists(connection: Connection) -> Iterator[tuple[str, Columns]]:
    """Watch lists by the digest of what is stored: a swapped ciphertext is a finding."""
    for row in _rows(connection, schema.watch_lists):
        yield (
            f"{row.institution_id}/{row.detainee_id}",
            {
                "version": row.version,
                "sealed_digest": watch_list_digest(row.sealed).hex(),
                "updated_by": row.updated_by,
                "updated_at_ms": row.updated_at_ms,
                "log_index": row.log_index,
            },
        )


def _counted(
    rows: Iterable[tuple[str, Columns]], counts: dict[str, int], table: str
) -> Iterator[tuple[str, Columns]]:
    for row in rows:
        counts[table] = counts.get(table, 0) + 1
        yield row


def check_state(connection: Connection, progress: Progress | None = None) -> StateReport:
    """Replay the stored log and compare every table it decides with the database."""
    say = progress or (lambda _line: None)
    # The heads' roots draw escrow audits' samples; the log check has verified the heads.
    roots = {head.tree_size: head.root_hash for head in database.stored_heads(connection)}
    state: Replay = replay(
        database.all_events(connection),
        {size: root for size, root in roots.items() if size is not None and root is not None},
    )
    say(_("state: {events} events replayed; comparing the tables", events=state.events))
    report = StateReport(events=state.events, findings=list(state.findings))
    integrity: list[StateFinding] = []
    for table, rows in _tables(connection, integrity).items():
        report.rows.setdefault(table, 0)
        expected = state.tables.get(table, {})
        report.findings.extend(compare_table(table, expected, _counted(rows, report.rows, table)))
    report.findings.extend(integrity)
    return report
