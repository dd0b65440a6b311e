"""The review terminal UI through Textual's pilot, against a real gateway and a real OpenBao."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import grpc
import pytest
from textual.content import Content
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Button, DataTable, Input, Select, Static

from sealpost._internal.stack import Stack, approve_all, screening_order, setup_institutions
from sealpost.clients._grpc import ClientError
from sealpost.clients.review.tui import (
    MessageScreen,
    ReleaseScreen,
    ReviewApp,
    ShownText,
    WithholdScreen,
)
from sealpost.crypto.envelope import Part
from sealpost.v1 import common_pb2

pytestmark = pytest.mark.integration

A = "pi-south"


async def _settle(pilot: Pilot[None]) -> None:
    """Wait until the background calls, and the ones they start, are done."""
    for _ in range(20):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in pilot.app.workers):
            return
    raise AssertionError("background calls did not finish")


def _top(app: ReviewApp) -> Screen[Any]:
    """The screen on top (a call, so that each check looks afresh)."""
    return app.screen


def _shown(widget: Static) -> str:
    """What the widget renders, as plain text (markup, if it were read, would be gone)."""
    rendered = widget.render()
    assert isinstance(rendered, Content)
    return rendered.plain


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_queue_open_release_and_withhold(stack: Stack) -> None:
    admin, terminals = setup_institutions(stack, [("d-tui", A, "regular")])
    screening_order(admin, "d-tui")
    relative = stack.relative("Vader")
    relative.request_contact("d-tui")
    approve_all(admin, A)
    first = relative.send(
        "d-tui",
        "[bold]Geen opmaak[/bold] — שלום",
        [Part("image/png", b"\x89PNG\r\n\x1a\n" + bytes(16), "kaart.png")],
    )
    second = relative.send("d-tui", "Nog een bericht")
    terminal = terminals[A]
    terminal.take_in(terminal.intake(), stack.escrow_for(A))
    screener = stack.reviewer(["screener"], [A])

    async def drive() -> None:
        app = ReviewApp(screener)
        async with app.run_test(size=(140, 40)) as pilot:
            await _settle(pilot)
            table = app.query_one("#queue", DataTable)
            assert table.row_count == 2
            row = [str(cell) for cell in table.get_row_at(0)]
            assert row[1:5] == ["d-tui", A, "inbound", "screening order"]
            assert first.message_id.hex().startswith(row[5])
            assert app.sub_title == "2 waiting"

            # Open the first: the logged-access banner, the text (never markup; the Hebrew
            # in visual order), the attachment.
            await pilot.press("enter")
            await _settle(pilot)
            screen = _top(app)
            assert isinstance(screen, MessageScreen)
            banner = _shown(screen.query_one("#logged", Static))
            assert banner.startswith("ACCESS LOGGED  grant gr")
            assert "legal basis: screening order" in banner
            shown = screen.query_one("#text", ShownText).shown
            assert shown == "[bold]Geen opmaak[/bold] — םולש"
            assert "kaart.png" in _shown(screen.query_one("#attachments", Static))

            # r asks; Enter on the question (Cancel has the focus) records nothing.
            await pilot.press("r")
            await pilot.pause()
            assert isinstance(_top(app), ReleaseScreen)
            await pilot.press("enter")
            await _settle(pilot)
            assert isinstance(_top(app), MessageScreen)
            assert table.row_count == 2

            # Release with the question's button: back on the queue, which no longer holds it.
            await pilot.press("r")
            await pilot.pause()
            question = _top(app)
            assert isinstance(question, ReleaseScreen)
            question.query_one("#confirm", Button).focus()
            await pilot.press("enter")
            await _settle(pilot)
            assert not isinstance(_top(app), MessageScreen)
            assert table.row_count == 1
            assert screen.review is None  # the plaintext went with the screen

            # Withhold the second with a reason and a note; cancelling first changes nothing.
            await pilot.press("enter")
            await _settle(pilot)
            assert isinstance(_top(app), MessageScreen)
            await pilot.press("w")
            await pilot.pause()
            assert isinstance(_top(app), WithholdScreen)
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(_top(app), MessageScreen)
            await pilot.press("w")
            await pilot.pause()
            picker = _top(app)
            assert isinstance(picker, WithholdScreen)
            await pilot.click("#confirm")
            await pilot.pause()
            assert isinstance(_top(app), WithholdScreen)  # no reason chosen: still asking
            picker.query_one("#reason", Select).value = common_pb2.WITHHOLD_REASON_PUBLIC_ORDER
            picker.query_one("#note", Input).focus()
            await pilot.press(*"oproep")
            await pilot.press("enter")  # Enter in the note moves to the Withhold button
            await pilot.pause()
            assert _top(app) is picker
            await pilot.press("enter")  # which confirms
            await _settle(pilot)
            assert not isinstance(_top(app), (MessageScreen, WithholdScreen))
            assert table.row_count == 0
            assert app.sub_title == "queue empty"

    asyncio.run(drive())

    # The gateway recorded both verdicts.
    delivered = [d.message_id for d in terminal.deliveries()]
    assert first.message_id in delivered
    assert second.message_id not in delivered
    for message in (first, second):
        with pytest.raises(ClientError) as decided:
            screener.verdict(message.message_id, common_pb2.VERDICT_RELEASE)
        assert decided.value.code == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_refusal_is_shown_not_crashed(stack: Stack) -> None:
    admin, terminals = setup_institutions(stack, [("d-tui2", A, "regular")])
    screening_order(admin, "d-tui2")
    relative = stack.relative()
    relative.request_contact("d-tui2")
    approve_all(admin, A)
    relative.send("d-tui2", "Hallo")
    terminals[A].take_in(terminals[A].intake(), stack.escrow_for(A))
    outsider = stack.reviewer(["screener"], ["pi-elsewhere"])

    class Recording(ReviewApp):
        seen: ClassVar[list[str]] = []

        def notify(self, message: str, **options: Any) -> None:
            self.seen.append(message)
            super().notify(message, **options)

    async def drive() -> None:
        app = Recording(outsider, institution=A)
        async with app.run_test() as pilot:
            await _settle(pilot)
            assert app.query_one("#queue", DataTable).row_count == 0
            assert app.is_running
            await pilot.press("o")  # nothing to open
            await pilot.pause()
        assert any(n.startswith("PERMISSION_DENIED") for n in Recording.seen), Recording.seen
        assert "Nothing to open." in Recording.seen

    asyncio.run(drive())
