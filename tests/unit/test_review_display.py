"""The review screen's layout: right-to-left text, marked spans, photos, PDF text.

Display only: every test also checks that what is shown maps back to the text as sent,
so that a marked span is where triage found it, whatever reordering happened.
"""

from __future__ import annotations

import io
import unicodedata

import arabic_reshaper
import pytest
from bidi import get_display
from fpdf import FPDF
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pypdf import PdfWriter

from sealpost.clients.review import display
from sealpost.clients.review.display import Line, Mark, Segment
from sealpost.clients.triage.extract import Limits
from sealpost.clients.triage.signals import Report, signal
from sealpost.crypto.envelope import Part

ARABIC = "اتصل بمحمد على الرقم غدا"
HEBREW = "שלום, מה שלומך היום"


def _marked(shown: list[Line], number: int = 1) -> str:
    return "".join(s.text for line in shown for s in line.segments if s.mark == number)


def _logical(shown: str) -> str:
    """Shown right-to-left letters back in logical order, unshaped (ligatures undone)."""
    return "".join(unicodedata.normalize("NFKC", c) for c in reversed(shown))


def _reference(text: str) -> str:
    """The libraries' own answer: shaped, then python-bidi's full UAX #9 (Rust)."""
    shaped = arabic_reshaper.ArabicReshaper(
        configuration={"delete_harakat": False, "ARABIC LIGATURE ALLAH": False}
    ).reshape(text)
    return str(get_display(shaped))


# --------------------------------------------------------------------------- right to left


@pytest.mark.parametrize(
    "text",
    [
        ARABIC,
        HEBREW,
        "السلام عليكم، كيف حالك؟",
        "Hello שלום world مرحبا لا إله",
        "رقم الحساب NL91ABNA0417164300 شكرا",
        "بتاريخ 12.03.2026 الساعة 14:30",
        "سلام، حالت چطور است؟ می‌خواهم ببینمت",  # Persian, with a zero-width non-joiner
    ],
)
def test_right_to_left_text_is_shaped_and_reordered_as_the_reference(text: str) -> None:
    (line,) = display.lines(text)
    assert line.plain == _reference(text).replace("\u200c", "")
    assert line.plain != text


def test_a_span_in_arabic_is_marked_on_the_shaped_reversed_word() -> None:
    start = ARABIC.index("محمد")
    (line,) = display.lines(ARABIC, [Mark(start, start + 4, 1)])
    assert line.rtl
    # The name, joined to the ب before it (medial forms), right to left.
    assert _marked([line]) == "ﺪﻤﺤﻤ"
    assert _logical(_marked([line])) == "محمد"
    assert display.plain([line]) == "ﺍﺪﻏ ﻢﻗﺮﻟﺍ ﻰﻠﻋ ¹⟦ﺪﻤﺤﻤ⟧ﺑ ﻞﺼﺗﺍ"


def test_a_span_over_a_lam_alef_ligature_marks_the_ligature() -> None:
    text = "قال السلام عليكم"
    start = text.index("السلام")
    (line,) = display.lines(text, [Mark(start, start + 6, 3)])
    marked = _marked([line], 3)
    assert "ﻼ" in marked  # lam and alef drawn as one
    assert _logical(marked) == "السلام"
    assert "ﻝﺎﻗ" in line.plain
    assert "ﻝﺎﻗ" not in marked


def test_harakat_and_hamza_ligatures_keep_every_letter() -> None:
    for text in ["لَا تقلق", "لأن الأمر", "مُحَمَّد", "الإسلام"]:
        shaped, origin = display._shape(text)
        assert shaped != text
        assert len(origin) == len(shaped)
        assert sorted(set(origin)) == [i for i in range(len(text)) if i in set(origin)]
        # Every letter and haraka is shown (the ligature counts for its lam and alef).
        assert len(unicodedata.normalize("NFKC", shaped)) == len(text)


def test_a_span_in_hebrew_inside_left_to_right_text() -> None:
    text = "Bel Mosje: משה כהן, 0612345678 ok"
    start = text.index("משה כהן")
    shown = display.lines(
        text, [Mark(start, start + 7, 2), Mark(text.index("06"), text.index("06") + 10, 5)]
    )
    (line,) = shown
    assert not line.rtl
    assert line.plain.startswith("Bel Mosje: ")
    assert _marked(shown, 2) == "ןהכ השמ"
    assert _marked(shown, 5) == "0612345678"


