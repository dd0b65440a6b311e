"""Fuzzing the pure parsers (SPEC P8, P10): envelope headers, envelopes, digests, key records
and revocations, from random bytes and from mutations of valid artefacts (bit flips,
truncation, extension, unknown fields, wrong wire types, deep nesting, swapped fields,
re-signed tampering).

Only the crypto error tree may come out, never a bare exception; and an envelope either
opens completely, to exactly what was sealed, or yields nothing at all. Example counts and
how to raise them: tests/fuzzing.py.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Final

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sealpost.crypto import keyrecords as kr
from sealpost.crypto.envelope import (
    Header,
    OpenedMessage,
    Part,
    decrypt_with_dek,
    envelope_digest,
    open_envelope,
    parse_envelope,
    parse_header,
    seal_envelope,
    sign_envelope,
    verify_envelope,
)
from sealpost.crypto.errors import (
    CryptoError,
    DecryptionError,
    EnvelopeError,
    KeyRecordError,
)
from sealpost.crypto.keyrecords import VerifiedKey
from sealpost.errors import SealpostError
from sealpost.v1 import envelope_pb2, keys_pb2
from tests import fuzzing
from tests.generators import load_generator


def _load_generator() -> ModuleType:
    return load_generator("generate_envelope_vectors")


gen = _load_generator()
KEYRING: Any = gen.build_keyring()
NOW_MS: Final[int] = gen.NOW_MS
DIRECTORY: Final[VerifiedKey] = KEYRING.directory.verified
PIN: Final = kr.DirectoryPin(KEYRING.directory.keys.signing_key)
ENVELOPE_FIELDS: Final = [f.number for f in envelope_pb2.Envelope.DESCRIPTOR.fields]
HEADER_FIELDS: Final = [f.number for f in envelope_pb2.EnvelopeHeader.DESCRIPTOR.fields]
RECORD_FIELDS: Final = [f.number for f in keys_pb2.KeyRecord.DESCRIPTOR.fields]
BODY_FIELDS: Final = [f.number for f in keys_pb2.KeyRecordBody.DESCRIPTOR.fields]

PARTS: Final = (
    Part("text/plain; charset=utf-8", "Hallo, tot zondag. مرحبا".encode(), ""),
    Part("application/pdf", b"%PDF-1.7 " + bytes(range(256)), "brief.pdf"),
)


def _seal(seed: bytes, parts: tuple[Part, ...] = PARTS) -> envelope_pb2.Envelope:
    alice = KEYRING["alice"]
    return seal_envelope(
        list(parts),
        sender_keys=alice.keys,
        sender_key_id=alice.verified.id,
        recipients=[KEYRING["mailbox"].verified],
        now_ms=NOW_MS,
        rng=gen.SeededRandom(seed),
    )


VALID: Final = _seal(b"fuzz")
VALID_WIRE: Final = VALID.SerializeToString()
OTHER: Final = _seal(b"other")


def _open(envelope: envelope_pb2.Envelope) -> OpenedMessage:
    mailbox = KEYRING["mailbox"]
    return open_envelope(
        envelope, mailbox.keys, mailbox.verified.id, KEYRING["alice"].verified, now_ms=NOW_MS
    )


def _contents(opened: OpenedMessage) -> list[tuple[str, str, bytes]]:
    return [(p.content_type, p.filename, p.data) for p in opened.parts]


EXPECTED: Final = _contents(_open(VALID))


def _open_all_or_nothing(envelope: envelope_pb2.Envelope) -> None:
    """Opening raises a CryptoError, or yields every part exactly as sealed."""
    try:
        opened = _open(envelope)
    except CryptoError:
        return
    assert _contents(opened) == EXPECTED, "a changed envelope opened to other content"
    assert opened.digest == envelope_digest(VALID)


# --- Headers ---


@fuzzing.fuzz_settings(300)
@given(data=st.binary(max_size=400))
def test_random_bytes_as_a_header(data: bytes) -> None:
    try:
        header = parse_header(data)
    except CryptoError:
        return
    assert header.raw == data  # what was accepted is exactly what would be signed


@fuzzing.fuzz_settings(300)
@given(header=fuzzing.message(envelope_pb2.EnvelopeHeader.DESCRIPTOR))
def test_structured_headers_are_checked_or_refused(header: envelope_pb2.EnvelopeHeader) -> None:
    data = header.SerializeToString(deterministic=True)
    try:
        parsed = parse_header(data)
    except CryptoError:
        return
    _check_accepted_header(parsed)


def _check_accepted_header(parsed: Header) -> None:
    """An accepted header honours every shape rule and limit."""
    assert parsed.version == 1
    assert len(parsed.message_id) == 16
    assert len(parsed.sender_key_id) == 32
    assert 1 <= len(parsed.recipient_key_ids) <= 16
    assert 1 <= len(parsed.parts) <= 20
    assert all(8 <= p.size <= 16 * 1024 * 1024 and len(p.nonce) == 24 for p in parsed.parts)
    assert parsed.created_at_ms > 0


@fuzzing.fuzz_settings(400)
@given(data=fuzzing.mutated(VALID.header, HEADER_FIELDS))
def test_mutated_headers_are_refused_or_canonical(data: bytes) -> None:
    try:
        parsed = parse_header(data)
    except CryptoError:
        return
    _check_accepted_header(parsed)
    # Only canonical bytes are accepted, so a change of bytes is a change of meaning.
    message = envelope_pb2.EnvelopeHeader.FromString(data)
    assert message.SerializeToString(deterministic=True) == data


# --- Envelopes ---


@fuzzing.fuzz_settings(300)
@given(data=st.binary(max_size=800))
def test_random_bytes_as_an_envelope(data: bytes) -> None:
    try:
        envelope = parse_envelope(data)
    except CryptoError:
        return
    assert len(envelope_digest(envelope)) == 32  # the digest is total: any parsed envelope
    with pytest.raises(CryptoError):
        _open(envelope)


@fuzzing.fuzz_settings(400)
@given(data=fuzzing.mutated(VALID_WIRE, ENVELOPE_FIELDS))
def test_mutated_envelopes_open_completely_or_not_at_all(data: bytes) -> None:
    try:
        envelope = parse_envelope(data)
    except CryptoError:
        return
    assert len(envelope_digest(envelope)) == 32
    _open_all_or_nothing(envelope)
    if envelope != VALID:
        with pytest.raises(CryptoError):
            _open(envelope)


def _mixed(choices: list[bool]) -> envelope_pb2.Envelope:
    """Each field from VALID (False) or from OTHER (True): fields swapped between envelopes."""
    mixed = envelope_pb2.Envelope()
    for field, from_other in zip(envelope_pb2.Envelope.DESCRIPTOR.fields, choices, strict=False):
        source = OTHER if from_other else VALID
        value = getattr(source, field.name)
        if field.is_repeated:
            getattr(mixed, field.name).extend(value)
        else:
            setattr(mixed, field.name, value)
    return mixed


@fuzzing.fuzz_settings(60)
@given(choices=st.lists(st.booleans(), min_size=5, max_size=5))
def test_fields_swapped_between_envelopes_never_open(choices: list[bool]) -> None:
    mixed = _mixed(choices)
    assume(mixed not in (VALID, OTHER))
    with pytest.raises(CryptoError):
        _open(mixed)


@fuzzing.fuzz_settings(60)
@given(data=st.data())
def test_reordered_parts_and_sealed_keys_never_open(data: st.DataObject) -> None:
    envelope = envelope_pb2.Envelope()
    envelope.CopyFrom(VALID)
    ciphertexts = data.draw(st.permutations(list(VALID.part_ciphertexts)), label="parts")
    sealed = data.draw(st.permutations(list(VALID.sealed_keys)), label="keys")
    assume(ciphertexts != list(VALID.part_ciphertexts) or sealed != list(VALID.sealed_keys))
    del envelope.part_ciphertexts[:]
    envelope.part_ciphertexts.extend(ciphertexts)
    del envelope.sealed_keys[:]
    envelope.sealed_keys.extend(sealed)
    with pytest.raises(CryptoError):
        _open(envelope)
    # Even signed again by the real sender, the order is part of what was encrypted.
    resigned = sign_envelope(envelope.header, ciphertexts, sealed, KEYRING["alice"].keys)
    with pytest.raises(CryptoError):
        _open(resigned)


@fuzzing.fuzz_settings(300)
@given(header=fuzzing.mutated(VALID.header, HEADER_FIELDS))
def test_tampered_headers_signed_again_by_the_sender_never_open(header: bytes) -> None:
    """The sender's own signature over a changed header reaches every check past the
    signature: structure, sender, time, sealed key, commitment and the parts' AEAD."""
    assume(header != VALID.header)
    forged = sign_envelope(
        header, list(VALID.part_ciphertexts), list(VALID.sealed_keys), KEYRING["alice"].keys
    )
    with pytest.raises(CryptoError):
        _open(forged)
    dek = _dek()
    with pytest.raises(CryptoError):
        decrypt_with_dek(forged, dek, KEYRING["alice"].verified, now_ms=NOW_MS)


