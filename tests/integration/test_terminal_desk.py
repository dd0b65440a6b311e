"""The delivery desk and detainee replies against a real gateway and key server (SPEC 3.6, 3.7)."""

from __future__ import annotations

import datetime as dt
import io
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import grpc
import pypdf
import pytest
from PIL import Image

from sealpost._internal.stack import Stack, approve_all, setup_institutions
from sealpost.clients._grpc import ClientError
from sealpost.clients.relative.sdk import DeliveryStatus
from sealpost.clients.terminal.desk import DeliveryDesk, delivery_reference
from sealpost.clients.terminal.errors import AttachmentError, DeliveryError, ReplyError
from sealpost.clients.terminal.intake import IntakeLoop, MemoryStateStore
from sealpost.clients.terminal.register import DetaineeRegister
from sealpost.clients.terminal.reply import send_reply
from sealpost.crypto.envelope import Part
from sealpost.escrow.errors import KeyServerUnavailableError
from sealpost.i18n import translator
from sealpost.v1 import common_pb2, envelope_pb2
from tests.integration.test_terminal_intake import FAST, message_rows, verified_lawyer

pytestmark = pytest.mark.integration

A = "pi-desk"
CHINESE = "你好，爸爸。周日见！"  # noqa: RUF001 - Chinese punctuation is the point
ARABIC = "مرحبا يا أبي، كيف حالك؟"
TEXT = f"Hallo papa, tot zondag!\n{ARABIC}\n{CHINESE}\nTweede alinea — ünïcödé."
FIXED_NOW = dt.datetime(2026, 3, 14, 10, 30, tzinfo=dt.UTC)


def png(color: tuple[int, int, int] = (20, 120, 200)) -> bytes:
    data = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(data, "PNG")
    return data.getvalue()


def plain(text: str) -> str:
    """Extracted PDF text without control characters (pypdf leaves some around CJK glyphs)."""
    return "".join(c for c in text if c == "\n" or unicodedata.category(c) != "Cc")


