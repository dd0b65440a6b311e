"""Text out of attachments (a PDF's text layer, OCR of photos) and checks of image files.

Nothing here touches the disk or the network: pypdf reads from memory, and Tesseract is run
as ``tesseract stdin stdout`` with the image piped in and the text piped out. (pytesseract
writes the photo and the text it reads to temporary files, so it is not used: review
plaintext exists only in memory, docs/review.md section 3.) If Tesseract is missing, the
caller gets a note saying OCR did not run, never an exception.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Final

from PIL import Image, UnidentifiedImageError
from pypdf import PdfReader
from pypdf.errors import PyPdfError

#: Tesseract's language data: Dutch, English, Arabic, Turkish, Polish (``make ocr-deps``).
OCR_LANGUAGES: Final = ("nld", "eng", "ara", "tur", "pol")


@dataclass(frozen=True)
class Limits:
    """How much of a message triage reads: bounded, so one message cannot stall a queue."""

    max_text_chars: int = 1_000_000
    max_pdf_pages: int = 50
    #: Photos are scaled down to at most this many pixels before OCR (a phone photo of a
    #: letter reads as well at 4 MP as at 12, and in a third of the time).
    max_ocr_pixels: int = 4_000_000
    ocr_timeout_seconds: float = 20.0
    #: Images with more pixels than this are not decoded at all (decompression bombs).
    max_image_pixels: int = 80_000_000
    #: The Tesseract languages to use, those installed of them; None for OCR_LANGUAGES.
    ocr_languages: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Extracted:
    """Text read from an attachment, or why none was: ``problem`` is a reason code."""

    text: str
    problem: str = ""
    #: For a PDF: how many pages it has (text is read from the first max_pdf_pages).
    pages: int = 0


def pdf_text(data: bytes, limits: Limits) -> Extracted:
    """The text layer of a PDF's pages, joined by form feeds; a scan without one gives ""."""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            return Extracted("", "pdf-encrypted")
        count = len(reader.pages)
        pages = [page.extract_text() or "" for page in reader.pages[: limits.max_pdf_pages]]
    except (PyPdfError, ValueError, KeyError, TypeError, OSError):
        return Extracted("", "pdf-unreadable")
    return Extracted("\n\f".join(pages)[: limits.max_text_chars], pages=count)


@functools.cache
def tesseract() -> str | None:
    """The Tesseract binary on PATH (or $SEALPOST_TESSERACT), or None."""
    return os.environ.get("SEALPOST_TESSERACT") or shutil.which("tesseract")


@functools.cache
def installed_languages(binary: str) -> frozenset[str]:
    """The language data Tesseract has."""
    done = subprocess.run(
        [binary, "--list-langs"], capture_output=True, text=True, timeout=30, check=False
    )
    return frozenset(line.strip() for line in done.stdout.splitlines()[1:] if line.strip())


def ocr(data: bytes, limits: Limits) -> Extracted:
    """The text Tesseract reads in an image, or a note that OCR did not run and why."""
    binary = tesseract()
    if binary is None:
        return Extracted("", "ocr-missing")
    languages = _languages(binary, limits)
    if isinstance(languages, Extracted):
        return languages
    png = _ocr_input(data, limits)
    if png is None:
        return Extracted("", "image-unreadable")
    return _run(binary, languages, png, limits)


