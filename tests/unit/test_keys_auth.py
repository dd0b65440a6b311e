"""Registration proofs, login signatures and mailbox secret wraps."""

from __future__ import annotations

import hashlib

import pytest

from sealpost.crypto import _sodium
from sealpost.crypto import keyrecords as kr
from sealpost.crypto._framing import lp, u64
from sealpost.crypto.auth import (
    login_digest,
    registration_digest,
    sign_login,
    sign_registration,
    verify_login,
    verify_registration,
)
from sealpost.crypto.errors import (
    DecryptionError,
    FormatError,
    KeyRecordError,
    SignatureError,
    VersionTooNewError,
    VersionTooOldError,
)
from sealpost.crypto.keys import PrivateKeys
from sealpost.crypto.mailbox import unwrap_mailbox_secret, wrap_mailbox_secret

NOW_MS = 1_767_225_600_000
NOW_S = NOW_MS // 1000


def _keys(label: str) -> PrivateKeys:
    seed = hashlib.sha256(label.encode()).digest()
    return PrivateKeys(x25519_secret=seed, ed25519_seed=hashlib.sha256(seed).digest())


class _Counter:
    """A deterministic rng for wraps."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, size: int) -> bytes:
        self.calls += 1
        return hashlib.sha256(b"rng" + bytes([self.calls])).digest()[:size]


def _verified(keys: PrivateKeys, purpose: kr.KeyPurpose, subject: str) -> kr.VerifiedKey:
    directory_keys = _keys("directory")
    directory_record = kr.issue_directory_record(
        directory_keys, subject="directory", not_before=0, not_after=NOW_S + 100
    )
    directory = kr.verify_directory_record(
        directory_record, kr.DirectoryPin(directory_keys.signing_key), now_ms=NOW_MS
    )
    record = kr.issue_key_record(
        purpose=purpose,
        subject=subject,
        encryption_key=keys.encryption_key,
        signing_key=keys.signing_key,
        not_before=0,
        not_after=NOW_S + 100,
        directory_keys=directory_keys,
        directory_key_id=directory.id,
    )
    return kr.verify_key_record(record, directory, now_ms=NOW_MS, purpose=purpose)


# --- Registration ---


def test_registration_digest_is_documented() -> None:
    keys = _keys("device")
    expected = hashlib.sha256(
        lp(b"sealpost/v1/registration")
        + u64(kr.RELATIVE_DEVICE)
        + lp(b"Oma Fatima")
        + lp(keys.encryption_key)
        + lp(keys.signing_key)
    ).digest()
    digest = registration_digest(
        purpose=kr.RELATIVE_DEVICE,
        label="Oma Fatima",
        encryption_key=keys.encryption_key,
        signing_key=keys.signing_key,
    )
    assert digest == expected


def test_registration_round_trip() -> None:
    keys = _keys("device")
    proof = sign_registration(keys, purpose=kr.RELATIVE_DEVICE, label="جدة فاطمة")
    verify_registration(
        proof,
        purpose=kr.RELATIVE_DEVICE,
        label="جدة فاطمة",
        encryption_key=keys.encryption_key,
        signing_key=keys.signing_key,
    )


@pytest.mark.parametrize(
    ("purpose", "label", "swap_encryption"),
    [
        (kr.RELATIVE_DEVICE, "Someone else", False),  # display name changed
        (kr.MAILBOX, "Oma", False),  # purpose changed
        (kr.RELATIVE_DEVICE, "Oma", True),  # another encryption key substituted
    ],
)
def test_registration_proof_binds_every_field(
    purpose: kr.KeyPurpose, label: str, swap_encryption: bool
) -> None:
    keys = _keys("device")
    proof = sign_registration(keys, purpose=kr.RELATIVE_DEVICE, label="Oma")
    encryption_key = _keys("other").encryption_key if swap_encryption else keys.encryption_key
    with pytest.raises(SignatureError):
        verify_registration(
            proof,
            purpose=purpose,
            label=label,
            encryption_key=encryption_key,
            signing_key=keys.signing_key,
        )


def test_registration_proves_possession_of_the_signing_key() -> None:
    keys, thief = _keys("device"), _keys("thief")
    proof = sign_registration(thief, purpose=kr.RELATIVE_DEVICE, label="Oma")
    with pytest.raises(SignatureError):
        verify_registration(
            proof,
            purpose=kr.RELATIVE_DEVICE,
            label="Oma",
            encryption_key=thief.encryption_key,
            signing_key=keys.signing_key,
        )


def test_registration_refuses_unusable_keys_and_purposes() -> None:
    keys = _keys("device")
    proof = sign_registration(keys, purpose=kr.RELATIVE_DEVICE, label="Oma")
    with pytest.raises(FormatError):
        verify_registration(
            proof,
            purpose=kr.RELATIVE_DEVICE,
            label="Oma",
            encryption_key=bytes(32),
            signing_key=keys.signing_key,
        )
    with pytest.raises(FormatError):
        verify_registration(
            proof,
            purpose=kr.RELATIVE_DEVICE,
            label="Oma",
            encryption_key=keys.encryption_key,
            signing_key=bytes(32),
        )
    with pytest.raises(FormatError):
        sign_registration(keys, purpose=kr.DIRECTORY, label="x")


# --- Login ---


def test_login_round_trip_and_digest() -> None:
    keys = _keys("device")
    record = _verified(keys, kr.RELATIVE_DEVICE, "account-1")
    challenge = b"c" * 32
    signature = sign_login(keys, key_id=record.id, challenge=challenge)
    verify_login(signature, record=record, challenge=challenge)
    expected = hashlib.sha256(lp(b"sealpost/v1/login") + lp(record.id) + lp(challenge)).digest()
    assert login_digest(key_id=record.id, challenge=challenge) == expected


def test_login_refuses_other_challenge_key_or_record() -> None:
    keys = _keys("device")
    record = _verified(keys, kr.RELATIVE_DEVICE, "account-1")
    signature = sign_login(keys, key_id=record.id, challenge=b"c" * 32)
    with pytest.raises(SignatureError):
        verify_login(signature, record=record, challenge=b"d" * 32)
    other = _verified(_keys("other"), kr.RELATIVE_DEVICE, "account-2")
    with pytest.raises(SignatureError):
        verify_login(signature, record=other, challenge=b"c" * 32)
    with pytest.raises(FormatError):
        verify_login(signature, record=record, challenge=b"c" * 31)
    mailbox = _verified(keys, kr.MAILBOX, "detainee-1")
    with pytest.raises(KeyRecordError):
        verify_login(signature, record=mailbox, challenge=b"c" * 32)


def test_signatures_do_not_cross_domains() -> None:
    keys = _keys("device")
    record = _verified(keys, kr.RELATIVE_DEVICE, "account-1")
    login = sign_login(keys, key_id=record.id, challenge=b"c" * 32)
    digest = registration_digest(
        purpose=kr.RELATIVE_DEVICE,
        label="x",
        encryption_key=keys.encryption_key,
        signing_key=keys.signing_key,
    )
    with pytest.raises(SignatureError):
        _sodium.ed25519_verify(keys.signing_key, digest, login)


# --- Mailbox keys ---


def test_mailbox_wrap_round_trip() -> None:
    mailbox_keys, institution_keys = _keys("mailbox"), _keys("institution")
    institution = _verified(institution_keys, kr.INSTITUTION, "institution-1")
    mailbox = _verified(mailbox_keys, kr.MAILBOX, "detainee-1")
    wrapped = wrap_mailbox_secret(
        mailbox_keys, detainee_id="detainee-1", institution=institution, rng=_Counter()
    )
    assert wrapped[0] == 1
    assert mailbox_keys.x25519_secret not in wrapped
    opened = unwrap_mailbox_secret(wrapped, institution_keys=institution_keys, mailbox=mailbox)
    assert opened.x25519_secret == mailbox_keys.x25519_secret
    assert opened.ed25519_seed == mailbox_keys.ed25519_seed


def test_mailbox_wrap_is_deterministic_under_an_injected_rng() -> None:
    mailbox_keys = _keys("mailbox")
    institution = _verified(_keys("institution"), kr.INSTITUTION, "institution-1")
    first = wrap_mailbox_secret(
        mailbox_keys, detainee_id="d-1", institution=institution, rng=_Counter()
    )
    second = wrap_mailbox_secret(
        mailbox_keys, detainee_id="d-1", institution=institution, rng=_Counter()
    )
    assert first == second


def test_mailbox_wrap_refusals() -> None:
    mailbox_keys, institution_keys = _keys("mailbox"), _keys("institution")
    institution = _verified(institution_keys, kr.INSTITUTION, "institution-1")
    mailbox = _verified(mailbox_keys, kr.MAILBOX, "detainee-1")
    wrapped = wrap_mailbox_secret(mailbox_keys, detainee_id="detainee-1", institution=institution)
    with pytest.raises(DecryptionError):  # another institution's key
        unwrap_mailbox_secret(wrapped, institution_keys=_keys("elsewhere"), mailbox=mailbox)
    with pytest.raises(DecryptionError):
        unwrap_mailbox_secret(wrapped[:-1], institution_keys=institution_keys, mailbox=mailbox)
    with pytest.raises(VersionTooOldError):
        unwrap_mailbox_secret(
            b"\x00" + wrapped[1:], institution_keys=institution_keys, mailbox=mailbox
        )
    with pytest.raises(VersionTooNewError):
        unwrap_mailbox_secret(
            b"\x02" + wrapped[1:], institution_keys=institution_keys, mailbox=mailbox
        )
    with pytest.raises(FormatError):
        unwrap_mailbox_secret(b"", institution_keys=institution_keys, mailbox=mailbox)
    other_mailbox = _verified(_keys("other-mailbox"), kr.MAILBOX, "detainee-1")
    with pytest.raises(KeyRecordError, match="does not match"):
        unwrap_mailbox_secret(wrapped, institution_keys=institution_keys, mailbox=other_mailbox)
    renamed = _verified(mailbox_keys, kr.MAILBOX, "detainee-2")
    with pytest.raises(KeyRecordError, match="another detainee"):
        unwrap_mailbox_secret(wrapped, institution_keys=institution_keys, mailbox=renamed)
    with pytest.raises(KeyRecordError):
        unwrap_mailbox_secret(wrapped, institution_keys=institution_keys, mailbox=institution)
    device = _verified(_keys("device"), kr.RELATIVE_DEVICE, "account-1")
    with pytest.raises(KeyRecordError):
        wrap_mailbox_secret(mailbox_keys, detainee_id="detainee-1", institution=device)


def test_mailbox_wrap_refuses_a_foreign_plaintext() -> None:
    institution_keys = _keys("institution")
    mailbox = _verified(_keys("mailbox"), kr.MAILBOX, "detainee-1")
    sealed = _sodium.seal(institution_keys.encryption_key, b"not a mailbox secret")
    with pytest.raises(FormatError):
        unwrap_mailbox_secret(b"\x01" + sealed, institution_keys=institution_keys, mailbox=mailbox)
