"""Errors of the relative SDK and CLI, each able to explain itself to the relative.

    SealpostError
    └── RelativeError
        ├── ProfileError                the profile on disk cannot be used
        │   ├── ProfileNotFoundError    no profile in that folder
        │   ├── ProfileExistsError      a profile is already there (never overwritten)
        │   ├── ProfileBusyError        another program has the profile open
        │   ├── ProfileFormatError      not a profile file, or damaged beyond the header
        │   │   └── ProfileVersionError
        │   │       ├── ProfileVersionTooOldError
        │   │       └── ProfileVersionTooNewError
        │   ├── WrongPassphraseError    the passphrase does not open it (or the file was altered)
        │   └── WeakPassphraseError     refused when creating a profile
        ├── DirectoryMismatchError      the gateway's directory does not verify against the pin
        ├── MessageError                a message that cannot be sent as composed
        │   └── AttachmentError         a file that cannot be attached
        └── ReceiptError                the gateway's receipt does not prove what it must

Each Profile...Error is also the matching error of ``sealpost.clients.sealedfile`` (the
rules of every passphrase-sealed file); PROFILE_ERRORS hands the classes to it.

Gateway refusals stay ``sealpost.clients._grpc.ClientError`` (with the gRPC status code);
key records and envelopes that do not verify raise ``sealpost.crypto.errors.CryptoError``.
"""

from __future__ import annotations

from typing import Final

from sealpost.clients import sealedfile
from sealpost.errors import SealpostError


class RelativeError(SealpostError):
    """Base of the relative SDK's own errors."""


class ProfileError(RelativeError, sealedfile.SealedFileError):
    """The profile on disk cannot be used."""


class ProfileNotFoundError(ProfileError, sealedfile.SealedFileNotFoundError):
    """No profile in the folder given."""


class ProfileExistsError(ProfileError, sealedfile.SealedFileExistsError):
    """A profile is already in the folder; it is never overwritten."""


class ProfileBusyError(ProfileError, sealedfile.SealedFileBusyError):
    """Another program holds the profile open."""


class ProfileFormatError(ProfileError, sealedfile.SealedFileFormatError):
    """The file is not a Sealpost profile, or its contents are damaged."""


class ProfileVersionError(ProfileFormatError, sealedfile.SealedFileVersionError):
    """The profile file has a format version this program does not read."""


class ProfileVersionTooOldError(ProfileVersionError, sealedfile.SealedFileVersionTooOldError):
    """The format version is older than the oldest one still read."""


class ProfileVersionTooNewError(ProfileVersionError, sealedfile.SealedFileVersionTooNewError):
    """The format version is newer than this program knows: upgrade Sealpost."""


class WrongPassphraseError(ProfileError, sealedfile.WrongPassphraseError):
    """The passphrase does not open the profile (indistinguishable from an altered file)."""

    def explain(self) -> str:
        """One sentence for the relative."""
        return (
            "the passphrase is wrong, or the profile file has been altered; "
            "nothing was changed (try again, or restore the profile from a backup)"
        )


class WeakPassphraseError(ProfileError, sealedfile.WeakPassphraseError):
    """A new profile's passphrase is refused (empty or too short)."""


#: The classes the relative's profile raises for the rules of ``sealpost.clients.sealedfile``.
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


class DirectoryMismatchError(RelativeError):
    """The gateway's directory record does not verify against the pinned directory key."""

    def explain(self) -> str:
        """One sentence for the relative."""
        return (
            f"the gateway's directory key is not the one pinned in this profile ({self}): "
            "this may be the wrong server, or one pretending to be it; nothing was sent. "
            "Check the directory pin with the institution"
        )


class MessageError(RelativeError):
    """A message that cannot be sent as composed (nothing was sent)."""


class AttachmentError(MessageError):
    """A file that cannot be attached: missing, too large, or not a photo or PDF."""


class ReceiptError(RelativeError):
    """The gateway's receipt does not prove that it logged the message it accepted.

    Raised loudly: a gateway that answers with a receipt that does not verify is lying
    about its transparency log, or is broken.
    """

    def __init__(self, message_id: bytes, reason: str) -> None:
        """The message concerned and what failed."""
        super().__init__(f"receipt for message {message_id.hex()} does not verify: {reason}")
        self.message_id = message_id
        self.reason = reason

    def explain(self) -> str:
        """One loud sentence for the relative."""
        return (
            f"WARNING: the gateway accepted message {self.message_id.hex()} but its receipt "
            f"does not prove that the message was logged ({self.reason}). The gateway may be "
            "misbehaving: keep your profile as evidence and report this to the institution."
        )
