"""Private keys and key records: ids, directory signatures, validity windows, revocation."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import pytest

from sealpost.crypto import _sodium
from sealpost.crypto import keyrecords as kr
from sealpost.crypto._framing import lp
from sealpost.crypto.errors import (
    CryptoError,
    DecryptionError,
    FormatError,
    KeyRecordError,
    LimitError,
    SignatureError,
    VersionTooNewError,
    VersionTooOldError,
)
from sealpost.crypto.keys import PrivateKeys
from sealpost.errors import SealpostError
from sealpost.v1 import keys_pb2

NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
NOW_S = NOW_MS // 1000
YEAR = 365 * 86_400


def _keys(label: str) -> PrivateKeys:
    seed = hashlib.sha256(label.encode()).digest()
    return PrivateKeys(x25519_secret=seed, ed25519_seed=hashlib.sha256(seed).digest())


@dataclass(frozen=True)
class Directory:
    keys: PrivateKeys
    record: keys_pb2.KeyRecord
    verified: kr.VerifiedKey
    pin: kr.DirectoryPin


def _directory(label: str = "directory") -> Directory:
    keys = _keys(label)
    record = kr.issue_directory_record(
        keys, subject="sealpost-directory", not_before=NOW_S - YEAR, not_after=NOW_S + YEAR
    )
    pin = kr.DirectoryPin(keys.signing_key)
    return Directory(keys, record, kr.verify_directory_record(record, pin, now_ms=NOW_MS), pin)


def _device(
    directory: Directory,
    keys: PrivateKeys | None = None,
    *,
    not_before: int = NOW_S - 10,
    not_after: int = NOW_S + 10,
    purpose: kr.KeyPurpose = kr.RELATIVE_DEVICE,
) -> keys_pb2.KeyRecord:
    keys = keys or _keys("device")
    return kr.issue_key_record(
        purpose=purpose,
        subject="account-1",
        encryption_key=keys.encryption_key if purpose in kr.PURPOSES_WITH_ENCRYPTION else b"",
        signing_key=keys.signing_key,
        not_before=not_before,
        not_after=not_after,
        directory_keys=directory.keys,
        directory_key_id=directory.verified.id,
    )


def _resign(
    directory: Directory, body: keys_pb2.KeyRecordBody | bytes, version: int = 1
) -> keys_pb2.KeyRecord:
    """A record over arbitrary body bytes, properly signed by the directory."""
    raw = body if isinstance(body, bytes) else body.SerializeToString(deterministic=True)
    return keys_pb2.KeyRecord(
        version=version,
        body=raw,
        signature=directory.keys.sign(kr.key_record_signed_digest(raw)),
    )


def _verify(
    record: keys_pb2.KeyRecord,
    directory: Directory,
    *,
    now_ms: int = NOW_MS,
    revocations: tuple[keys_pb2.KeyRevocation, ...] = (),
    purpose: kr.KeyPurpose = kr.RELATIVE_DEVICE,
) -> kr.VerifiedKey:
    return kr.verify_key_record(
        record, directory.verified, now_ms=now_ms, revocations=revocations, purpose=purpose
    )


# --- Private keys ---


def test_private_keys_never_show_secrets() -> None:
    keys = _keys("secret")
    for text in (repr(keys), str(keys), f"{keys}", f"{keys!r}"):
        assert keys.x25519_secret.hex() not in text
        assert keys.ed25519_seed.hex() not in text
        assert keys.signing_key.hex() in text


def test_private_keys_draw_x25519_then_ed25519() -> None:
    draws = [b"\x01" * 32, b"\x02" * 32]
    keys = PrivateKeys.generate(lambda n: draws.pop(0)[:n])
    assert keys.x25519_secret == b"\x01" * 32
    assert keys.ed25519_seed == b"\x02" * 32
    assert not draws


def test_private_keys_derive_libsodium_public_keys_and_signatures() -> None:
    keys = _keys("derive")
    assert keys.signing_key == _sodium.ed25519_public_from_seed(keys.ed25519_seed)
    assert keys.encryption_key == _sodium.x25519_public_from_secret(keys.x25519_secret)
    assert keys.sign(b"m") == _sodium.ed25519_sign(keys.ed25519_seed, b"m")
    sealed = _sodium.seal(keys.encryption_key, b"dek")
    assert keys.open_sealed(sealed) == b"dek"
    with pytest.raises(DecryptionError):
        _keys("other").open_sealed(sealed)


def test_private_keys_compare_by_identity_only() -> None:
    assert _keys("a") != _keys("a")  # no timing-dependent comparison of secrets


@pytest.mark.parametrize(("x", "s"), [(b"x" * 31, b"s" * 32), (b"x" * 32, b"s" * 33)])
def test_private_keys_refuse_wrong_sizes(x: bytes, s: bytes) -> None:
    with pytest.raises(FormatError):
        PrivateKeys(x25519_secret=x, ed25519_seed=s)


# --- Ids and signatures ---


def test_record_id_is_the_documented_digest() -> None:
    directory = _directory()
    record = _device(directory)
    expected = hashlib.sha256(lp(b"sealpost/v1/key-record/id") + lp(record.body)).digest()
    assert kr.key_record_id(record.body) == expected
    assert _verify(record, directory).id == expected
    signed = hashlib.sha256(lp(b"sealpost/v1/key-record/signature") + lp(record.body)).digest()
    assert kr.key_record_signed_digest(record.body) == signed
    assert kr.key_record_id(record.body) != signed


def test_verified_key_carries_the_body() -> None:
    directory = _directory()
    keys = _keys("device")
    verified = _verify(_device(directory, keys), directory)
    assert verified.purpose == kr.RELATIVE_DEVICE
    assert verified.subject == "account-1"
    assert verified.encryption_key == keys.encryption_key
    assert verified.signing_key == keys.signing_key
    assert (verified.not_before, verified.not_after) == (NOW_S - 10, NOW_S + 10)
    assert verified.issuer_key_id == directory.verified.id


def test_directory_is_self_signed_and_pinned() -> None:
    directory = _directory()
    assert directory.verified.purpose == kr.DIRECTORY
    assert directory.verified.issuer_key_id == b""
    assert directory.verified.encryption_key == b""
    with pytest.raises(KeyRecordError, match="pinned"):
        kr.verify_directory_record(
            directory.record, kr.DirectoryPin(_keys("other").signing_key), now_ms=NOW_MS
        )


def test_directory_record_signed_by_another_key_is_refused() -> None:
    directory = _directory()
    impostor = _keys("impostor")
    forged = keys_pb2.KeyRecord(
        version=1,
        body=directory.record.body,
        signature=impostor.sign(kr.key_record_signed_digest(directory.record.body)),
    )
    with pytest.raises(SignatureError):
        kr.verify_directory_record(forged, directory.pin, now_ms=NOW_MS)


def test_record_signed_by_another_directory_is_refused() -> None:
    directory, other = _directory(), _directory("other-directory")
    with pytest.raises(KeyRecordError, match="not issued by this directory"):
        _verify(_device(other), directory)


def test_record_with_forged_signature_is_refused() -> None:
    directory = _directory()
    record = _device(directory)
    record.signature = bytes(64)
    with pytest.raises(SignatureError):
        _verify(record, directory)


def test_any_flipped_bit_in_a_record_is_refused() -> None:
    directory = _directory()
    wire = _device(directory).SerializeToString()
    for position in range(len(wire) * 8):
        flipped = bytearray(wire)
        flipped[position // 8] ^= 1 << (position % 8)
        with pytest.raises(CryptoError):
            _verify(kr.parse_key_record(bytes(flipped)), directory)


def test_purpose_must_match() -> None:
    directory = _directory()
    with pytest.raises(KeyRecordError, match="purpose"):
        _verify(_device(directory), directory, purpose=kr.MAILBOX)


def test_pin_alone_does_not_verify_other_records() -> None:
    directory = _directory()
    with pytest.raises(KeyRecordError):
        kr.verify_key_record(
            _device(directory), directory.pin, now_ms=NOW_MS, purpose=kr.RELATIVE_DEVICE
        )
    device = _verify(_device(directory), directory)
    with pytest.raises(KeyRecordError):  # a device record cannot stand in for the directory
        kr.verify_key_record(_device(directory), device, now_ms=NOW_MS, purpose=kr.RELATIVE_DEVICE)


# --- Validity window ---


def test_window_is_inclusive_start_exclusive_end() -> None:
    directory = _directory()
    record = _device(directory, not_before=NOW_S, not_after=NOW_S + 1)
    _verify(record, directory, now_ms=NOW_MS)
    _verify(record, directory, now_ms=NOW_MS + 999)
    with pytest.raises(KeyRecordError, match="not yet valid"):
        _verify(record, directory, now_ms=NOW_MS - 1)
    with pytest.raises(KeyRecordError, match="expired"):
        _verify(record, directory, now_ms=NOW_MS + 1000)


def test_expired_directory_is_refused() -> None:
    directory = _directory()
    with pytest.raises(KeyRecordError, match="expired"):
        kr.verify_directory_record(directory.record, directory.pin, now_ms=NOW_MS + 2 * YEAR * 1000)


def test_empty_window_cannot_be_issued() -> None:
    with pytest.raises(FormatError, match="window"):
        _device(_directory(), not_before=NOW_S, not_after=NOW_S)


# --- Revocation ---


def _revoke(directory: Directory, key_id: bytes, revoked_at: int) -> keys_pb2.KeyRevocation:
    return kr.issue_revocation(
        key_id=key_id,
        revoked_at=revoked_at,
        reason="device lost",
        directory_keys=directory.keys,
        directory_key_id=directory.verified.id,
    )


def test_revocation_takes_effect_at_its_time() -> None:
    directory = _directory()
    record = _device(directory)
    key_id = kr.key_record_id(record.body)
    revocation = _revoke(directory, key_id, NOW_S)
    with pytest.raises(KeyRecordError, match="revoked"):
        _verify(record, directory, revocations=(revocation,))
    _verify(record, directory, now_ms=NOW_MS - 1, revocations=(revocation,))
    verified = kr.verify_revocation(revocation, directory.verified)
    assert (verified.key_id, verified.revoked_at, verified.reason) == (key_id, NOW_S, "device lost")


def test_revocations_of_other_keys_are_ignored() -> None:
    directory = _directory()
    record = _device(directory)
    _verify(record, directory, revocations=(_revoke(directory, b"\x07" * 32, NOW_S - 5),))


def test_forged_revocation_is_refused_not_ignored() -> None:
    directory = _directory()
    record = _device(directory)
    revocation = _revoke(directory, kr.key_record_id(record.body), NOW_S)
    revocation.signature = bytes(64)
    with pytest.raises(SignatureError):
        _verify(record, directory, revocations=(revocation,))


def test_revocation_from_another_directory_is_refused() -> None:
    directory, other = _directory(), _directory("other-directory")
    record = _device(directory)
    revocation = _revoke(other, kr.key_record_id(record.body), NOW_S)
    with pytest.raises(KeyRecordError, match="not issued by this directory"):
        _verify(record, directory, revocations=(revocation,))
    with pytest.raises(KeyRecordError):
        kr.verify_revocation(revocation, directory.verified)


def test_directory_can_revoke_itself() -> None:
    directory = _directory()
    revocation = _revoke(directory, directory.verified.id, NOW_S - 1)
    with pytest.raises(KeyRecordError, match="revoked"):
        kr.verify_directory_record(
            directory.record, directory.pin, now_ms=NOW_MS, revocations=(revocation,)
        )


def test_revocation_versions_are_checked() -> None:
    directory = _directory()
    revocation = _revoke(directory, b"\x01" * 32, NOW_S)
    revocation.version = 2
    with pytest.raises(VersionTooNewError):
        kr.verify_revocation(revocation, directory.verified)
    with pytest.raises(VersionTooNewError):
        kr.parse_key_revocation(revocation.SerializeToString())


# --- Versions and encoding ---


def test_record_versions_are_distinct_errors() -> None:
    directory = _directory()
    record = _device(directory)
    record.version = 0
    with pytest.raises(VersionTooOldError):
        _verify(record, directory)
    record.version = 2
    with pytest.raises(VersionTooNewError):
        _verify(record, directory)
    with pytest.raises(VersionTooNewError):
        kr.parse_key_record(record.SerializeToString())


def test_body_version_must_match_and_be_known() -> None:
    directory = _directory()
    body = keys_pb2.KeyRecordBody.FromString(_device(directory).body)
    body.version = 2
    with pytest.raises(VersionTooNewError):
        _verify(_resign(directory, body), directory)


def test_unknown_and_non_canonical_bodies_are_refused() -> None:
    directory = _directory()
    raw = _device(directory).body
    with pytest.raises(FormatError, match="unknown"):
        _verify(_resign(directory, raw + b"\x78\x01"), directory)
    body = keys_pb2.KeyRecordBody.FromString(raw)
    reordered = (
        keys_pb2.KeyRecordBody(issuer_key_id=body.issuer_key_id).SerializeToString()
        + raw[: -len(keys_pb2.KeyRecordBody(issuer_key_id=body.issuer_key_id).SerializeToString())]
    )
    assert keys_pb2.KeyRecordBody.FromString(reordered) == body
    with pytest.raises(FormatError, match="canonical"):
        _verify(_resign(directory, reordered), directory)


def test_unknown_record_field_is_refused() -> None:
    directory = _directory()
    wire = _device(directory).SerializeToString() + b"\x78\x01"
    with pytest.raises(FormatError):
        kr.parse_key_record(wire)


@pytest.mark.parametrize("data", [b"\xff", b"\x0a\x05ab", b"\x08"])
def test_garbage_records_are_format_errors(data: bytes) -> None:
    with pytest.raises(FormatError):
        kr.parse_key_record(data)


def test_oversized_record_is_refused_before_parsing() -> None:
    with pytest.raises(LimitError):
        kr.parse_key_record(b"\x00" * (kr.MAX_RECORD_BYTES + 1))


# --- Body rules ---


def _body_error(directory: Directory, **changes: object) -> type[Exception]:
    body = keys_pb2.KeyRecordBody.FromString(_device(directory).body)
    for name, value in changes.items():
        setattr(body, name, value)
    with pytest.raises(CryptoError) as info:
        _verify(_resign(directory, body), directory, purpose=body.purpose)
    return type(info.value)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"subject": ""}, FormatError),
        ({"subject": "x" * 129}, FormatError),
        ({"subject": "account\n1"}, FormatError),
        ({"encryption_key": b""}, FormatError),
        ({"encryption_key": bytes(32)}, FormatError),  # small order
        ({"signing_key": bytes(32)}, FormatError),  # not a valid point
        ({"signing_key": b"\x01" * 31}, FormatError),
        ({"issuer_key_id": b""}, FormatError),
        ({"purpose": kr.LOG}, FormatError),  # a log key carries no encryption key
        ({"purpose": 0}, FormatError),
        ({"purpose": 42}, FormatError),
        ({"not_before": -1}, FormatError),
    ],
)
def test_body_rules(changes: dict[str, object], error: type[Exception]) -> None:
    assert _body_error(_directory(), **changes) is error


def test_subject_may_use_any_script() -> None:
    directory = _directory()
    body = keys_pb2.KeyRecordBody.FromString(_device(directory).body)
    body.subject = "حساب-\u0661"
    assert _verify(_resign(directory, body), directory).subject == "حساب-\u0661"


def test_log_record_has_no_encryption_key() -> None:
    directory = _directory()
    record = _device(directory, purpose=kr.LOG)
    assert _verify(record, directory, purpose=kr.LOG).encryption_key == b""


def test_directory_records_are_issued_only_self_signed() -> None:
    directory = _directory()
    with pytest.raises(FormatError):
        _device(directory, purpose=kr.DIRECTORY)


def test_errors_belong_to_one_tree_and_explain_themselves() -> None:
    directory = _directory()
    with pytest.raises(SealpostError) as info:
        _verify(_device(directory), directory, purpose=kr.MAILBOX)
    assert isinstance(info.value, CryptoError)
    assert "purpose" in info.value.explain()
    assert hmac.compare_digest(directory.verified.id, kr.key_record_id(directory.record.body))
