"""The screeners' terminal user interface: the queue, opening a message, verdicts.

Keys on the queue: Enter or o opens the selected message, r refreshes, q quits. On an
opened message: r releases, w withholds (reason picker and note), Escape goes back.
Opening goes through ReviewClient.open, so the grant is logged and checked and the key
server decrypts under the screener's own identity. Plaintext lives only in memory, in
the screen that shows it, and is dropped when the screen closes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import ClassVar, TypeVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Select, Static

from sealpost.clients._text import isolate
from sealpost.clients.review import _format
from sealpost.clients.review.client import Review, ReviewClient
from sealpost.errors import SealpostError
from sealpost.i18n import _, _n
from sealpost.v1 import common_pb2, review_pb2

T = TypeVar("T")

#: A withhold decision from the picker: (reason code, note).
Withhold = tuple[common_pb2.WithholdReason.ValueType, str]


def queue_columns() -> tuple[str, ...]:
    """The queue table's column headers, in the staff language."""
    return (
        _("Waiting"),
        _("Detainee"),
        _("Institution"),
        _("Direction"),
        _("Legal basis"),
        _("Message"),
    )


def logged_banner(review: Review) -> str:
    """The line that tells the screener this access is on record, and on which basis."""
    grant = review.grant
    return _(
        "ACCESS LOGGED  grant {grant}  ·  legal basis: {basis}  ·  log entry #{entry} "
        "in signed tree head of size {size}",
        grant=grant.grant_id,
        basis=_format.legal_basis(grant.legal_basis),
        entry=grant.grant_entry.index,
        size=review.tree_head.tree_size,
    )


class WithholdScreen(ModalScreen[Withhold | None]):
    """Pick a reason code and write a note; Escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", _("Cancel"))]
    DEFAULT_CSS = """
    WithholdScreen { align: center middle; }
    #withhold-form { width: 70; height: auto; border: thick $error; padding: 1 2;
                     background: $surface; }
    #withhold-buttons { height: auto; margin-top: 1; }
    """

    def compose(self) -> ComposeResult:
        """A reason picker, a note field and the two buttons."""
        options = [(_format.reason_words(name), code) for name, code in _format.REASONS.items()]
        with Vertical(id="withhold-form"):
            yield Label(_("Withhold this message. Reason (required):"))
            yield Select(options, prompt=_("Choose a reason"), id="reason")
            yield Label(_("Note for the file (never shown to the relative):"))
            yield Input(placeholder=_("note"), id="note")
            with Horizontal(id="withhold-buttons"):
                yield Button(_("Withhold"), id="confirm", variant="error")
                yield Button(_("Cancel"), id="cancel")

    def _confirm(self) -> None:
        reason = self.query_one("#reason", Select).value
        if not isinstance(reason, int):
            self.notify(_("Choose a reason first."), severity="warning")
            return
        note = self.query_one("#note", Input).value
        self.dismiss((common_pb2.WithholdReason.ValueType(reason), note))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Confirm or cancel."""
        if event.button.id == "confirm":
            self._confirm()
        else:
            self.dismiss(None)

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        """Enter in the note field confirms."""
        self._confirm()

    def action_cancel(self) -> None:
        """Close without a verdict."""
        self.dismiss(None)


class MessageScreen(Screen[None]):
    """One opened message: the logged-access banner, the text and the attachment list."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "release", _("Release")),
        Binding("w", "withhold", _("Withhold")),
        Binding("escape", "back", _("Back to queue")),
    ]
    DEFAULT_CSS = """
    #logged { background: $warning; color: $text; padding: 0 1; text-style: bold; }
    #meta { padding: 0 1; color: $text-muted; }
    #body { border: round $primary; padding: 0 1; }
    #attachments { padding: 0 1; height: auto; }
    """

    def __init__(self, review: Review) -> None:
        """Show ``review``; it is dropped with the screen."""
        super().__init__()
        self.review: Review | None = review

    @property
    def message_id(self) -> bytes:
        """The shown message's id."""
        assert self.review is not None
        return self.review.message.header.message_id

    def compose(self) -> ComposeResult:
        """Banner, who and when, the text and the attachments, none read as markup."""
        review = self.review
        assert review is not None
        grant = review.grant
        sender = isolate(grant.sender_display_name or review.sender.subject)
        yield Header()
        yield Static(logged_banner(review), id="logged", markup=False)
        yield Static(
            _(
                "detainee {detainee} ({direction})  ·  from {sender}  ·  accepted {accepted}  ·  "
                "message {id}",
                detainee=grant.detainee_id,
                direction=_format.direction_words(grant.direction),
                sender=sender,
                accepted=_format.when(grant.accepted_at_ms),
                id=self.message_id.hex(),
            ),
            id="meta",
            markup=False,
        )
        with VerticalScroll(id="body"):
            yield Static(review.text, id="text", markup=False)
        lines = [
            f"[{i}] "
            + _n(
                "{name}  {type}  {count} byte",
                "{name}  {type}  {count} bytes",
                len(p.data),
                name=p.filename or _("(no name)"),
                type=p.content_type,
            )
            for i, p in enumerate(review.attachments, start=1)
        ]
        summary = _("Attachments:") + "\n" + "\n".join(lines) if lines else _("No attachments.")
        yield Static(summary, id="attachments", markup=False)
        yield Footer()

    def on_unmount(self) -> None:
        """Drop the plaintext as soon as the screen goes."""
        self.review = None

    def action_release(self) -> None:
        """Release: deliver the message."""
        self.app_review.record_verdict(self.message_id, common_pb2.VERDICT_RELEASE)

    def action_withhold(self) -> None:
        """Ask for a reason and note, then withhold."""
        message_id = self.message_id

        def decided(choice: Withhold | None) -> None:
            if choice is not None:
                reason, note = choice
                self.app_review.record_verdict(
                    message_id, common_pb2.VERDICT_WITHHOLD, reason, note
                )

        self.app.push_screen(WithholdScreen(), decided)

    def action_back(self) -> None:
        """Back to the queue without a verdict (the grant stays on record)."""
        self.app.pop_screen()

    @property
    def app_review(self) -> ReviewApp:
        """The review application this screen belongs to."""
        assert isinstance(self.app, ReviewApp)
        return self.app


