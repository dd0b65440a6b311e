"""Key records, the challenges relatives sign in with, and the codes that link devices."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NamedTuple

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from sealpost.crypto.keyrecords import VerifiedKey
from sealpost.gateway.errors import NotFound
from sealpost.gateway.storage.direct import Direct
from sealpost.gateway.storage.schema import (
    challenges,
    device_links,
    directory_successions,
    key_records,
)
from sealpost.gateway.store._common import columns, insert_unique, rows
from sealpost.v1 import keys_pb2


class KeyRecordRow(NamedTuple):
    """A stored key record: the directory-signed record, what it is for and whose."""

    id: bytes
    purpose: keys_pb2.KeyPurpose.ValueType
    subject: str
    #: The serialised, directory-signed KeyRecord.
    record: bytes
    not_before: int
    not_after: int
    created_at_ms: int
    revoked_at_ms: int | None
    #: The serialised, directory-signed KeyRevocation, once revoked.
    revocation: bytes | None


_KEY_RECORD = columns(KeyRecordRow, key_records)
_Q_KEY_RECORD = Direct(
    select(*_KEY_RECORD).where(key_records.c.id == bindparam("p_id")), KeyRecordRow
)
_Q_KEY_RECORDS = select(*_KEY_RECORD).where(
    key_records.c.id.in_(bindparam("p_ids", expanding=True))
)
_Q_CURRENT_KEY = Direct(
    select(*_KEY_RECORD)
    .where(
        key_records.c.purpose == bindparam("p_purpose"),
        key_records.c.subject == bindparam("p_subject"),
        key_records.c.revoked_at_ms.is_(None),
        key_records.c.not_after > bindparam("p_now_s"),
    )
    .order_by(key_records.c.created_at_ms.desc(), key_records.c.id)
    .limit(1),
    KeyRecordRow,
)


#: What a key registered twice is called in the refusal, by purpose.
_KEY_NAMES: Final[dict[keys_pb2.KeyPurpose.ValueType, str]] = {
    keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE: "device key",
    keys_pb2.KEY_PURPOSE_INSTITUTION: "institution key",
    keys_pb2.KEY_PURPOSE_MAILBOX: "mailbox key",
}


def add_key_record(
    connection: Connection, verified: VerifiedKey, record: bytes, now_ms: int
) -> None:
    """Store a directory-signed record (``record``, serialised) of ``verified``.

    Its id is a digest of its body, so the same record is never stored twice:
    AlreadyExists if it is (a registration replayed), and the transaction goes on.
    """
    insert_unique(
        connection,
        key_records,
        f"this {_KEY_NAMES.get(verified.purpose, 'key')} is registered already",
        id=verified.id,
        purpose=verified.purpose,
        subject=verified.subject,
        record=record,
        not_before=verified.not_before,
        not_after=verified.not_after,
        created_at_ms=now_ms,
    )


def latest_record(
    connection: Connection, purpose: keys_pb2.KeyPurpose.ValueType, subject: str
) -> bytes | None:
    """The newest record of ``purpose`` for ``subject``, serialised, revoked or expired or not."""
    raw = connection.execute(
        select(key_records.c.record)
        .where(key_records.c.purpose == purpose, key_records.c.subject == subject)
        .order_by(key_records.c.created_at_ms.desc())
        .limit(1)
    ).scalar_one_or_none()
    return None if raw is None else bytes(raw)


def add_succession(
    connection: Connection,
    succession_id: bytes,
    previous_key_id: bytes,
    next_key_id: bytes,
    succession: bytes,
    now_ms: int,
) -> None:
    """Keep a hand-over of the directory key (AlreadyExists if that key was handed over)."""
    insert_unique(
        connection,
        directory_successions,
        "that directory key was handed over before",
        id=succession_id,
        previous_key_id=previous_key_id,
        next_key_id=next_key_id,
        succession=succession,
        created_at_ms=now_ms,
    )


def successions(connection: Connection) -> list[keys_pb2.DirectorySuccession]:
    """Every hand-over of the directory key, in the order of the chain (oldest first)."""
    found = connection.execute(
        select(
            directory_successions.c.previous_key_id,
            directory_successions.c.next_key_id,
            directory_successions.c.succession,
        )
    ).all()
    by_previous = {bytes(row.previous_key_id): row for row in found}
    taken_over = {bytes(row.next_key_id) for row in found}
    chain: list[keys_pb2.DirectorySuccession] = []
    start = [row for row in found if bytes(row.previous_key_id) not in taken_over]
    row = start[0] if start else None
    while row is not None and len(chain) < len(found):
        chain.append(keys_pb2.DirectorySuccession.FromString(bytes(row.succession)))
        row = by_previous.get(bytes(row.next_key_id))
    return chain


def key_record(connection: Connection, key_id: bytes) -> KeyRecordRow | None:
    """A stored key record, revoked or not."""
    return _Q_KEY_RECORD.first(connection, {"p_id": key_id})


def key_records_by_id(connection: Connection, key_ids: Sequence[bytes]) -> list[KeyRecordRow]:
    """Stored records among ``key_ids``."""
    if not key_ids:
        return []
    return rows(connection, _Q_KEY_RECORDS, KeyRecordRow, {"p_ids": list(key_ids)})


def current_key(
    connection: Connection, purpose: keys_pb2.KeyPurpose.ValueType, subject: str, now_s: int
) -> KeyRecordRow | None:
    """The newest unrevoked, unexpired record of ``purpose`` for ``subject``."""
    return _Q_CURRENT_KEY.first(
        connection, {"p_purpose": purpose, "p_subject": subject, "p_now_s": now_s}
    )


def keys_of(
    connection: Connection, purpose: keys_pb2.KeyPurpose.ValueType, subject: str, now_s: int
) -> list[KeyRecordRow]:
    """Every unrevoked, unexpired record of ``purpose`` for ``subject``."""
    query = select(*_KEY_RECORD).where(
        key_records.c.purpose == purpose,
        key_records.c.subject == subject,
        key_records.c.revoked_at_ms.is_(None),
        key_records.c.not_after > now_s,
    )
    return rows(connection, query, KeyRecordRow)


def records_of(
    connection: Connection, purpose: keys_pb2.KeyPurpose.ValueType, subject: str
) -> list[KeyRecordRow]:
    """Every record of ``purpose`` for ``subject``, revoked and expired ones too, oldest first."""
    query = (
        select(*_KEY_RECORD)
        .where(key_records.c.purpose == purpose, key_records.c.subject == subject)
        .order_by(key_records.c.created_at_ms, key_records.c.id)
    )
    return rows(connection, query, KeyRecordRow)


def revoke_key(connection: Connection, key_id: bytes, revocation: bytes, now_ms: int) -> None:
    """Mark a record revoked and keep the signed revocation."""
    result = connection.execute(
        update(key_records)
        .where(key_records.c.id == key_id, key_records.c.revoked_at_ms.is_(None))
        .values(revoked_at_ms=now_ms, revocation=revocation)
    )
    if result.rowcount != 1:
        raise NotFound("no such unrevoked key")


def revocations(connection: Connection) -> list[bytes]:
    """Every signed revocation."""
    return list(
        connection.execute(
            select(key_records.c.revocation).where(key_records.c.revocation.is_not(None))
        ).scalars()
    )


def add_challenge(connection: Connection, challenge: bytes, key_id: bytes, expires: int) -> None:
    """Remember a login challenge until it is used or expires."""
    connection.execute(delete(challenges).where(challenges.c.expires_at_ms < expires - 3_600_000))
    connection.execute(
        insert(challenges).values(challenge=challenge, key_id=key_id, expires_at_ms=expires)
    )


def take_challenge(connection: Connection, challenge: bytes, key_id: bytes, now_ms: int) -> bool:
    """Consume a challenge: True once if it was issued for ``key_id`` and is unexpired."""
    result = connection.execute(
        delete(challenges).where(
            challenges.c.challenge == challenge,
            challenges.c.key_id == key_id,
            challenges.c.expires_at_ms > now_ms,
        )
    )
    return result.rowcount == 1


def add_device_link(
    connection: Connection, digest: bytes, account_id: str, expires: int, now_ms: int, keep: int
) -> None:
    """Remember a device link code's digest until used or expired.

    Expired codes of every account go, and an account keeps at most ``keep`` codes: the
    oldest give way to the new one.
    """
    connection.execute(delete(device_links).where(device_links.c.expires_at_ms <= now_ms))
    held = connection.execute(
        select(device_links.c.code_digest)
        .where(device_links.c.account_id == account_id)
        .order_by(device_links.c.expires_at_ms.desc())
    ).scalars()
    stale = list(held)[max(0, keep - 1) :]
    if stale:
        connection.execute(delete(device_links).where(device_links.c.code_digest.in_(stale)))
    connection.execute(
        insert(device_links).values(
            code_digest=digest, account_id=account_id, expires_at_ms=expires
        )
    )


def take_device_link(connection: Connection, digest: bytes, now_ms: int) -> str | None:
    """Consume a link code: the account it joins, once, if unexpired; None otherwise."""
    found = connection.execute(
        select(device_links.c.account_id, device_links.c.expires_at_ms).where(
            device_links.c.code_digest == digest
        )
    ).first()
    if found is None:
        return None
    connection.execute(delete(device_links).where(device_links.c.code_digest == digest))
    account_id, expires = found
    return str(account_id) if expires > now_ms else None
