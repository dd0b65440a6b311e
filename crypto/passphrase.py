"""Keys derived from a passphrase: Argon2id costs, and which costs a file may ask for.

The relative's profile and the terminal's profile both keep their secrets under a key
that Argon2id (libsodium's crypto_pwhash) derives from a passphrase. The cost is stored
in the file; a file whose cost lies outside [INTERACTIVE, SENSITIVE] is refused when
read: this code writes none below, and a larger one would let a planted file exhaust
memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sealpost.crypto import _sodium


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


def kdf_accepted(kdf: KdfParams) -> bool:
    """True when both costs lie within [INTERACTIVE, SENSITIVE]."""
    return (
        KDF_INTERACTIVE.opslimit <= kdf.opslimit <= KDF_SENSITIVE.opslimit
        and KDF_INTERACTIVE.memlimit <= kdf.memlimit <= KDF_SENSITIVE.memlimit
    )


def derive_key(
    secret: bytes, salt: bytes, kdf: KdfParams, size: int = _sodium.SECRETBOX_KEY_BYTES
) -> bytes:
    """``size`` key bytes from ``secret`` (the normalised passphrase) and ``salt``."""
    return _sodium.argon2id_kdf(
        secret, salt, opslimit=kdf.opslimit, memlimit=kdf.memlimit, size=size
    )
