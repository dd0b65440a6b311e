"""Errors of the institution terminal, each able to explain itself to an operator.

    SealpostError
    ├── TerminalError
    │   ├── ProfileError                 the terminal profile on disk cannot be used
    │   │   ├── ProfileNotFoundError     no profile in that folder
    │   │   ├── ProfileExistsError       a profile is already there (never overwritten)
    │   │   ├── ProfileBusyError         another intake loop runs with this profile
    │   │   ├── ProfileFormatError       not a terminal profile, or damaged
    │   │   │   └── ProfileVersionError
    │   │   │       ├── ProfileVersionTooOldError
    │   │   │       └── ProfileVersionTooNewError
    │   │   ├── WrongPassphraseError     the passphrase does not open it (or it was altered)
    │   │   └── WeakPassphraseError      refused when creating a profile
    │   ├── EnrollmentError              the certificate folder or settings are not usable
    │   ├── TerminalSettingsError        flags, variables or the settings file cannot be used
    │   ├── InstitutionKeyError          the institution key is missing, revoked or held elsewhere
    │   ├── TerminalRevokedError         the gateway no longer accepts this terminal's certificate
    │   ├── LogWitnessError              the gateway's log shows a fork or was rolled back
    │   ├── RegisterError                a detainee register entry that cannot be made
    │   ├── DeliveryError                no such released message, or it cannot be opened
    │   │   ├── UnprovenReleaseError     listed as released, but the log does not prove it
    │   │   └── NotWithheldError         no withheld message with this id here
    │   └── ReplyError                   a reply that cannot be composed as asked
    │       └── AttachmentError          a file that cannot be attached to a reply
    └── ClientError (sealpost.clients._grpc)
        └── NoMailboxKeyError            no mailbox secret held here opens this message (yet)

Each Profile...Error is also the matching error of ``sealpost.clients.sealedfile`` (the
rules of every passphrase-sealed file); PROFILE_ERRORS hands the classes to it.

Key records and envelopes that do not verify raise ``sealpost.crypto.errors.CryptoError``;
key-server failures raise ``sealpost.escrow.errors.EscrowError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import grpc

from sealpost.clients import sealedfile
from sealpost.clients._grpc import ClientError
from sealpost.errors import SealpostError
from sealpost.i18n import _

if TYPE_CHECKING:
    from sealpost.clients.terminal.client import UnprovenRelease


class TerminalError(SealpostError):
    """Base of the terminal's own errors."""


class ProfileError(TerminalError, sealedfile.SealedFileError):
    """The terminal profile on disk cannot be used."""


class ProfileNotFoundError(ProfileError, sealedfile.SealedFileNotFoundError):
    """No terminal profile in the folder given."""

    def explain(self) -> str:
        """Point at enrolment."""
        return _("{problem}; create one with `sealpost terminal enroll`", problem=self)


class ProfileExistsError(ProfileError, sealedfile.SealedFileExistsError):
    """A profile is already in the folder; it is never overwritten."""


class ProfileBusyError(ProfileError, sealedfile.SealedFileBusyError):
    """Another intake loop already runs with this profile."""


class ProfileFormatError(ProfileError, sealedfile.SealedFileFormatError):
    """The file is not a terminal profile, or its contents are damaged."""


class ProfileVersionError(ProfileFormatError, sealedfile.SealedFileVersionError):
    """The profile has a format version this program does not read."""


class ProfileVersionTooOldError(ProfileVersionError, sealedfile.SealedFileVersionTooOldError):
    """The format version is older than the oldest one still read."""


class ProfileVersionTooNewError(ProfileVersionError, sealedfile.SealedFileVersionTooNewError):
    """The format version is newer than this program knows: upgrade Sealpost."""


class WrongPassphraseError(ProfileError, sealedfile.WrongPassphraseError):
    """The passphrase does not open the profile, or the file was altered."""

    def explain(self) -> str:
        """Say both possibilities: the two are indistinguishable on purpose."""
        return _("the passphrase does not open this terminal profile (or the file was altered)")


class WeakPassphraseError(ProfileError, sealedfile.WeakPassphraseError):
    """The passphrase chosen for a new profile is too short."""


#: The classes the terminal's files raise for the rules of ``sealpost.clients.sealedfile``.
PROFILE_ERRORS: Final = sealedfile.FileErrors(
    base=ProfileError,
    not_found=ProfileNotFoundError,
    exists=ProfileExistsError,
    busy=ProfileBusyError,
    malformed=ProfileFormatError,
    too_old=ProfileVersionTooOldError,
    too_new=ProfileVersionTooNewError,
    wrong_passphrase=WrongPassphraseError,
    weak_passphrase=WeakPassphraseError,
)


class EnrollmentError(TerminalError):
    """The certificate folder or the settings given to enrolment cannot be used."""


class TerminalSettingsError(TerminalError):
    """The operator's settings (flags, variables, settings file) cannot be used; lists each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))

    def explain(self) -> str:
        """Every problem on its own line."""
        return "\n".join([_("invalid settings:"), *(f"  - {p}" for p in self.problems)])


class InstitutionKeyError(TerminalError):
    """The institution key is missing, revoked, or held by another terminal only."""


class TerminalRevokedError(TerminalError):
    """The gateway refuses this terminal's certificate: revoked, expired or not registered."""

    def explain(self) -> str:
        """Tell the operator what to do."""
        return _(
            "the gateway refuses this terminal's certificate (revoked, expired or unknown); "
            "ask an administrator for a new one (`sealpost admin terminal issue`) and enrol again"
        )


class LogWitnessError(TerminalError):
    """The gateway's tree head does not verify, or does not extend the newest one seen here."""

    def explain(self) -> str:
        """Say what it means and what to do."""
        return _(
            "the gateway's transparency log does not extend the history this terminal "
            "witnessed ({problem}); intake stops. Report it to the security officer: the "
            "newest head seen is in witness-state.json in the profile folder",
            problem=self,
        )


class RegisterError(TerminalError):
    """A detainee register entry that cannot be made (no name, an unknown language, ...)."""


class DeliveryError(TerminalError):
    """No released message with that id here, or it cannot be opened."""


class UnprovenReleaseError(DeliveryError):
    """The gateway lists a message as released, but the transparency log does not prove it.

    The terminal never shows, prints or acknowledges such a message (SPEC P12): either
    the gateway's database was changed, or the gateway misbehaves. Both are for the auditor.
    """

    def __init__(self, refused: UnprovenRelease) -> None:
        """Name the message and what was wrong with its proof."""
        super().__init__(
            _(
                "message {message} for {detainee} is listed as released, but its release is "
                "not proven: {reason}. It is not delivered; report it to the auditor "
                "(`sealpost audit verify` checks the gateway's tables against the log)",
                message=refused.message_id.hex(),
                detainee=refused.detainee_id,
                reason=refused.reason,
            )
        )
        self.refused = refused


class NotWithheldError(DeliveryError):
    """No message withheld by a screener with this id, for a detainee held here."""


class ReplyError(TerminalError):
    """A reply that cannot be composed as asked (empty, or not valid Unicode)."""


class AttachmentError(ReplyError):
    """A file that cannot be attached to a reply (missing, unknown type or too large)."""


class NoMailboxKeyError(ClientError):
    """No mailbox secret held here opens this message yet (for example a handover is pending)."""

    def __init__(self, message: str = "") -> None:
        super().__init__(
            grpc.StatusCode.FAILED_PRECONDITION,
            message or _("no mailbox key held for this message"),
        )
