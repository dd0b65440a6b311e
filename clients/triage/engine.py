"""Triage of one message: every part's text through every detector, and images checked.

Pure apart from running Tesseract on photos (a local process, no network). Called inside
the institution's zone only, on messages with a lawful basis for review, never on
privileged mail (SPEC P16); the caller decides that, this code only reads what it is given.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

from sealpost.clients.triage import detectors
from sealpost.clients.triage.extract import Extracted, Limits, image_facts, ocr, pdf_text
from sealpost.clients.triage.language import language
from sealpost.clients.triage.signals import Report, Signal, Source, signal
from sealpost.clients.triage.watchlist import WatchList, WatchMatcher
from sealpost.crypto.envelope import Part

#: Bytes an image may carry beyond its raw pixels for headers, colour profiles and EXIF.
IMAGE_OVERHEAD: Final = 256 * 1024
#: Trailing bytes shorter than this are padding some encoders write, not content.
TRAILING_SLACK: Final = 16
#: File signatures recognised in data hidden after an image.
SIGNATURES: Final = (
    (b"PK\x03\x04", "zip"), (b"%PDF", "pdf"), (b"Rar!", "rar"), (b"7z\xbc\xaf", "7z"),
    (b"\xff\xd8\xff", "jpeg"), (b"\x89PNG", "png"), (b"\x1f\x8b", "gzip"),
)  # fmt: skip


def _media_type(part: Part) -> str:
    return part.content_type.split(";", 1)[0].strip().lower()


def triage(
    parts: Sequence[Part],
    watch_lists: Sequence[WatchList] | WatchMatcher = (),
    limits: Limits | None = None,
) -> Report:
    """Signals for a message's decrypted parts (text, PDFs, photos)."""
    limits = limits or Limits()
    matcher = watch_lists if isinstance(watch_lists, WatchMatcher) else WatchMatcher(watch_lists)
    found: list[Signal] = []
    for index, part in enumerate(parts):
        kind = _media_type(part)
        if kind.startswith("text/"):
            text = part.data.decode("utf-8", errors="replace")[: limits.max_text_chars]
            found.extend(scan_text(text, index, "text", matcher))
        elif kind == "application/pdf":
            found.extend(_extracted(pdf_text(part.data, limits), index, "pdf", matcher))
        elif kind.startswith("image/"):
            found.extend(image_signals(part.data, index))
            found.extend(_extracted(ocr(part.data, limits), index, "ocr", matcher))
    return Report(tuple(sorted(found, key=lambda s: (s.part, s.source, s.start, s.end))))


def scan_text(text: str, part: int, source: Source, matcher: WatchMatcher) -> list[Signal]:
    """Every text detector, the watch lists and the language over one text.

    Invisible characters (zero-width spaces, soft hyphens, direction marks) are taken out
    first, so "NL91\u200bABNA..." is still an IBAN; spans are mapped back to the text as
    written, and invisible characters inside a word or number are a signal of their own.
    """
    visible, where = _visible(text)
    found: list[Signal] = []
    for detect in detectors.TEXT_DETECTORS.values():
        found.extend(detect(visible, part, source))
    found.extend(matcher.match(visible, part, source))
    found.extend(language(visible, part, source))
    found = _without_doubles(found)
    if len(visible) == len(text):
        return found
    return [_mapped(s, text, where) for s in found] + _invisible(text, part, source)


def _is_invisible(char: str) -> bool:
    """Whether a character shows nothing (Unicode category Cf).

    Zero-width space and joiners, soft hyphen, direction marks and isolates, word joiner,
    byte order mark, tags.
    """
    return unicodedata.category(char) == "Cf"


#: Joiners that Persian (ZWNJ) and emoji sequences (ZWJ) need: a signal only between Latin
#: letters or digits.
_JOINERS: Final = frozenset("\u200c\u200d")


def _visible(text: str) -> tuple[str, list[int]]:
    """The text without invisible characters, and each kept character's index in ``text``."""
    if text.isascii():
        return text, []
    where = [i for i, c in enumerate(text) if not _is_invisible(c)]
    if len(where) == len(text):
        return text, []
    return "".join(text[i] for i in where), [*where, len(text)]


def _mapped(s: Signal, text: str, where: list[int]) -> Signal:
    start = where[s.start]
    end = where[s.end - 1] + 1 if s.end > s.start else start
    if s.detector == "language":
        return replace(s, start=0, end=len(text))
    return replace(s, start=start, end=end, text=text[start:end] if s.text else "")


def _invisible(text: str, part: int, source: Source) -> list[Signal]:
    """Runs of invisible characters between two letters or digits of a word or number."""
    found: list[Signal] = []
    start = 0
    while start < len(text):
        if not _is_invisible(text[start]):
            start += 1
            continue
        end = start
        while end < len(text) and _is_invisible(text[end]):
            end += 1
        before, after, run = text[start - 1 : start], text[end : end + 1], text[start:end]
        inside = before.isalnum() and after.isalnum()
        latin = before.isascii() and after.isascii()
        if inside and (latin or not set(run) <= _JOINERS):
            found.append(
                signal(
                    "hidden-data", part, source, start, end, run, "invisible", 0.7,
                    count=str(end - start),
                )
            )  # fmt: skip
        start = end
    return found


def _without_doubles(found: list[Signal]) -> list[Signal]:
    """An encoded-content hit inside a wallet, link or account is the same thing twice."""
    named = [s for s in found if s.detector not in ("encoded", "language")]
    return [
        s
        for s in found
        if s.detector != "encoded" or not any(o.start < s.end and s.start < o.end for o in named)
    ]


def _extracted(
    extracted: Extracted, part: int, source: Source, matcher: WatchMatcher
) -> list[Signal]:
    if extracted.problem:
        return [signal("extraction", part, source, 0, 0, "", extracted.problem, 1.0)]
    return scan_text(extracted.text, part, source, matcher)


def image_signals(data: bytes, part: int) -> list[Signal]:
    """Data after an image's end marker, and files larger than their pixels could need."""
    facts = image_facts(data)
    if facts is None:
        return []
    found: list[Signal] = []
    end = facts.end if facts.end is not None else len(data)
    if len(data) - end > TRAILING_SLACK:
        hidden = data[end:]
        kind = next((name for magic, name in SIGNATURES if hidden.startswith(magic)), "unknown")
        found.append(
            signal(
                "hidden-data", part, "bytes", end, len(data), "", "image-trailing-data",
                0.9 if kind != "unknown" else 0.7, size=str(len(hidden)), kind=kind,
                format=facts.format,
            )
        )  # fmt: skip
    raw = facts.width * facts.height * facts.bands
    if end > raw + IMAGE_OVERHEAD:
        found.append(
            signal(
                "hidden-data", part, "bytes", 0, end, "", "image-oversized", 0.6,
                size=str(end), width=str(facts.width), height=str(facts.height),
                format=facts.format,
            )
        )  # fmt: skip
    return found
