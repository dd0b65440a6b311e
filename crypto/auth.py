"""What the gateway's authentication checks: registration, login, session tokens, staff tokens.

docs/protocol.md, "Registration" (proof of possession of a new signing key, bound to what
is being registered) and "Login" (a device key signs a one-time challenge); the MAC of a
relative's session token (gateway/auth.py lays the token out); the Ed25519 signature of
a staff identity token (escrow/identity.py checks everything else about it).
"""

from __future__ import annotations

import hmac
from typing import Final

from sealpost.crypto import _sodium, domains
from sealpost.crypto._framing import framed_sha256
from sealpost.crypto._sodium import Random
from sealpost.crypto.errors import FormatError, KeyRecordError, SignatureError
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
#: Bytes of the gateway's session-token key.
SESSION_TOKEN_KEY_BYTES: Final = 32
#: Bytes of a session token's MAC: keyed BLAKE2b-256.
SESSION_TOKEN_MAC_BYTES: Final = 32
#: Personalisation of the session-token MAC (BLAKE2b person, 16 bytes): domain separation,
#: so that the token key's MAC of anything else is never a session token's.
SESSION_TOKEN_MAC_PERSON: Final = b"sealpost-token1"
#: An identity token's Ed25519 public key and signature (RFC 8037 section 2 and 3.1).
IDENTITY_KEY_BYTES: Final = _sodium.ED25519_PUBLIC_BYTES
IDENTITY_SIGNATURE_BYTES: Final = _sodium.ED25519_SIGNATURE_BYTES


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


def new_login_challenge(rng: Random = _sodium.random_bytes) -> bytes:
    """A fresh one-time login challenge (CHALLENGE_BYTES random bytes)."""
    return rng(CHALLENGE_BYTES)


# --- Device links ---

#: Random bytes of a device link code: 80 bits, sixteen base32 characters.
DEVICE_LINK_CODE_BYTES: Final = 10
_BASE32: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def new_device_link_code(rng: Random = _sodium.random_bytes) -> str:
    """A fresh one-time device link code: sixteen base32 characters in groups of four."""
    raw = int.from_bytes(rng(DEVICE_LINK_CODE_BYTES), "big")
    letters = "".join(_BASE32[(raw >> shift) & 31] for shift in range(75, -1, -5))
    return "-".join(letters[i : i + 4] for i in range(0, 16, 4))


def device_link_digest(code: str) -> bytes:
    """What the gateway keeps of a link code: its digest, never the code itself.

    Case, spaces and dashes do not matter (the code is typed by hand); anything but
    sixteen base32 characters is FormatError.
    """
    letters = "".join(code.split()).replace("-", "").upper()
    if len(letters) != 16 or any(c not in _BASE32 for c in letters):
        raise FormatError("a device link code is sixteen letters and digits")
    return framed_sha256(domains.DEVICE_LINK, [letters.encode("ascii")])


# --- Session tokens ---


def new_session_token_key(rng: Random = _sodium.random_bytes) -> bytes:
    """A fresh key for the gateway's session-token MACs (made once, at ``gateway init``)."""
    return rng(SESSION_TOKEN_KEY_BYTES)


def session_token_mac(token_key: bytes, payload: bytes) -> bytes:
    """The MAC of a session token's ``payload``: BLAKE2b-256 keyed with the token key."""
    return _sodium.blake2b(
        payload, size=SESSION_TOKEN_MAC_BYTES, key=token_key, person=SESSION_TOKEN_MAC_PERSON
    )


def verify_session_token_mac(token_key: bytes, payload: bytes, mac: bytes) -> None:
    """Raise SignatureError unless ``mac`` is the token key's MAC of ``payload``.

    The comparison takes the same time wherever the first differing byte is.
    """
    expected = session_token_mac(token_key, payload)
    if not hmac.compare_digest(mac, expected):
        raise SignatureError("session token does not verify")


# --- Staff identity tokens ---


def verify_identity_token_signature(
    public_key: bytes, signing_input: bytes, signature: bytes
) -> None:
    """Raise SignatureError unless ``signature`` is an EdDSA (Ed25519) JWS signature.

    ``signing_input`` is the token's ``header.payload`` in ASCII (RFC 7515 section 5.2);
    ``public_key`` the JWK's ``x`` (RFC 8037 section 2), chosen by the caller from the
    key server's published keys.
    """
    _sodium.ed25519_verify(public_key, signing_input, signature)