def pdf_text(data: bytes) -> tuple[str, Sequence[pypdf.PageObject]]:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return plain("\n".join(page.extract_text() for page in reader.pages)), reader.pages


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_desk_lists_shows_prints_and_acknowledges(stack: Stack, tmp_path: Path) -> None:
    admin, terminals = setup_institutions(stack, [("d-1", A, "regular"), ("d-2", A, "regular")])
    terminal = terminals[A]
    relative = stack.relative("Fatima El Amrani")
    relative.request_contact("d-1")
    relative.request_contact("d-2")
    approve_all(admin, A)
    photo = Part("image/png", png(), "foto.png")
    letter = Part("application/pdf", b"%PDF-1.4\n% a letter\n", "brief.pdf")
    first = relative.send_sealed(relative.seal("d-1", TEXT, [photo, letter])).message_id
    other = relative.send_sealed(relative.seal("d-2", "voor d-2")).message_id
    IntakeLoop(terminal, stack.escrow_for(A), MemoryStateStore(), settings=FAST).run_once()

    desk = DeliveryDesk(terminal, A, now=lambda: FIXED_NOW)
    listed = desk.pending("d-1")
    assert [i.message_id for i in listed] == [first]
    item = listed[0]
    assert item.sender_name == "Fatima El Amrani"
    assert item.attachments == 2
    assert not item.privileged
    assert {i.message_id for i in desk.pending()} == {first, other}

    opened = desk.open(first)
    assert opened.text == TEXT
    assert [p.filename for p in opened.attachments] == ["foto.png", "brief.pdf"]
    saved = desk.save_attachments(opened, tmp_path / "attachments")
    assert [p.read_bytes() for p in saved] == [photo.data, letter.data]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in saved)
    # Showing is not delivering.
    assert relative.status(first) == DeliveryStatus.PENDING

    out = tmp_path / "slip.pdf"
    printed = desk.print_pdf(first, out)
    assert printed.reference == f"{A}-20260314-{first.hex()[:8]}"
    assert printed.reference == delivery_reference(A, first, FIXED_NOW)
    assert printed.state == common_pb2.MESSAGE_STATE_DELIVERED
    assert relative.status(first) == DeliveryStatus.DELIVERED
    assert out.stat().st_mode & 0o777 == 0o600
    text, pages = pdf_text(out.read_bytes())
    assert "Hallo papa, tot zondag!" in text
    assert CHINESE in text
    assert "Fatima El Amrani" in text
    assert translator("detainee", "nl").datetime(item.sent_at) in text  # Amsterdam time
    assert printed.reference in text
    assert "Bericht voor d-1" in text  # not in the register: Dutch, by id
    assert "brief.pdf" in text
    # The Arabic line is shaped (joined glyphs), so extraction does not give the logical
    # string back; its letters are there.
    assert {"ك", "ي", "ف"} <= set(text)
    assert len(pages) == 2  # the message, then the photo on its own page
    assert len(pages[1].images) == 1

    # Delivered messages leave the desk; printing again is refused clearly.
    assert [i.message_id for i in desk.pending()] == [other]
    with pytest.raises(DeliveryError, match="no released message"):
        desk.print_pdf(first, tmp_path / "again.pdf")
    assert not (tmp_path / "again.pdf").exists()
    with pytest.raises(DeliveryError):
        desk.open(bytes(16))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_replies_are_escrowed_at_creation_and_refused_when_they_cannot_be(
    stack: Stack, tmp_path: Path
) -> None:
    admin, terminals = setup_institutions(stack, [("d-1", A, "regular")])
    terminal = terminals[A]
    relative = stack.relative("Moeder")
    relative.request_contact("d-1")
    lawyer = verified_lawyer(stack, admin, ["d-1"])
    approve_all(admin, A)
    escrow = stack.escrow_for(A)
    scan = tmp_path / "tekening.png"
    scan.write_bytes(png((200, 10, 10)))

    receipt = send_reply(
        terminal, "d-1", relative.account_id, "Dank je — شكرا — 谢谢", escrow, [scan]
    )
    (message,) = list(relative.inbox())
    assert message.message_id == receipt.message_id
    assert message.text == "Dank je — شكرا — 谢谢"
    assert [(p.filename, p.data) for p in message.attachments] == [
        ("tekening.png", scan.read_bytes())
    ]
    rows = message_rows(stack)
    assert rows[receipt.message_id].escrow  # escrowed before it left (SPEC 3.7)
    assert rows[receipt.message_id].state == common_pb2.MESSAGE_STATE_RELEASED

    to_lawyer = send_reply(terminal, "d-1", lawyer.account_id, "Voor mijn advocaat", escrow)
    assert message_rows(stack)[to_lawyer.message_id].escrow is None  # privileged: never

    # Refusals: nothing to send, a file that is not a photo or PDF, an unknown contact,
    # and a key server that cannot escrow: nothing leaves.
    before = len(message_rows(stack))
    with pytest.raises(ReplyError, match="nothing to send"):
        send_reply(terminal, "d-1", relative.account_id, "  ", escrow)
    notes = tmp_path / "notes.txt"
    notes.write_text("geen foto")
    with pytest.raises(AttachmentError):
        send_reply(terminal, "d-1", relative.account_id, "hoi", escrow, [notes])
    with pytest.raises(ClientError) as unknown:
        send_reply(terminal, "d-1", "no-such-account", "hoi", escrow)
    assert unknown.value.code == grpc.StatusCode.NOT_FOUND

    def unavailable(_items: Sequence[tuple[bytes, bytes]]) -> list[envelope_pb2.EscrowBlob]:
        raise KeyServerUnavailableError("transit encrypt: sealed (HTTP 503)")

    with pytest.raises(KeyServerUnavailableError):
        send_reply(terminal, "d-1", relative.account_id, "niet zonder escrow", unavailable)
    assert len(message_rows(stack)) == before


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_desk_hands_over_only_what_the_bytes_show_is_a_photo_or_pdf(
    stack: Stack, tmp_path: Path
) -> None:
    """A modified client declared an .exe a JPEG and an .html page a PDF: both are withheld."""
    from sealpost.crypto import envelope as crypto_envelope  # noqa: PLC0415
    from sealpost.v1 import relative_pb2  # noqa: PLC0415

    admin, terminals = setup_institutions(stack, [("d-1", A, "regular")])
    terminal = terminals[A]
    relative = stack.relative("Gewijzigde client")
    relative.request_contact("d-1")
    approve_all(admin, A)
    mailbox = relative.contact("d-1").mailbox
    assert mailbox is not None
    parts = [
        Part("text/plain; charset=utf-8", b"kijk maar"),
        Part("image/jpeg", b"MZ\x90\x00" + bytes(60), "vakantie.jpg"),
        Part("application/pdf", b"<!DOCTYPE html><html><script>x()</script></html>", "brief.pdf"),
        Part("image/png", png(), "echt.exe"),
    ]
    # Sealed by hand, as a modified client would: the SDK itself refuses these parts.
    envelope = crypto_envelope.seal_envelope(
        parts,
        sender_keys=relative.keys,
        sender_key_id=relative.key_id,
        recipients=[mailbox],
        now_ms=int(dt.datetime.now(dt.UTC).timestamp() * 1000),
    )
    sent = relative.send_sealed(relative_pb2.SendMessageRequest(envelope=envelope))
    terminal.take_in(terminal.intake(), stack.escrow_for(A))

    # The register gives the detainee's language and name for the slip.
    register = DetaineeRegister().set("d-1", name="Jan Jansen", language="en")
    desk = DeliveryDesk(terminal, A, register=register)
    opened = desk.open(sent.message_id)
    assert [(p.content_type, p.filename) for p in opened.attachments] == [("image/png", "echt.exe")]
    assert [(w.declared, w.found) for w in opened.withheld] == [
        ("image/jpeg", "application/vnd.microsoft.portable-executable"),
        ("application/pdf", "text/html"),
    ]
    saved = desk.save_attachments(opened, tmp_path / "saved")
    assert [p.name for p in saved] == ["echt.png"]  # the name gets the type the bytes are
    _reference, slip = desk.slip(opened)
    text, _pages = pdf_text(slip)
    assert "Message for Jan Jansen (d-1)" in text
    assert "Not handed over" in text
    assert "vakantie.jpg" in text
    assert "brief.pdf" in text