@pytest.mark.parametrize("width", range(4, 30))
def test_marks_survive_wrapping_at_any_width(width: int) -> None:
    start = ARABIC.index("محمد")
    shown = display.lines(ARABIC, [Mark(start, start + 4, 1)], width)
    assert all(line.cells <= width for line in shown)
    assert sorted(_marked(shown)) == sorted("ﺪﻤﺤﻤ")
    # Lines are broken in reading order: the first line holds the text's first word.
    assert shown[0].plain.endswith("ﻞﺼﺗﺍ")


def test_decorations_count_in_the_width() -> None:
    text = "Bel 0612345678 morgen of overmorgen"
    at = text.index("06")
    shown = display.lines(text, [Mark(at, at + 10, 12)], 20, decoration=display.plain_decoration)
    for line in display.plain(shown).splitlines():
        assert len(line) <= 20
    assert "⟦0612345678⟧¹²" in display.plain(shown)


def test_left_to_right_text_can_be_left_for_the_terminal_to_wrap() -> None:
    text = "een lange regel " * 10 + "\n" + "שלום עולם " * 5
    shown = display.lines(text, width=20, wrap_ltr=False)
    assert shown[0].plain == text.splitlines()[0]
    assert all(line.cells <= 20 for line in shown[1:])
    assert len(shown) > 2


hebrew_words = st.text(alphabet="אבגדהוזחטיכלמנסעפצקרשת", min_size=1, max_size=6)
latin_words = st.text(alphabet="abcdefghij0123456789", min_size=1, max_size=6)
punctuation = st.sampled_from([",", ".", ":", "-", "!", "?", "'"])


@settings(max_examples=150, deadline=None)
@given(
    words=st.lists(st.one_of(hebrew_words, latin_words, punctuation), min_size=1, max_size=20),
    width=st.integers(min_value=3, max_value=30),
    data=st.data(),
)
def test_every_character_is_shown_once_and_marks_stay_on_their_span(
    words: list[str], width: int, data: st.DataObject
) -> None:
    text = " ".join(words)
    start = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    end = data.draw(st.integers(min_value=start + 1, max_value=len(text)))
    shown = display.lines(text, [Mark(start, end, 1)], width)
    every = "".join(line.plain for line in shown)
    assert sorted(every.replace(" ", "")) == sorted(text.replace(" ", ""))
    assert sorted(_marked(shown).replace(" ", "")) == sorted(text[start:end].replace(" ", ""))
    assert all(line.cells <= width for line in shown)


def test_control_characters_are_shown_not_obeyed() -> None:
    text = "rood\x1b[31m\x07 en\tverder\r\nvolgende\x9bregel"
    shown = display.lines(text)
    assert [line.plain for line in shown] == ["rood␛[31m␇ en    verder", "volgende\ufffdregel"]
    assert display.visible(text) == "rood␛[31m␇ en\tverder␍\nvolgende\ufffdregel"
    # Invisible format characters are not drawn; the span still maps.
    hidden = "NL91\u200bABNA"
    (line,) = display.lines(hidden, [Mark(0, 9, 1)])
    assert line.plain == "NL91ABNA"
    assert _marked([line]) == "NL91ABNA"


def test_isolates_and_embeddings_do_not_break_the_layout() -> None:
    text = "שלום \u2068abc\u2069 \u202bעולם\u202c"  # noqa: RUF001 - Hebrew
    (line,) = display.lines(text)
    assert "abc" in line.plain
    assert "\u2068" not in line.plain
    assert "\u202b" not in line.plain


def test_plain_marks_work_without_colour_and_number_in_reading_order() -> None:
    ltr = Line((Segment("bel "), Segment("0612", 3), Segment(" nu")))
    rtl = Line((Segment("ﺍﺪﻏ "), Segment("ﺪﻤﺤﻤ", 1), Segment("ﺑ")), rtl=True)
    assert display.plain([ltr, rtl]) == "bel ⟦0612⟧³ nu\nﺍﺪﻏ ¹⟦ﺪﻤﺤﻤ⟧ﺑ"  # noqa: RUF001 - Arabic
    assert display.plain([ltr], styled=True) == "bel ⟦\x1b[1;7m0612\x1b[0m⟧³ nu"
    assert display.label(1024) == "¹⁰²⁴"


