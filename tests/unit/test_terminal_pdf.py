"""The printed delivery slip: any script, the facts an officer needs, broken images survive."""

from __future__ import annotations

import datetime as dt
import io
import unicodedata

import pypdf
import pytest
from PIL import Image

from sealpost.clients.terminal.desk import delivery_reference, notice_reference
from sealpost.clients.terminal.pdf import (
    DeliverySlip,
    is_right_to_left,
    printable_text,
    render_slip,
)
from sealpost.clients.terminal.reply import reply_reference
from sealpost.crypto.envelope import Part
from sealpost.i18n import TIME_ZONE, translator

SENT = dt.datetime(2026, 5, 4, 8, 15, tzinfo=dt.UTC)
PRINTED = dt.datetime(2026, 5, 5, 9, 0, tzinfo=dt.UTC)
CHINESE = "我们都很想你。"


def _text(data: bytes) -> tuple[str, list[pypdf.PageObject]]:
    reader = pypdf.PdfReader(io.BytesIO(data))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return "".join(c for c in text if c == "\n" or unicodedata.category(c) != "Cc"), list(
        reader.pages
    )


def _slip(
    text: str, attachments: tuple[Part, ...] = (), *, privileged: bool = False
) -> DeliverySlip:
    return DeliverySlip(
        institution_id="pi-print",
        detainee_id="d-7",
        sender_name="Anna de Groot",
        sent_at=SENT,
        printed_at=PRINTED,
        reference="pi-print-20260505-0a1b2c3d",
        message_id="0a1b2c3d" * 4,
        privileged=privileged,
        text=text,
        attachments=attachments,
        language="en",
    )


def test_slip_carries_message_sender_date_and_reference_in_any_script() -> None:
    photo = io.BytesIO()
    Image.new("RGB", (30, 20), (0, 128, 0)).save(photo, "JPEG")
    broken = Part("image/png", b"\x89PNG\r\n\x1a\nnot really", "kapot.png")
    text = f"Lieve Kees,\n\nمع السلامة\n{CHINESE}\nGroetjes"
    data = render_slip(
        _slip(text, (Part("image/jpeg", photo.getvalue(), "tuin.jpg"), broken), privileged=True)
    )
    assert data.startswith(b"%PDF-")
    extracted, pages = _text(data)
    for expected in (
        "Lieve Kees,",
        "Groetjes",
        CHINESE,
        "Anna de Groot",
        translator("detainee", "en").datetime(SENT),
        translator("detainee", "en").datetime(PRINTED),
        "pi-print-20260505-0a1b2c3d",
        "0a1b2c3d" * 4,
        "Message for d-7",
        "Privileged",
        "tuin.jpg",
        "kapot.png",
        "could not be printed",
    ):
        assert expected in extracted, expected
    assert len(pages) == 3  # the message, the photo, the page saying the broken one failed
    assert len(pages[1].images) == 1
    assert "pi-print-20260505-0a1b2c3d · page 3 of 3" in pages[2].extract_text()


def test_control_characters_never_reach_the_page() -> None:
    assert printable_text("a\x00b\x07c\r\nd\te\u200df") == "abc\nd    e\u200df"
    extracted, _pages = _text(render_slip(_slip("bell\x07 and nul\x00 gone")))
    assert "bell and nul gone" in extracted


@pytest.mark.parametrize(
    ("paragraph", "rtl"),
    [
        ("مرحبا Hallo", True),
        ("Hallo مرحبا", False),
        ("שלום", True),
        ("123 — مرحبا", True),
        ("你好", False),
        ("", False),
    ],
)
def test_paragraph_direction_follows_the_first_strong_character(paragraph: str, rtl: bool) -> None:
    assert is_right_to_left(paragraph) is rtl


def test_delivery_reference_names_institution_day_and_message() -> None:
    message_id = bytes.fromhex("0a1b2c3d" * 4)
    assert delivery_reference("pi-print", message_id, PRINTED) == format(
        f"pi-print-{PRINTED.astimezone(TIME_ZONE).strftime('%Y%m%d')}-0a1b2c3d"
    )


def test_references_take_the_day_in_the_netherlands() -> None:
    message_id = bytes.fromhex("0a1b2c3d" * 4)
    late = dt.datetime(2026, 5, 4, 22, 30, tzinfo=dt.UTC)  # 00:30 on 5 May in Amsterdam
    assert delivery_reference("pi-print", message_id, late) == "pi-print-20260505-0a1b2c3d"
    assert notice_reference("pi-print", message_id, late) == "pi-print-W20260505-0a1b2c3d"
    assert reply_reference("pi-print", message_id, late) == "pi-print-R20260505-0a1b2c3d"
