"""The review terminal UI through Textual's pilot, with a fake gateway and key server.

The real round trip (gateway, OpenBao, the log) is tests/integration/test_review_tui.py;
here the screens themselves: that a verdict needs a second, separate action on its own
screen, that everything in a message is shown, and that triage's spans are highlighted.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field
from typing import Any

import pytest
from fpdf import FPDF
from PIL import Image
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Button, DataTable, Input, Select, Static

from sealpost.clients.review import display, tui
from sealpost.clients.review.client import Review
from sealpost.clients.review.tui import (
    ImageScreen,
    MessageScreen,
    PictureView,
    ReleaseScreen,
    ReviewApp,
    ShownText,
    WithholdScreen,
)
from sealpost.clients.triage.signals import Report, signal
from sealpost.crypto import logentry
from sealpost.crypto.envelope import Header, OpenedMessage, Part
from sealpost.crypto.keyrecords import VerifiedKey
from sealpost.v1 import common_pb2, keys_pb2, relative_pb2, review_pb2
from tests.programs import staff_language

MESSAGE_ID = bytes(range(16))
ARABIC = "اتصل بمحمد على الرقم غدا"
NAME_AT = ARABIC.index("محمد")


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (40, 20)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def _pdf(pages: list[str]) -> bytes:
    document = FPDF()
    document.set_font("helvetica", size=12)
    for text in pages:
        document.add_page()
        document.cell(text=text)
    return bytes(document.output())


def make_review(parts: tuple[Part, ...], sender: str = "Moeder") -> Review:
    grant = review_pb2.GrantAccessResponse(
        grant_id="gr-test",
        legal_basis=common_pb2.LEGAL_BASIS_SCREENING_ORDER,
        detainee_id="d-1",
        direction=common_pb2.DIRECTION_INBOUND,
        sender_display_name=sender,
        accepted_at_ms=1_760_000_000_000,
    )
    grant.grant_entry.index = 7
    header = Header(1, MESSAGE_ID, b"k" * 16, (), 0, (), b"", b"")
    key = VerifiedKey(b"k" * 16, keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE, "rel:1", b"", b"", 0, 1, b"")
    head = logentry.VerifiedTreeHead(1, 8, b"", 0, b"")
    return Review(
        grant,
        OpenedMessage(header, parts, b""),
        key,
        head,
        b"",
        relative_pb2.GetDirectoryResponse(),
    )


@dataclass
class FakeClient:
    """The gateway and key server as the screens see them: a queue, open, verdicts."""

    review: Review
    verdicts: list[tuple[bytes, int, int, str]] = field(default_factory=list)

    def queue(self, institution_id: str = "", detainee_id: str = "") -> list[review_pb2.QueueItem]:
        if self.verdicts:
            return []
        return [
            review_pb2.QueueItem(
                message_id=MESSAGE_ID,
                detainee_id="d-1",
                institution_id="pi-east",
                direction=common_pb2.DIRECTION_INBOUND,
                legal_basis=common_pb2.LEGAL_BASIS_SCREENING_ORDER,
                waited_seconds=90,
            )
        ]

    def open(self, message_id: bytes, retrospective_request_id: str = "") -> Review:
        assert message_id == MESSAGE_ID
        return self.review

    def verdict(
        self,
        message_id: bytes,
        verdict: int,
        reason: int = common_pb2.WITHHOLD_REASON_UNSPECIFIED,
        note: str = "",
    ) -> int:
        self.verdicts.append((message_id, verdict, reason, note))
        released = verdict == common_pb2.VERDICT_RELEASE
        return common_pb2.MESSAGE_STATE_RELEASED if released else common_pb2.MESSAGE_STATE_WITHHELD


async def _settle(pilot: Pilot[None]) -> None:
    for _ in range(40):
        await pilot.app.workers.wait_for_complete()
        for screen in pilot.app.screen_stack:
            await screen.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in pilot.app.workers):
            return
    raise AssertionError("background work did not finish")


def _top(app: ReviewApp) -> Screen[Any]:
    return app.screen


def _app(review: Review, report: Report | None = None) -> tuple[ReviewApp, FakeClient]:
    client = FakeClient(review)
    hook = (lambda _review: report) if report is not None else None
    return ReviewApp(client, triage_for=hook), client  # type: ignore[arg-type]


async def _open(app: ReviewApp, pilot: Pilot[None]) -> MessageScreen:
    await _settle(pilot)
    assert app.query_one("#queue", DataTable).row_count == 1
    await pilot.press("enter")
    await _settle(pilot)
    screen = _top(app)
    assert isinstance(screen, MessageScreen)
    return screen


def test_r_alone_records_no_verdict_and_the_button_does() -> None:
    app, client = _app(make_review((Part("text/plain", b"Tot zondag"),)))

    async def drive() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            await pilot.press("r")
            await pilot.pause()
            assert isinstance(_top(app), ReleaseScreen)
            # r again, then Enter (Cancel has the focus): still no verdict.
            await pilot.press("r", "enter")
            await _settle(pilot)
            assert client.verdicts == []
            assert _top(app) is screen
            await pilot.press("r")
            await pilot.pause()
            await pilot.press("escape")
            await _settle(pilot)
            assert client.verdicts == []
            assert _top(app) is screen
            # The Release button confirms: Tab to it, then Enter.
            await pilot.press("r")
            await pilot.pause()
            question = _top(app)
            assert isinstance(question, ReleaseScreen)
            assert question.focused is question.query_one("#cancel", Button)
            await pilot.press("shift+tab", "enter")
            await _settle(pilot)
            assert client.verdicts == [(MESSAGE_ID, common_pb2.VERDICT_RELEASE, 0, "")]
            assert not isinstance(_top(app), (MessageScreen, ReleaseScreen))
            assert screen.review is None  # the plaintext went with the screen

    asyncio.run(drive())


def test_withholding_is_confirmed_by_its_button_not_by_enter_in_the_note() -> None:
    app, client = _app(make_review((Part("text/plain", b"Tot zondag"),)))

    async def drive() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await _open(app, pilot)
            await pilot.press("w")
            await pilot.pause()
            picker = _top(app)
            assert isinstance(picker, WithholdScreen)
            await pilot.click("#confirm")
            await pilot.pause()
            assert client.verdicts == []  # no reason chosen: still asking
            assert isinstance(_top(app), WithholdScreen)
            picker.query_one("#reason", Select).value = common_pb2.WITHHOLD_REASON_PUBLIC_ORDER
            picker.query_one("#note", Input).focus()
            await pilot.press(*"oproep", "enter")
            await _settle(pilot)
            assert client.verdicts == []  # Enter in the note moves to the button
            assert _top(app) is picker
            assert picker.focused is picker.query_one("#confirm", Button)
            await pilot.press("enter")
            await _settle(pilot)
            assert client.verdicts == [
                (
                    MESSAGE_ID,
                    common_pb2.VERDICT_WITHHOLD,
                    common_pb2.WITHHOLD_REASON_PUBLIC_ORDER,
                    "oproep",
                )
            ]
            assert not isinstance(_top(app), (MessageScreen, WithholdScreen))

    asyncio.run(drive())


def test_everything_is_shown_photos_pdf_text_and_marks() -> None:
    pdf = _pdf(["Bel 0612345678 maandag", "Tweede pagina"])
    parts = (
        Part("text/plain", ARABIC.encode()),
        Part("image/png", _png((200, 30, 30)), "kaart.png"),
        Part("application/pdf", pdf, "brief.pdf"),
        Part("application/pdf", b"%PDF-1.7 broken", "kapot.pdf"),
        Part("text/plain; charset=utf-8", b"[bold]geen opmaak[/bold]", "notitie.txt"),
        Part("application/zip", b"PK\x03\x04", "archief.zip"),
    )
    pdf_text = display.pdf(2, pdf).text
    at = pdf_text.index("0612345678")
    report = Report(
        (
            signal("watch-list", 0, "text", NAME_AT, NAME_AT + 4, "محمد", "contact-ban", 0.95,
                   list="d-1"),
            signal("phone", 2, "pdf", at, at + 10, "0612345678", "phone", 0.9, region="NL"),
            signal("phone", 4, "text", 0, 3, "nope", "phone", 0.9, region="NL"),
        )
    )  # fmt: skip
    app, _client = _app(make_review(parts, sender="أم"), report)

    async def drive() -> None:
        async with app.run_test(size=(120, 60)) as pilot:
            screen = await _open(app, pilot)
            await _settle(pilot)
            body = screen.query_one("#text", ShownText)
            assert body.marks == (display.Mark(NAME_AT, NAME_AT + 4, 1),)
            shown = body.shown
            assert "ﺪﻤﺤﻤ" in shown  # shaped, in visual order
            assert ARABIC not in shown
            marked = [s for line in body.lines_for(80) for s in line.segments if s.mark]
            assert [(s.text, s.mark) for s in marked] == [("ﺪﻤﺤﻤ", 1)]
            rendered = body.render()
            assert "¹" in rendered.plain
            # The photo is drawn, in its colour, within the preview's bounds.
            view = screen.query_one("#part-1").query_one(PictureView)
            assert view.picture is not None
            assert view.picture.columns <= tui.PREVIEW_COLUMNS
            assert len(view.picture.rows) <= tui.PREVIEW_ROWS
            assert view.picture.rows[0][0][0] == (200, 30, 30)
            # The PDF's pages, its phone number marked; a broken PDF says so.
            pdf_box = screen.query_one("#part-2")
            pages = list(pdf_box.query(ShownText))
            assert len(pages) == 2
            assert "0612345678" in pages[0].shown
            assert pages[0].marks[0].number == 2
            assert "Tweede pagina" in pages[1].shown
            broken = " ".join(str(s.render()) for s in screen.query_one("#part-3").query(Static))
            assert "could not be read" in broken
            # A text attachment, never markup; what cannot be shown says how to look at it.
            note = screen.query_one("#part-4").query_one(ShownText)
            assert note.shown == "[bold]geen opmaak[/bold]"
            other = " ".join(str(s.render()) for s in screen.query_one("#part-5").query(Static))
            assert "--save-attachments" in other
            # The signals, explained; a span that is not in the shown text is not marked.
            signals = str(screen.query_one("#signals", Static).render())
            assert f"[1] watch list, the text, characters {NAME_AT}-{NAME_AT + 4}:" in signals
            assert "A name on a contact ban (d-1)." in signals
            assert "(confidence 0.95)" in signals
            assert "[2] phone number, the PDF text of attachment 2 (brief.pdf)" in signals
            assert "[3] phone number" in signals
            assert "(not marked: the shown text differs)" in signals
            assert note.marks == ()
            # v views the photo as large as the terminal, from memory.
            await pilot.press("v")
            await pilot.pause()
            viewer = _top(app)
            assert isinstance(viewer, ImageScreen)
            await pilot.pause()
            big = viewer.query_one(PictureView)
            assert big.picture is not None
            assert big.picture.columns > tui.PREVIEW_COLUMNS
            await pilot.press("escape")
            await pilot.pause()
            assert _top(app) is screen
            assert viewer.photos == []
            await pilot.press("escape")
            await pilot.pause()
            assert screen.review is None
            assert screen.report is None
            assert screen.texts == {}
            assert body.text == ""

    asyncio.run(drive())


def test_a_failing_triage_shows_the_message_without_highlights() -> None:
    client = FakeClient(make_review((Part("text/plain", b"Hallo"),)))
    seen: list[str] = []

    def broken(_review: Review) -> Report | None:
        raise RuntimeError("model missing")

    class Recording(ReviewApp):
        def notify(self, message: str, **options: Any) -> None:
            seen.append(message)
            super().notify(message, **options)

    app = Recording(client, triage_for=broken)  # type: ignore[arg-type]

    async def drive() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await _open(app, pilot)
            assert screen.report is None
            assert screen.query_one("#text", ShownText).shown == "Hallo"
            assert not screen.query("#signals")

    asyncio.run(drive())
    assert any("Triage did not run (RuntimeError)" in n for n in seen), seen
    assert not any("model missing" in n for n in seen)


@pytest.mark.parametrize("width", [20, 41])
def test_rtl_paragraphs_are_aligned_right(width: int) -> None:
    content = tui.laid_out(display.lines("שלום עולם", width=width), width)
    assert content.plain.endswith("םלוע םולש")
    assert len(content.plain) == width


def test_the_release_question_and_the_signals_in_dutch() -> None:
    app, client = _app(
        make_review((Part("text/plain", b"Bel 0612345678"),)),
        Report((signal("phone", 0, "text", 4, 14, "0612345678", "phone", 0.9, region="NL"),)),
    )

    async def drive() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            signals = str(screen.query_one("#signals", Static).render())
            assert "[1] telefoonnummer, de tekst, tekens 4-14" in signals
            assert "(zekerheid 0.90)" in signals
            await pilot.press("r")
            await pilot.pause()
            question = _top(app)
            assert isinstance(question, ReleaseScreen)
            assert str(question.query_one("#confirm", Button).label) == "Vrijgeven"
            await pilot.press("escape")
            await _settle(pilot)
            assert client.verdicts == []

    with staff_language("nl"):
        asyncio.run(drive())
