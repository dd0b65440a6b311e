"""The relative SDK and CLI: register a device, request contacts, send and read messages.

Start with ``register`` (a new device and profile) or ``connect`` (an existing profile);
both return a signed-in ``RelativeClient``. docs/relatives.md has a worked example.
"""

from sealpost.clients.relative.errors import (
    AttachmentError,
    DirectoryMismatchError,
    MessageError,
    ProfileError,
    ReceiptError,
    RelativeError,
    WrongPassphraseError,
)
from sealpost.clients.relative.keystore import SentRecord
from sealpost.clients.relative.notice import review_notice
from sealpost.clients.relative.receipts import VerifiedReceipt
from sealpost.clients.relative.sdk import (
    Contact,
    ContactStatus,
    DeliveryStatus,
    InboxMessage,
    MessageStatus,
    ReceiptCheck,
    RelativeClient,
    connect,
    register,
)
from sealpost.crypto.passphrase import KDF_INTERACTIVE, KDF_MODERATE, KdfParams

__all__ = [
    "KDF_INTERACTIVE",
    "KDF_MODERATE",
    "AttachmentError",
    "Contact",
    "ContactStatus",
    "DeliveryStatus",
    "DirectoryMismatchError",
    "InboxMessage",
    "KdfParams",
    "MessageError",
    "MessageStatus",
    "ProfileError",
    "ReceiptCheck",
    "ReceiptError",
    "RelativeClient",
    "RelativeError",
    "SentRecord",
    "VerifiedReceipt",
    "WrongPassphraseError",
    "connect",
    "register",
    "review_notice",
]
