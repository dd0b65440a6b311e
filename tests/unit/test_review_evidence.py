"""Evidence bundles built from the crypto primitives: they verify, and every tampering is named."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealpost.clients.review import evidence
from sealpost.clients.review.errors import (
    EvidenceCheckError,
    EvidenceFormatError,
    EvidenceVersionTooNewError,
    EvidenceVersionTooOldError,
)
from sealpost.crypto import keyrecords, logentry, merkle
from sealpost.crypto.envelope import Part, open_dek, seal_envelope
from sealpost.crypto.keyrecords import DirectoryPin, VerifiedKey
from sealpost.crypto.keys import PrivateKeys
from sealpost.crypto.logentry import LogAction, LogEvent
from sealpost.v1 import keys_pb2

NOW_S = 1_780_000_000
ACCEPTED_MS = NOW_S * 1000
GRANTED_MS = ACCEPTED_MS + 3_600_000
TEXT = "text/plain; charset=utf-8"
PARTS = (
    Part(TEXT, "Het pakket komt dinsdag — مرحبا".encode()),
    Part("image/jpeg", b"\xff\xd8\xff\xe0 jpeg bytes", "foto.jpg"),
)


@dataclass(frozen=True)
class World:
    """A directory, a log, a sender and a mailbox, one sealed message and its grant."""

    pin: DirectoryPin
    directory_keys: PrivateKeys
    directory_id: bytes
    bundle: evidence.EvidenceBundle
    other_sender_record: bytes
    other_grant: tuple[int, bytes, tuple[bytes, ...]]


def _record(
    directory_keys: PrivateKeys, directory: VerifiedKey, purpose: int, keys: PrivateKeys
) -> keys_pb2.KeyRecord:
    return keyrecords.issue_key_record(
        purpose=purpose,  # type: ignore[arg-type]
        subject=f"subject-{purpose}-{keys.signing_key.hex()[:8]}",
        encryption_key=b"" if purpose == keyrecords.LOG else keys.encryption_key,
        signing_key=keys.signing_key,
        not_before=NOW_S - 86_400,
        not_after=NOW_S + 365 * 86_400,
        directory_keys=directory_keys,
        directory_key_id=directory.id,
    )


def _grant_leaf(message_id: bytes, grant_id: str, time_ms: int = GRANTED_MS) -> bytes:
    return logentry.encode_event(
        LogEvent(
            action=LogAction.REVIEW_GRANTED,
            actor="staff:screener-1",
            time_ms=time_ms,
            subjects=[("message", message_id.hex()), ("grant", grant_id), ("detainee", "d-1")],
            extra={
                "legal_basis": "LEGAL_BASIS_SCREENING_ORDER",
                "key_server_entity": "entity-1234",
            },
        )
    )


def _build() -> World:
    directory_keys = PrivateKeys.generate()
    directory_record = keyrecords.issue_directory_record(
        directory_keys, subject="directory", not_before=NOW_S - 86_400, not_after=NOW_S + 10**8
    )
    pin = DirectoryPin(directory_keys.signing_key)
    directory = keyrecords.verify_directory_record(directory_record, pin, now_ms=ACCEPTED_MS)
    log_keys, sender_keys, mailbox_keys = (PrivateKeys.generate() for _ in range(3))
    log_record = _record(directory_keys, directory, keyrecords.LOG, log_keys)
    sender_record = _record(directory_keys, directory, keyrecords.RELATIVE_DEVICE, sender_keys)
    other_sender = _record(
        directory_keys, directory, keyrecords.RELATIVE_DEVICE, PrivateKeys.generate()
    )
    mailbox_record = _record(directory_keys, directory, keyrecords.MAILBOX, mailbox_keys)

    def verify(record: keys_pb2.KeyRecord, purpose: int) -> VerifiedKey:
        return keyrecords.verify_key_record(
            record,
            directory,
            now_ms=ACCEPTED_MS,
            purpose=purpose,  # type: ignore[arg-type]
        )

    sender = verify(sender_record, keyrecords.RELATIVE_DEVICE)
    mailbox = verify(mailbox_record, keyrecords.MAILBOX)
    log = verify(log_record, keyrecords.LOG)
    envelope = seal_envelope(
        PARTS,
        sender_keys=sender_keys,
        sender_key_id=sender.id,
        recipients=[mailbox],
        now_ms=ACCEPTED_MS - 2_000,
    )
    dek = open_dek(envelope, mailbox_keys, mailbox.id, sender, now_ms=ACCEPTED_MS)
    message_id = _message_id(envelope.header)

    # A log with some history, this message's grant and a genuine grant of another message.
    leaves = [
        logentry.encode_event(LogEvent(action=LogAction.ADMIN_ACTION, actor="admin", time_ms=t))
        for t in range(ACCEPTED_MS - 5, ACCEPTED_MS)
    ]
    index = len(leaves)
    leaves.append(_grant_leaf(message_id, "gr-1"))
    other_index = len(leaves)
    leaves.append(_grant_leaf(bytes(16), "gr-2"))
    leaves.append(
        logentry.encode_event(LogEvent(action=LogAction.ADMIN_ACTION, actor="a", time_ms=1))
    )
    head = logentry.sign_tree_head(
        len(leaves), merkle.tree_hash(leaves), GRANTED_MS, log.id, log_keys
    )
    bundle = evidence.EvidenceBundle(
        message_id=message_id,
        accepted_at_ms=ACCEPTED_MS,
        direction=evidence.INBOUND,
        detainee_id="d-1",
        envelope=envelope.SerializeToString(),
        data_key=dek,
        parts=PARTS,
        directory_record=directory_record.SerializeToString(),
        log_record=log_record.SerializeToString(),
        sender_record=sender_record.SerializeToString(),
        revocations=(),
        grant_id="gr-1",
        legal_basis="LEGAL_BASIS_SCREENING_ORDER",
        entry_index=index,
        entry_leaf=leaves[index],
        tree_head=head.tree_head,
        tree_head_signature=head.signature,
        proof_leaf_index=index,
        proof_tree_size=len(leaves),
        proof_path=tuple(merkle.inclusion_path(leaves, index)),
        exported_at_ms=GRANTED_MS + 60_000,
    )
    other = (other_index, leaves[other_index], tuple(merkle.inclusion_path(leaves, other_index)))
    return World(pin, directory_keys, directory.id, bundle, other_sender.SerializeToString(), other)


def _message_id(header: bytes) -> bytes:
    from sealpost.crypto.envelope import parse_header  # noqa: PLC0415

    return parse_header(header).message_id


WORLD = _build()
GOOD = evidence.encode_evidence(WORLD.bundle)


def _doc() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(GOOD)
    return copy.deepcopy(document)


def _flip(text: str, at: int = -1) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[at] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


# ----------------------------------------------------------------------------- the happy path


def test_a_genuine_bundle_verifies_every_check() -> None:
    report = evidence.verify_evidence(GOOD, WORLD.pin)
    assert report.verified
    assert [c.name for c in report.checks] == list(evidence.CHECKS)
    assert all(c.passed for c in report.checks)
    assert report.message_id == WORLD.bundle.message_id
    assert report.parts == PARTS
    assert report.actor == "staff:screener-1"
    assert report.key_server_entity == "entity-1234"
    assert report.granted_at_ms == GRANTED_MS
    assert report.legal_basis == "LEGAL_BASIS_SCREENING_ORDER"
    assert report.tree_size == WORLD.bundle.proof_tree_size
    assert report.to_json()["verified"] is True


def test_encoding_round_trips() -> None:
    assert evidence.parse_evidence(GOOD) == WORLD.bundle
    document = json.loads(GOOD)
    assert document["format"] == "sealpost-evidence"
    assert document["version"] == 1


def test_repr_of_a_bundle_shows_no_content_or_key() -> None:
    text = repr(WORLD.bundle)
    assert "pakket" not in text
    assert WORLD.bundle.data_key.hex() not in text
    assert repr(WORLD.bundle.data_key) not in text


# ----------------------------------------------------------------------------- tampering

Tamper = Callable[[dict[str, Any]], None]


def _set(path: str, change: Callable[[Any], Any]) -> Tamper:
    def apply(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = document
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if isinstance(target, list):
            target[int(last)] = change(target[int(last)])
        else:
            target[last] = change(target[last])

    return apply


def _drop_part(document: dict[str, Any]) -> None:
    document["message"]["parts"].pop()


def _swap_grant(document: dict[str, Any]) -> None:
    index, leaf, path = WORLD.other_grant
    grant = document["grant"]
    grant["entry"] = {"index": index, "leaf": base64.b64encode(leaf).decode()}
    grant["inclusion_proof"]["leaf_index"] = index
    grant["inclusion_proof"]["path"] = [base64.b64encode(p).decode() for p in path]


def _other_sender(document: dict[str, Any]) -> None:
    document["keys"]["sender"] = base64.b64encode(WORLD.other_sender_record).decode()


TAMPERINGS: dict[str, tuple[Tamper, str]] = {
    "directory record byte": (_set("keys.directory", _flip), "directory"),
    "log record byte": (_set("keys.log", _flip), "log-key"),
    "sender record byte": (_set("keys.sender", _flip), "sender-key"),
    "direction": (_set("message.direction", lambda _: "outbound"), "sender-key"),
    "another valid sender record": (_other_sender, "envelope"),
    "envelope last byte": (_set("message.envelope", _flip), "envelope"),
    "envelope middle byte": (
        _set("message.envelope", lambda t: _flip(t, len(base64.b64decode(t)) // 2)),
        "envelope",
    ),
    "message id": (_set("message.message_id", lambda _: "00" * 16), "envelope"),
    "data key": (_set("message.data_key", _flip), "data-key"),
    "text content": (_set("message.parts.0.data", _flip), "content"),
    "attachment content": (_set("message.parts.1.data", lambda t: _flip(t, 0)), "content"),
    "attachment name": (_set("message.parts.1.filename", lambda _: "foto.exe"), "content"),
    "content type": (_set("message.parts.1.content_type", lambda _: "image/png"), "content"),
    "a part dropped": (_drop_part, "content"),
    "tree head byte": (_set("grant.tree_head.tree_head", lambda t: _flip(t, 5)), "tree-head"),
    "tree head signature": (_set("grant.tree_head.signature", _flip), "tree-head"),
    "leaf byte": (_set("grant.entry.leaf", _flip), "inclusion"),
    "leaf index": (_set("grant.entry.index", lambda i: i + 1), "inclusion"),
    "proof path": (_set("grant.inclusion_proof.path.0", _flip), "inclusion"),
    "proof size": (_set("grant.inclusion_proof.tree_size", lambda s: s - 1), "inclusion"),
    "another message's grant": (_swap_grant, "grant"),
    "grant id": (_set("grant.grant_id", lambda _: "gr-9"), "grant"),
    "legal basis": (_set("grant.legal_basis", lambda _: "LEGAL_BASIS_REGIME_SCREEN_ALL"), "grant"),
    "detainee": (_set("message.detainee_id", lambda _: "d-2"), "grant"),
    "accepted after the grant": (
        _set("message.accepted_at_ms", lambda _: GRANTED_MS + 60_000),
        "grant",
    ),
}


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_tampering_fails_at_the_named_check(name: str) -> None:
    tamper, check = TAMPERINGS[name]
    document = _doc()
    tamper(document)
    with pytest.raises(EvidenceCheckError) as failed:
        evidence.verify_evidence(_encode(document), WORLD.pin)
    assert failed.value.check == check
    report = failed.value.report
    assert not report.verified
    names = [c.name for c in report.checks]
    assert names == list(evidence.CHECKS[: names.index(check) + 1])
    assert report.checks[-1].passed is False
    assert all(c.passed for c in report.checks[:-1])
    assert check in str(failed.value)


def test_another_directory_pin_fails_the_directory_check() -> None:
    with pytest.raises(EvidenceCheckError) as failed:
        evidence.verify_evidence(GOOD, DirectoryPin(PrivateKeys.generate().signing_key))
    assert failed.value.check == "directory"
    assert "pinned" in failed.value.reason


@settings(max_examples=40, deadline=None)
@given(
    field_name=st.sampled_from(
        [
            ("message", "envelope"),
            ("message", "data_key"),
            ("keys", "sender"),
            ("keys", "log"),
            ("keys", "directory"),
            ("grant.entry", "leaf"),
            ("grant.tree_head", "tree_head"),
            ("grant.tree_head", "signature"),
        ]
    ),
    position=st.integers(min_value=0, max_value=10_000),
    bit=st.integers(min_value=0, max_value=7),
)
def test_any_flipped_bit_in_a_signed_field_is_detected(
    field_name: tuple[str, str], position: int, bit: int
) -> None:
    document = _doc()
    where: Any = document
    for key in field_name[0].split("."):
        where = where[key]
    raw = bytearray(base64.b64decode(where[field_name[1]]))
    raw[position % len(raw)] ^= 1 << bit
    where[field_name[1]] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(EvidenceCheckError):
        evidence.verify_evidence(_encode(document), WORLD.pin)


# ----------------------------------------------------------------------------- format and version


def test_unknown_future_version_is_refused_clearly() -> None:
    document = _doc()
    document["version"] = 2
    with pytest.raises(EvidenceVersionTooNewError) as refused:
        evidence.verify_evidence(_encode(document), WORLD.pin)
    assert "newer" in refused.value.explain()


def test_version_zero_is_too_old() -> None:
    document = _doc()
    document["version"] = 0
    with pytest.raises(EvidenceVersionTooOldError):
        evidence.verify_evidence(_encode(document), WORLD.pin)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe",
        b"[]",
        b'{"format": "something-else", "version": 1}',
        b'{"format": "sealpost-evidence", "version": "1"}',
        b'{"format": "sealpost-evidence", "version": true}',
    ],
)
def test_non_bundles_are_format_errors(data: bytes) -> None:
    with pytest.raises(EvidenceFormatError):
        evidence.verify_evidence(data, WORLD.pin)


@pytest.mark.parametrize(
    "tamper",
    [
        _set("message.data_key", lambda _: "not base64!"),
        _set("message.message_id", lambda _: "zz"),
        _set("message.direction", lambda _: "sideways"),
        _set("grant.entry.index", lambda _: -1),
        _set("grant.entry.index", lambda _: "3"),
        _set("message.parts", lambda _: "none"),
        _set("keys.revocations", lambda _: [17]),
    ],
)
def test_malformed_fields_are_format_errors(tamper: Tamper) -> None:
    document = _doc()
    tamper(document)
    with pytest.raises(EvidenceFormatError):
        evidence.verify_evidence(_encode(document), WORLD.pin)


def test_missing_field_is_a_format_error() -> None:
    document = _doc()
    del document["grant"]["inclusion_proof"]
    with pytest.raises(EvidenceFormatError) as refused:
        evidence.verify_evidence(_encode(document), WORLD.pin)
    assert "inclusion_proof" in str(refused.value)


def _revoke_sender(revoked_at_s: int) -> bytes:
    bundle = WORLD.bundle
    sender_id = keyrecords.key_record_id(keyrecords.parse_key_record(bundle.sender_record).body)
    revocation = keyrecords.issue_revocation(
        key_id=sender_id,
        revoked_at=revoked_at_s,
        reason="device lost",
        directory_keys=WORLD.directory_keys,
        directory_key_id=WORLD.directory_id,
    )
    revoked = replace(bundle, revocations=(revocation.SerializeToString(),))
    return evidence.encode_evidence(revoked)


def test_a_sender_key_revoked_before_acceptance_fails() -> None:
    with pytest.raises(EvidenceCheckError) as failed:
        evidence.verify_evidence(_revoke_sender(NOW_S - 60), WORLD.pin)
    assert failed.value.check == "sender-key"
    assert "revoked" in failed.value.reason


def test_a_revocation_after_acceptance_does_not_undo_the_evidence() -> None:
    assert evidence.verify_evidence(_revoke_sender(NOW_S + 60), WORLD.pin).verified


def test_a_forged_revocation_is_refused() -> None:
    bundle = WORLD.bundle
    sender_id = keyrecords.key_record_id(keyrecords.parse_key_record(bundle.sender_record).body)
    forged = keyrecords.issue_revocation(
        key_id=sender_id,
        revoked_at=NOW_S + 60,
        reason="forged",
        directory_keys=PrivateKeys.generate(),
        directory_key_id=WORLD.directory_id,
    )
    tampered = replace(bundle, revocations=(forged.SerializeToString(),))
    with pytest.raises(EvidenceCheckError) as failed:
        evidence.verify_evidence(evidence.encode_evidence(tampered), WORLD.pin)
    assert failed.value.check == "sender-key"
