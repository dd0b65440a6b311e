"""EscrowBlob version 1: round trip, distinct version errors, consistency checks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealpost.escrow.blob import (
    ESCROW_BLOB_VERSION,
    MAX_CIPHERTEXT_CHARS,
    EscrowedKey,
    ciphertext_key_version,
)
from sealpost.escrow.errors import (
    BlobVersionError,
    BlobVersionTooNewError,
    BlobVersionTooOldError,
    EscrowBlobError,
)
from sealpost.v1.envelope_pb2 import EscrowBlob

MID = bytes(range(16))
CT = "vault:v3:puGtP6oA3jfKbkbhPBW1xuGInOwH5BDRSt3A7RDbCPFB+MsBBRzm1P3V+uqKhap2I7oFMEh5nBoYzuc7"


def test_round_trip_through_bytes() -> None:
    key = EscrowedKey(MID, CT, 3)
    data = key.to_bytes()
    assert EscrowedKey.from_bytes(data) == key
    assert key.to_proto().version == ESCROW_BLOB_VERSION
    assert key.to_bytes() == data


def test_ciphertext_is_not_in_repr() -> None:
    assert "puGtP6" not in repr(EscrowedKey(MID, CT, 3))


def blob(**over: object) -> bytes:
    fields: dict[str, object] = {
        "version": 1,
        "message_id": MID,
        "ciphertext": CT,
        "key_version": 3,
    }
    fields.update(over)
    return EscrowBlob(**fields).SerializeToString()  # type: ignore[arg-type]


def test_version_zero_is_too_old() -> None:
    with pytest.raises(BlobVersionTooOldError):
        EscrowedKey.from_bytes(blob(version=0))


def test_future_version_is_too_new() -> None:
    with pytest.raises(BlobVersionTooNewError):
        EscrowedKey.from_bytes(blob(version=2))


def test_version_errors_are_distinct() -> None:
    assert not issubclass(BlobVersionTooOldError, BlobVersionTooNewError)
    assert not issubclass(BlobVersionTooNewError, BlobVersionTooOldError)
    assert issubclass(BlobVersionTooOldError, BlobVersionError)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(EscrowBlobError, match="unknown fields"):
        EscrowedKey.from_bytes(blob() + b"\x28\x05")


def test_garbage_is_refused() -> None:
    with pytest.raises(EscrowBlobError):
        EscrowedKey.from_bytes(b"\xff\xff\xff")


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"message_id": MID[:15]}, "16 bytes"),
        ({"message_id": b""}, "16 bytes"),
        ({"key_version": 2}, "disagree"),
        ({"key_version": 0}, "out of range"),
        ({"ciphertext": "vault:v0:abcd"}, "form"),
        ({"ciphertext": "vault:v3:"}, "form"),
        ({"ciphertext": "vault:v3:ab cd"}, "form"),
        ({"ciphertext": "v3:abcd"}, "form"),
        ({"ciphertext": "vault:v03:abcd"}, "form"),
        ({"ciphertext": "vault:v3:" + "A" * MAX_CIPHERTEXT_CHARS}, "too long"),
    ],
)
def test_inconsistent_blobs_are_refused(over: dict[str, object], message: str) -> None:
    with pytest.raises(EscrowBlobError, match=message):
        EscrowedKey.from_bytes(blob(**over))


def test_ciphertext_key_version() -> None:
    assert ciphertext_key_version(CT) == 3
    assert ciphertext_key_version("vault:v4294967295:QUJD") == 4294967295
    with pytest.raises(EscrowBlobError, match="range"):
        ciphertext_key_version("vault:v4294967296:QUJD")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_blob_errors_only(data: bytes) -> None:
    try:
        key = EscrowedKey.from_bytes(data)
    except EscrowBlobError:
        return
    assert len(key.message_id) == 16
    assert ciphertext_key_version(key.ciphertext) == key.key_version
