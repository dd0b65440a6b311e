"""Secret keys of a device, mailbox, institution or directory, kept out of every repr.

One X25519 secret (for sealed boxes) and one Ed25519 seed (for signatures), as in
docs/protocol.md, "Keys". Generated from an injected source of randomness.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sealpost.crypto import _sodium
from sealpost.crypto._sodium import Random
from sealpost.crypto.errors import FormatError


class Signer(Protocol):
    """Whatever makes Ed25519 signatures for a public key: keys in memory, or a key server.

    The directory and log keys may live in OpenBao's transit engine and never leave it
    (gateway/custody.py); everything that signs key records, revocations and tree heads
    takes a ``Signer`` so that it does not care where the key is.
    """

    @property
    def signing_key(self) -> bytes:
        """The Ed25519 public key (32 bytes) that verifies this signer's signatures."""
        ...

    def sign(self, message: bytes) -> bytes:
        """A detached Ed25519 signature (64 bytes) of ``message``, a domain-separated digest."""
        ...


def verify_signature(signing_key: bytes, message: bytes, signature: bytes) -> None:
    """Raise SignatureError unless ``signature`` is ``signing_key``'s Ed25519 signature."""
    _sodium.ed25519_verify(signing_key, message, signature)


@dataclass(frozen=True, eq=False, repr=False)
class SigningSeed:
    """An Ed25519 key alone, from its 32-byte seed (a log key in a test, a fixed vector)."""

    seed: bytes
    _expanded: bytes = field(init=False)

    def __post_init__(self) -> None:
        """Check the size and expand the seed once."""
        if len(self.seed) != _sodium.ED25519_SEED_BYTES:
            raise FormatError("an Ed25519 seed is 32 bytes")
        object.__setattr__(self, "_expanded", _sodium.ed25519_expand_seed(self.seed))

    @property
    def signing_key(self) -> bytes:
        """The Ed25519 public key (32 bytes)."""
        return self._expanded[_sodium.ED25519_SEED_BYTES :]

    def sign(self, message: bytes) -> bytes:
        """A detached Ed25519 signature (64 bytes)."""
        return _sodium.ed25519_sign_expanded(self._expanded, message)

    def __repr__(self) -> str:
        """The public key only."""
        return f"SigningSeed(signing_key={self.signing_key.hex()})"

    __str__ = __repr__


@dataclass(frozen=True, eq=False, repr=False)
class PrivateKeys:
    """An X25519 secret key and an Ed25519 seed; repr shows the public keys only."""

    x25519_secret: bytes
    ed25519_seed: bytes
    _encryption_key: bytes = field(init=False)
    _signer: SigningSeed = field(init=False)

    def __post_init__(self) -> None:
        """Check sizes and derive the public keys once."""
        if len(self.x25519_secret) != _sodium.X25519_SECRET_BYTES:
            raise FormatError("an X25519 secret key is 32 bytes")
        public = _sodium.x25519_public_from_secret(self.x25519_secret)
        object.__setattr__(self, "_encryption_key", public)
        object.__setattr__(self, "_signer", SigningSeed(self.ed25519_seed))

    @classmethod
    def generate(cls, rng: Random = _sodium.random_bytes) -> PrivateKeys:
        """Fresh keys: 32 bytes of ``rng`` for the X25519 secret, then 32 for the Ed25519 seed."""
        x25519_secret = rng(_sodium.X25519_SECRET_BYTES)
        ed25519_seed = rng(_sodium.ED25519_SEED_BYTES)
        return cls(x25519_secret=x25519_secret, ed25519_seed=ed25519_seed)

    @property
    def encryption_key(self) -> bytes:
        """The X25519 public key (32 bytes) that sealed boxes are addressed to."""
        return self._encryption_key

    @property
    def signing_key(self) -> bytes:
        """The Ed25519 public key (32 bytes) that verifies this key's signatures."""
        return self._signer.signing_key

    def sign(self, message: bytes) -> bytes:
        """A detached Ed25519 signature (64 bytes); callers pass a domain-separated digest."""
        return self._signer.sign(message)

    def open_sealed(self, sealed: bytes) -> bytes:
        """Open a sealed box addressed to this key's X25519 public key; DecryptionError if not."""
        return _sodium.seal_open_with_public(self.x25519_secret, self._encryption_key, sealed)

    def __repr__(self) -> str:
        """Public keys only: secrets never reach a log or a traceback."""
        return (
            f"PrivateKeys(encryption_key={self._encryption_key.hex()}, "
            f"signing_key={self.signing_key.hex()})"
        )

    __str__ = __repr__
