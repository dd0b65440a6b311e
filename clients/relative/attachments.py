"""Attachments a relative can send: photos and PDF documents, read from files.

Files are recognised by their name (``mimetypes``) and their contents must be of that
type (sealpost.clients.attachments, shared with the institution's terminal), so a
renamed file is refused here rather than at the institution.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Final

from sealpost.clients.attachments import (
    ALLOWED_LIST,
    ATTACHMENT_TYPES,
    attachment_type,
    base_type,
    safe_filename,
    same_type,
)
from sealpost.clients.relative.errors import AttachmentError
from sealpost.crypto.envelope import FILENAME_LENGTH_BYTES, Part
from sealpost.crypto.limits import DEFAULT_LIMITS, Limits

#: Extensions that some systems' type tables lack.
_EXTRA_TYPES: Final = {".heic": "image/heic", ".heif": "image/heif", ".webp": "image/webp"}


def is_attachment_type(content_type: str) -> bool:
    """True for the photo and PDF types a message may carry as attachments."""
    return base_type(content_type) in ATTACHMENT_TYPES


def check_attachment(part: Part) -> None:
    """Raise AttachmentError unless ``part`` is a photo or PDF, by its type and its bytes."""
    if not is_attachment_type(part.content_type):
        raise AttachmentError(f"{part.content_type!r} cannot be attached: only {ALLOWED_LIST} can")
    found = attachment_type(part.data)
    if found is None or not same_type(part.content_type, found):
        name = part.filename or "the attachment"
        raise AttachmentError(
            f"{name} is not a {ATTACHMENT_TYPES[base_type(part.content_type)]}: "
            "its contents do not match its type"
        )


def guess_type(path: Path) -> str | None:
    """The media type a file name suggests, or None."""
    guessed, _encoding = mimetypes.guess_type(path.name, strict=False)
    return guessed or _EXTRA_TYPES.get(path.suffix.lower())


def attachment_from_file(path: Path, limits: Limits = DEFAULT_LIMITS) -> Part:
    """Read a photo or PDF into a Part named after the file; AttachmentError when it cannot be."""
    name = path.name
    content_type = guess_type(path)
    if content_type is None or not is_attachment_type(content_type):
        raise AttachmentError(f"{name} cannot be attached: only {ALLOWED_LIST} can")
    content_type = base_type(content_type)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise AttachmentError(f"{path} is not a file")
        allowed = limits.max_part_bytes - FILENAME_LENGTH_BYTES - len(name.encode("utf-8"))
        if size > allowed:
            raise AttachmentError(
                f"{name} is {size / 2**20:.1f} MiB; one attachment may be at most "
                f"{allowed / 2**20:.1f} MiB"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise AttachmentError(f"cannot read {path}: {exc.strerror or exc}") from exc
    found = attachment_type(data)
    if found is None or not same_type(content_type, found):
        raise AttachmentError(
            f"{name} does not look like a {ATTACHMENT_TYPES[content_type]}: "
            "its contents do not match its name"
        )
    return Part(content_type, data, filename=name)


__all__ = [
    "ATTACHMENT_TYPES",
    "attachment_from_file",
    "base_type",
    "check_attachment",
    "guess_type",
    "is_attachment_type",
    "safe_filename",
]
