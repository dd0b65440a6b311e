"""What the review screen shows of a message: laid-out text, marked spans, photos, PDF text.

Display only, and pure: no disk, no network.

Right-to-left text (Arabic, Persian, Hebrew) is shaped (Arabic letters in their joined
forms, arabic-reshaper) and put in visual order (the Unicode bidirectional algorithm,
UAX #9, python-bidi) before it is shown, so that it reads right in a terminal that does
neither, which is most of them. Lines are broken first and each line is reordered on its
own (UAX #9 rule L2 works per line). Every shown character keeps the index of the
character it came from in the text as sent, so triage's spans (which count characters of
the text as sent) are marked on what is shown.

The text as sent stays exact in the review itself, in ``--json`` and in evidence bundles;
what is here never goes back into them. Control characters are shown as visible symbols
(a message from the public never drives the screener's terminal), and invisible
formatting characters (zero-width spaces, direction marks) are not drawn.

Photos are drawn with half blocks: each character cell shows two pixels, the upper one in
the foreground colour of "▀" and the lower one in its background colour. They are decoded
from memory with Pillow, only in the formats triage reads (JPEG, PNG, GIF, WebP), and not at
all above triage's pixel limit.
"""

from __future__ import annotations

import functools
import io
import re
import unicodedata
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import arabic_reshaper
from arabic_reshaper.ligatures import LIGATURES
from bidi import algorithm as uba
from PIL import Image, ImageOps, UnidentifiedImageError
from rich.cells import cell_len

from sealpost.clients.triage.extract import Limits, ocr, pdf_text
from sealpost.clients.triage.signals import INFORMATIONAL, Report, Signal, Source, explain, signal
from sealpost.crypto.envelope import Part
from sealpost.i18n import _

#: The image formats shown: those triage reads. Pillow is given no other decoder to try.
IMAGE_FORMATS: Final = ("JPEG", "PNG", "GIF", "WEBP")
#: Where a PDF's pages meet in its extracted text (clients/triage/extract.py).
PAGE_BREAK: Final = "\n\f"
#: A tab is shown as this many spaces.
TAB_CELLS: Final = 4
#: The colour transparent parts of a photo are drawn on.
BACKGROUND: Final = (255, 255, 255)

RGB = tuple[int, int, int]

