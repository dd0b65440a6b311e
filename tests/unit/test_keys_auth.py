"""Registration, login, session-token MACs, identity-token signatures, mailbox secret wraps."""

from __future__ import annotations

import base64
import hashlib

import pytest

from sealpost.crypto import _sodium
from sealpost.crypto import keyrecords as kr
from sealpost.crypto._framing import lp, u64
from sealpost.crypto.auth import (
    CHALLENGE_BYTES,
    IDENTITY_KEY_BYTES,
    IDENTITY_SIGNATURE_BYTES,
    SESSION_TOKEN_KEY_BYTES,
    login_digest,
    new_login_challenge,
    new_session_token_key,
    registration_digest,
    session_token_mac,
    sign_login,
    sign_registration,
    verify_identity_token_signature,
    verify_login,
    verify_registration,
    verify_session_token_mac,
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


# --- Login challenges and session tokens ---


def test_a_login_challenge_is_fresh_randomness_of_the_checked_size() -> None:
    assert len(new_login_challenge()) == CHALLENGE_BYTES
    assert new_login_challenge() != new_login_challenge()
    assert new_login_challenge(_Counter()) == hashlib.sha256(b"rng\x01").digest()
    # The gateway's answer to it must pass the digest's own size check.
    login_digest(key_id=bytes(32), challenge=new_login_challenge())


def test_a_session_token_key_is_fresh_randomness() -> None:
    assert len(new_session_token_key()) == SESSION_TOKEN_KEY_BYTES == 32
    assert new_session_token_key() != new_session_token_key()


def test_the_session_token_mac_is_keyed_personalised_blake2b() -> None:
    """A known answer computed with hashlib, apart from libsodium."""
    key, payload = bytes(range(32)), b"\x01payload"
    expected = hashlib.blake2b(payload, digest_size=32, key=key, person=b"sealpost-token1")
    assert session_token_mac(key, payload) == expected.digest()
    verify_session_token_mac(key, payload, expected.digest())


def test_a_session_token_mac_of_anything_else_is_refused() -> None:
    key, payload = bytes(range(32)), b"\x01payload"
    mac = session_token_mac(key, payload)
    refused = (
        (key, payload + b"x", mac),
        (key, payload, bytes([mac[0] ^ 1]) + mac[1:]),
        (key, payload, mac[:31]),
        (key, payload, b""),
        (bytes(32), payload, mac),
        (key, payload, hashlib.blake2b(payload, digest_size=32, key=key).digest()),
    )
    for other_key, other_payload, other_mac in refused:
        with pytest.raises(SignatureError, match="session token does not verify"):
            verify_session_token_mac(other_key, other_payload, other_mac)


# --- Identity token signatures ---

#: RFC 8037 appendix A.4: the Ed25519 JWS example (the key of A.1 and A.2).
_RFC8037_KEY = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
_RFC8037_INPUT = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
_RFC8037_SIGNATURE = (
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_the_rfc_8037_example_signature_verifies() -> None:
    public, signature = _b64url(_RFC8037_KEY), _b64url(_RFC8037_SIGNATURE)
    assert len(public) == IDENTITY_KEY_BYTES
    assert len(signature) == IDENTITY_SIGNATURE_BYTES
    verify_identity_token_signature(public, _RFC8037_INPUT.encode("ascii"), signature)


def test_an_identity_token_signature_that_does_not_verify_is_refused() -> None:
    public, signature = _b64url(_RFC8037_KEY), _b64url(_RFC8037_SIGNATURE)
    signing_input = _RFC8037_INPUT.encode("ascii")
    other = _keys("other staff key")
    refused = (
        (public, signing_input + b"x", signature),
        (public, signing_input, bytes([signature[0] ^ 1]) + signature[1:]),
        (other.signing_key, signing_input, signature),
        (public, signing_input, signature[:63]),
        (public[:31], signing_input, signature),
    )
    for key, text, sig in refused:
        with pytest.raises(SignatureError):
            verify_identity_token_signature(key, text, sig)
    verify_identity_token_signature(other.signing_key, b"a.b", other.sign(b"a.b"))