# --------------------------------------------------------------------------- marks and signals


def _report() -> tuple[str, Report]:
    text = "Bel Mohammed op 0612345678"
    return text, Report(
        (
            signal("watch-list", 0, "text", 4, 12, "Mohammed", "contact-ban", 0.95, list="d-1"),
            signal("phone", 0, "text", 16, 26, "0612345678", "phone", 0.9, region="NL"),
            signal("phone", 0, "text", 0, 3, "Xyz", "phone", 0.9, region="NL"),
            signal("language", 0, "text", 0, 26, "", "language", 0.8, language="nl"),
            signal("phone", 1, "pdf", 0, 3, "Bel", "phone", 0.9, region="NL"),
            signal("hidden-data", 2, "bytes", 10, 90, "", "image-trailing-data", 0.9,
                   size="80", kind="zip", format="PNG"),
        )
    )  # fmt: skip


def test_only_spans_that_match_the_shown_text_are_marked() -> None:
    text, report = _report()
    assert display.marks_for(report, 0, "text", text) == (Mark(4, 12, 1), Mark(16, 26, 2))
    assert display.marks_for(report, 0, "pdf", text) == ()
    assert display.marks_for(report, 0, "text", text[:20]) == (Mark(4, 12, 1),)
    assert display.marks_for(None, 0, "text", text) == ()


def test_the_signal_list_explains_each_and_says_what_is_not_marked() -> None:
    text, report = _report()
    parts = [
        Part("text/plain", text.encode()),
        Part("application/pdf", b"%PDF", "brief.pdf"),
        Part("image/png", b"", "foto.png"),
    ]
    found = display.signal_lines(report, parts, {(0, "text"): text})
    assert found[0] == (
        "[1] watch list, the text, characters 4-12: A name on a contact ban (d-1). "
        "(confidence 0.95)"
    )
    assert found[1] == "      «Mohammed»"
    assert found[4].endswith("(not marked: the shown text differs)")
    assert found[6] == "[4] language, the text: Written in Dutch. (confidence 0.80)"
    assert found[7].startswith("[5] phone number, the PDF text of attachment 1 (brief.pdf)")
    assert found[7].endswith("(not marked: that text is not shown)")
    assert found[9].startswith(
        "[6] hidden data, the file of attachment 2 (foto.png), bytes 10-90: 80 bytes after"
    )


def test_attachment_numbers_follow_the_list() -> None:
    body = Part("text/plain", b"hoi")
    photo = Part("image/png", b"")
    assert display.attachment_number([body, photo], 1) == 1
    assert display.attachment_number([photo, photo], 0) == 1
    assert display.is_body([body, photo], 0)
    assert not display.is_body([photo, body], 0)


# --------------------------------------------------------------------------- photos


def _image(
    size: tuple[int, int], colour: tuple[int, ...], fmt: str = "PNG", mode: str = "RGB"
) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, colour).save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    ("size", "fmt"),
    [((4000, 3000), "JPEG"), ((300, 2000), "PNG"), ((16, 16), "GIF"), ((640, 480), "WEBP")],
)
def test_photos_are_drawn_within_the_bounds(size: tuple[int, int], fmt: str) -> None:
    shown = display.picture(_image(size, (10, 120, 240), fmt), 60, 15)
    assert shown is not None
    assert shown.format == fmt
    assert (shown.width, shown.height) == size
    assert 1 <= shown.columns <= 60
    assert 1 <= len(shown.rows) <= 15
    assert all(len(row) == shown.columns for row in shown.rows)
    upper, _lower = shown.rows[0][0]
    assert all(abs(a - b) < 12 for a, b in zip(upper, (10, 120, 240), strict=True))
    lines = display.ansi(shown)
    assert len(lines) == len(shown.rows)
    assert all(line.count("▀") == shown.columns for line in lines)


def test_the_aspect_is_kept_with_two_pixels_per_cell() -> None:
    wide = display.picture(_image((400, 100), (0, 0, 0)), 40, 40)
    assert wide is not None
    assert (wide.columns, len(wide.rows)) == (40, 5)
    odd = display.picture(_image((10, 3), (0, 0, 0)), 10, 10)
    assert odd is not None
    assert odd.rows[-1][0][1] is None  # no lower pixel: the terminal's own background


