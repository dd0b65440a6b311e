"""Checking the gateway's acceptance receipts against its signed transparency log (pure).

docs/transparency-log.md, "A receipt": the SDK computed the message id and the envelope
digest itself; the receipt must prove that exactly that envelope was logged as accepted,
in a tree head signed by the log key the pinned directory vouches for.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from sealpost.clients.relative.errors import ReceiptError
from sealpost.crypto import keyrecords, logentry
from sealpost.crypto.errors import CryptoError
from sealpost.crypto.keyrecords import VerifiedKey
from sealpost.v1 import log_pb2


@dataclass(frozen=True)
class VerifiedReceipt:
    """A receipt whose inclusion proof checked out: the gateway cannot quietly drop the message."""

    message_id: bytes
    envelope_digest: bytes
    #: When the gateway accepted the message (milliseconds since the epoch).
    accepted_at_ms: int
    #: The acceptance entry's position in the log.
    leaf_index: int
    #: The signed tree head the entry is proven into.
    tree_size: int
    root_hash: bytes
    head_timestamp_ms: int
    log_key_id: bytes
    receipt: log_pb2.Receipt = field(repr=False)


def tree_head_key_id(receipt: log_pb2.Receipt) -> bytes:
    """The log key id a receipt's tree head names (unverified), to look the key record up."""
    head = log_pb2.TreeHead()
    try:
        head.ParseFromString(receipt.tree_head.tree_head)
    except DecodeError:
        return b""
    return head.log_key_id


def verify_receipt(
    receipt: log_pb2.Receipt,
    *,
    log_key: VerifiedKey,
    message_id: bytes,
    envelope_digest: bytes,
    sent_entry: log_pb2.LogEntry | None = None,
) -> VerifiedReceipt:
    """Raise ReceiptError unless ``receipt`` proves acceptance of the sender's own envelope.

    ``log_key`` is the log's key record, verified against the pinned directory.
    ``sent_entry`` is the entry the gateway named when it accepted the message: the proof
    must be about that same entry.
    """
    if log_key.purpose != keyrecords.LOG:
        raise ReceiptError(message_id, "the key given is not the transparency log's key")
    try:
        _event, head = logentry.verify_receipt(
            receipt,
            log_public_key=log_key.signing_key,
            log_key_id=log_key.id,
            message_id=message_id,
            envelope_digest=envelope_digest,
        )
    except CryptoError as exc:
        raise ReceiptError(message_id, exc.explain()) from exc
    if sent_entry is not None and (
        sent_entry.index != receipt.entry.index
        or not hmac.compare_digest(sent_entry.leaf, receipt.entry.leaf)
    ):
        raise ReceiptError(message_id, "the proof is about another log entry than the one sent")
    if not log_key.valid_at(head.timestamp_ms):
        raise ReceiptError(message_id, "the tree head was signed outside the log key's validity")
    return VerifiedReceipt(
        message_id=message_id,
        envelope_digest=envelope_digest,
        accepted_at_ms=receipt.accepted_at_ms,
        leaf_index=receipt.entry.index,
        tree_size=head.tree_size,
        root_hash=head.root_hash,
        head_timestamp_ms=head.timestamp_ms,
        log_key_id=head.log_key_id,
        receipt=receipt,
    )
