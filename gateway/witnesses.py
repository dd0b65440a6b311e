"""Witness cosignatures as the gateway keeps them: who may cosign, the checks, storage (SPEC P13).

A witness keeps the newest tree head it has seen, checks each new head's consistency
with it and countersigns it (crypto/cosignature.py). The gateway only collects and
publishes those cosignatures; it cannot make one. Two kinds of witness hand them in
(docs/transparency-log.md, "Cosignatures"):

- an institution terminal, with its institution's registered key (a directory-signed
  KEY_PURPOSE_INSTITUTION record whose subject is the terminal's institution); the key
  id is the record's id;
- an auditor, with an Ed25519 witness key of its own that the operator configured
  (``--witness-keys``) after the auditor handed over the public key out of band; the
  key id is ``crypto.cosignature.witness_key_id`` of it.

A cosignature is stored only for a head this gateway signed and stores, with a valid
signature by the witness key, a cosigning time that is plausible, and never for a head
smaller than one the same witness already cosigned (a witness never goes back).
Cosignatures are not log events: they would grow the log, which would need a new head,
which the witnesses would cosign ... for ever.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from google.protobuf.message import DecodeError
from sqlalchemy import Connection, func, insert, select

from sealpost.crypto import cosignature as crypto_cosignature
from sealpost.crypto.keyrecords import VerifiedKey
from sealpost.gateway import translog
from sealpost.gateway.config import WitnessKey
from sealpost.gateway.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from sealpost.gateway.principals import Principal, Role
from sealpost.gateway.storage.schema import cosignatures, tree_heads
from sealpost.v1 import log_pb2

#: ``cosignatures.witness_kind``: an institution key, used by its terminals.
KIND_INSTITUTION: Final = 1
#: ``cosignatures.witness_kind``: an auditor's configured witness key.
KIND_AUDITOR: Final = 2
#: How far a cosigning time may lie after the gateway's clock, or before the head's own
#: timestamp: clocks of terminals, auditors and gateways differ a little, never by more.
MAX_CLOCK_SKEW_MS: Final = 5 * 60_000
#: The largest tree size the database stores (a signed 64-bit BIGINT).
_MAX_STORED: Final = 2**63 - 1


@dataclass(frozen=True)
class Witness:
    """A witness key the gateway accepts cosignatures from, for the current caller."""

    key_id: bytes
    kind: int
    #: The institution id, or the auditor witness's configured name.
    name: str
    public_key: bytes


def auditor_witnesses(keys: Sequence[WitnessKey]) -> dict[bytes, Witness]:
    """The configured auditor witness keys, by witness key id."""
    return {key.key_id: Witness(key.key_id, KIND_AUDITOR, key.name, key.public_key) for key in keys}


def witness_for(
    caller: Principal,
    key_id: bytes,
    *,
    institution_key: VerifiedKey | None,
    auditors: Mapping[bytes, Witness],
) -> Witness:
    """The witness ``caller`` cosigns as, or PermissionDenied.

    A terminal cosigns with its own institution's key (``institution_key``: the record
    ``key_id`` names, already verified against the directory, or None when there is no
    such institution record); an auditor with a configured witness key.
    """
    if caller.has(Role.TERMINAL):
        if institution_key is None:
            raise PermissionDenied("a terminal cosigns with its institution's registered key")
        if institution_key.subject != caller.institution_id:
            raise PermissionDenied("this key belongs to another institution")
        return Witness(
            institution_key.id,
            KIND_INSTITUTION,
            institution_key.subject,
            institution_key.signing_key,
        )
    if caller.has(Role.AUDITOR):
        witness = auditors.get(key_id)
        if witness is None:
            raise PermissionDenied(
                "this witness key is not configured at this gateway (--witness-keys)"
            )
        return witness
    raise PermissionDenied("only terminals and auditors cosign tree heads")


def head_size(tree_head: bytes) -> int:
    """The tree size a TreeHead claims (before it is looked up); InvalidArgument if none."""
    try:
        size = log_pb2.TreeHead.FromString(tree_head).tree_size
    except DecodeError:
        raise InvalidArgument("tree_head is not a TreeHead") from None
    if size > _MAX_STORED:
        raise InvalidArgument("tree_head's size is out of range")
    return size


def _stored_head(connection: Connection, tree_head: bytes, size: int) -> tuple[int, int]:
    """(row id, timestamp) of the stored head with exactly these TreeHead bytes."""
    rows = connection.execute(
        select(tree_heads.c.id, tree_heads.c.signed, tree_heads.c.timestamp_ms).where(
            tree_heads.c.tree_size == size
        )
    )
    for row in rows:
        if hmac.compare_digest(log_pb2.SignedTreeHead.FromString(row.signed).tree_head, tree_head):
            return int(row.id), int(row.timestamp_ms)
    raise NotFound("no such signed tree head at this gateway")


def newest_cosigned_size(connection: Connection, witness_key_id: bytes) -> int | None:
    """The largest tree size ``witness_key_id`` has cosigned (None: nothing yet)."""
    value = connection.execute(
        select(func.max(cosignatures.c.tree_size)).where(
            cosignatures.c.witness_key_id == witness_key_id
        )
    ).scalar_one_or_none()
    return None if value is None else int(value)


def verify(
    witness: Witness, tree_head: bytes, cosignature: log_pb2.Cosignature
) -> crypto_cosignature.VerifiedCosignature:
    """The cosignature checked against the witness's key (CryptoError if it does not verify)."""
    head_size(tree_head)
    return crypto_cosignature.verify_cosignature(
        cosignature, tree_head, witness_key_id=witness.key_id, public_key=witness.public_key
    )


