"""Strict protobuf parsing and version checks shared by envelopes and key records.

Signed artefacts travel as bytes; a reader parses them once, refuses unknown fields and
non-canonical encodings (docs/protocol.md, "Canonical encoding"), and never re-serialises
what it verifies.
"""

from __future__ import annotations

from typing import Final, TypeVar

from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from sealpost.crypto.errors import FormatError, VersionTooNewError, VersionTooOldError

#: The only wire version this code reads and writes, for every artefact.
CURRENT_VERSION: Final = 1

M = TypeVar("M", bound=Message)


def check_version(version: int, what: str) -> None:
    """Reject versions other than 1: VersionTooOldError below, VersionTooNewError above."""
    if version < CURRENT_VERSION:
        raise VersionTooOldError(f"{what} version {version} is not supported (expected 1)")
    if version > CURRENT_VERSION:
        raise VersionTooNewError(f"{what} version {version} is newer than this code (1)")


def reject_unknown_fields(message: Message, what: str) -> None:
    """FormatError if ``message`` or any message inside it carries fields this code lacks."""
    if len(UnknownFieldSet(message)):
        raise FormatError(f"{what} has unknown fields")
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        children = value if field.is_repeated else [value]
        for child in children:
            reject_unknown_fields(child, what)


def parse(cls: type[M], data: bytes, what: str) -> M:
    """Parse ``data`` as ``cls``; FormatError for anything that is not a valid encoding."""
    message = cls()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise FormatError(f"{what} does not parse") from exc
    return message


def parse_canonical(cls: type[M], data: bytes, what: str) -> M:
    """Parse signed bytes, refusing unknown fields and any encoding but the canonical one."""
    message = parse(cls, data, what)
    reject_unknown_fields(message, what)
    if message.SerializeToString(deterministic=True) != data:
        raise FormatError(f"{what} is not canonically encoded")
    return message


def canonical_bytes(message: Message) -> bytes:
    """The canonical encoding of a message Sealpost produces (deterministic serialisation)."""
    return message.SerializeToString(deterministic=True)
