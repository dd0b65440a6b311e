"""Signatures the gateway's authentication checks: registration and login.

docs/protocol.md, "Registration" (proof of possession of a new signing key, bound to what
is being registered) and "Login" (a device key signs a one-time challenge).
"""

from __future__ import annotations

from typing import Final

from sealpost.crypto import _sodium, domains
from sealpost.crypto._framing import framed_sha256
from sealpost.crypto.errors import FormatError, KeyRecordError
from sealpost.crypto.keyrecords import (
    INSTITUTION,
    KEY_ID_BYTES,
    MAILBOX,
    RELATIVE_DEVICE,
    KeyPurpose,
    VerifiedKey,
)
from sealpost.crypto.keys import PrivateKeys

#: Purposes a client registers itself (the directory and log keys are configured, not registered).
REGISTRABLE_PURPOSES: Final = frozenset({RELATIVE_DEVICE, MAILBOX, INSTITUTION})
#: Bytes of a login challenge.
CHALLENGE_BYTES: Final = 32


def registration_digest(
    *, purpose: KeyPurpose, label: str, encryption_key: bytes, signing_key: bytes
) -> bytes:
    """What a registration proof signs: purpose, label (UTF-8) and both public keys."""
    return framed_sha256(
        domains.REGISTRATION, [purpose, label.encode("utf-8"), encryption_key, signing_key]
    )


def _check_registration_keys(
    purpose: KeyPurpose, encryption_key: bytes, signing_key: bytes
) -> None:
    if purpose not in REGISTRABLE_PURPOSES:
        raise FormatError("this key purpose is not registered by proof of possession")
    if not _sodium.ed25519_public_is_valid(signing_key):
        raise FormatError("signing key is not a valid Ed25519 public key")
    if _sodium.x25519_is_low_order(encryption_key):
        raise FormatError("encryption key is not a usable X25519 public key")


def sign_registration(keys: PrivateKeys, *, purpose: KeyPurpose, label: str) -> bytes:
    """Proof of possession for registering ``keys`` as a device, mailbox or institution key.

    ``label``: the display name (device), detainee id (mailbox) or institution id.
    """
    _check_registration_keys(purpose, keys.encryption_key, keys.signing_key)
    digest = registration_digest(
        purpose=purpose,
        label=label,
        encryption_key=keys.encryption_key,
        signing_key=keys.signing_key,
    )
    return keys.sign(digest)


def verify_registration(
    proof: bytes,
    *,
    purpose: KeyPurpose,
    label: str,
    encryption_key: bytes,
    signing_key: bytes,
) -> None:
    """Raise unless ``proof`` shows possession of ``signing_key`` for exactly this request."""
    _check_registration_keys(purpose, encryption_key, signing_key)
    digest = registration_digest(
        purpose=purpose, label=label, encryption_key=encryption_key, signing_key=signing_key
    )
    _sodium.ed25519_verify(signing_key, digest, proof)


def login_digest(*, key_id: bytes, challenge: bytes) -> bytes:
    """What a login signature signs: the device's key record id and the challenge."""
    if len(key_id) != KEY_ID_BYTES:
        raise FormatError("key id is not 32 bytes")
    if len(challenge) != CHALLENGE_BYTES:
        raise FormatError("login challenge is not 32 bytes")
    return framed_sha256(domains.LOGIN, [key_id, challenge])


def sign_login(keys: PrivateKeys, *, key_id: bytes, challenge: bytes) -> bytes:
    """The device's answer to a login challenge."""
    return keys.sign(login_digest(key_id=key_id, challenge=challenge))


def verify_login(signature: bytes, *, record: VerifiedKey, challenge: bytes) -> None:
    """Raise unless ``signature`` is the device key of ``record`` signing ``challenge``.

    The gateway checks separately that the challenge is its own, unused and unexpired.
    """
    if record.purpose != RELATIVE_DEVICE:
        raise KeyRecordError("only device keys log in")
    digest = login_digest(key_id=record.id, challenge=challenge)
    _sodium.ed25519_verify(record.signing_key, digest, signature)