def accept(
    connection: Connection,
    witness: Witness,
    tree_head: bytes,
    cosignature: log_pb2.Cosignature,
    verified: crypto_cosignature.VerifiedCosignature,
    now_ms: int,
) -> int:
    """Store a verified cosignature in the caller's write transaction; the witness's size.

    Raises InvalidArgument (an implausible time), NotFound (a head this gateway never
    signed), FailedPrecondition (smaller than a head this witness cosigned before) or
    AlreadyExists (this head, this witness).
    """
    if verified.witness_key_id != witness.key_id:
        raise InvalidArgument("the cosignature was verified for another witness")
    size = head_size(tree_head)
    # The log's size row serialises cosignatures with each other (and with appends), so
    # two submissions of one witness cannot both pass the regression check below.
    translog.size(connection, for_update=True)
    head_id, head_timestamp = _stored_head(connection, tree_head, size)
    if verified.cosigned_at_ms > now_ms + MAX_CLOCK_SKEW_MS:
        raise InvalidArgument("the cosigning time lies in the future")
    if verified.cosigned_at_ms + MAX_CLOCK_SKEW_MS < head_timestamp:
        raise InvalidArgument("the cosigning time lies before the head was signed")
    newest = newest_cosigned_size(connection, witness.key_id)
    if newest is not None and size < newest:
        raise FailedPrecondition(
            f"this witness has cosigned a head of size {newest} already; a witness never "
            "cosigns a smaller one"
        )
    duplicate = connection.execute(
        select(cosignatures.c.id).where(
            cosignatures.c.head_id == head_id, cosignatures.c.witness_key_id == witness.key_id
        )
    ).first()
    if duplicate is not None:
        raise AlreadyExists("this witness has cosigned this head already")
    connection.execute(
        insert(cosignatures).values(
            head_id=head_id,
            tree_size=size,
            witness_key_id=witness.key_id,
            witness_kind=witness.kind,
            witness_name=witness.name,
            cosigned_at_ms=verified.cosigned_at_ms,
            cosignature=cosignature.SerializeToString(deterministic=True),
            received_at_ms=now_ms,
        )
    )
    return max(size, newest or 0)


def _cosignatures_of(connection: Connection, head_ids: Sequence[int]) -> dict[int, list[bytes]]:
    found: dict[int, list[bytes]] = {head_id: [] for head_id in head_ids}
    if not head_ids:
        return found
    rows = connection.execute(
        select(cosignatures.c.head_id, cosignatures.c.cosignature)
        .where(cosignatures.c.head_id.in_(list(head_ids)))
        .order_by(cosignatures.c.id)
    )
    for row in rows:
        found[int(row.head_id)].append(bytes(row.cosignature))
    return found


def latest_cosigned_head(connection: Connection) -> log_pb2.CosignedTreeHead | None:
    """The newest stored head with the cosignatures held for it so far."""
    row = connection.execute(
        select(tree_heads.c.id, tree_heads.c.signed).order_by(tree_heads.c.id.desc()).limit(1)
    ).first()
    if row is None:
        return None
    return _cosigned(row.signed, _cosignatures_of(connection, [int(row.id)])[int(row.id)])


def cosigned_heads(
    connection: Connection, min_tree_size: int, limit: int
) -> list[log_pb2.CosignedTreeHead]:
    """Stored heads of at least ``min_tree_size`` that carry a cosignature, oldest first."""
    cosigned = (
        select(cosignatures.c.head_id)
        .where(cosignatures.c.tree_size >= min_tree_size)
        .distinct()
        .scalar_subquery()
    )
    rows = connection.execute(
        select(tree_heads.c.id, tree_heads.c.signed)
        .where(tree_heads.c.id.in_(cosigned))
        .order_by(tree_heads.c.id)
        .limit(limit)
    ).all()
    found = _cosignatures_of(connection, [int(row.id) for row in rows])
    return [_cosigned(row.signed, found[int(row.id)]) for row in rows]


def _cosigned(signed: bytes, cosigned: Sequence[bytes]) -> log_pb2.CosignedTreeHead:
    return log_pb2.CosignedTreeHead(
        tree_head=log_pb2.SignedTreeHead.FromString(signed),
        cosignatures=[log_pb2.Cosignature.FromString(raw) for raw in cosigned],
    )
