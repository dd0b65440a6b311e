"""Signals: what a detector found, where, why, and how sure it is (SPEC P16).

A signal is never a verdict. It points a screener at an exact span: offsets count Python
characters (code points) into one text of one part of the message. ``source`` says which
text: the part's own text (``text``), the text layer of a PDF (``pdf``), the text Tesseract
read from an image (``ocr``), or the part's raw bytes (``bytes``, for data hidden in a file).

Signals are stored and sealed to screeners later, so a report is JSON with a format marker
(``triage/v1``); other markers are refused with distinct errors (STYLE 4). The reason is a
stable code plus values; :func:`explain` words it in the reader's staff language.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, cast, get_args

from babel.core import Locale

from sealpost.clients.triage.errors import FormatError, OldVersionError, UnknownVersionError
from sealpost.i18n import _, staff

FORMAT: Final = "triage/v1"
Source = Literal["text", "pdf", "ocr", "bytes"]
SOURCES: Final = frozenset(get_args(Source))

#: Detectors whose signals describe a message rather than point at something in it: they
#: route a message (to a screener who reads its language) but never raise its rank.
INFORMATIONAL: Final = frozenset({"language", "extraction"})


@dataclass(frozen=True)
class Signal:
    """One finding: detector, exact span, matched text, reason, confidence in [0, 1]."""

    detector: str
    part: int
    source: Source
    start: int
    end: int
    text: str
    reason: str
    confidence: float
    values: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        """Spans and confidences that cannot be true are bugs: refuse them at once."""
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence {self.confidence} is outside [0, 1]")
        if not 0 <= self.start <= self.end or self.part < 0:
            raise ValueError(f"bad span {self.part}:{self.start}-{self.end}")
        if self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r}")

    @property
    def weight(self) -> float:
        """What the signal adds to a message's rank: its confidence, or 0 if informational."""
        return 0.0 if self.detector in INFORMATIONAL else self.confidence

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "detector": self.detector,
            "part": self.part,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "reason": self.reason,
            "values": dict(self.values),
            "confidence": self.confidence,
        }


def signal(
    detector: str,
    part: int,
    source: Source,
    start: int,
    end: int,
    text: str,
    reason: str,
    confidence: float,
    **values: str,
) -> Signal:
    """A signal with its values given as keywords (kept sorted, so equal signals compare equal)."""
    return Signal(
        detector, part, source, start, end, text, reason, round(confidence, 3),
        tuple(sorted(values.items())),
    )  # fmt: skip


@dataclass(frozen=True)
class Report:
    """Every signal for one message, in the order of part, then offset."""

    signals: tuple[Signal, ...]

    @property
    def score(self) -> float:
        """The sum of the signals' weights: what the screening queue ranks by."""
        return sum(s.weight for s in self.signals)

    def to_json(self) -> str:
        """The stored form, with its format marker."""
        body = {"format": FORMAT, "signals": [s.as_dict() for s in self.signals]}
        return json.dumps(body, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Report:
        """Read a stored report; raises :class:`FormatError` (or a version subclass)."""
        try:
            body = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise FormatError("a triage report is not JSON") from exc
        if not isinstance(body, dict):
            raise FormatError("a triage report is a JSON object")
        found = body.get("format")
        if not isinstance(found, str) or not found.startswith("triage/v"):
            raise FormatError("not a triage report (no triage/v* format marker)")
        if found != FORMAT:
            version = found.removeprefix("triage/v")
            if version.isdigit() and int(version) > 1:
                raise UnknownVersionError(found)
            raise OldVersionError(found)
        items = body.get("signals")
        if not isinstance(items, list):
            raise FormatError("a triage report has a list of signals")
        try:
            return cls(tuple(_signal(item) for item in items))
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"a malformed signal: {exc}") from exc