# Paragraph breaks, as str.splitlines knows them.
_BREAK: Final = re.compile("\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
# Types of the characters that turn text right to left (UAX #9 table 4).
_RTL_TYPES: Final = frozenset({"R", "AL", "AN", "RLE", "RLO", "RLI"})
# The types python-bidi's Python algorithm knows. It predates the isolates of Unicode 6.3
# (LRI, RLI, FSI, PDI): they, and unassigned characters (no type), are read as other
# neutrals, which keeps the text around them in order.
_KNOWN_TYPES: Final = frozenset(
    {"L", "R", "AL", "EN", "ES", "ET", "AN", "CS", "NSM", "BN", "B", "S", "WS", "ON"}
    | {"LRE", "LRO", "RLE", "RLO", "PDF"}
)
# The lam-alef ligatures, which Arabic writing requires; the optional ones stay off.
_LAM_ALEF: Final = frozenset(
    {
        "ARABIC LIGATURE LAM WITH ALEF",
        "ARABIC LIGATURE LAM WITH ALEF WITH HAMZA ABOVE",
        "ARABIC LIGATURE LAM WITH ALEF WITH HAMZA BELOW",
        "ARABIC LIGATURE LAM WITH ALEF WITH MADDA ABOVE",
    }
)
_ZWJ: Final = "\u200d"
_SUPERSCRIPT: Final = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


# --------------------------------------------------------------------------- marks


@dataclass(frozen=True)
class Mark:
    """A span to mark in one text: characters [start, end) of the text as sent."""

    start: int
    end: int
    #: The signal's number in the list of signals the screen shows.
    number: int


@dataclass(frozen=True)
class Segment:
    """A run of shown characters, marked with a signal's number or not."""

    text: str
    mark: int | None = None


@dataclass(frozen=True)
class Line:
    """One line as shown, left to right, and whether its paragraph reads right to left."""

    segments: tuple[Segment, ...]
    rtl: bool = False

    @property
    def plain(self) -> str:
        """The line's characters without marks."""
        return "".join(s.text for s in self.segments)

    @property
    def cells(self) -> int:
        """How many terminal cells the line takes."""
        return cell_len(self.plain)


def numbered(report: Report | None) -> tuple[tuple[int, Signal], ...]:
    """The report's signals with the numbers the screen gives them (1, 2, ...)."""
    return tuple(enumerate(report.signals, start=1)) if report is not None else ()


def markable(s: Signal) -> bool:
    """Whether a signal points at characters of a text (not at bytes, not at the whole)."""
    return s.source != "bytes" and s.end > s.start and s.detector not in INFORMATIONAL


def marks_for(report: Report | None, part: int, source: Source, text: str) -> tuple[Mark, ...]:
    """The spans of ``report`` in ``text`` (part ``part``, read as ``source``) to mark.

    A span whose characters are not the signal's matched text (the report was made from
    another reading of the part) is left unmarked rather than marked in the wrong place.
    """
    return tuple(
        Mark(s.start, s.end, number)
        for number, s in numbered(report)
        if s.part == part and s.source == source and markable(s) and _found(s, text)
    )


def _found(s: Signal, text: str) -> bool:
    return s.end <= len(text) and (not s.text or text[s.start : s.end] == s.text)


def label(number: int) -> str:
    """A signal's number as it follows a marked span: superscript digits."""
    return str(number).translate(_SUPERSCRIPT)


# --------------------------------------------------------------------------- layout


def lines(
    text: str,
    marks: Sequence[Mark] = (),
    width: int | None = None,
    *,
    wrap_ltr: bool = True,
    decoration: Callable[[int], int] | None = None,
) -> list[Line]:
    """``text`` as lines to show left to right, with ``marks`` on the characters they cover.

    Paragraphs holding right-to-left text are shaped and reordered; lines are at most
    ``width`` cells (None: one line per paragraph). With ``wrap_ltr`` False, paragraphs
    without right-to-left text are left whole for the terminal to wrap. ``decoration``
    gives the cells a marked span adds where it is drawn (brackets, its number).
    """
    mark_at = _mark_index(len(text), marks)
    out: list[Line] = []
    start = 0
    for found in [*_BREAK.finditer(text), None]:
        end = found.start() if found is not None else len(text)
        out.extend(_paragraph(text, start, end, mark_at, width, wrap_ltr, decoration))
        if found is None:
            break
        start = found.end()
    return out


def visual(text: str) -> str:
    """``text`` (a name, a matched span) shaped and in visual order, on one line."""
    return " ".join(line.plain for line in lines(text))


def _mark_index(length: int, marks: Sequence[Mark]) -> list[int | None]:
    """For each character of the text, the number of the first mark covering it."""
    mark_at: list[int | None] = [None] * length
    for mark in marks:
        for index in range(max(0, mark.start), min(length, mark.end)):
            if mark_at[index] is None:
                mark_at[index] = mark.number
    return mark_at


def _shown_char(char: str) -> str:
    """A control character as its visible symbol (U+2400 block); others as they are."""
    code = ord(char)
    if code < 0x20 and char != "\t":
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    if 0x80 <= code < 0xA0:
        return "\ufffd"
    return char


def _paragraph(
    text: str,
    start: int,
    end: int,
    mark_at: list[int | None],
    width: int | None,
    wrap_ltr: bool,
    decoration: Callable[[int], int] | None,
) -> list[Line]:
    logical = "".join(_shown_char(c) for c in text[start:end])
    rtl = any(unicodedata.bidirectional(c) in _RTL_TYPES for c in logical)
    if rtl:
        shaped, origin = _shape(logical)
        base = uba.get_base_level(shaped)
    else:
        shaped, origin, base = logical, list(range(len(logical))), 0
    marks_shaped = [mark_at[start + i] for i in origin]
    limit = width if width is not None and (rtl or wrap_ltr) else None
    spans = _wrap(shaped, marks_shaped, limit, decoration)
    resolved = _levels(shaped, base) if rtl else None
    out: list[Line] = []
    for first, last in spans:
        if resolved is None:
            shown = [(shaped[i], i) for i in range(first, last)]
        else:
            shown = _reorder([c for c in resolved if first <= c["index"] < last], base)
        chars = [
            (char, marks_shaped[i])
            for char, i in shown
            if char == "\t" or unicodedata.category(char) != "Cf"
        ]
        out.append(Line(_segments(chars), rtl=base == 1))
    return out


def _segments(chars: list[tuple[str, int | None]]) -> tuple[Segment, ...]:
    segments: list[Segment] = []
    for char, mark in chars:
        piece = " " * TAB_CELLS if char == "\t" else char
        if segments and segments[-1].mark == mark:
            segments[-1] = Segment(segments[-1].text + piece, mark)
        else:
            segments.append(Segment(piece, mark))
    return tuple(segments)


def _cells(char: str) -> int:
    return TAB_CELLS if char == "\t" else cell_len(char)


def _wrap(
    text: str,
    marks: list[int | None],
    width: int | None,
    decoration: Callable[[int], int] | None,
) -> list[tuple[int, int]]:
    """Line spans [first, last) of ``text``: broken after a space where one fits, else hard.

    Spaces where a line is broken belong to no line (they would hang at its end).
    """
    if width is None or not text:
        return [(0, len(text))]
    width = max(1, width)
    spans: list[tuple[int, int]] = []
    first = used = 0
    space = -1
    index = 0
    while index < len(text):
        char = text[index]
        cells = _cells(char)
        mark = marks[index]
        starts = index == first or mark != marks[index - 1]
        if decoration is not None and mark is not None and starts:
            cells += decoration(mark)
        if char == " " and used + cells > width:
            spans.append((first, index))
            while index < len(text) and text[index] == " ":
                index += 1
            first, used, space = index, 0, -1
            continue
        if used + cells > width and index > first:
            cut = space + 1 if space > first else index
            spans.append((first, space if space > first else index))
            first, used, space = cut, 0, -1
            index = cut
            continue
        if char == " ":
            space = index
        used += cells
        index += 1
    spans.append((first, len(text)))
    return spans


@functools.cache
def _reshaper() -> arabic_reshaper.ArabicReshaper:
    """Joined forms and the lam-alef ligatures; harakat and tatweel kept, as written."""
    config: dict[str, Any] = {
        "language": "Arabic",
        "delete_harakat": False,
        "shift_harakat_position": False,
        "delete_tatweel": False,
        "support_zwj": True,
        "use_unshaped_instead_of_isolated": False,
        "support_ligatures": True,
    }
    config.update({name: name in _LAM_ALEF for name, _ in LIGATURES})
    return arabic_reshaper.ArabicReshaper(configuration=config)


def _shape(text: str) -> tuple[str, list[int]]:
    """``text`` with Arabic letters in joined forms, and each shaped character's origin."""
    if not any("\u0600" <= c <= "\u08ff" for c in text):
        return text, list(range(len(text)))
    try:
        shaped: str = _reshaper().reshape(text)
    except (IndexError, KeyError, ValueError, TypeError):  # text from the public: never fail
        return text, list(range(len(text)))
    origin = _align(text, shaped)
    if origin is None:  # not expected; shown unshaped rather than marked wrongly
        return text, list(range(len(text)))
    return shaped, origin


def _presentation(char: str) -> bool:
    return "\ufb50" <= char <= "\ufdff" or "\ufe70" <= char <= "\ufeff"


def _align(text: str, shaped: str) -> list[int] | None:
    """For each shaped character, the index in ``text`` of the (first) letter it shows.

    Shaping keeps the order: a letter becomes one of its presentation forms (whose
    compatibility decomposition is the letter again), lam and alef become one ligature,
    a joiner may go. Harakat written between lam and alef, or after a joiner, come after
    the next letter.
    """
    origin: list[int] = []
    pending: deque[int] = deque()
    index = 0
    for char in shaped:
        if index < len(text) and char == text[index]:
            origin.append(index)
            index += 1
            continue
        if pending and char == text[pending[0]]:
            origin.append(pending.popleft())
            continue
        letters = unicodedata.normalize("NFKC", char) if _presentation(char) else char
        first: int | None = None
        for letter in letters:
            while index < len(text) and text[index] != letter:
                if text[index] == _ZWJ:
                    index += 1
                elif unicodedata.category(text[index]) == "Mn":
                    pending.append(index)
                    index += 1
                else:
                    return None
            if index == len(text):
                return None
            if first is None:
                first = index
            index += 1
        if first is None:
            return None
        origin.append(first)
    return origin


def _levels(text: str, base: int) -> list[dict[str, Any]]:
    """The resolved embedding level of each character of one paragraph (UAX #9, X1-I2).

    Explicit embedding controls are gone afterwards (rule X9); each remaining character
    carries its ``index`` in ``text``.
    """
    storage = uba.get_empty_storage()
    storage["base_level"] = base
    storage["base_dir"] = ("L", "R")[base]
    uba.get_embedding_levels(text, storage)
    for index, char in enumerate(storage["chars"]):
        char["index"] = index
        if char["type"] not in _KNOWN_TYPES:
            char["type"] = char["orig"] = "ON"
    uba.explicit_embed_and_overrides(storage)
    uba.resolve_weak_types(storage)
    uba.resolve_neutral_types(storage, False)
    uba.resolve_implicit_levels(storage, False)
    chars: list[dict[str, Any]] = storage["chars"]
    return chars


def _reorder(chars: list[dict[str, Any]], base: int) -> list[tuple[str, int]]:
    """One line in visual order, mirrored where right to left (UAX #9, L1, L2, L4)."""
    line = [dict(c) for c in chars]
    storage: dict[str, Any] = {"base_level": base, "chars": line}
    uba.reorder_resolved_levels(storage, False)
    uba.apply_mirroring(storage, False)
    return [(c["ch"], c["index"]) for c in storage["chars"]]


def plain(shown: Sequence[Line], *, styled: bool = False) -> str:
    """Lines for a plain terminal or a pipe: each marked span as ⟦…⟧ with its number.

    The number stands after the span in reading order: to its right on a left-to-right
    line, to its left on a right-to-left one. ``styled`` also shows marked spans in
    reverse video (for a terminal; escapes are never added for a pipe).
    """
    out: list[str] = []
    for line in shown:
        pieces: list[str] = []
        for segment in line.segments:
            if segment.mark is None:
                pieces.append(segment.text)
                continue
            text = f"\x1b[1;7m{segment.text}\x1b[0m" if styled else segment.text
            marked = f"⟦{text}⟧"
            number = label(segment.mark)
            pieces.append(number + marked if line.rtl else marked + number)
        out.append("".join(pieces))
    return "\n".join(out)


def plain_decoration(number: int) -> int:
    """The cells :func:`plain` adds to a marked span: the brackets and the number."""
    return 2 + len(str(number))


def visible(text: str) -> str:
    """``text`` in logical order, as sent, but with control characters as symbols."""
    return "".join(c if c in "\n\t" else _shown_char(c) for c in text)


# --------------------------------------------------------------------------- attachments


def media_type(part: Part) -> str:
    """A part's media type without parameters, in lower case."""
    return part.content_type.split(";", 1)[0].strip().lower()


def part_text(part: Part, limits: Limits | None = None) -> str:
    """A text part as triage reads it (invalid UTF-8 replaced, cut at triage's limit)."""
    limits = limits or Limits()
    return part.data.decode("utf-8", errors="replace")[: limits.max_text_chars]


def cut_note(part: Part, limits: Limits | None = None) -> str:
    """When :func:`part_text` leaves the end of a text out, a note saying so; else ""."""
    limits = limits or Limits()
    if len(part.data) <= limits.max_text_chars:  # a character takes at least one byte
        return ""
    left = len(part.data.decode("utf-8", errors="replace")) - limits.max_text_chars
    if left <= 0:
        return ""
    return _(
        "The text goes on for {count} more characters, not shown here: --json or "
        "--save-attachments gives all of it.",
        count=left,
    )


@dataclass(frozen=True)
class PdfText:
    """A PDF's text layer, page by page, or why there is none to show."""

    #: (offset in the text triage counts in, the page's text) per page read.
    pages: tuple[tuple[int, str], ...]
    #: The whole text as triage reads it (pages joined with PAGE_BREAK).
    text: str
    #: Why nothing is shown, in the staff language; "" when there is text.
    note: str = ""
    #: How many pages the PDF has (0 when it could not be read).
    page_count: int = 0


def pdf(part_index: int, data: bytes, limits: Limits | None = None) -> PdfText:
    """A PDF's text layer, read from memory by triage's own extraction (its page limit)."""
    limits = limits or Limits()
    extracted = pdf_text(data, limits)
    if extracted.problem:
        why = signal("extraction", part_index, "pdf", 0, 0, "", extracted.problem, 1.0)
        return PdfText((), "", explain(why), extracted.pages)
    pages: list[tuple[int, str]] = []
    offset = 0
    for page in extracted.text.split(PAGE_BREAK):
        pages.append((offset, page))
        offset += len(page) + len(PAGE_BREAK)
    if not extracted.text.strip():
        return PdfText(
            (), extracted.text, _("This PDF has no text layer (a scan?): no text to show."),
            extracted.pages,
        )  # fmt: skip
    return PdfText(tuple(pages), extracted.text, "", extracted.pages)


def ocr_text(data: bytes, limits: Limits | None = None) -> tuple[str, str]:
    """The text triage's OCR reads in an image, or "" and why not (staff language)."""
    extracted = ocr(data, limits or Limits())
    if extracted.problem:
        why = signal("extraction", 0, "ocr", 0, 0, "", extracted.problem, 1.0)
        return "", explain(why)
    return extracted.text, ""


def wants_ocr(report: Report | None, part: int) -> bool:
    """Whether triage found something to mark in the text it read in this image."""
    return any(s.part == part and s.source == "ocr" and markable(s) for _n, s in numbered(report))


@dataclass(frozen=True)
class Picture:
    """A photo drawn with half blocks: per cell the upper and the lower pixel's colour."""

    format: str
    width: int
    height: int
    frames: int
    #: Rows of cells; a lower colour of None is the terminal's own background.
    rows: tuple[tuple[tuple[RGB, RGB | None], ...], ...]

    @property
    def columns(self) -> int:
        """The cells one row takes."""
        return len(self.rows[0]) if self.rows else 0


def picture(
    data: bytes, columns: int, rows: int, *, frame: int = 0, limits: Limits | None = None
) -> Picture | None:
    """The image in ``data`` fitted into ``columns`` by ``rows`` cells; None if not shown.

    Decoded from memory, only as JPEG, PNG, GIF or WebP, never above triage's pixel limit;
    turned upright as its EXIF says; transparent parts on white.
    """
    limits = limits or Limits()
    columns, rows = max(1, columns), max(1, rows)
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
            width, height = image.size
            if width * height > limits.max_image_pixels or not width or not height:
                return None
            fmt = image.format or ""
            frames = int(getattr(image, "n_frames", 1))
            if frame:
                image.seek(min(max(frame, 0), frames - 1))
            image.draft("RGB", (columns, rows * 2))
            upright = ImageOps.exif_transpose(image)
            rgba = upright.convert("RGBA")
    except (UnidentifiedImageError, OSError, ValueError, EOFError, Image.DecompressionBombError):
        return None
    scale = min(columns / rgba.width, rows * 2 / rgba.height)
    size = (max(1, round(rgba.width * scale)), max(1, round(rgba.height * scale)))
    fitted = rgba.resize(size, Image.Resampling.LANCZOS)
    flat = Image.new("RGB", size, BACKGROUND)
    flat.paste(fitted, mask=fitted.getchannel("A"))
    pixels = flat.load()
    assert pixels is not None
    cells: list[tuple[tuple[RGB, RGB | None], ...]] = []
    for y in range(0, size[1], 2):
        row: list[tuple[RGB, RGB | None]] = []
        for x in range(size[0]):
            upper = _rgb(pixels[x, y])
            lower = _rgb(pixels[x, y + 1]) if y + 1 < size[1] else None
            row.append((upper, lower))
        cells.append(tuple(row))
    return Picture(fmt, width, height, frames, tuple(cells))


def _rgb(value: Any) -> RGB:
    red, green, blue = value[:3]
    return int(red), int(green), int(blue)


def ansi(shown: Picture) -> list[str]:
    """A picture as lines for a colour terminal (24-bit colour escapes)."""
    out: list[str] = []
    for row in shown.rows:
        cells = []
        for upper, lower in row:
            back = f"\x1b[48;2;{lower[0]};{lower[1]};{lower[2]}m" if lower else "\x1b[49m"
            cells.append(f"\x1b[38;2;{upper[0]};{upper[1]};{upper[2]}m{back}▀")
        out.append("".join(cells) + "\x1b[0m")
    return out


def picture_words(shown: Picture | None) -> str:
    """What a picture is, for the line above it: "JPEG, 1200 by 800 pixels"."""
    if shown is None:
        return _("This image is not shown (not a JPEG, PNG, GIF or WebP, damaged, or too large).")
    words = _("{format}, {width} by {height} pixels", **_size(shown))
    if shown.frames > 1:
        words += _(", {count} frames (the first is shown)", count=shown.frames)
    return words


def _size(shown: Picture) -> dict[str, object]:
    return {"format": shown.format, "width": shown.width, "height": shown.height}


# --------------------------------------------------------------------------- signals


def attachment_number(parts: Sequence[Part], index: int) -> int:
    """The number the attachment list gives part ``index`` (the body is not an attachment)."""
    has_body = bool(parts) and media_type(parts[0]).startswith("text/")
    return index if has_body else index + 1


def is_body(parts: Sequence[Part], index: int) -> bool:
    """Whether part ``index`` is the message's text (the first part, when it is text)."""
    return index == 0 and bool(parts) and media_type(parts[0]).startswith("text/")


def detector_words(detector: str) -> str:
    """A detector's name in the staff language."""
    from sealpost.clients.review.triage import detector_word  # noqa: PLC0415 - key server

    words = {"language": _("language"), "extraction": _("not read")}
    return words.get(detector) or detector_word(detector)


def where(s: Signal, parts: Sequence[Part]) -> str:
    """Where a signal points, in the staff language."""
    if is_body(parts, s.part):
        place = _("the text")
    else:
        part = parts[s.part] if s.part < len(parts) else None
        name = (part.filename if part else "") or _("(no name)")
        number = attachment_number(parts, s.part)
        places = {
            "text": _("attachment {number} ({name})", number=number, name=name),
            "pdf": _("the PDF text of attachment {number} ({name})", number=number, name=name),
            "ocr": _(
                "the text read in the image of attachment {number} ({name})",
                number=number,
                name=name,
            ),
            "bytes": _("the file of attachment {number} ({name})", number=number, name=name),
        }
        place = places[s.source]
    if s.source == "bytes":
        return _("{place}, bytes {start}-{end}", place=place, start=s.start, end=s.end)
    if not markable(s):
        return place
    return _("{place}, characters {start}-{end}", place=place, start=s.start, end=s.end)


def signal_lines(
    report: Report | None,
    parts: Sequence[Part],
    texts: Mapping[tuple[int, str], str],
    shown: Callable[[str], str] = visual,
) -> list[str]:
    """The list of signals: number, detector, where, reason, confidence, matched text.

    ``texts`` holds the texts shown, by (part, source): a signal whose text is not
    shown, or does not hold its span, says that it is not marked. ``shown`` lays out the
    matched text (:func:`visual`, or :func:`visible` for logical order).
    """
    out: list[str] = []
    for number, s in numbered(report):
        line = f"[{number}] " + _(
            "{detector}, {where}: {reason} (confidence {confidence:.2f})",
            detector=detector_words(s.detector),
            where=where(s, parts),
            reason=explain(s),
            confidence=s.confidence,
        )
        if markable(s):
            where_found = texts.get((s.part, s.source))
            if where_found is None:
                line += " " + _("(not marked: that text is not shown)")
            elif not _found(s, where_found):
                line += " " + _("(not marked: the shown text differs)")
        out.append(line)
        if s.text:
            out.append(f"      «{shown(s.text)}»")
    return out
