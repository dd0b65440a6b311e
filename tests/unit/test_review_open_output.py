"""What ``sealpost review open`` prints: laid out and marked for people, exact for scripts."""

from __future__ import annotations

import io

from PIL import Image

from sealpost.clients.review import display
from sealpost.clients.review.cli import Layout, _open_json, _open_text
from sealpost.clients.triage.signals import Report, signal
from sealpost.crypto.envelope import Part
from tests.unit.test_review_screens import ARABIC, NAME_AT, _pdf, make_review

TEXT = "Bel 0612345678\n" + ARABIC
HEBREW = "שלום"


def _report(pdf_at: int) -> Report:
    return Report(
        (
            signal("phone", 0, "text", 4, 14, "0612345678", "phone", 0.9, region="NL"),
            signal("watch-list", 0, "text", 15 + NAME_AT, 19 + NAME_AT, "محمد", "contact-ban",
                   0.95, list="d-1"),
            signal("phone", 2, "pdf", pdf_at, pdf_at + 10, "0687654321", "phone", 0.9,
                   region="NL"),
        )
    )  # fmt: skip


def _parts() -> tuple[Part, ...]:
    photo = io.BytesIO()
    Image.new("RGB", (40, 20), (0, 0, 200)).save(photo, format="PNG")
    return (
        Part("text/plain", TEXT.encode()),
        Part("image/png", photo.getvalue(), "foto.png"),
        Part("application/pdf", _pdf(["Bel 0687654321", "Tot ziens"]), "brief.pdf"),
        Part("application/octet-stream", b"\x00\x01", "data.bin"),
    )


def test_people_see_marks_the_shaped_text_every_attachment_and_the_signals() -> None:
    parts = _parts()
    pdf_at = display.pdf(2, parts[2].data).text.index("0687654321")
    review = make_review(parts, sender="أم")
    text = _open_text(review, [], None, report=_report(pdf_at), layout=Layout(width=80))
    lines = text.splitlines()
    assert "Bel ⟦0612345678⟧¹" in lines
    assert "ﺍﺪﻏ ﻢﻗﺮﻟﺍ ﻰﻠﻋ ²⟦ﺪﻤﺤﻤ⟧ﺑ ﻞﺼﺗﺍ" in lines
    assert ARABIC not in text
    assert "sender    ﻡﺃ" in lines
    assert "[1] foto.png" in lines
    assert "PNG, 40 by 20 pixels" in lines
    assert "\x1b" not in text  # not a terminal: no colours, no picture
    assert "— page 1 of 2 —" in lines
    assert "Bel ⟦0687654321⟧³" in lines
    assert "Tot ziens" in lines
    assert any("Not shown here (application/octet-stream)" in line for line in lines)
    at = lines.index("triage signals (they point at what may matter; they decide nothing):")
    assert lines[at + 1].startswith("[1] phone number, the text, characters 4-14: A phone number")
    assert lines[at + 5].startswith("[3] phone number, the PDF text of attachment 2 (brief.pdf)")


def test_raw_keeps_the_text_as_sent_in_logical_order_without_marks() -> None:
    parts = _parts()
    review = make_review(parts, sender="أم")
    text = _open_text(review, [], None, report=_report(4), layout=Layout(raw=True))
    assert TEXT in text
    assert "⟦" not in text
    assert "sender    \u2068أم\u2069" in text.splitlines()
    assert "      «محمد»" in text.splitlines()


def test_a_terminal_gets_the_photo_and_coloured_marks() -> None:
    review = make_review(_parts())
    text = _open_text(review, [], None, report=_report(4), layout=Layout(terminal=True))
    assert "\x1b[38;2;0;0;200m" in text
    assert "⟦\x1b[1;7m0612345678\x1b[0m⟧¹" in text


def test_json_keeps_the_exact_text_and_adds_the_report_when_given() -> None:
    sent = "a\x1bb \u202e" + HEBREW
    review = make_review((Part("text/plain", sent.encode()),))
    data = _open_json(review, [], None)
    assert data["text"] == sent
    assert "triage" not in data
    report = Report((signal("phone", 0, "text", 0, 1, "a", "phone", 0.5, region="NL"),))
    with_report = _open_json(review, [], None, report)
    assert with_report["triage"]["format"] == "triage/v1"
    assert with_report["triage"]["signals"][0]["start"] == 0


def test_control_characters_never_reach_the_terminal() -> None:
    review = make_review((Part("text/plain", b"hallo\x1b]0;pwned\x07 daar"),))
    for layout in (Layout(), Layout(raw=True)):
        text = _open_text(review, [], None, layout=layout)
        assert "\x1b" not in text
        assert "hallo␛]0;pwned␇ daar" in text