def test_transparency_is_drawn_on_white_and_exif_turns_the_photo_upright() -> None:
    clear = display.picture(_image((8, 8), (255, 0, 0, 0), "PNG", "RGBA"), 8, 4)
    assert clear is not None
    assert clear.rows[0][0][0] == display.BACKGROUND
    tall = Image.new("RGB", (200, 100), (0, 200, 0))
    exif = tall.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to show
    out = io.BytesIO()
    tall.save(out, format="JPEG", exif=exif.tobytes())
    shown = display.picture(out.getvalue(), 100, 100)
    assert shown is not None
    assert shown.columns * 2 < len(shown.rows) * 2 * 2  # taller than wide, as it is seen


def test_animated_gifs_say_how_many_frames() -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 0, 255)]]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:])
    first = display.picture(out.getvalue(), 8, 4)
    second = display.picture(out.getvalue(), 8, 4, frame=1)
    assert first is not None
    assert second is not None
    assert first.frames == 2
    assert first.rows[0][0][0][0] > 200
    assert second.rows[0][0][0][2] > 200
    assert "2 frames (the first is shown)" in display.picture_words(first)


def test_what_is_not_shown() -> None:
    assert display.picture(_image((10, 10), (0, 0, 0), "BMP"), 10, 10) is None  # not decoded
    assert display.picture(b"\x89PNG\r\n\x1a\n" + bytes(40), 10, 10) is None
    assert display.picture(b"", 10, 10) is None
    big = _image((200, 200), (0, 0, 0))
    assert display.picture(big, 10, 10, limits=Limits(max_image_pixels=10_000)) is None
    assert "not shown" in display.picture_words(None)


# --------------------------------------------------------------------------- PDFs


def _pdf(pages: list[str]) -> bytes:
    document = FPDF()
    document.set_font("helvetica", size=12)
    for text in pages:
        document.add_page()
        if text:
            document.cell(text=text)
    return bytes(document.output())


def test_pdf_text_page_by_page_with_offsets_triage_counts_in() -> None:
    read = display.pdf(1, _pdf(["Eerste pagina 0612345678", "Tweede", "Derde"]))
    assert read.note == ""
    assert read.page_count == 3
    assert [page for _offset, page in read.pages] == ["Eerste pagina 0612345678", "Tweede", "Derde"]
    for offset, page in read.pages:
        assert read.text[offset : offset + len(page)] == page


def test_a_long_pdf_says_how_many_pages_it_has() -> None:
    read = display.pdf(1, _pdf(["een", "twee", "drie"]), Limits(max_pdf_pages=2))
    assert (len(read.pages), read.page_count) == (2, 3)


def test_encrypted_broken_and_scanned_pdfs_say_so() -> None:
    writer = PdfWriter()
    writer.add_blank_page(100, 100)
    writer.encrypt("geheim", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    assert display.pdf(1, out.getvalue()).note == "This PDF is encrypted: its text was not read."
    assert display.pdf(1, b"%PDF-1.7 kapot").note == "This PDF could not be read."
    scan = display.pdf(1, _pdf([""]))
    assert scan.pages == ()
    assert "no text layer" in scan.note


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60), width=st.one_of(st.none(), st.integers(1, 40)))
def test_any_text_from_the_public_is_laid_out_without_failing(text: str, width: int | None) -> None:
    shown = display.lines(text, [Mark(0, len(text), 1)], width)
    assert display.plain(shown).count("⟧") <= sum(len(line.segments) for line in shown)
    assert "\x1b" not in display.plain(shown)
    assert display.lines("\u05fc\u0590 שלום", width=width)  # unassigned characters too


def test_a_text_longer_than_is_shown_says_so() -> None:
    limits = Limits(max_text_chars=10)
    long = Part("text/plain", "é".encode() * 12)
    assert display.part_text(long, limits) == "é" * 10
    assert display.cut_note(long, limits).startswith("The text goes on for 2 more characters")
    assert display.cut_note(Part("text/plain", "é".encode() * 10), limits) == ""
    assert display.cut_note(Part("text/plain", b"kort")) == ""