def _signal(item: object) -> Signal:
    if not isinstance(item, dict):
        raise TypeError("a signal is a JSON object")
    values = item["values"]
    if not isinstance(values, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in values.items()
    ):
        raise TypeError("a signal's values are strings")
    strings = [item[k] for k in ("detector", "source", "text", "reason")]
    integers = [item[k] for k in ("part", "start", "end")]
    confidence = item["confidence"]
    if not all(isinstance(x, str) for x in strings):
        raise TypeError("detector, source, text and reason are strings")
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in integers):
        raise TypeError("part, start and end are integers")
    if not isinstance(confidence, int | float) or isinstance(confidence, bool):
        raise TypeError("confidence is a number")
    return Signal(
        detector=item["detector"],
        part=item["part"],
        source=cast(Source, item["source"]),
        start=item["start"],
        end=item["end"],
        text=item["text"],
        reason=item["reason"],
        confidence=float(confidence),
        values=tuple(sorted(values.items())),
    )


def explain(s: Signal) -> str:
    """The signal's reason in the staff language, for a person; unknown codes as they are."""
    words = _REASONS.get(s.reason)
    return words(dict(s.values)) if words else s.reason


def language_name(code: str) -> str:
    """A language's name in the staff language ("ar" -> "Arabisch" in Dutch)."""
    names: Mapping[str, str] = Locale.parse(staff().language).languages
    return names.get(code, code)


# One short sentence per reason code, worded in the staff language when it is read.
_REASONS: Final[Mapping[str, Callable[[dict[str, str]], str]]] = {
    "phone": lambda v: _("A phone number ({region}).", **v),
    "iban": lambda v: _("A bank account (IBAN, {country}) with a valid checksum.", **v),
    "card": lambda v: _("A payment card number with a valid checksum (ending {last4}).", **v),
    "bitcoin": lambda v: _("A Bitcoin address with a valid checksum.", **v),
    "ethereum": lambda v: _("An Ethereum address (written without a checksum).", **v),
    "ethereum-checksum": lambda v: _("An Ethereum address with a valid checksum.", **v),
    "link": lambda v: _("A web link to {host}.", **v),
    "messenger-link": lambda v: _("A link to a messaging service or link shortener ({host}).", **v),
    "email": lambda v: _("An e-mail address.", **v),
    "coordinates": lambda v: _("Map coordinates ({latitude}, {longitude}).", **v),
    "address": lambda v: _("A street address (postcode {postcode}).", **v),
    "contact-ban": lambda v: _("A name on a contact ban ({list}).", **v),
    "contact-ban-variant": lambda v: _(
        "Possibly a spelling of {entry}, on a contact ban ({list}).", **v
    ),
    "co-defendant": lambda v: _("A co-defendant's name ({list}).", **v),
    "co-defendant-variant": lambda v: _(
        "Possibly a spelling of {entry}, a co-defendant ({list}).", **v
    ),
    "code-word": lambda v: _("A code word on a watch list ({list}).", **v),
    "language": lambda v: _("Written in {language}.", language=language_name(v["language"])),
    "language-uncertain": lambda v: _(
        "The language is uncertain (perhaps {language}).", language=language_name(v["language"])
    ),
    "base64": lambda v: _(
        "A long run of base64 ({length} characters): perhaps encoded content.", **v
    ),
    "hex": lambda v: _("A long run of hexadecimal digits ({length} characters).", **v),
    "high-entropy": lambda v: _("A random-looking string ({length} characters).", **v),
    "image-trailing-data": lambda v: _(
        "{size} bytes after the end of the image (looks like: {kind}).", **v
    ),
    "invisible": lambda v: _("{count} invisible characters inside a word or number.", **v),
    "image-oversized": lambda v: _(
        "The file is larger than its {width} by {height} pixels could need.", **v
    ),
    "ocr-missing": lambda v: _("Text in this image was not read: Tesseract is not installed.", **v),
    "ocr-no-languages": lambda v: _(
        "Text in this image was not read: Tesseract has none of the languages.", **v
    ),
    "ocr-failed": lambda v: _("Text in this image could not be read.", **v),
    "ocr-timeout": lambda v: _(
        "Reading the text in this image took too long and was stopped.", **v
    ),
    "image-unreadable": lambda v: _("This image could not be opened to read its text.", **v),
    "pdf-encrypted": lambda v: _("This PDF is encrypted: its text was not read.", **v),
    "pdf-unreadable": lambda v: _("This PDF could not be read.", **v),
}
#: Every reason code a detector may give (tests check each has words).
REASONS: Final = frozenset(_REASONS)
