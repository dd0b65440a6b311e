"""Keys derived from a passphrase, which costs a file may ask for, and what the keys seal.

The relative's profile, the terminal's profile and the keys exported beside them keep
their secrets under a key that Argon2id (libsodium's crypto_pwhash) derives from a
passphrase. The cost is stored in the file; a file whose cost lies outside
[INTERACTIVE, SENSITIVE] is refused when read: this code writes none below, and a
larger one would let a planted file exhaust memory.

A ``PassphraseKey`` seals with one of two constructions, each fixed by the version-1
file format that names it (clients/sealedfile.py): XChaCha20-Poly1305 with
associated data (``seal``/``open``; the JSON documents) and XSalsa20-Poly1305
crypto_secretbox (``seal_secretbox``/``open_secretbox``; the relative's binary profile).
Either way a fresh random nonce per sealing, and a failure to open is one opaque
DecryptionError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from sealpost.crypto import _sodium
from sealpost.crypto._sodium import Random
from sealpost.crypto.errors import FormatError, LimitError


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost: passes over memory and bytes of memory."""

    opslimit: int
    memlimit: int


#: The default: libsodium's MODERATE (about half a second, 256 MiB).
KDF_MODERATE: Final = KdfParams(
    _sodium.ARGON2ID_OPSLIMIT_MODERATE, _sodium.ARGON2ID_MEMLIMIT_MODERATE
)
#: libsodium's INTERACTIVE (64 MiB): weaker against a stolen file; for tests and small devices.
KDF_INTERACTIVE: Final = KdfParams(
    _sodium.ARGON2ID_OPSLIMIT_INTERACTIVE, _sodium.ARGON2ID_MEMLIMIT_INTERACTIVE
)
#: libsodium's SENSITIVE: the largest cost a file may ask for.
KDF_SENSITIVE: Final = KdfParams(
    _sodium.ARGON2ID_OPSLIMIT_SENSITIVE, _sodium.ARGON2ID_MEMLIMIT_SENSITIVE
)
#: Bytes of the random salt stored with the cost in every sealed file.
SALT_BYTES: Final = _sodium.ARGON2ID_SALT_BYTES
#: Bytes of the nonce ``seal`` draws (XChaCha20-Poly1305).
NONCE_BYTES: Final = _sodium.AEAD_NONCE_BYTES
#: Bytes of the nonce ``seal_secretbox`` draws, and of the tag in front of its box.
SECRETBOX_NONCE_BYTES: Final = _sodium.SECRETBOX_NONCE_BYTES
SECRETBOX_TAG_BYTES: Final = _sodium.SECRETBOX_MAC_BYTES
#: The key size of both constructions (32 bytes for secretbox and XChaCha20-Poly1305 alike).
_KEY_BYTES: Final = _sodium.SECRETBOX_KEY_BYTES


def kdf_accepted(kdf: KdfParams) -> bool:
    """True when both costs lie within [INTERACTIVE, SENSITIVE]."""
    return (
        KDF_INTERACTIVE.opslimit <= kdf.opslimit <= KDF_SENSITIVE.opslimit
        and KDF_INTERACTIVE.memlimit <= kdf.memlimit <= KDF_SENSITIVE.memlimit
    )


def check_kdf(kdf: KdfParams) -> None:
    """Raise LimitError unless ``kdf`` lies within [INTERACTIVE, SENSITIVE]."""
    if not kdf_accepted(kdf):
        raise LimitError(
            f"Argon2id cost opslimit={kdf.opslimit} memlimit={kdf.memlimit} is outside the "
            "accepted range (libsodium INTERACTIVE to SENSITIVE)"
        )


@dataclass(frozen=True, eq=False, repr=False)
class PassphraseKey:
    """A key Argon2id derived from a passphrase, with the cost and salt that derive it again.

    Keep it to re-seal a file under the same passphrase without asking for it again;
    repr shows the cost only.
    """

    kdf: KdfParams
    salt: bytes
    _key: bytes = field(repr=False)

    @classmethod
    def derive(cls, secret: bytes, salt: bytes, kdf: KdfParams) -> PassphraseKey:
        """The key of ``secret`` (the normalised passphrase) with ``salt`` at cost ``kdf``.

        LimitError for a cost outside [INTERACTIVE, SENSITIVE], before any hashing.
        """
        check_kdf(kdf)
        if len(salt) != SALT_BYTES:
            raise FormatError(f"an Argon2id salt is {SALT_BYTES} bytes")
        key = _sodium.argon2id_kdf(
            secret, salt, opslimit=kdf.opslimit, memlimit=kdf.memlimit, size=_KEY_BYTES
        )
        return cls(kdf, salt, key)

    @classmethod
    def new(
        cls, secret: bytes, kdf: KdfParams, rng: Random = _sodium.random_bytes
    ) -> PassphraseKey:
        """The key of ``secret`` with a fresh salt (drawn from ``rng``), for a new file."""
        return cls.derive(secret, rng(SALT_BYTES), kdf)

    def seal(
        self, plaintext: bytes, associated: bytes, rng: Random = _sodium.random_bytes
    ) -> tuple[bytes, bytes]:
        """(nonce, ciphertext and tag): XChaCha20-Poly1305 under a fresh nonce from ``rng``."""
        nonce = rng(NONCE_BYTES)
        return nonce, _sodium.aead_encrypt(self._key, nonce, plaintext, associated)

    def open(self, nonce: bytes, sealed: bytes, associated: bytes) -> bytes:
        """The plaintext of ``seal``'s output; DecryptionError on any failure."""
        return _sodium.aead_decrypt(self._key, nonce, sealed, associated)

    def seal_secretbox(
        self, plaintext: bytes, rng: Random = _sodium.random_bytes
    ) -> tuple[bytes, bytes]:
        """(nonce, box): XSalsa20-Poly1305 crypto_secretbox under a fresh nonce, tag first."""
        nonce = rng(SECRETBOX_NONCE_BYTES)
        return nonce, _sodium.secretbox_encrypt(self._key, nonce, plaintext)

    def open_secretbox(self, nonce: bytes, box: bytes) -> bytes:
        """The plaintext of ``seal_secretbox``'s output; DecryptionError on any failure."""
        return _sodium.secretbox_decrypt(self._key, nonce, box)

    def __repr__(self) -> str:
        """The cost only: the key never reaches a log or a traceback."""
        return f"PassphraseKey(opslimit={self.kdf.opslimit}, memlimit={self.kdf.memlimit})"

    __str__ = __repr__
