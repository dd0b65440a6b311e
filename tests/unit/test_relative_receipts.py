"""The SDK's receipt check: a receipt whose proof does not verify is refused, loudly."""

from __future__ import annotations

from typing import Any

import pytest

from sealpost.clients.relative.errors import ReceiptError
from sealpost.clients.relative.receipts import tree_head_key_id, verify_receipt
from sealpost.crypto import keyrecords, merkle
from sealpost.crypto._sodium import sha256
from sealpost.crypto.keyrecords import VerifiedKey
from sealpost.crypto.keys import PrivateKeys
from sealpost.crypto.logentry import LogAction, LogEvent, encode_event, sign_tree_head
from sealpost.v1 import keys_pb2, log_pb2

NOW_MS = 1_800_000_000_000
MESSAGE_ID = bytes.fromhex("00112233445566778899aabbccddeeff")
DIGEST = sha256(b"the sender's envelope")
INDEX = 3


def _keys(label: bytes) -> PrivateKeys:
    return PrivateKeys(sha256(label + b"/x25519"), sha256(label + b"/ed25519"))


DIRECTORY_KEYS = _keys(b"directory")
LOG_KEYS = _keys(b"log")
OTHER_LOG_KEYS = _keys(b"another log")


def _directory() -> VerifiedKey:
    record = keyrecords.issue_directory_record(
        DIRECTORY_KEYS, subject="directory", not_before=0, not_after=NOW_MS // 1000 + 3600
    )
    pin = keyrecords.DirectoryPin(DIRECTORY_KEYS.signing_key)
    return keyrecords.verify_directory_record(record, pin, now_ms=NOW_MS)


def _log_key(keys: PrivateKeys = LOG_KEYS, purpose: int = keys_pb2.KEY_PURPOSE_LOG) -> VerifiedKey:
    directory = _directory()
    record = keyrecords.issue_key_record(
        purpose=purpose,  # type: ignore[arg-type]
        subject="log",
        encryption_key=b"" if purpose == keys_pb2.KEY_PURPOSE_LOG else keys.encryption_key,
        signing_key=keys.signing_key,
        not_before=0,
        not_after=NOW_MS // 1000 + 3600,
        directory_keys=DIRECTORY_KEYS,
        directory_key_id=directory.id,
    )
    return keyrecords.verify_key_record(record, directory, now_ms=NOW_MS, purpose=purpose)  # type: ignore[arg-type]


def _leaves() -> list[bytes]:
    accepted = LogEvent(
        action=LogAction.MESSAGE_ACCEPTED,
        actor="relative:acct-1",
        time_ms=NOW_MS - 5,
        subjects=[("message", MESSAGE_ID.hex()), ("detainee", "d-1")],
        extra={"envelope_digest": DIGEST.hex()},
    )
    others = [
        encode_event(LogEvent(action=LogAction.ADMIN_ACTION, actor="staff:s", time_ms=i))
        for i in range(7)
    ]
    return [*others[:INDEX], encode_event(accepted), *others[INDEX + 1 :]]


def _receipt(
    log: VerifiedKey, signer: PrivateKeys = LOG_KEYS, head_at_ms: int = NOW_MS
) -> log_pb2.Receipt:
    leaves = _leaves()
    return log_pb2.Receipt(
        message_id=MESSAGE_ID,
        envelope_digest=DIGEST,
        accepted_at_ms=NOW_MS - 5,
        entry=log_pb2.LogEntry(index=INDEX, leaf=leaves[INDEX]),
        tree_head=sign_tree_head(len(leaves), merkle.tree_hash(leaves), head_at_ms, log.id, signer),
        inclusion_proof=log_pb2.InclusionProof(
            leaf_index=INDEX, tree_size=len(leaves), path=merkle.inclusion_path(leaves, INDEX)
        ),
    )


def _verify(receipt: log_pb2.Receipt, **overrides: Any) -> None:
    arguments: dict[str, Any] = {
        "log_key": _log_key(),
        "message_id": MESSAGE_ID,
        "envelope_digest": DIGEST,
    }
    arguments.update(overrides)
    verify_receipt(receipt, **arguments)


def test_a_good_receipt_verifies() -> None:
    log = _log_key()
    receipt = _receipt(log)
    verified = verify_receipt(
        receipt,
        log_key=log,
        message_id=MESSAGE_ID,
        envelope_digest=DIGEST,
        sent_entry=receipt.entry,
    )
    assert verified.leaf_index == INDEX
    assert verified.tree_size == len(_leaves())
    assert verified.root_hash == merkle.tree_hash(_leaves())
    assert verified.accepted_at_ms == NOW_MS - 5
    assert verified.log_key_id == log.id
    assert tree_head_key_id(receipt) == log.id


def test_a_tampered_inclusion_proof_is_refused() -> None:
    receipt = _receipt(_log_key())
    path = list(receipt.inclusion_proof.path)
    path[0] = bytes([path[0][0] ^ 1]) + path[0][1:]
    del receipt.inclusion_proof.path[:]
    receipt.inclusion_proof.path.extend(path)
    with pytest.raises(ReceiptError) as refused:
        _verify(receipt)
    assert refused.value.message_id == MESSAGE_ID
    assert "WARNING" in refused.value.explain()
    assert MESSAGE_ID.hex() in refused.value.explain()


def test_receipt_refusals() -> None:
    log = _log_key()
    cases: list[tuple[log_pb2.Receipt, dict[str, Any]]] = []
    # Someone else's message, or another envelope under this id.
    cases.append((_receipt(log), {"message_id": b"\x01" * 16}))
    cases.append((_receipt(log), {"envelope_digest": sha256(b"another envelope")}))
    # A tree head signed by a key the directory does not vouch for as the log's.
    cases.append((_receipt(log, signer=OTHER_LOG_KEYS), {}))
    cases.append((_receipt(log), {"log_key": _log_key(OTHER_LOG_KEYS)}))
    # The right signer, but its record is not a log key.
    cases.append(
        (_receipt(log), {"log_key": _log_key(purpose=keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE)})
    )
    # No proof at all.
    bare = _receipt(log)
    bare.ClearField("inclusion_proof")
    cases.append((bare, {}))
    # A different leaf than the one the gateway named when it accepted the message.
    cases.append((_receipt(log), {"sent_entry": log_pb2.LogEntry(index=INDEX + 1)}))
    # The leaf is altered.
    altered = _receipt(log)
    leaf = bytearray(altered.entry.leaf)
    leaf[5] ^= 0x01  # the acceptance time
    altered.entry.leaf = bytes(leaf)
    cases.append((altered, {}))
    # The acceptance time disagrees with the log entry.
    late = _receipt(log)
    late.accepted_at_ms += 1
    cases.append((late, {}))
    for receipt, overrides in cases:
        with pytest.raises(ReceiptError):
            _verify(receipt, **overrides)


def test_a_head_signed_outside_the_log_keys_validity_is_refused() -> None:
    """The log key's record ends an hour after NOW_MS: a head signed later proves nothing."""
    log = _log_key()
    _verify(_receipt(log, head_at_ms=NOW_MS + 3_599_000))
    with pytest.raises(ReceiptError) as refused:
        _verify(_receipt(log, head_at_ms=NOW_MS + 3_601_000))
    assert refused.value.reason == "the tree head was signed outside the log key's validity"


def test_tree_head_key_id_of_garbage_is_empty() -> None:
    receipt = log_pb2.Receipt(tree_head=log_pb2.SignedTreeHead(tree_head=b"\xff\xff"))
    assert tree_head_key_id(receipt) == b""
