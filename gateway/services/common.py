"""Helpers the services share: checking request fields, building API messages, streaming feeds."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, TypeVar

import email_validator
from sqlalchemy import Connection

from sealpost.crypto import keyrecords
from sealpost.crypto.keyrecords import VerifiedKey
from sealpost.crypto.text import has_control_character
from sealpost.gateway import policy, states, store, translog
from sealpost.gateway.errors import InvalidArgument, NotFound
from sealpost.gateway.services.context import MAX_STORED_INT, Context, timestamp
from sealpost.v1 import common_pb2, keys_pb2, log_pb2

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

MESSAGE_ID_BYTES = 16
KEY_ID_BYTES = 32
PUBLIC_KEY_BYTES = 32
#: Facts kept in each of the context's caches (emptied when full; a miss costs a lookup).
FACT_CACHE_SIZE = 100_000


def text(value: str, what: str, *, max_chars: int = 200, required: bool = True) -> str:
    """A user-supplied text: any script, no control characters, bounded, trimmed."""
    value = value.strip()
    if required and not value:
        raise InvalidArgument(f"{what} is required")
    if len(value) > max_chars:
        raise InvalidArgument(f"{what} is longer than {max_chars} characters")
    if has_control_character(value):
        raise InvalidArgument(f"{what} contains control characters")
    return value


#: Invisible format characters a name may keep: the zero-width non-joiner and joiner,
#: which Persian, Arabic and Indic names and emoji sequences need. Every other format
#: character (bidirectional embeddings, overrides, isolates and marks, the Arabic letter
#: mark, zero-width spaces, tags) could reorder or hide text around a name, and is refused.
NAME_FORMAT_ALLOWED: Final = frozenset({"\u200c", "\u200d"})


def name(value: str, what: str, *, max_chars: int = 200, required: bool = True) -> str:
    """A name people read (a display name, a relationship): ``text`` with spoofing refused.

    It must be in Unicode normal form C already (clients normalise before signing, so
    the gateway never changes what was signed) and may hold no invisible format
    character other than ZWNJ and ZWJ (docs/gateway.md, "Names").
    """
    value = text(value, what, max_chars=max_chars, required=required)
    if not unicodedata.is_normalized("NFC", value):
        raise InvalidArgument(f"{what} is not in Unicode normal form C")
    if any(unicodedata.category(ch) == "Cf" and ch not in NAME_FORMAT_ALLOWED for ch in value):
        raise InvalidArgument(f"{what} contains invisible or text-direction characters")
    return value


def email_address(value: str) -> str:
    """An e-mail address in normal form; its form only is checked, nothing is looked up."""
    try:
        return email_validator.validate_email(
            value, check_deliverability=False, allow_smtputf8=False
        ).normalized
    except email_validator.EmailNotValidError:
        raise InvalidArgument("email is not an e-mail address this gateway can write to") from None


def identifier(value: str, what: str) -> str:
    """An opaque id: 1-64 characters of letters, digits, '-', '_', '.' or ':'."""
    if not value:
        raise InvalidArgument(f"{what} is required")
    if len(value) > 64 or not all(ch.isascii() and (ch.isalnum() or ch in "-_.:") for ch in value):
        raise InvalidArgument(f"{what} is not a valid id")
    return value


#: A key server's transit ciphertext: "vault:v<version>:<standard base64>".
_SEALED: Final = re.compile(r"vault:v[1-9][0-9]{0,9}:[A-Za-z0-9+/]+={0,2}")


def sealed(value: str, what: str, *, max_chars: int) -> str:
    """A ciphertext sealed at the key server, which the gateway stores and cannot open."""
    if len(value) > max_chars:
        raise InvalidArgument(f"{what} is longer than {max_chars} characters")
    if _SEALED.fullmatch(value) is None:
        raise InvalidArgument(f"{what} is not a key-server ciphertext (vault:vN:...)")
    return value


def message_id(value: bytes) -> bytes:
    """A 16-byte message id."""
    if len(value) != MESSAGE_ID_BYTES:
        raise InvalidArgument("message_id must be 16 bytes")
    return value


def key_id(value: bytes, what: str = "key_id") -> bytes:
    """A 32-byte key record id."""
    if len(value) != KEY_ID_BYTES:
        raise InvalidArgument(f"{what} must be 32 bytes")
    return value


def public_key(value: bytes, what: str) -> bytes:
    """A 32-byte public key."""
    if len(value) != PUBLIC_KEY_BYTES:
        raise InvalidArgument(f"{what} must be 32 bytes")
    return value


def enum_value(value: int, enum: Any, what: str, allowed: Sequence[int] | None = None) -> int:
    """A set, known enum value (UNSPECIFIED is always refused)."""
    if value == 0 or value not in enum.values():
        raise InvalidArgument(f"{what} must be set to a known value")
    if allowed is not None and value not in allowed:
        raise InvalidArgument(f"{what} {enum.Name(value)} is not allowed here")
    return value


def enum_filter(value: int, enum: Any, what: str) -> int:
    """An optional enum filter: 0 (no filter) or a known value (the column is a SMALLINT)."""
    return enum_value(value, enum, what) if value else 0


def record_of(row: store.KeyRecordRow) -> keys_pb2.KeyRecord:
    """The KeyRecord stored in a key_records row."""
    return keys_pb2.KeyRecord.FromString(row.record)


def verified_record(
    ctx: Context,
    connection: Connection,
    key: bytes,
    purpose: keys_pb2.KeyPurpose.ValueType,
    now_ms: int,
) -> tuple[keys_pb2.KeyRecord, VerifiedKey]:
    """A stored, unrevoked record of ``purpose``, verified against the directory."""
    row = store.key_record(connection, key)
    if row is None or row.purpose != purpose:
        raise NotFound("no such key")
    if row.revoked_at_ms is not None:
        raise InvalidArgument("this key has been revoked")
    record = record_of(row)
    cached = known_key(ctx, key, purpose, now_ms)
    if cached is not None:
        return record, cached
    verified = ctx.directory.verify(record, purpose=purpose, now_ms=now_ms)
    remember(ctx.verified_keys, key, verified)
    return record, verified


def known_key(
    ctx: Context, key: bytes, purpose: keys_pb2.KeyPurpose.ValueType, now_ms: int
) -> VerifiedKey | None:
    """The verified record ``key`` from memory, if it is of ``purpose`` and valid now.

    A record's id is the digest of its body, so a record verified once stays verified;
    only its validity window (checked here) and its revocation can change. This does not
    look at revocation: the caller must have (``verified_record``, the guard's device check).
    """
    cached = ctx.verified_keys.get(key)
    if cached is not None and cached.purpose == purpose and cached.valid_at(now_ms):
        return cached
    return None


def remember(cache: dict[K, V], key: K, value: V) -> None:
    """Keep an immutable fact in one of the context's in-memory caches, emptied when full."""
    if len(cache) >= FACT_CACHE_SIZE:
        cache.clear()
    cache[key] = value


def revocation_messages(connection: Connection) -> list[keys_pb2.KeyRevocation]:
    """Every signed revocation."""
    return [keyrecords.parse_key_revocation(raw) for raw in store.revocations(connection)]


def detainee_message(row: store.DetaineeRow, mailbox_key_id: bytes) -> common_pb2.Detainee:
    """The staff/terminal view of a detainee."""
    return common_pb2.Detainee(
        detainee_id=row.id,
        institution_id=row.institution_id,
        regime=row.regime,
        status=row.status,
        mailbox_key_id=mailbox_key_id,
        updated_at=timestamp(row.updated_at_ms),
    )


@dataclass(frozen=True)
class CheckedEnvelope:
    """An envelope whose signature, sender and recipient the gateway has verified."""

    message_id: bytes
    detainee_id: str
    sender_key_id: bytes
    envelope: bytes
    envelope_digest: bytes


def admit_message(
    connection: Connection, checked: CheckedEnvelope, account_id: str, direction: int, now: int
) -> store.NewMessage:
    """The message to store, if policy admits it now; FailedPrecondition if not.

    Call it in the transaction that records the acceptance: the detainee's placement
    and regime, the contact's approval and the account's privilege are read there, so
    the acceptance in the log follows exactly the facts logged before it.
    """
    detainee = store.detainee(connection, checked.detainee_id)
    contact = store.contact_between(connection, account_id, checked.detainee_id)
    privileged = store.is_privileged(connection, account_id)
    policy.check_send(
        detainee_status=detainee.status,
        regime_policy=detainee.policy,
        contact_status=None if contact is None else contact.status,
        privileged=privileged,
    )
    return store.NewMessage(
        message_id=checked.message_id,
        direction=direction,
        detainee_id=checked.detainee_id,
        institution_id=detainee.institution_id,
        account_id=account_id,
        sender_key_id=checked.sender_key_id,
        envelope=checked.envelope,
        envelope_digest=checked.envelope_digest,
        privileged=privileged,
        state=states.ACCEPTED,
        accepted_at_ms=now,
    )


def receipt(new: store.NewMessage, appended: translog.Appended) -> log_pb2.Receipt:
    """A receipt for a freshly accepted message (the proof is fetched later)."""
    return log_pb2.Receipt(
        message_id=new.message_id,
        envelope_digest=new.envelope_digest,
        accepted_at_ms=new.accepted_at_ms,
        entry=appended.entry(),
    )


def head_covering(ctx: Context, index: int) -> log_pb2.SignedTreeHead:
    """The newest signed tree head, or a fresh one if the newest does not cover ``index``."""

    def latest(connection: Connection) -> log_pb2.SignedTreeHead | None:
        return translog.latest_head(connection)

    head = ctx.db.read(latest)
    if head is not None and log_pb2.TreeHead.FromString(head.tree_head).tree_size > index:
        return head

    def sign(connection: Connection) -> log_pb2.SignedTreeHead:
        return translog.sign_head(
            connection, ctx.directory.keys.log, ctx.directory.log.id, ctx.clock()
        )

    return ctx.db.write(sign)


def proof_for(ctx: Context, index: int) -> tuple[log_pb2.SignedTreeHead, log_pb2.InclusionProof]:
    """A signed head covering leaf ``index`` and the inclusion proof against it."""
    head = head_covering(ctx, index)
    size = log_pb2.TreeHead.FromString(head.tree_head).tree_size

    def prove(connection: Connection) -> log_pb2.InclusionProof:
        return translog.inclusion_proof(connection, index, size)

    return head, ctx.db.read(prove)


HeadAndProof = tuple[log_pb2.SignedTreeHead, log_pb2.InclusionProof]


async def with_proof(ctx: Context, receipt: log_pb2.Receipt) -> log_pb2.Receipt:
    """``receipt`` with the newest signed head and its inclusion proof, if a head covers it.

    A send asks its batch for a head (``translog.want_head``), so one normally does by the
    time the batch has committed; if none does yet, the receipt goes without, and the
    client asks GetReceiptProof later. Never signs a head itself: that is a write.
    """
    index = receipt.entry.index

    def read(
        connection: Connection,
    ) -> tuple[log_pb2.SignedTreeHead, log_pb2.InclusionProof] | None:
        head = translog.latest_head(connection)
        if head is None:
            return None
        size = log_pb2.TreeHead.FromString(head.tree_head).tree_size
        if size <= index:
            return None
        return head, translog.inclusion_proof(connection, index, size)

    found = await ctx.db.aread(read)
    if found is not None:
        receipt.tree_head.CopyFrom(found[0])
        receipt.inclusion_proof.CopyFrom(found[1])
    return receipt


def parse_cursor(cursor: str) -> int:
    """The feed position a stream cursor stands for."""
    if not cursor:
        return 0
    try:
        value = int(cursor)
    except ValueError as exc:
        raise InvalidArgument("after_cursor is not a cursor this gateway issued") from exc
    if not 0 <= value <= MAX_STORED_INT:
        raise InvalidArgument("after_cursor is not a cursor this gateway issued")
    return value


def _feed_page(
    connection: Connection, *, audience: str, after: int, limit: int
) -> list[store.FeedRow]:
    return store.feed_after(connection, audience, after, limit)


async def follow_feed(
    ctx: Context,
    audience: str,
    after: int,
    *,
    follow: bool,
    convert: Callable[[store.FeedRow], T | None],
    batch: int = 100,
) -> AsyncIterator[T]:
    """Yield feed items after ``after`` in order; with ``follow`` keep waiting for more.

    Resumable: each item carries its feed position as the cursor, so a client that
    resumes after the last cursor it received gets neither a gap nor a duplicate.
    """
    cursor = after
    while True:
        rows = await ctx.db.aread(partial(_feed_page, audience=audience, after=cursor, limit=batch))
        for row in rows:
            cursor = row.seq
            item = convert(row)
            if item is not None:
                yield item
        if len(rows) == batch:
            continue
        if not follow:
            return
        await ctx.notifier.wait(audience, ctx.poll_seconds)


def watch_list(row: store.WatchListRow) -> common_pb2.WatchListRecord:
    """A stored watch list as the API carries it: sealed, versioned, who changed it last."""
    return common_pb2.WatchListRecord(
        institution_id=row.institution_id,
        detainee_id=row.detainee_id,
        sealed=row.sealed,
        version=row.version,
        updated_by=row.updated_by,
        updated_at_ms=row.updated_at_ms,
    )
