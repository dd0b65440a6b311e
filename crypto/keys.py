"""Secret keys of a device, mailbox, institution or directory, kept out of every repr.

One X25519 secret (for sealed boxes) and one Ed25519 seed (for signatures), as in
docs/protocol.md, "Keys". Generated from an injected source of randomness.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sealpost.crypto import _sodium
from sealpost.crypto._sodium import Random
from sealpost.crypto.errors import FormatError


@dataclass(frozen=True, eq=False, repr=False)
class PrivateKeys:
    """An X25519 secret key and an Ed25519 seed; repr shows the public keys only."""

    x25519_secret: bytes
    ed25519_seed: bytes
    _encryption_key: bytes = field(init=False)
    _signing_key: bytes = field(init=False)
    _expanded_seed: bytes = field(init=False)

    def __post_init__(self) -> None:
        """Check sizes and derive the public keys once."""
        if len(self.x25519_secret) != _sodium.X25519_SECRET_BYTES:
            raise FormatError("an X25519 secret key is 32 bytes")
        if len(self.ed25519_seed) != _sodium.ED25519_SEED_BYTES:
            raise FormatError("an Ed25519 seed is 32 bytes")
        public = _sodium.x25519_public_from_secret(self.x25519_secret)
        object.__setattr__(self, "_encryption_key", public)
        expanded = _sodium.ed25519_expand_seed(self.ed25519_seed)
        object.__setattr__(self, "_expanded_seed", expanded)
        object.__setattr__(self, "_signing_key", expanded[_sodium.ED25519_SEED_BYTES :])

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
        return self._signing_key

    def sign(self, message: bytes) -> bytes:
        """A detached Ed25519 signature (64 bytes); callers pass a domain-separated digest."""
        return _sodium.ed25519_sign_expanded(self._expanded_seed, message)

    def open_sealed(self, sealed: bytes) -> bytes:
        """Open a sealed box addressed to this key's X25519 public key; DecryptionError if not."""
        return _sodium.seal_open_with_public(self.x25519_secret, self._encryption_key, sealed)

    def __repr__(self) -> str:
        """Public keys only: secrets never reach a log or a traceback."""
        return (
            f"PrivateKeys(encryption_key={self._encryption_key.hex()}, "
            f"signing_key={self._signing_key.hex()})"
        )

    __str__ = __repr__
