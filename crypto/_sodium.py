"""The one place Sealpost calls libsodium (through PyNaCl).

Everything else in Sealpost uses the recipes built on these functions
(envelope, key records, log, authentication, passphrase keys); ruff refuses an import of
this module, or of PyNaCl, outside crypto/ (banned-api in pyproject.toml). Inputs and
outputs are plain bytes; every authentication failure surfaces as
``crypto.errors.DecryptionError`` or ``crypto.errors.SignatureError`` and nothing more
specific, so that a failure tells an attacker nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import nacl.bindings as _b
import nacl.exceptions
import nacl.utils

from sealpost.crypto.errors import DecryptionError, SignatureError

#: A source of random bytes; tests inject a deterministic one.
Random = Callable[[int], bytes]

SHA256_BYTES: Final = 32
ED25519_SEED_BYTES: Final = 32
ED25519_PUBLIC_BYTES: Final = 32
ED25519_SIGNATURE_BYTES: Final = 64
X25519_SECRET_BYTES: Final = 32
X25519_PUBLIC_BYTES: Final = 32
SEALED_BOX_OVERHEAD: Final = _b.crypto_box_SEALBYTES  # 48: ephemeral key + tag
AEAD_KEY_BYTES: Final = _b.crypto_aead_xchacha20poly1305_ietf_KEYBYTES  # 32
AEAD_NONCE_BYTES: Final = _b.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES  # 24
AEAD_TAG_BYTES: Final = _b.crypto_aead_xchacha20poly1305_ietf_ABYTES  # 16


def random_bytes(size: int) -> bytes:
    """Cryptographically secure random bytes (randombytes_buf)."""
    return nacl.utils.random(size)


def sha256(data: bytes) -> bytes:
    """SHA-256 (crypto_hash_sha256)."""
    return _b.crypto_hash_sha256(data)


def blake2b(data: bytes, *, size: int = 32, key: bytes = b"", person: bytes = b"") -> bytes:
    """BLAKE2b (crypto_generichash), optionally keyed and personalised (16-byte ``person``)."""
    # An all-zero personalisation is BLAKE2b's default, so unpersonalised calls are plain BLAKE2b.
    return _b.crypto_generichash_blake2b_salt_personal(
        data, digest_size=size, key=key, person=person.ljust(16, b"\0")
    )


def ed25519_public_from_seed(seed: bytes) -> bytes:
    """The Ed25519 public key of a 32-byte seed."""
    public, _secret = _b.crypto_sign_seed_keypair(seed)
    return public


def ed25519_sign(seed: bytes, message: bytes) -> bytes:
    """Detached Ed25519 signature (64 bytes) of ``message`` under the key of ``seed``."""
    _public, secret = _b.crypto_sign_seed_keypair(seed)
    signed = _b.crypto_sign(message, secret)
    return signed[:ED25519_SIGNATURE_BYTES]


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> None:
    """Raise SignatureError unless ``signature`` is valid for ``message`` under ``public``."""
    if len(public) != ED25519_PUBLIC_BYTES or len(signature) != ED25519_SIGNATURE_BYTES:
        raise SignatureError("malformed key or signature")
    try:
        _b.crypto_sign_open(signature + message, public)
    except nacl.exceptions.BadSignatureError as exc:
        raise SignatureError("signature does not verify") from exc


def x25519_public_from_secret(secret: bytes) -> bytes:
    """The X25519 public key of a 32-byte secret key."""
    return _b.crypto_scalarmult_base(secret)


def seal(recipient_public: bytes, plaintext: bytes) -> bytes:
    """Anonymous sealed box (crypto_box_seal) of ``plaintext`` to an X25519 public key."""
    if len(recipient_public) != X25519_PUBLIC_BYTES:
        raise DecryptionError("malformed recipient key")
    return _b.crypto_box_seal(plaintext, recipient_public)


def seal_open(recipient_secret: bytes, sealed: bytes) -> bytes:
    """Open a sealed box; DecryptionError on any failure."""
    public = x25519_public_from_secret(recipient_secret)
    try:
        return _b.crypto_box_seal_open(sealed, public, recipient_secret)
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise DecryptionError("cannot open") from exc


def aead_encrypt(key: bytes, nonce: bytes, plaintext: bytes, associated: bytes) -> bytes:
    """XChaCha20-Poly1305 (IETF) encryption; the 16-byte tag is appended."""
    return _b.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, associated, nonce, key)


def aead_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, associated: bytes) -> bytes:
    """XChaCha20-Poly1305 (IETF) decryption; DecryptionError on any failure."""
    try:
        return _b.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, associated, nonce, key)
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise DecryptionError("cannot open") from exc


def seal_with_ephemeral(
    recipient_public: bytes, plaintext: bytes, ephemeral_secret: bytes
) -> bytes:
    """crypto_box_seal with a caller-drawn ephemeral secret, so that randomness can be injected.

    Byte for byte libsodium's construction, opened by ``seal_open``:
    epk || crypto_box_easy(plaintext, BLAKE2b-192(epk || pk), pk, esk).
    """
    if len(recipient_public) != X25519_PUBLIC_BYTES or len(ephemeral_secret) != X25519_SECRET_BYTES:
        raise DecryptionError("malformed key")
    ephemeral_public = _b.crypto_scalarmult_base(ephemeral_secret)
    nonce = blake2b(ephemeral_public + recipient_public, size=_b.crypto_box_NONCEBYTES)
    try:
        boxed = _b.crypto_box_easy(plaintext, nonce, recipient_public, ephemeral_secret)
    except nacl.exceptions.CryptoError as exc:  # a low-order key gives an all-zero secret
        raise DecryptionError("cannot seal to this key") from exc
    return ephemeral_public + boxed


def x25519_is_low_order(public: bytes) -> bool:
    """True when an X25519 public key has small order (every shared secret with it is known)."""
    if len(public) != X25519_PUBLIC_BYTES:
        return True
    try:
        # Clamping makes the scalar a multiple of 8, so only small-order points map to zero,
        # which libsodium refuses.
        _b.crypto_scalarmult(b"\x01" * X25519_SECRET_BYTES, public)
    except nacl.exceptions.CryptoError:
        return True
    return False


def ed25519_public_is_valid(public: bytes) -> bool:
    """True for a canonical Ed25519 point in the main subgroup that is not of small order."""
    return len(public) == ED25519_PUBLIC_BYTES and bool(
        _b.crypto_core_ed25519_is_valid_point(public)
    )


def ed25519_expand_seed(seed: bytes) -> bytes:
    """The 64-byte libsodium Ed25519 secret key (seed || public), for signing repeatedly."""
    _public, secret = _b.crypto_sign_seed_keypair(seed)
    return secret


def ed25519_sign_expanded(secret_key: bytes, message: bytes) -> bytes:
    """Detached Ed25519 signature with an expanded secret key; same bytes as ``ed25519_sign``."""
    return _b.crypto_sign(message, secret_key)[:ED25519_SIGNATURE_BYTES]


def seal_open_with_public(recipient_secret: bytes, recipient_public: bytes, sealed: bytes) -> bytes:
    """``seal_open`` for a caller that already holds the public key; DecryptionError on failure."""
    try:
        return _b.crypto_box_seal_open(sealed, recipient_public, recipient_secret)
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise DecryptionError("cannot open") from exc


# --- Passphrase-protected storage (the relative's profile on disk) ---

ARGON2ID_SALT_BYTES: Final = _b.crypto_pwhash_SALTBYTES  # 16
ARGON2ID_OPSLIMIT_INTERACTIVE: Final = _b.crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE  # 2
ARGON2ID_MEMLIMIT_INTERACTIVE: Final = _b.crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE  # 64 MiB
ARGON2ID_OPSLIMIT_MODERATE: Final = _b.crypto_pwhash_argon2id_OPSLIMIT_MODERATE  # 3
ARGON2ID_MEMLIMIT_MODERATE: Final = _b.crypto_pwhash_argon2id_MEMLIMIT_MODERATE  # 256 MiB
ARGON2ID_OPSLIMIT_SENSITIVE: Final = _b.crypto_pwhash_argon2id_OPSLIMIT_SENSITIVE  # 4
ARGON2ID_MEMLIMIT_SENSITIVE: Final = _b.crypto_pwhash_argon2id_MEMLIMIT_SENSITIVE  # 1 GiB
SECRETBOX_KEY_BYTES: Final = _b.crypto_secretbox_KEYBYTES  # 32
SECRETBOX_NONCE_BYTES: Final = _b.crypto_secretbox_NONCEBYTES  # 24
SECRETBOX_MAC_BYTES: Final = _b.crypto_secretbox_MACBYTES  # 16


def argon2id_kdf(
    password: bytes, salt: bytes, *, opslimit: int, memlimit: int, size: int = SECRETBOX_KEY_BYTES
) -> bytes:
    """A key from a passphrase with Argon2id v1.3 (crypto_pwhash, as nacl.pwhash.argon2id.kdf)."""
    return _b.crypto_pwhash_alg(
        size, password, salt, opslimit, memlimit, _b.crypto_pwhash_ALG_ARGON2ID13
    )


def secretbox_encrypt(key: bytes, nonce: bytes, plaintext: bytes) -> bytes:
    """XSalsa20-Poly1305 (crypto_secretbox_easy); the 16-byte tag comes first."""
    return _b.crypto_secretbox_easy(plaintext, nonce, key)


def secretbox_decrypt(key: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    """Open crypto_secretbox_easy output; DecryptionError on any failure."""
    try:
        return _b.crypto_secretbox_open_easy(ciphertext, nonce, key)
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise DecryptionError("cannot open") from exc