class ReviewApp(App[None]):
    """The screening queue and lawful review, for a screener's daily work."""

    TITLE = "Sealpost review"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "open", _("Open")),
        Binding("r", "refresh", _("Refresh")),
        Binding("f5", "refresh", _("Refresh"), show=False),
        Binding("q", "quit", _("Quit")),
    ]

    def __init__(self, client: ReviewClient, *, institution: str = "", detainee: str = "") -> None:
        """Work with ``client`` (gateway and own key-server identity), optionally filtered."""
        super().__init__()
        self.client = client
        self.institution = institution
        self.detainee = detainee
        self.items: dict[str, review_pb2.QueueItem] = {}
        # The key-server client holds one HTTP session: one call at a time.
        self._lock = threading.Lock()

    def compose(self) -> ComposeResult:
        """Header, the queue table, footer with the keys."""
        yield Header()
        yield DataTable(id="queue", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        """Set up the table and load the queue."""
        table = self.query_one("#queue", DataTable)
        table.add_columns(*queue_columns())
        self.action_refresh()

    # ---------------------------------------------------------------- background calls

    def _call(self, action: Callable[[], T]) -> T | None:
        """Run a gateway or key-server call; a refusal becomes a notification, not a crash."""
        try:
            with self._lock:
                return action()
        except SealpostError as exc:
            self.call_from_thread(
                self.notify, exc.explain(), severity="error", timeout=10, markup=False
            )
            return None

    @work(thread=True, group="calls", exit_on_error=False)
    def load_queue(self) -> None:
        """Fetch the queue in the background, then show it."""
        items = self._call(lambda: self.client.queue(self.institution, self.detainee))
        if items is not None:
            self.call_from_thread(self._show_queue, items)

    @work(thread=True, group="calls", exit_on_error=False)
    def open_message(self, message_id: bytes) -> None:
        """Grant, decrypt and check in the background, then show the message."""
        review = self._call(lambda: self.client.open(message_id))
        if review is not None:
            self.call_from_thread(self.push_screen, MessageScreen(review))

    @work(thread=True, group="calls", exit_on_error=False)
    def record_verdict(
        self,
        message_id: bytes,
        verdict: common_pb2.Verdict.ValueType,
        reason: common_pb2.WithholdReason.ValueType = common_pb2.WITHHOLD_REASON_UNSPECIFIED,
        note: str = "",
    ) -> None:
        """Record the verdict, then go back to the refreshed queue."""
        state = self._call(lambda: self.client.verdict(message_id, verdict, reason, note))
        if state is not None:
            self.call_from_thread(self._verdict_recorded, message_id, state)

    # ---------------------------------------------------------------- on the UI thread

    def _show_queue(self, items: list[review_pb2.QueueItem]) -> None:
        table = self.query_one("#queue", DataTable)
        table.clear()
        self.items = {}
        for item in items:
            key = item.message_id.hex()
            self.items[key] = item
            table.add_row(
                _format.waited(item.waited_seconds),
                escape(item.detainee_id),
                escape(item.institution_id),
                _format.direction_words(item.direction),
                _format.legal_basis(item.legal_basis),
                key[:12],
                key=key,
            )
        self.sub_title = (
            _n("{count} waiting", "{count} waiting", len(items)) if items else _("queue empty")
        )

    def _verdict_recorded(self, message_id: bytes, state: int) -> None:
        if isinstance(self.screen, MessageScreen):
            self.pop_screen()
        self.notify(
            _("Message {id} {state}.", id=message_id.hex()[:12], state=_format.state_words(state))
        )
        self.action_refresh()

    # ---------------------------------------------------------------- actions

    def action_refresh(self) -> None:
        """Reload the queue."""
        self.load_queue()

    def action_open(self) -> None:
        """Open the message under the cursor."""
        table = self.query_one("#queue", DataTable)
        if not self.items or table.cursor_row < 0:
            self.notify(_("Nothing to open."), severity="warning")
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if key is not None:
            self.open_message(bytes.fromhex(key))

    def on_data_table_row_selected(self, _event: DataTable.RowSelected) -> None:
        """Enter on a row opens it."""
        self.action_open()
