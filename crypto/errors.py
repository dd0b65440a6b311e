"""Errors raised by Sealpost's cryptographic recipes.

    SealpostError
    └── CryptoError
        ├── DecryptionError        a ciphertext or sealed key does not open (opaque on purpose)
        ├── SignatureError         a signature does not verify
        ├── FormatError            bytes that do not parse as the expected artefact
        │   └── UnsupportedVersionError
        │       ├── VersionTooOldError
        │       └── VersionTooNewError
        ├── LimitError             a size, count or clock limit is exceeded
        ├── KeyRecordError         a key record is not trustworthy for this use
        ├── EnvelopeError          an envelope is well formed but not acceptable
        └── ProofError             a Merkle proof or tree head does not check out
            ├── ForkError          two signed heads that cannot both be of one append-only log
            └── RollbackError      the log no longer has a head a witness already saw

Every function that verifies raises one of these; none returns a bool.
"""

from __future__ import annotations

from sealpost.errors import SealpostError


class CryptoError(SealpostError):
    """Base of the crypto package's errors."""


class DecryptionError(CryptoError):
    """A ciphertext or sealed key does not open. Deliberately says nothing more."""


class SignatureError(CryptoError):
    """A signature does not verify."""


class FormatError(CryptoError):
    """Bytes that do not parse as the expected artefact."""


class UnsupportedVersionError(FormatError):
    """A wire artefact carries a version this code does not accept."""


class VersionTooOldError(UnsupportedVersionError):
    """The version is older than the oldest one still accepted."""


class VersionTooNewError(UnsupportedVersionError):
    """The version is newer than this code knows."""


class LimitError(CryptoError):
    """A size, count or clock limit is exceeded."""


class KeyRecordError(CryptoError):
    """A key record is expired, revoked, of the wrong purpose or not signed by the directory."""


class EnvelopeError(CryptoError):
    """An envelope is well formed but not acceptable (wrong sender, recipient, commitment...)."""


class ProofError(CryptoError):
    """A Merkle inclusion or consistency proof, or a tree head, does not check out."""


class ForkError(ProofError):
    """Two signed tree heads that cannot both describe one append-only log (a split view)."""


class RollbackError(ProofError):
    """The log is shorter than, or can no longer prove, a head a witness already saw."""
