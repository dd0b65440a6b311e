"""Whole messages: text, a PDF's text layer, OCR of a photo, images hiding data; no network."""

from __future__ import annotations

import importlib.resources
import io
import os
import socket
from pathlib import Path
from typing import Any, NoReturn

import pytest
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

from sealpost.clients.triage import EntryKind, Limits, WatchEntry, WatchList, explain, triage
from sealpost.clients.triage import extract as extract_module
from sealpost.clients.triage.extract import image_facts
from sealpost.crypto.envelope import Part

FONT = Path(str(importlib.resources.files("fontpkg_noto_sans") / "files/NotoSans[wdth,wght].ttf"))
LISTS = (WatchList("d-1234", (WatchEntry(EntryKind.CONTACT_BAN, "Mohammed El Amrani"),)),)


def needs_tesseract() -> None:
    """In CI (make test installs it with make ocr-deps) a missing Tesseract is a failure."""
    if extract_module.tesseract() is None:
        if os.environ.get("CI"):
            pytest.fail("Tesseract is missing: make ocr-deps")
        pytest.skip("Tesseract is missing: make ocr-deps")


def photo(lines: list[str], fmt: str = "PNG", size: int = 40) -> bytes:
    """Black text on white, like a photographed note."""
    font = ImageFont.truetype(str(FONT), size)
    image = Image.new("RGB", (1400, 120 + 80 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((60, 60 + 80 * i), line, fill="black", font=font)
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def pdf(lines: list[str]) -> bytes:
    document = FPDF()
    document.add_font("Noto", fname=str(FONT))
    document.add_page()
    document.set_font("Noto", size=12)
    for line in lines:
        document.cell(text=line, new_x="LMARGIN", new_y="NEXT")
    return bytes(document.output())


def test_text_part_signals_with_spans_into_the_text() -> None:
    text = "Hoi! Groeten van Muhammad el-Amrani. Bel 06-12345678 of stort op NL91ABNA0417164300."
    report = triage([Part("text/plain; charset=utf-8", text.encode())], LISTS)
    found = {s.detector: s for s in report.signals}
    assert set(found) == {"watch-list", "phone", "bank-account", "language"}
    for s in report.signals:
        assert (s.part, s.source) == (0, "text")
        assert text[s.start : s.end] == s.text or s.detector == "language"
    assert found["watch-list"].text == "Muhammad el-Amrani"
    assert report.score == pytest.approx(0.6 + 0.9 + 0.97)


def test_a_pdf_text_layer_is_read_with_spans_into_it() -> None:
    parts = [
        Part("text/plain", b"Zie bijlage."),
        Part("application/pdf", pdf(["Factuur", "Betaal naar NL91 ABNA 0417 1643 00", "Dank"])),
    ]
    report = triage(parts)
    (iban,) = [s for s in report.signals if s.detector == "bank-account"]
    assert (iban.part, iban.source, iban.text) == (1, "pdf", "NL91 ABNA 0417 1643 00")
    text = extract_module.pdf_text(parts[1].data, Limits()).text
    assert text[iban.start : iban.end] == iban.text


def test_an_unreadable_pdf_is_a_note_not_an_error() -> None:
    report = triage([Part("application/pdf", b"%PDF-1.7 not really")])
    assert [(s.detector, s.reason, s.weight) for s in report.signals] == [
        ("extraction", "pdf-unreadable", 0.0)
    ]


def test_ocr_reads_an_iban_in_a_photo() -> None:
    needs_tesseract()
    image = photo(["Lieve broer, stort het geld op", "NL91 ABNA 0417 1643 00", "Bel 06-12345678"])
    report = triage([Part("image/png", image)])
    by_detector = {s.detector: s for s in report.signals}
    assert by_detector["bank-account"].source == "ocr"
    assert dict(by_detector["bank-account"].values)["iban"] == "NL91ABNA0417164300"
    assert dict(by_detector["phone"].values)["number"] == "+31612345678"
    read = extract_module.ocr(image, Limits()).text
    iban = by_detector["bank-account"]
    assert read[iban.start : iban.end] == iban.text


def test_ocr_reads_a_name_in_a_jpeg_photo() -> None:
    needs_tesseract()
    report = triage([Part("image/jpeg", photo(["Groeten van Mohammed El Amrani"], "JPEG"))], LISTS)
    assert [s.reason for s in report.signals if s.detector == "watch-list"] == ["contact-ban"]


def test_without_tesseract_ocr_says_it_did_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract_module, "tesseract", lambda: None)
    report = triage([Part("image/png", photo(["NL91 ABNA 0417 1643 00"]))])
    (note,) = report.signals
    assert (note.detector, note.reason, note.part, note.weight) == (
        "extraction",
        "ocr-missing",
        0,
        0,
    )
    assert "Tesseract" in explain(note)


def test_a_broken_image_is_a_note() -> None:
    report = triage([Part("image/png", b"\x89PNG\r\n\x1a\n broken")])
    assert [s.reason for s in report.signals] in (["image-unreadable"], ["ocr-missing"])


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_image_end_markers_are_found(fmt: str) -> None:
    data = photo(["x"], fmt, size=20)
    facts = image_facts(data)
    assert facts is not None
    assert facts.end == len(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_data_after_the_end_marker_is_a_signal(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract_module, "tesseract", lambda: None)
    image = photo(["x"], fmt, size=20)
    hidden = b"PK\x03\x04" + os.urandom(400)
    report = triage([Part(f"image/{fmt.lower()}", image + hidden)])
    (signal,) = [s for s in report.signals if s.detector == "hidden-data"]
    assert (signal.source, signal.start, signal.end) == ("bytes", len(image), len(image) + 404)
    assert dict(signal.values)["kind"] == "zip"
    assert signal.reason == "image-trailing-data"


def test_a_jpeg_thumbnail_end_marker_does_not_end_the_photo() -> None:
    thumbnail = photo(["t"], "JPEG", size=10)
    exif = Image.Exif()
    exif[0x010E] = "x"
    image = Image.open(io.BytesIO(photo(["photo"], "JPEG")))
    out = io.BytesIO()
    # An APP segment holding a whole JPEG (with its own end marker), as EXIF thumbnails are.
    image.save(out, format="JPEG", exif=exif.tobytes() + thumbnail[:60000])
    data = out.getvalue()
    facts = image_facts(data)
    assert facts is not None
    assert facts.end == len(data)


def test_an_image_larger_than_its_pixels_could_need(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract_module, "tesseract", lambda: None)
    small = Image.new("RGB", (64, 64), "white")
    out = io.BytesIO()
    small.save(out, format="PNG", pnginfo=_big_text_chunk())
    report = triage([Part("image/png", out.getvalue())])
    assert "image-oversized" in [s.reason for s in report.signals]


def _big_text_chunk() -> Any:
    from PIL.PngImagePlugin import PngInfo  # noqa: PLC0415 - only this test needs it

    info = PngInfo()
    info.add_text("comment", os.urandom(300_000).hex(), zip=False)
    return info


def test_an_ordinary_photo_raises_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract_module, "tesseract", lambda: None)
    for fmt in ("PNG", "JPEG"):
        report = triage([Part(f"image/{fmt.lower()}", photo(["Tot zondag!"], fmt))])
        assert [s for s in report.signals if s.detector == "hidden-data"] == []


def _no_network(*args: object, **kwargs: object) -> NoReturn:
    raise AssertionError("triage opened a network connection")


def test_triage_opens_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("socket", "create_connection", "getaddrinfo", "gethostbyname"):
        monkeypatch.setattr(socket, name, _no_network)
    parts = [
        Part("text/plain", b"Mail jan@voorbeeld.nl, www.voorbeeld.nl, t.me/x, 06-12345678"),
        Part("application/pdf", pdf(["Betaal NL91 ABNA 0417 1643 00"])),
        Part("image/png", photo(["NL91 ABNA 0417 1643 00"])),
    ]
    report = triage(parts, LISTS)
    assert {s.detector for s in report.signals} >= {"link", "phone", "bank-account"}


def test_invisible_characters_do_not_hide_an_iban_and_are_a_signal() -> None:
    text = "stort op NL91\u200bABNA\u200b0417164300 vandaag, het pak\u00adketje komt"
    lists = [WatchList("pi", (WatchEntry(EntryKind.CODE_WORD, "pakketje"),))]
    report = triage([Part("text/plain", text.encode())], lists)
    by_reason = {s.reason: s for s in report.signals}
    iban = by_reason["iban"]
    assert text[iban.start : iban.end] == iban.text == "NL91\u200bABNA\u200b0417164300"
    assert by_reason["code-word"].text == "pak\u00adketje"
    invisible = [s for s in report.signals if s.reason == "invisible"]
    assert [(s.text, s.detector) for s in invisible] == [("\u200b", "hidden-data")] * 2 + [
        ("\u00ad", "hidden-data")
    ]
    assert all(text[s.start : s.end] == s.text for s in invisible)
    assert by_reason["language"].end == len(text)


@pytest.mark.parametrize(
    "text",
    [
        "groeten van de familie 👨\u200d👩\u200d👧 tot zondag",  # emoji joined by ZWJ
        "سلام\u200cها دوستان عزیز من",  # noqa: RUF001 - Persian writes ZWNJ inside words
        "\ufeffHoi, een bericht met een byte order mark vooraan",
    ],
)
def test_joiners_that_scripts_need_are_not_a_signal(text: str) -> None:
    report = triage([Part("text/plain", text.encode())])
    assert [s for s in report.signals if s.detector == "hidden-data"] == []
