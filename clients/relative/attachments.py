"""Attachments a relative can send and receive: photos and PDF documents.

Files are recognised by their name (``mimetypes``) and checked against the format's
signature bytes, so a renamed file is refused here rather than at the institution.
Received files get names that are safe to write into a folder.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path
from typing import Final

from sealpost.clients.relative.errors import AttachmentError
from sealpost.crypto.envelope import FILENAME_LENGTH_BYTES, Part
from sealpost.crypto.limits import DEFAULT_LIMITS, Limits

#: Attachment types and a human name for each (SPEC section 7: photos and PDF documents).
ATTACHMENT_TYPES: Final = {
    "image/jpeg": "JPEG photo",
    "image/png": "PNG image",
    "image/gif": "GIF image",
    "image/webp": "WebP image",
    "image/heic": "HEIC photo",
    "image/heif": "HEIF photo",
    "application/pdf": "PDF document",
}
#: Extensions that some systems' type tables lack.
_EXTRA_TYPES: Final = {".heic": "image/heic", ".heif": "image/heif", ".webp": "image/webp"}
_EXTENSIONS: Final = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "image/heif": ".heif",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
}
#: The first bytes of each format (WebP and HEIC/HEIF are checked at an offset).
_SIGNATURES: Final[dict[str, tuple[bytes, ...]]] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/pdf": (b"%PDF-",),
}
_ALLOWED_LIST: Final = "photos (JPEG, PNG, GIF, WebP, HEIC) and PDF documents"
#: Characters kept out of saved file names: separators, controls, and what Windows refuses.
_UNSAFE_NAME: Final = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|\u202a-\u202e\u2066-\u2069]')


def base_type(content_type: str) -> str:
    """The media type without parameters, lower case ("image/jpeg; x=y" -> "image/jpeg")."""
    return content_type.split(";", 1)[0].strip().lower()


def is_attachment_type(content_type: str) -> bool:
    """True for the photo and PDF types a message may carry as attachments."""
    return base_type(content_type) in ATTACHMENT_TYPES


def check_attachment(part: Part) -> None:
    """Raise AttachmentError unless ``part`` is a photo or PDF attachment."""
    if not is_attachment_type(part.content_type):
        raise AttachmentError(f"{part.content_type!r} cannot be attached: only {_ALLOWED_LIST} can")


def _signature_matches(content_type: str, head: bytes) -> bool:
    """Whether the first bytes of a file fit its type's signature."""
    if content_type == "image/webp":
        return head.startswith(b"RIFF") and head[8:12] == b"WEBP"
    if content_type in {"image/heic", "image/heif"}:
        return head[4:8] == b"ftyp"
    return head.startswith(_SIGNATURES.get(content_type, ()))


def guess_type(path: Path) -> str | None:
    """The media type a file name suggests, or None."""
    guessed, _encoding = mimetypes.guess_type(path.name, strict=False)
    return guessed or _EXTRA_TYPES.get(path.suffix.lower())


def attachment_from_file(path: Path, limits: Limits = DEFAULT_LIMITS) -> Part:
    """Read a photo or PDF into a Part named after the file; AttachmentError when it cannot be."""
    name = path.name
    content_type = guess_type(path)
    if content_type is None or not is_attachment_type(content_type):
        raise AttachmentError(f"{name} cannot be attached: only {_ALLOWED_LIST} can")
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
    if not _signature_matches(content_type, data[:16]):
        raise AttachmentError(
            f"{name} does not look like a {ATTACHMENT_TYPES[content_type]}: "
            "its contents do not match its name"
        )
    return Part(content_type, data, filename=name)


def safe_filename(name: str, index: int, content_type: str) -> str:
    """A name for saving a received part: the sender's name if harmless, else a made-up one."""
    cleaned = _UNSAFE_NAME.sub("_", name).strip().lstrip(".")
    if cleaned and len(cleaned.encode("utf-8")) <= 200:
        return cleaned
    return f"attachment-{index}{_EXTENSIONS.get(base_type(content_type), '.bin')}"