def _dek() -> bytes:
    mailbox = KEYRING["mailbox"]
    sealed = next(s for s in VALID.sealed_keys if s.key_id == mailbox.verified.id)
    return bytes(mailbox.keys.open_sealed(sealed.sealed_dek))


@fuzzing.fuzz_settings(200)
@given(data=st.data())
def test_tampered_ciphertexts_and_sealed_keys_signed_again_never_open(
    data: st.DataObject,
) -> None:
    envelope = envelope_pb2.Envelope()
    envelope.CopyFrom(VALID)
    which = data.draw(st.sampled_from(["part", "sealed"]), label="which")
    if which == "part":
        index = data.draw(st.integers(0, len(VALID.part_ciphertexts) - 1), label="index")
        changed = data.draw(fuzzing.mutated(VALID.part_ciphertexts[index]), label="part")
        assume(changed != VALID.part_ciphertexts[index])
        envelope.part_ciphertexts[index] = changed
    else:  # the mailbox's own copy of the data key (the sender's copy is not opened here)
        index = [s.key_id for s in VALID.sealed_keys].index(KEYRING["mailbox"].verified.id)
        changed = data.draw(fuzzing.mutated(VALID.sealed_keys[index].sealed_dek), label="dek")
        assume(changed != VALID.sealed_keys[index].sealed_dek)
        envelope.sealed_keys[index].sealed_dek = changed
    forged = sign_envelope(
        envelope.header,
        list(envelope.part_ciphertexts),
        list(envelope.sealed_keys),
        KEYRING["alice"].keys,
    )
    with pytest.raises(CryptoError):
        _open(forged)


