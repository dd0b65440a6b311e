"""Which files a message may carry, known by their bytes: one rule for relatives and terminals.

SPEC section 7: photos and PDF documents. A file's type is what its contents are, not
what its name or its declared type say: a relative's client checks before sending,
and the institution's terminal checks again before anything is shown, printed or
saved, because a modified client can declare anything. The sniffing is puremagic's
(a well-kept library of file signatures), not ours.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath
from typing import Final

import puremagic

#: Attachment types and a human name for each.
ATTACHMENT_TYPES: Final = {
    "image/jpeg": "JPEG photo",
    "image/png": "PNG image",
    "image/gif": "GIF image",
    "image/webp": "WebP image",
    "image/heic": "HEIC photo",
    "image/heif": "HEIF photo",
    "application/pdf": "PDF document",
}
ALLOWED_LIST: Final = "photos (JPEG, PNG, GIF, WebP, HEIC) and PDF documents"
#: The extension a saved file of each type gets.
EXTENSIONS: Final = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "image/heif": ".heif",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
}
#: Types the sniffing names differently from the way senders declare them.
_SAME_FAMILY: Final = {"image/heic": "image/heif"}
#: Characters kept out of saved file names: separators, controls, and what Windows refuses.
_UNSAFE_NAME: Final = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|\u202a-\u202e\u2066-\u2069]')


def base_type(content_type: str) -> str:
    """The media type without parameters, lower case ("image/jpeg; x=y" -> "image/jpeg")."""
    return content_type.split(";", 1)[0].strip().lower()


def sniff(data: bytes) -> str | None:
    """The media type the bytes are, by their signature; None when nothing matches."""
    if not data:
        return None
    try:
        found = puremagic.from_string(data, mime=True)
    except puremagic.PureError:
        return None
    return base_type(found) if found else None


def attachment_type(data: bytes) -> str | None:
    """The allowed attachment type the bytes are, or None when they are none of them."""
    found = sniff(data)
    return found if found in ATTACHMENT_TYPES else None


def same_type(declared: str, found: str) -> bool:
    """True when a declared type and a sniffed one name the same format."""
    declared = base_type(declared)
    return _SAME_FAMILY.get(declared, declared) == _SAME_FAMILY.get(found, found)


def shown_name(name: str) -> str:
    """A sender's file name as a person may read it: no control or format characters.

    File names are content (the gateway never sees them), so nothing upstream refused
    a name that reorders the text around it; this takes such characters out.
    """
    return "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf"))[:200]


def safe_filename(name: str, index: int, content_type: str) -> str:
    """A name to save a received part under: harmless, and ending in its type's extension.

    The sender's name is kept when it is harmless, with its extension replaced by the
    one of ``content_type`` (the type the bytes were found to be), so a photo named
    ``report.exe`` is saved as ``report.jpg``.
    """
    extension = EXTENSIONS.get(base_type(content_type), ".bin")
    cleaned = _UNSAFE_NAME.sub("_", name).strip().lstrip(".")
    stem = PurePosixPath(cleaned).stem if cleaned else ""
    if stem and len(stem.encode("utf-8")) <= 200:
        return stem + extension
    return f"attachment-{index}{extension}"
