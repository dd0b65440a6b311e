"""Read-only access to the gateway's database: log leaves, signed heads, log keys, records.

The auditor needs read access only, and the connection enforces it: SQLite is
opened with ``mode=ro``, PostgreSQL sessions are ``default_transaction_read_only``.
Nothing here writes, and nothing here is trusted: leaves and heads go to the pure
verifier (sealpost.crypto.logaudit), key records are checked against a pin.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from sqlalchemy import Connection, Engine, create_engine, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from sealpost.crypto import keyrecords, merkle
from sealpost.crypto.errors import CryptoError
from sealpost.crypto.logaudit import (
    StoredCosignature,
    StoredHead,
    TrustedLogKey,
    TrustedWitness,
)
from sealpost.crypto.logentry import LogAction, LogEvent, decode_event
from sealpost.errors import SealpostError
from sealpost.gateway.storage.schema import (
    cosignatures,
    directory_successions,
    key_records,
    log_leaves,
    log_nodes,
    messages,
    tree_heads,
)
from sealpost.v1 import keys_pb2

#: Leaves fetched per query when streaming the log.
LEAF_BATCH: Final = 10_000
#: Node keys per query when the verifier asks the node cache for hints.
_NODE_CHUNK: Final = 400


class AuditSourceError(SealpostError):
    """The database cannot be read, or holds nothing the auditor can trust."""


def open_readonly(url: str) -> Engine:
    """An engine for ``url`` that cannot write (SQLite ``mode=ro``, PostgreSQL read-only)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise AuditSourceError(f"cannot parse the database URL {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise AuditSourceError("a SQLite database URL needs a file path")
        path = Path(parsed.database).resolve()
        if not path.is_file():
            raise AuditSourceError(f"no database file at {path}")

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False)

        return create_engine("sqlite://", creator=connect, poolclass=NullPool)
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.query.get("target_session_attrs") == "read-write":
            # The gateway's URL of a cluster with a standby (docs/operations.md section 9).
            # libpq's read-write refuses a session that is read-only by default, as this
            # one is on every server; the primary is the server that URL means.
            parsed = parsed.update_query_dict({"target_session_attrs": "primary"})
        return create_engine(
            parsed,
            poolclass=NullPool,
            isolation_level="REPEATABLE READ",
            connect_args={"options": "-c default_transaction_read_only=on"},
        )
    raise AuditSourceError(f"unsupported database {backend!r} (sqlite or postgresql)")


def connect(url: str) -> Connection:
    """A read-only connection; wraps the driver's errors in AuditSourceError."""
    try:
        return open_readonly(url).connect()
    except SQLAlchemyError as exc:
        raise AuditSourceError(f"cannot open the database: {exc.__class__.__name__}") from exc


# --------------------------------------------------------------------------- the log


def stored_heads(connection: Connection) -> list[StoredHead]:
    """Every stored signed head, in the order stored (read before the leaves: heads only lag)."""
    rows = connection.execute(
        select(
            tree_heads.c.id,
            tree_heads.c.signed,
            tree_heads.c.tree_size,
            tree_heads.c.root_hash,
            tree_heads.c.timestamp_ms,
        ).order_by(tree_heads.c.id)
    )
    return [
        StoredHead(
            row_id=row.id,
            signed=bytes(row.signed),
            tree_size=row.tree_size,
            root_hash=bytes(row.root_hash),
            timestamp_ms=row.timestamp_ms,
        )
        for row in rows
    ]


def stored_cosignatures(connection: Connection) -> list[StoredCosignature]:
    """Every stored cosignature, with the row of the head it cosigns (read with the heads)."""
    rows = connection.execute(
        select(cosignatures.c.id, cosignatures.c.head_id, cosignatures.c.cosignature).order_by(
            cosignatures.c.id
        )
    )
    return [
        StoredCosignature(
            row_id=row.id, head_row_id=row.head_id, cosignature=bytes(row.cosignature)
        )
        for row in rows
    ]


def institution_witnesses(connection: Connection, directory_key: bytes) -> list[TrustedWitness]:
    """Institution keys the pinned directory signed: the terminals' witness keys.

    A record counts only when the pinned directory signed it; its validity window and a
    signed revocation bound the cosignatures it may make.
    """
    directories = _directories(connection, directory_key)
    rows = connection.execute(
        select(key_records.c.record, key_records.c.revocation).where(
            key_records.c.purpose == keys_pb2.KEY_PURPOSE_INSTITUTION
        )
    )
    found: list[TrustedWitness] = []
    for row in rows:
        try:
            record, body, key_id = _record_body(bytes(row.record))
        except CryptoError:
            continue
        if not _signed_by_any(record, body, directories, keyrecords.INSTITUTION):
            continue
        revoked = _revoked_at_ms(row.revocation, directories, key_id)
        until = body.not_after * 1000 if revoked is None else min(body.not_after * 1000, revoked)
        found.append(
            TrustedWitness(
                key_id=key_id,
                name=f"institution {body.subject}",
                public_key=body.signing_key,
                valid_from_ms=body.not_before * 1000,
                valid_until_ms=until,
            )
        )
    return found


