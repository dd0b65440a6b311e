"""The escrowed data key as the gateway stores it: ``sealpost.v1.EscrowBlob``, version 1.

Pure: no I/O. A blob binds the key server's ciphertext to its message id (the
derivation context) and to the escrow key version that produced it, so that
retention can tell which messages a retired key version takes with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from google.protobuf import unknown_fields
from google.protobuf.message import DecodeError

from sealpost.escrow.errors import (
    BlobVersionTooNewError,
    BlobVersionTooOldError,
    EscrowBlobError,
)
from sealpost.v1.envelope_pb2 import EscrowBlob

#: The only escrow blob version this code writes and reads.
ESCROW_BLOB_VERSION: Final = 1
#: Message ids are 16 random bytes (proto EnvelopeHeader.message_id).
MESSAGE_ID_BYTES: Final = 16
#: Data keys are 32 bytes (XChaCha20-Poly1305 keys).
DEK_BYTES: Final = 32
#: Far above the 80 characters of an aes256-gcm96 ciphertext of a 32-byte key.
MAX_CIPHERTEXT_CHARS: Final = 512
#: Key versions travel as uint32 in the blob.
MAX_KEY_VERSION: Final = 2**32 - 1

# Transit ciphertexts: "vault:v<version>:<standard base64 of nonce || ciphertext || tag>".
_CIPHERTEXT = re.compile(r"vault:v([1-9][0-9]{0,9}):[A-Za-z0-9+/]+={0,2}")


def ciphertext_key_version(ciphertext: str) -> int:
    """The key version named in a transit ciphertext's prefix; EscrowBlobError if malformed."""
    if len(ciphertext) > MAX_CIPHERTEXT_CHARS:
        raise EscrowBlobError("escrow ciphertext is too long")
    match = _CIPHERTEXT.fullmatch(ciphertext)
    if match is None:
        raise EscrowBlobError("escrow ciphertext is not of the form vault:vN:<base64>")
    version = int(match.group(1))
    if version > MAX_KEY_VERSION:
        raise EscrowBlobError("escrow key version out of range")
    return version


def check_message_id(message_id: bytes) -> None:
    """Raise EscrowBlobError unless ``message_id`` has the message-id size."""
    if len(message_id) != MESSAGE_ID_BYTES:
        raise EscrowBlobError(f"a message id is {MESSAGE_ID_BYTES} bytes")


@dataclass(frozen=True)
class EscrowedKey:
    """A data key escrowed with the key server, bound to its message id and key version."""

    message_id: bytes
    ciphertext: str = field(repr=False)
    key_version: int

    def __post_init__(self) -> None:
        check_message_id(self.message_id)
        if isinstance(self.key_version, bool) or not 1 <= self.key_version <= MAX_KEY_VERSION:
            raise EscrowBlobError("escrow key version out of range")
        if ciphertext_key_version(self.ciphertext) != self.key_version:
            raise EscrowBlobError("escrow ciphertext and key version disagree")

    def to_proto(self) -> EscrowBlob:
        """The wire form, version 1."""
        return EscrowBlob(
            version=ESCROW_BLOB_VERSION,
            message_id=self.message_id,
            ciphertext=self.ciphertext,
            key_version=self.key_version,
        )

    def to_bytes(self) -> bytes:
        """Serialised ``EscrowBlob`` (deterministic)."""
        return self.to_proto().SerializeToString(deterministic=True)

    @classmethod
    def from_proto(cls, blob: EscrowBlob) -> EscrowedKey:
        """Check version and consistency; distinct errors for too-old and too-new versions."""
        if blob.version < ESCROW_BLOB_VERSION:
            raise BlobVersionTooOldError(f"escrow blob version {blob.version} is not supported")
        if blob.version > ESCROW_BLOB_VERSION:
            raise BlobVersionTooNewError(
                f"escrow blob version {blob.version} is newer than this code"
            )
        if len(unknown_fields.UnknownFieldSet(blob)) > 0:
            raise EscrowBlobError("escrow blob carries unknown fields")
        return cls(
            message_id=blob.message_id, ciphertext=blob.ciphertext, key_version=blob.key_version
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> EscrowedKey:
        """Parse a serialised ``EscrowBlob``; EscrowBlobError (or a version error) if refused."""
        blob = EscrowBlob()
        try:
            blob.ParseFromString(data)
        except DecodeError:
            raise EscrowBlobError("escrow blob does not parse") from None
        return cls.from_proto(blob)