def _run(binary: str, languages: list[str], png: bytes, limits: Limits) -> Extracted:
    """Tesseract over a PNG piped in, its text piped out."""
    # One thread: OCR runs beside other work on shared cores, and the SPEC's target is per core.
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run(
            [binary, "stdin", "stdout", "-l", "+".join(languages), "--psm", "3"],
            input=png, capture_output=True, timeout=limits.ocr_timeout_seconds, env=env,
            check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return Extracted("", "ocr-timeout")
    except OSError:
        return Extracted("", "ocr-missing")
    if done.returncode != 0:
        return Extracted("", "ocr-failed")
    text = done.stdout.decode("utf-8", errors="replace").strip()
    return Extracted(text[: limits.max_text_chars])


def _languages(binary: str, limits: Limits) -> list[str] | Extracted:
    """The wanted languages that Tesseract has, or why there are none."""
    try:
        have = installed_languages(binary)
    except (OSError, subprocess.SubprocessError):
        return Extracted("", "ocr-missing")
    wanted = [lang for lang in limits.ocr_languages or OCR_LANGUAGES if lang in have]
    return wanted or Extracted("", "ocr-no-languages")


def _ocr_input(data: bytes, limits: Limits) -> bytes | None:
    """The image as a grey PNG in memory, scaled down to the OCR pixel budget."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > limits.max_image_pixels:
                return None
            grey = image.convert("L")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    pixels = grey.width * grey.height
    if pixels > limits.max_ocr_pixels:
        scale = (limits.max_ocr_pixels / pixels) ** 0.5
        grey = grey.resize((max(1, int(grey.width * scale)), max(1, int(grey.height * scale))))
    out = io.BytesIO()
    grey.save(out, format="PNG", compress_level=1)
    return out.getvalue()


# -- images that carry more than their pixels ------------------------------------------


@dataclass(frozen=True)
class ImageFacts:
    """What an image file is: its format and size, and where its last byte should be."""

    format: str
    width: int
    height: int
    bands: int
    end: int | None


def image_facts(data: bytes) -> ImageFacts | None:
    """Format, dimensions (no pixels decoded) and the offset just past the end marker."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format or ""
            width, height, bands = image.width, image.height, len(image.getbands())
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    ends = {"PNG": _png_end, "JPEG": _jpeg_end, "WEBP": _webp_end, "GIF": _gif_end}
    finder = ends.get(fmt)
    return ImageFacts(fmt, width, height, bands, finder(data) if finder else None)


def _png_end(data: bytes) -> int | None:
    """Just past the IEND chunk: length, type, data, CRC per chunk (PNG spec 5.3)."""
    offset = 8
    while offset + 8 <= len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8]
        offset += 12 + length
        if kind == b"IEND":
            return offset if offset <= len(data) else None
    return None


def _jpeg_end(data: bytes) -> int | None:
    """Just past the EOI marker, walking segments so an EXIF thumbnail's EOI is skipped."""
    if data[:2] != b"\xff\xd8":
        return None
    offset = 2
    while offset + 2 <= len(data):
        if data[offset] != 0xFF:
            return None
        marker = data[offset + 1]
        if marker == 0xD9:
            return offset + 2
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            offset += 2
            continue
        length = int.from_bytes(data[offset + 2 : offset + 4], "big")
        offset += 2 + length
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next real marker
            while offset + 1 < len(data):
                if data[offset] == 0xFF and data[offset + 1] not in (0x00, *range(0xD0, 0xD8)):
                    break
                offset += 1
    return None


def _webp_end(data: bytes) -> int | None:
    """The RIFF container's stated size, plus its 8-byte header."""
    if len(data) < 12 or data[:4] != b"RIFF":
        return None
    size = int.from_bytes(data[4:8], "little")
    return 8 + size + (size & 1)


def _gif_end(data: bytes) -> int | None:
    """Just past the trailer byte (0x3B), walking the blocks (GIF89a spec)."""
    if len(data) < 13:
        return None
    flags = data[10]
    offset = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    while offset < len(data):
        block = data[offset]
        if block == 0x3B:
            return offset + 1
        if block == 0x21:  # extension: label, then sub-blocks
            offset = _sub_blocks(data, offset + 2)
        elif block == 0x2C:  # image descriptor, local table, LZW size, sub-blocks
            if offset + 10 > len(data):
                return None
            local = data[offset + 9]
            offset += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0) + 1
            offset = _sub_blocks(data, offset)
        else:
            return None
    return None


def _sub_blocks(data: bytes, offset: int) -> int:
    while offset < len(data) and data[offset] != 0:
        offset += data[offset] + 1
    return offset + 1