@pytest.mark.parametrize(
    "holder",
    [
        "carol-expired",  # expired when the envelope was made
        "erin-new",  # not yet valid when the envelope was made
        "institution",  # a record of another purpose
    ],
)
def test_senders_with_unusable_records_are_refused(holder: str) -> None:
    record = KEYRING[holder]
    envelope = seal_envelope(
        list(PARTS),
        sender_keys=record.keys,
        sender_key_id=record.verified.id,
        recipients=[KEYRING["mailbox"].verified],
        now_ms=NOW_MS - 120_000,
        rng=gen.SeededRandom(b"mismatch"),
    )
    with pytest.raises(KeyRecordError):
        verify_envelope(envelope, record.verified, now_ms=NOW_MS)


def test_another_senders_record_is_refused() -> None:
    with pytest.raises(EnvelopeError):
        verify_envelope(VALID, KEYRING["bob"].verified, now_ms=NOW_MS)


# --- Key records and revocations ---


def _verify_record(
    data: bytes,
    *,
    purpose: kr.KeyPurpose = kr.RELATIVE_DEVICE,
    now_ms: int = NOW_MS,
    revocations: list[keys_pb2.KeyRevocation] | None = None,
) -> VerifiedKey:
    record = kr.parse_key_record(data)
    return kr.verify_key_record(
        record, DIRECTORY, now_ms=now_ms, purpose=purpose, revocations=revocations or []
    )


