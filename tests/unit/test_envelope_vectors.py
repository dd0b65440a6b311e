"""tests/vectors/envelope-v1.json: fresh, and every vector checks out from the JSON alone."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sealpost.crypto import _sodium, errors
from sealpost.crypto._framing import lp, u64
from sealpost.crypto.envelope import (
    decrypt_with_dek,
    open_envelope,
    parse_envelope,
    verify_envelope,
)
from sealpost.crypto.keyrecords import (
    DirectoryPin,
    VerifiedKey,
    parse_key_record,
    parse_key_revocation,
    verify_directory_record,
    verify_key_record,
)
from sealpost.crypto.keys import PrivateKeys
from sealpost.crypto.limits import DEFAULT_LIMITS, Limits
from sealpost.v1 import envelope_pb2, keys_pb2
from tests.generators import load_generator

VECTORS_DIR = Path(__file__).resolve().parents[1] / "vectors"
VECTORS = VECTORS_DIR / "envelope-v1.json"


def _load_generator() -> ModuleType:
    return load_generator("generate_envelope_vectors")


@cache
def _vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
    return data


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


def test_regeneration_matches_the_committed_file() -> None:
    gen = _load_generator()
    assert VECTORS.read_text(encoding="utf-8") == gen.render(gen.build_vectors()), (
        "stale vectors: run tests/vectors/generate_envelope_vectors.py and review the diff"
    )


# --- A reader's check, from the JSON alone ---


def _purpose(name: str) -> keys_pb2.KeyPurpose.ValueType:
    return keys_pb2.KeyPurpose.Value(name)


def _secret_keys(name: str) -> PrivateKeys:
    entry = _vectors()["keys"][name]
    keys = PrivateKeys(
        x25519_secret=_h(entry["x25519_secret"]), ed25519_seed=_h(entry["ed25519_seed"])
    )
    assert keys.encryption_key.hex() == entry["encryption_key"]
    assert keys.signing_key.hex() == entry["signing_key"]
    return keys


def _revocations() -> list[keys_pb2.KeyRevocation]:
    return [parse_key_revocation(_h(r["revocation"])) for r in _vectors()["revocations"]]


def _sender(name: str, now_ms: int) -> VerifiedKey:
    vectors = _vectors()
    directory_entry = vectors["directory"]
    directory = verify_directory_record(
        parse_key_record(_h(directory_entry["record"])),
        DirectoryPin(_h(directory_entry["signing_key"])),
        now_ms=now_ms,
        revocations=_revocations(),
    )
    entry = vectors["keys"][name]
    return verify_key_record(
        parse_key_record(_h(entry["record"])),
        directory,
        now_ms=now_ms,
        revocations=_revocations(),
        purpose=_purpose(entry["purpose"]),
    )


def _limits(overrides: dict[str, int]) -> Limits:
    return dataclasses.replace(DEFAULT_LIMITS, **overrides)


def _run(vector: dict[str, Any], opener: str, opener_key_of: str) -> list[tuple[str, bytes]]:
    now_ms = vector["now_ms"]
    limits = _limits(vector.get("limits", {}))
    sender = _sender(vector["sender"], now_ms)
    envelope = parse_envelope(_h(vector["envelope"]), limits)
    if vector.get("operation") == "decrypt_with_dek":
        opened = decrypt_with_dek(envelope, _h(vector["dek"]), sender, now_ms=now_ms, limits=limits)
    else:
        key_id = _h(_vectors()["keys"][opener_key_of]["record_id"])
        opened = open_envelope(
            envelope, _secret_keys(opener), key_id, sender, now_ms=now_ms, limits=limits
        )
    return [(part.filename, part.data) for part in opened.parts]


def _valid() -> list[dict[str, Any]]:
    return list(_vectors()["valid"])


def _invalid() -> list[dict[str, Any]]:
    return list(_vectors()["invalid"])


@pytest.mark.parametrize("vector", _valid(), ids=lambda v: v["name"])
def test_valid_vector_opens_for_every_opener(vector: dict[str, Any]) -> None:
    expected = [(part["filename"], _h(part["content"])) for part in vector["parts"]]
    for opener in vector["openers"]:
        assert _run(vector, opener, opener) == expected
    escrow = {**vector, "operation": "decrypt_with_dek"}
    assert _run(escrow, "", "") == expected


@pytest.mark.parametrize("vector", _valid(), ids=lambda v: v["name"])
def test_valid_vector_intermediates_follow_the_document(vector: dict[str, Any]) -> None:
    """Recompute each documented value with hashlib and libsodium only."""
    envelope = envelope_pb2.Envelope.FromString(_h(vector["envelope"]))
    header = _h(vector["header"])
    assert envelope.header == header
    meta = envelope_pb2.EnvelopeHeader.FromString(header)
    assert meta.SerializeToString(deterministic=True) == header
    dek, message_id = _h(vector["dek"]), _h(vector["message_id"])
    assert meta.message_id == message_id
    commitment_input = lp(b"sealpost/v1/envelope/key-commitment") + lp(message_id)
    assert commitment_input.hex() == vector["key_commitment_input"]
    commitment = hashlib.blake2b(commitment_input, digest_size=32, key=dek).digest()
    assert commitment == meta.key_commitment == _h(vector["key_commitment"])
    for index, part in enumerate(vector["parts"]):
        name = part["filename"].encode("utf-8")
        plaintext = u64(len(name)) + name + _h(part["content"])
        assert plaintext == _h(part["plaintext"])
        associated = lp(b"sealpost/v1/envelope/part") + lp(header) + u64(index)
        assert associated.hex() == part["associated_data"]
        ciphertext = _sodium.aead_encrypt(dek, _h(part["nonce"]), plaintext, associated)
        assert ciphertext == envelope.part_ciphertexts[index] == _h(part["ciphertext"])
        assert meta.parts[index].size == part["size"] == len(plaintext)
        assert meta.parts[index].content_type == part["content_type"]
    for index, sealed in enumerate(vector["sealed_keys"]):
        resealed = _sodium.seal_with_ephemeral(
            _h(sealed["recipient_public_key"]), dek, _h(sealed["ephemeral_secret"])
        )
        assert resealed == envelope.sealed_keys[index].sealed_dek == _h(sealed["sealed_dek"])
        nonce = hashlib.blake2b(
            _h(sealed["ephemeral_public"]) + _h(sealed["recipient_public_key"]), digest_size=24
        ).digest()
        assert nonce.hex() == sealed["box_nonce"]
    signed = hashlib.sha256(
        lp(b"sealpost/v1/envelope/signature")
        + lp(header)
        + u64(len(envelope.part_ciphertexts))
        + b"".join(lp(c) for c in envelope.part_ciphertexts)
        + u64(len(envelope.sealed_keys))
        + b"".join(lp(s.key_id) + lp(s.sealed_dek) for s in envelope.sealed_keys)
    ).digest()
    assert signed.hex() == vector["content_digest"]
    seed = _h(_vectors()["keys"][vector["sender"]]["ed25519_seed"])
    assert _sodium.ed25519_sign(seed, signed) == envelope.signature == _h(vector["signature"])
    digest = hashlib.sha256(
        lp(b"sealpost/v1/envelope/digest") + lp(signed) + lp(envelope.signature)
    ).digest()
    assert digest.hex() == vector["envelope_digest"]


def test_key_records_follow_the_document() -> None:
    vectors = _vectors()
    for entry in [vectors["directory"], *vectors["keys"].values()]:
        body = _h(entry["record_body"])
        assert (
            hashlib.sha256(lp(b"sealpost/v1/key-record/id") + lp(body)).hexdigest()
            == (entry["record_id"])
        )
        signed = hashlib.sha256(lp(b"sealpost/v1/key-record/signature") + lp(body)).digest()
        assert signed.hex() == entry["record_signed_digest"]
        record = keys_pb2.KeyRecord.FromString(_h(entry["record"]))
        assert record.body == body
        assert record.signature == _h(entry["record_signature"])
        _sodium.ed25519_verify(_h(vectors["directory"]["signing_key"]), signed, record.signature)


@pytest.mark.parametrize("vector", _invalid(), ids=lambda v: v["name"])
def test_invalid_vector_fails_with_its_error(vector: dict[str, Any]) -> None:
    expected = getattr(errors, vector["expected_error"])
    with pytest.raises(errors.CryptoError) as info:
        _run(vector, vector["opener"], vector["opener_key_id_of"])
    assert type(info.value) is expected, f"{type(info.value).__name__}: {info.value}"


def test_negative_vectors_cover_every_required_kind() -> None:
    names = {v["name"] for v in _invalid()}
    regions = {v["flip"]["region"].split(" ")[0].split("[")[0] for v in _invalid() if "flip" in v}
    assert {
        "envelope.version",
        "envelope.header",
        "header.version",
        "header.message_id",
        "header.sender_key_id",
        "header.recipient_key_ids",
        "header.created_at_ms",
        "header.parts",
        "header.key_commitment",
        "part_ciphertexts",
        "sealed_keys",
        "signature",
    } <= regions
    required = {
        "truncated-last-byte",
        "wrong-key",
        "wrong-recipient",
        "expired-sender-record",
        "envelope-version-2",
        "header-version-0",
        "oversized-parts",
        "oversized-part",
        "oversized-total",
        "oversized-filename",
        "escrow-wrong-dek",
        "part-shorter-than-name-length",
        "embedded-name-length-past-end",
        "embedded-name-invalid-utf8",
        "embedded-name-with-slash",
        "embedded-name-bidi-override",
        "embedded-name-too-long",
        "escrow-embedded-name-with-slash",
        "header-filename-field",
    }
    assert required <= names
    errors_seen = {v["expected_error"] for v in _invalid()}
    assert errors_seen == {
        "VersionTooOldError",
        "VersionTooNewError",
        "FormatError",
        "SignatureError",
        "DecryptionError",
        "EnvelopeError",
        "KeyRecordError",
        "LimitError",
    }


@pytest.mark.parametrize(
    "vector",
    [v for v in _invalid() if "embedded-name" in v["name"] or v["name"] == "oversized-filename"],
    ids=lambda v: v["name"],
)
def test_embedded_name_vectors_pass_the_gateway_and_fail_on_opening(
    vector: dict[str, Any],
) -> None:
    """The gateway cannot see file names, so only the reader's split refuses these."""
    limits = _limits(vector.get("limits", {}))
    sender = _sender(vector["sender"], vector["now_ms"])
    envelope = parse_envelope(_h(vector["envelope"]), limits)
    verify_envelope(envelope, sender, now_ms=vector["now_ms"], limits=limits)
    assert vector["expected_error"] in {"FormatError", "LimitError"}


def test_no_vector_header_carries_a_file_name() -> None:
    for vector in _valid():
        meta = envelope_pb2.EnvelopeHeader.FromString(_h(vector["header"]))
        for info, part in zip(meta.parts, vector["parts"], strict=True):
            assert {f.name for f, _ in info.ListFields()} <= {"content_type", "size", "nonce"}
            if part["filename"]:
                assert part["filename"].encode("utf-8") not in _h(vector["envelope"])


def test_flip_vectors_differ_from_the_valid_envelope_by_one_bit() -> None:
    base = _h(next(v for v in _valid() if v["name"] == "text-only")["envelope"])
    for vector in _invalid():
        if "flip" not in vector:
            continue
        flipped = _h(vector["envelope"])
        assert len(flipped) == len(base)
        diff = int.from_bytes(base, "big") ^ int.from_bytes(flipped, "big")
        assert diff.bit_count() == 1
        offset, bit = vector["flip"]["offset"], vector["flip"]["bit"]
        assert base[offset] ^ flipped[offset] == 1 << bit
