"""Errors of the escrow review tool and its evidence bundles, each able to explain itself.

    SealpostError
    └── ReviewError
        ├── GrantExpiredError             the grant is too old to decrypt under: open again
        └── EvidenceError                 an evidence bundle cannot be accepted
            ├── EvidenceFormatError       not an evidence bundle, or a field is malformed
            │   └── EvidenceVersionError
            │       ├── EvidenceVersionTooOldError
            │       └── EvidenceVersionTooNewError
            └── EvidenceCheckError        a bundle that parses failed one named check

Gateway refusals stay ``sealpost.clients._grpc.ClientError``; key records, envelopes
and proofs that do not verify while opening a message raise ``CryptoError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sealpost.errors import SealpostError
from sealpost.i18n import _

if TYPE_CHECKING:
    from sealpost.clients.review.evidence import EvidenceReport


class ReviewError(SealpostError):
    """Base of the review tool's own errors."""


class GrantExpiredError(ReviewError):
    """The grant is older than it may cover (GRANT_VALIDITY_MS): nothing was decrypted."""

    def explain(self) -> str:
        """Say what to do."""
        return _("{problem}; open the message again for a new, logged grant", problem=self)


class EvidenceError(ReviewError):
    """An evidence bundle cannot be accepted."""


class EvidenceFormatError(EvidenceError):
    """The bytes are not an evidence bundle, or one of its fields is malformed."""


class EvidenceVersionError(EvidenceFormatError):
    """The bundle carries a format version this code does not accept."""


class EvidenceVersionTooOldError(EvidenceVersionError):
    """The bundle's version is older than the oldest one still accepted."""


class EvidenceVersionTooNewError(EvidenceVersionError):
    """The bundle's version is newer than this code knows."""


class EvidenceCheckError(EvidenceError):
    """One check of a well-formed bundle failed; ``report`` lists the checks up to it."""

    def __init__(self, check: str, reason: str, report: EvidenceReport) -> None:
        super().__init__(f"check {check!r} failed: {reason}")
        self.check = check
        self.reason = reason
        self.report = report

    def explain(self) -> str:
        """Say that the bundle is not to be trusted, and which check failed."""
        return _(
            "the evidence does not verify: check {check} failed: {reason}",
            check=repr(self.check),
            reason=self.reason,
        )