ALICE_RECORD: Final = KEYRING["alice"].record.SerializeToString()
REVOCATION: Final = KEYRING.revocations[0][1].SerializeToString()


@fuzzing.fuzz_settings(300)
@given(data=st.binary(max_size=400))
def test_random_bytes_as_a_key_record(data: bytes) -> None:
    with pytest.raises(CryptoError):
        _verify_record(data)


@fuzzing.fuzz_settings(400)
@given(data=fuzzing.mutated(ALICE_RECORD, RECORD_FIELDS))
def test_mutated_key_records_verify_to_the_same_key_or_are_refused(data: bytes) -> None:
    try:
        verified = _verify_record(data)
    except CryptoError:
        return
    assert verified == KEYRING["alice"].verified


@fuzzing.fuzz_settings(300)
@given(body=fuzzing.mutated(KEYRING["alice"].record.body, BODY_FIELDS))
def test_tampered_bodies_signed_again_by_the_directory_are_checked(body: bytes) -> None:
    """Signed by the real directory, a changed body still meets every shape rule or fails."""
    record = keys_pb2.KeyRecord(
        version=1,
        body=body,
        signature=KEYRING.directory.keys.sign(kr.key_record_signed_digest(body)),
    )
    try:
        verified = _verify_record(record.SerializeToString())
    except CryptoError:
        return
    assert verified.id == kr.key_record_id(body)
    assert verified.purpose == kr.RELATIVE_DEVICE
    assert verified.valid_at(NOW_MS)
    assert verified.issuer_key_id == DIRECTORY.id


@fuzzing.fuzz_settings(200)
@given(
    purpose=st.sampled_from([0, 1, 2, 3, 4, 5, 6, 2**31 - 1]),
    now_ms=st.one_of(
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.integers(min_value=NOW_MS - 10**12, max_value=NOW_MS + 10**12),
    ),
    holder=st.sampled_from(sorted(KEYRING.holders)),
    revoked=st.booleans(),
)
def test_any_purpose_time_and_revocation_is_decided_cleanly(
    purpose: int, now_ms: int, holder: str, revoked: bool
) -> None:
    record = KEYRING[holder]
    revocations = [KEYRING.revocations[0][1]] if revoked else []
    try:
        verified = _verify_record(
            record.record.SerializeToString(),
            purpose=purpose,  # type: ignore[arg-type]
            now_ms=now_ms,
            revocations=revocations,
        )
    except KeyRecordError:
        return
    except CryptoError as exc:
        pytest.fail(f"a well-formed record failed with {type(exc).__name__}")
    assert verified.purpose == purpose
    assert verified.valid_at(now_ms)
    assert not (revoked and holder == "dave-revoked" and now_ms >= gen._2025_06 * 1000)


@fuzzing.fuzz_settings(300)
@given(data=fuzzing.mutated(REVOCATION, RECORD_FIELDS))
def test_mutated_revocations_in_the_list_are_refused_or_ignored(data: bytes) -> None:
    try:
        revocation = kr.parse_key_revocation(data)
    except CryptoError:
        return
    dave = KEYRING["dave-revoked"].record.SerializeToString()
    try:
        _verify_record(dave, revocations=[revocation])
    except CryptoError:
        return
    # Accepted: the changed revocation names another key, so it was rightly ignored.
    body = keys_pb2.KeyRevocationBody.FromString(revocation.body)
    assert body.key_id != KEYRING["dave-revoked"].verified.id


def test_the_crypto_error_tree_is_the_sealpost_one() -> None:
    assert issubclass(CryptoError, SealpostError)
    assert issubclass(DecryptionError, CryptoError)