def leaf_count(connection: Connection) -> int:
    """How many leaf rows are stored."""
    return int(connection.execute(select(func.count()).select_from(log_leaves)).scalar_one())


def leaf_batches(
    connection: Connection, batch: int = LEAF_BATCH
) -> Iterator[list[tuple[int, bytes]]]:
    """Stored leaves ``(index, bytes)`` in index order, ``batch`` rows per query."""
    after = -1
    while True:
        rows = connection.execute(
            select(log_leaves.c.idx, log_leaves.c.leaf)
            .where(log_leaves.c.idx > after)
            .order_by(log_leaves.c.idx)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield [(int(row.idx), bytes(row.leaf)) for row in rows]
        after = int(rows[-1].idx)


def events(connection: Connection, actions: Sequence[LogAction]) -> Iterator[tuple[int, LogEvent]]:
    """Decoded events of the given actions, in index order; other leaves are skipped unread.

    The action is bytes 1-2 of a version-1 leaf (docs/transparency-log.md), so a leaf is
    decoded only when it can match. Leaves that do not decode are skipped here; the log
    check reports them.
    """
    wanted = {int(action).to_bytes(2, "big") for action in actions}
    for batch in leaf_batches(connection):
        for index, leaf in batch:
            if leaf[1:3] not in wanted:
                continue
            try:
                yield index, decode_event(leaf)
            except CryptoError:
                continue


def all_events(connection: Connection) -> Iterator[tuple[int, LogEvent]]:
    """Every decodable event, in index order (the log check reports those that do not decode)."""
    for batch in leaf_batches(connection):
        for index, leaf in batch:
            try:
                yield index, decode_event(leaf)
            except CryptoError:
                continue


def privileged_message_ids(connection: Connection) -> set[bytes]:
    """Ids of the messages the gateway's message table marks privileged (SPEC P4).

    The auditor's fallback for acceptance leaves that do not say whether their message
    is privileged (reconcile.privileged_messages decides which source counts).
    """
    rows = connection.execute(select(messages.c.message_id).where(messages.c.privileged))
    return {bytes(m) for m in rows.scalars()}


class ReadOnlyNodes:
    """merkle.NodeStore over ``log_nodes`` that only reads: the verifier's untrusted hints."""

    def __init__(self, connection: Connection) -> None:
        """Look nodes up through ``connection``."""
        self._connection = connection

    def get_many(self, keys: Sequence[merkle.NodeKey]) -> list[bytes]:
        """The cached hashes of ``keys`` in order; KeyError when one is absent."""
        found: dict[merkle.NodeKey, bytes] = {}
        by_level: dict[int, list[int]] = {}
        for level, index in dict.fromkeys(keys):
            by_level.setdefault(level, []).append(index)
        # One query per level, ``level = ? AND idx IN (...)``: both databases then use the
        # primary key, where a row-value IN may scan the whole table.
        for level, indices in by_level.items():
            for start in range(0, len(indices), _NODE_CHUNK):
                rows = self._connection.execute(
                    select(log_nodes.c.idx, log_nodes.c.hash).where(
                        log_nodes.c.level == level,
                        log_nodes.c.idx.in_(indices[start : start + _NODE_CHUNK]),
                    )
                )
                found.update({(level, row.idx): bytes(row.hash) for row in rows})
        missing = [key for key in keys if key not in found]
        if missing:
            raise KeyError(f"log node {missing[0]} is not cached")
        return [found[key] for key in keys]

    def put_many(self, runs: Sequence[merkle.NodeRun]) -> None:
        """Refused: the auditor never writes."""
        raise PermissionError("the auditor's node store is read-only")


# --------------------------------------------------------------------------- log keys


@dataclass
class LogKeys:
    """The log keys to trust, and what was learnt while choosing them."""

    keys: list[TrustedLogKey]
    warnings: list[str] = field(default_factory=list)


def _record_body(raw: bytes) -> tuple[keys_pb2.KeyRecord, keys_pb2.KeyRecordBody, bytes]:
    record = keyrecords.parse_key_record(raw)
    body = keys_pb2.KeyRecordBody.FromString(record.body)
    return record, body, keyrecords.key_record_id(record.body)


def _successions(connection: Connection) -> list[tuple[keyrecords.VerifiedKey, ...]]:
    """The directory keys' hand-overs as (previous, next) pairs that verify."""
    pairs: list[tuple[keyrecords.VerifiedKey, ...]] = []
    if not inspect(connection).has_table(directory_successions.name):
        return pairs  # a database from before directory keys could be handed over
    rows = connection.execute(select(directory_successions.c.succession)).scalars()
    for raw in rows:
        try:
            succession = keyrecords.parse_succession(bytes(raw))
            previous, following, _ = keyrecords.verify_succession(succession)
        except CryptoError:
            continue
        pairs.append((previous, following))
    return pairs


def _chain_keys(connection: Connection, pin: bytes) -> set[bytes]:
    """The directory keys joined to the pinned one by hand-overs both keys signed."""
    keys = {pin}
    pairs = _successions(connection)
    grown = True
    while grown:
        grown = False
        for previous, following in pairs:
            linked = {previous.signing_key, following.signing_key}
            if linked & keys and not linked <= keys:
                keys |= linked
                grown = True
    return keys


def _directories(connection: Connection, pin: bytes) -> list[keyrecords.VerifiedKey]:
    """Directory records whose self-signature verifies, of the pinned key or its chain.

    The chain: keys the pinned one handed over to or took over from, by hand-overs both
    keys signed (docs/protocol.md, "Rotating the directory key").
    """
    found: list[keyrecords.VerifiedKey] = []
    chain = _chain_keys(connection, pin)
    rows = connection.execute(
        select(key_records.c.record).where(key_records.c.purpose == keys_pb2.KEY_PURPOSE_DIRECTORY)
    )
    for row in rows:
        try:
            record, body, _ = _record_body(bytes(row.record))
            if body.signing_key not in chain:
                continue
            found.append(
                keyrecords.verify_directory_record(
                    record, keyrecords.DirectoryPin(body.signing_key), now_ms=body.not_before * 1000
                )
            )
        except CryptoError:
            continue
    return found


def _revoked_at_ms(
    raw: bytes | None, directories: Sequence[keyrecords.VerifiedKey], key_id: bytes
) -> int | None:
    if raw is None:
        return None
    for directory in directories:
        try:
            revocation = keyrecords.verify_revocation(
                keyrecords.parse_key_revocation(raw), directory
            )
        except CryptoError:
            continue
        if revocation.key_id == key_id:
            return revocation.revoked_at * 1000
    return None


def log_keys(
    connection: Connection, *, log_key: bytes | None, directory_key: bytes | None
) -> LogKeys:
    """The log keys to trust, from the pinned log public key and/or the pinned directory key.

    With a directory pin, a log key record counts only if the pinned directory signed
    it; its validity window (and a signed revocation) bound the heads it may sign. With
    only a log pin, the records carrying that key give the key ids; without any such
    record the pinned key is trusted under any key id.
    """
    if log_key is None and directory_key is None:
        raise AuditSourceError("pin the log key (--log-key) or the directory key (--directory-key)")
    result = LogKeys(keys=[])
    directories = _directories(connection, directory_key) if directory_key else []
    if directory_key and not directories:
        raise AuditSourceError(
            "no directory record in the database carries the pinned directory key"
        )
    rows = connection.execute(
        select(key_records.c.record, key_records.c.revocation).where(
            key_records.c.purpose == keys_pb2.KEY_PURPOSE_LOG
        )
    )
    for row in rows:
        try:
            record, body, key_id = _record_body(bytes(row.record))
        except CryptoError:
            result.warnings.append("a log key record does not parse and is ignored")
            continue
        if log_key is not None and body.signing_key != log_key:
            continue
        if directories:
            if not _signed_by_any(record, body, directories, keyrecords.LOG):
                result.warnings.append(
                    f"log key record {key_id.hex()[:16]}... is not signed by the pinned "
                    "directory and is not trusted"
                )
                continue
            revoked = _revoked_at_ms(row.revocation, directories, key_id)
        else:
            revoked = None
        until = body.not_after * 1000 if revoked is None else min(body.not_after * 1000, revoked)
        result.keys.append(
            TrustedLogKey(
                key_id=key_id,
                public_key=body.signing_key,
                valid_from_ms=body.not_before * 1000,
                valid_until_ms=until,
            )
        )
    if not result.keys and log_key is not None and not directories:
        result.keys.append(TrustedLogKey(key_id=None, public_key=log_key))
        result.warnings.append(
            "no log key record carries the pinned log key: it is trusted under any key id"
        )
    if not result.keys:
        raise AuditSourceError("no log key record matches the pinned keys")
    return result


def _signed_by_any(
    record: keys_pb2.KeyRecord,
    body: keys_pb2.KeyRecordBody,
    directories: Sequence[keyrecords.VerifiedKey],
    purpose: keyrecords.KeyPurpose,
) -> bool:
    for directory in directories:
        try:
            keyrecords.verify_key_record(
                record, directory, now_ms=body.not_before * 1000, purpose=purpose
            )
        except CryptoError:
            continue
        return True
    return False
