"""The screeners' terminal user interface: the queue, opening a message, verdicts.

Keys on the queue: Enter or o opens the selected message, r refreshes, q quits. On an
opened message: r asks to release and w to withhold (reason picker and note); either
verdict is recorded only by a second, separate action on that question's screen (its
button), never by one key. v views the photos, Escape goes back.

Opening goes through ReviewClient.open, so the grant is logged and checked and the key
server decrypts under the screener's own identity. The message screen shows everything:
the text (right-to-left text shaped and reordered, clients/review/display.py), each
photo as a preview, the text layer of each PDF page by page, text attachments, and, when
triage's report is given, its signals listed and their spans highlighted. Plaintext lives
only in memory, in the screen that shows it, and is dropped when the screen closes;
nothing is written to disk.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.geometry import Size
from textual.markup import escape
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Select, Static

from sealpost.clients.review import _format, display
from sealpost.clients.review.client import Review, ReviewClient
from sealpost.clients.triage.signals import Report
from sealpost.crypto.envelope import Part
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


class ReleaseScreen(ModalScreen[bool]):
    """The question before a release: only the Release button records it; Escape cancels.

    Cancel has the focus, so the key that opened the question and Enter after it record
    nothing: releasing takes moving to the button (Tab) or clicking it.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", _("Cancel"))]
    DEFAULT_CSS = """
    ReleaseScreen { align: center middle; }
    #release-form { width: 70; height: auto; border: thick $success; padding: 1 2;
                    background: $surface; }
    #release-buttons { height: auto; margin-top: 1; }
    """

    def __init__(self, message_id: bytes) -> None:
        """Ask about the message ``message_id``."""
        super().__init__()
        self.message_id = message_id

    def compose(self) -> ComposeResult:
        """What a release does, and the two buttons."""
        with Vertical(id="release-form"):
            yield Label(_("Release message {id}?", id=self.message_id.hex()[:12]), markup=False)
            yield Static(
                _(
                    "Released, it goes to delivery. The verdict is recorded in the log under "
                    "your name and cannot be taken back. Press Release to confirm."
                ),
                markup=False,
            )
            with Horizontal(id="release-buttons"):
                yield Button(_("Release"), id="confirm", variant="success")
                yield Button(_("Cancel"), id="cancel")

    def on_mount(self) -> None:
        """Start on Cancel."""
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Release or not."""
        self.dismiss(event.button.id == "confirm")

    def action_cancel(self) -> None:
        """Close without a verdict."""
        self.dismiss(False)


class WithholdScreen(ModalScreen[Withhold | None]):
    """Pick a reason code and write a note; only the Withhold button confirms."""

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
            yield Static(
                _("The verdict is recorded in the log under your name. Press Withhold to confirm."),
                markup=False,
            )
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
        """Enter in the note field moves to the Withhold button; it does not confirm."""
        self.query_one("#confirm", Button).focus()

    def action_cancel(self) -> None:
        """Close without a verdict."""
        self.dismiss(None)


#: How highlighted spans and their numbers look in the message screen.
MARK_STYLE = "bold black on yellow"
LABEL_STYLE = "bold yellow"
#: The largest preview of a photo in the message screen, in cells (v shows it larger).
PREVIEW_COLUMNS = 60
PREVIEW_ROWS = 15


def laid_out(shown: Sequence[display.Line], width: int) -> Content:
    """Display lines as Textual content, never read as markup.

    Marks are highlighted and numbered; right-to-left paragraphs are aligned right.
    """
    parts: list[str | tuple[str, str]] = []
    for row, line in enumerate(shown):
        if row:
            parts.append("\n")
        cells = line.cells + sum(len(str(s.mark)) for s in line.segments if s.mark is not None)
        if line.rtl and cells < width:
            parts.append(" " * (width - cells))
        for segment in line.segments:
            if segment.mark is None:
                parts.append(segment.text)
                continue
            number = (display.label(segment.mark), LABEL_STYLE)
            marked = (segment.text, MARK_STYLE)
            # The number follows the span in reading order.
            parts.extend((number, marked) if line.rtl else (marked, number))
    return Content.assemble(*parts)


class ShownText(Widget):
    """A text from the message, laid out for any terminal, its marked spans highlighted.

    Right-to-left text is shaped and reordered for the widget's width (display.lines);
    the text itself is never read as markup.
    """

    DEFAULT_CSS = "ShownText { height: auto; }"

    def __init__(
        self,
        text: str,
        marks: Sequence[display.Mark] = (),
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """Show ``text`` with ``marks`` (spans in characters of the text as sent)."""
        super().__init__(id=id, classes=classes)
        self.text = text
        self.marks = tuple(marks)
        self._laid: dict[int, list[display.Line]] = {}

    def lines_for(self, width: int) -> list[display.Line]:
        """The text's lines at ``width`` cells (kept per width)."""
        width = max(1, width)
        if width not in self._laid:
            self._laid = {
                width: display.lines(self.text, self.marks, width, decoration=lambda n: len(str(n)))
            }
        return self._laid[width]

    @property
    def shown(self) -> str:
        """What the widget shows now, as plain lines (marks' numbers left out)."""
        return "\n".join(line.plain for line in self.lines_for(self.content_size.width or 80))

    def render(self) -> Content:
        """The lines at the current width."""
        width = self.content_size.width or 80
        return laid_out(self.lines_for(width), width)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """As many rows as lines."""
        return max(1, len(self.lines_for(width)))

    def forget(self) -> None:
        """Drop the text (the screen is closing)."""
        self.text = ""
        self.marks = ()
        self._laid = {}

    def on_unmount(self) -> None:
        """The text goes with the widget."""
        self.forget()


def picture_content(shown: display.Picture) -> Content:
    """A picture in half blocks: upper pixel as the foreground, lower as the background."""
    parts: list[str | tuple[str, str]] = []
    for number, row in enumerate(shown.rows):
        if number:
            parts.append("\n")
        for upper, lower in row:
            back = f" on #{lower[0]:02x}{lower[1]:02x}{lower[2]:02x}" if lower else ""
            parts.append(("▀", f"#{upper[0]:02x}{upper[1]:02x}{upper[2]:02x}{back}"))
    return Content.assemble(*parts)


class PictureView(Widget):
    """A photo drawn from memory, its size fixed at the picture's cells."""

    DEFAULT_CSS = "PictureView { width: auto; height: auto; }"

    def __init__(self, shown: display.Picture, *, classes: str | None = None) -> None:
        """Show ``shown``."""
        super().__init__(classes=classes)
        self.picture: display.Picture | None = shown
        self.styles.width = shown.columns
        self.styles.height = len(shown.rows)

    def render(self) -> Content:
        """The half blocks."""
        return picture_content(self.picture) if self.picture is not None else Content("")

    def on_unmount(self) -> None:
        """The picture goes with the widget."""
        self.picture = None


@dataclass(frozen=True)
class _Read:
    """What was read of one attachment in the background."""

    pdf: display.PdfText | None = None
    picture: display.Picture | None = None
    #: (text, why none) of OCR, when triage marked something in it; None when not run.
    ocr: tuple[str, str] | None = None


class ImageScreen(Screen[None]):
    """A message's photos, one at a time, as large as the terminal: read-only, from memory.

    Left and right go through the photos, Page Up and Page Down through the frames of an
    animated one, Escape goes back.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", _("Back to the message")),
        Binding("left", "step(-1)", _("Previous photo")),
        Binding("right", "step(1)", _("Next photo")),
        Binding("pageup", "frame(-1)", _("Previous frame"), show=False),
        Binding("pagedown", "frame(1)", _("Next frame"), show=False),
    ]
    DEFAULT_CSS = """
    #photo-title { padding: 0 1; background: $primary; color: $text; }
    #photo { height: 1fr; align: center middle; }
    """

    def __init__(self, photos: Sequence[tuple[str, bytes]], start: int = 0) -> None:
        """Show ``photos`` (title, bytes), starting at ``start``; dropped with the screen."""
        super().__init__()
        self.photos: list[tuple[str, bytes]] = list(photos)
        self.index = start
        self.frame = 0

    def compose(self) -> ComposeResult:
        """The photo's title and the photo."""
        yield Static("", id="photo-title", markup=False)
        yield Vertical(id="photo")
        yield Footer()

    def on_mount(self) -> None:
        """Draw the first photo."""
        self.call_after_refresh(self.draw)

    def on_resize(self) -> None:
        """Draw again at the new size."""
        self.call_after_refresh(self.draw)

    def draw(self) -> None:
        """The current photo and frame, fitted into the screen."""
        if not self.photos:
            return
        title, data = self.photos[self.index]
        area = self.query_one("#photo", Vertical)
        size = area.content_size
        shown = display.picture(data, size.width or 80, size.height or 20, frame=self.frame)
        words = display.picture_words(shown)
        if shown is not None and shown.frames > 1:
            words = _(
                "{format}, {width} by {height} pixels, frame {frame} of {count}",
                format=shown.format,
                width=shown.width,
                height=shown.height,
                frame=min(self.frame, shown.frames - 1) + 1,
                count=shown.frames,
            )
        self.query_one("#photo-title", Static).update(
            f"[{self.index + 1}/{len(self.photos)}] {title}  ·  {words}"
        )
        area.remove_children()
        if shown is not None:
            area.mount(PictureView(shown))

    def action_step(self, step: int) -> None:
        """Another photo."""
        if self.photos:
            self.index = (self.index + step) % len(self.photos)
            self.frame = 0
            self.draw()

    def action_frame(self, step: int) -> None:
        """Another frame of an animated photo."""
        self.frame = max(0, self.frame + step)
        self.draw()

    def action_back(self) -> None:
        """Back to the message."""
        self.app.pop_screen()

    def on_unmount(self) -> None:
        """Drop the photos."""
        self.photos = []


class MessageScreen(Screen[None]):
    """One opened message, all from memory: banner, signals, text and every attachment.

    The logged-access banner, triage's signals when a report is given, the text, and each
    attachment shown as far as it can be (photos, PDF text, text files).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "release", _("Release…")),
        Binding("w", "withhold", _("Withhold…")),
        Binding("v", "view", _("View photos")),
        Binding("escape", "back", _("Back to queue")),
    ]
    DEFAULT_CSS = """
    #logged { background: $warning; color: $text; padding: 0 1; text-style: bold; }
    #meta { padding: 0 1; color: $text-muted; }
    #body { border: round $primary; padding: 0 1; }
    #signals { border: round $warning; padding: 0 1; height: auto; margin-bottom: 1; }
    #attachments { padding: 0 0; height: auto; margin-top: 1; }
    .part { height: auto; margin-top: 1; }
    .part-title { text-style: bold; }
    .note { color: $text-muted; text-style: italic; }
    .page { color: $text-muted; }
    """

    def __init__(self, review: Review, report: Report | None = None) -> None:
        """Show ``review``, and ``report`` (triage of it) when given; both go with the screen."""
        super().__init__()
        self.review: Review | None = review
        self.report: Report | None = report
        #: The texts shown, by (part, source): what the signals' spans are marked in.
        self.texts: dict[tuple[int, str], str] = {}

    @property
    def message_id(self) -> bytes:
        """The shown message's id."""
        assert self.review is not None
        return self.review.message.header.message_id

    def _parts(self) -> tuple[Part, ...]:
        assert self.review is not None
        return tuple(self.review.message.parts)

    def compose(self) -> ComposeResult:
        """Banner, who and when, signals, the text and the attachments; none read as markup."""
        review = self.review
        assert review is not None
        grant = review.grant
        parts = self._parts()
        sender = display.visual(grant.sender_display_name or review.sender.subject)
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
            if self.report is not None:
                yield Static(self._signals_words(), id="signals", markup=False)
            if display.is_body(parts, 0):
                text = display.part_text(parts[0])
                self.texts[(0, "text")] = text
                yield ShownText(text, display.marks_for(self.report, 0, "text", text), id="text")
                yield from _cut(parts[0])
            else:
                yield Static(_("No text: the message is only attachments."), classes="note")
            yield Static(self._attachment_list(), id="attachments", markup=False)
            for index, part in enumerate(parts):
                if not display.is_body(parts, index):
                    yield from self._attachment(index, part)
        yield Footer()

    def _attachment_list(self) -> str:
        assert self.review is not None
        lines = [
            f"[{i}] "
            + _n(
                "{name}  {type}  {count} byte",
                "{name}  {type}  {count} bytes",
                len(p.data),
                name=display.visual(p.filename) or _("(no name)"),
                type=p.content_type,
            )
            for i, p in enumerate(self.review.attachments, start=1)
        ]
        return _("Attachments:") + "\n" + "\n".join(lines) if lines else _("No attachments.")

    def _attachment(self, index: int, part: Part) -> ComposeResult:
        """One attachment: its title, then what can be shown of it (filled in when read)."""
        parts = self._parts()
        number = display.attachment_number(parts, index)
        kind = display.media_type(part)
        with Vertical(id=f"part-{index}", classes="part"):
            yield Static(
                f"[{number}] " + (display.visual(part.filename) or _("(no name)")),
                classes="part-title",
                markup=False,
            )
            if kind.startswith("text/"):
                text = display.part_text(part)
                self.texts[(index, "text")] = text
                yield ShownText(text, display.marks_for(self.report, index, "text", text))
                yield from _cut(part)
            elif kind == "application/pdf" or kind.startswith("image/"):
                yield Static(_("Reading…"), classes="note pending")
            else:
                yield Static(
                    _(
                        "Not shown here ({type}). To look at it, save it: sealpost review open "
                        "--save-attachments FOLDER.",
                        type=part.content_type,
                    ),
                    classes="note",
                    markup=False,
                )

    def _signals_words(self) -> str:
        lines = display.signal_lines(self.report, self._parts(), self.texts)
        if not lines:
            return _("Triage found nothing in this message. That decides nothing.")
        heading = _(
            "Triage signals: they point at what may matter; they decide nothing. "
            "Highlighted spans carry their number."
        )
        return heading + "\n" + "\n".join(lines)

    def on_mount(self) -> None:
        """Read the PDFs and photos in the background."""
        parts = self._parts()
        wanted = [
            (index, part)
            for index, part in enumerate(parts)
            if not display.is_body(parts, index)
            and (
                display.media_type(part) == "application/pdf"
                or display.media_type(part).startswith("image/")
            )
        ]
        if wanted:
            self.read_attachments(wanted, self.report)

    @work(thread=True, group="attachments", exit_on_error=False)
    def read_attachments(self, wanted: list[tuple[int, Part]], report: Report | None) -> None:
        """PDF text layers, photo previews and (where triage marked in it) OCR text."""
        for index, part in wanted:
            if display.media_type(part) == "application/pdf":
                read = _Read(pdf=display.pdf(index, part.data))
            else:
                read = _Read(
                    picture=display.picture(part.data, PREVIEW_COLUMNS, PREVIEW_ROWS),
                    ocr=display.ocr_text(part.data) if display.wants_ocr(report, index) else None,
                )
            self.app.call_from_thread(self._show_read, index, read)

    def _show_read(self, index: int, read: _Read) -> None:
        """Put what was read of attachment ``index`` in its place."""
        if self.review is None or not self.is_mounted:
            return
        box = self.query_one(f"#part-{index}", Vertical)
        for pending in box.query(".pending"):
            pending.remove()
        if read.pdf is not None:
            box.mount_all(self._pdf_widgets(index, read.pdf))
        else:
            box.mount_all(self._image_widgets(index, read))
        if self.report is not None:
            self.query_one("#signals", Static).update(self._signals_words())

    def _pdf_widgets(self, index: int, pdf: display.PdfText) -> list[Widget]:
        if pdf.note:
            return [Static(pdf.note, classes="note", markup=False)]
        self.texts[(index, "pdf")] = pdf.text
        marks = display.marks_for(self.report, index, "pdf", pdf.text)
        widgets: list[Widget] = []
        count = max(pdf.page_count, len(pdf.pages))
        if count > len(pdf.pages):
            words = _(
                "The first {shown} of {count} pages are shown.", shown=len(pdf.pages), count=count
            )
            widgets.append(Static(words, classes="note", markup=False))
        for number, (offset, text) in enumerate(pdf.pages, start=1):
            widgets.append(
                Static(_("— page {page} of {count} —", page=number, count=count), classes="page")
            )
            widgets.append(ShownText(text, _shifted(marks, offset, len(text))))
        return widgets

    def _image_widgets(self, index: int, read: _Read) -> list[Widget]:
        widgets: list[Widget] = [
            Static(display.picture_words(read.picture), classes="note", markup=False)
        ]
        if read.picture is not None:
            widgets.append(PictureView(read.picture))
        if read.ocr is not None:
            text, why = read.ocr
            widgets.append(Static(_("Text read in the image (OCR):"), classes="page"))
            if why:
                widgets.append(Static(why, classes="note", markup=False))
            else:
                self.texts[(index, "ocr")] = text
                widgets.append(ShownText(text, display.marks_for(self.report, index, "ocr", text)))
        return widgets

    def on_unmount(self) -> None:
        """Drop the plaintext as soon as the screen goes."""
        self.review = None
        self.report = None
        self.texts = {}

    def action_release(self) -> None:
        """Ask whether to release; the question's Release button records the verdict."""
        message_id = self.message_id

        def decided(confirmed: bool | None) -> None:
            if confirmed:
                self.app_review.record_verdict(message_id, common_pb2.VERDICT_RELEASE)

        self.app.push_screen(ReleaseScreen(message_id), decided)

    def action_withhold(self) -> None:
        """Ask for a reason and note; the Withhold button records the verdict."""
        message_id = self.message_id

        def decided(choice: Withhold | None) -> None:
            if choice is not None:
                reason, note = choice
                self.app_review.record_verdict(
                    message_id, common_pb2.VERDICT_WITHHOLD, reason, note
                )

        self.app.push_screen(WithholdScreen(), decided)

    def action_view(self) -> None:
        """The photos, one at a time, as large as the terminal (read-only, from memory)."""
        parts = self._parts()
        photos = [
            (f"[{display.attachment_number(parts, i)}] " + display.visual(p.filename), p.data)
            for i, p in enumerate(parts)
            if display.media_type(p).startswith("image/")
        ]
        if not photos:
            self.notify(_("This message has no photos."), severity="warning")
            return
        self.app.push_screen(ImageScreen(photos))

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

    def __init__(
        self,
        client: ReviewClient,
        *,
        institution: str = "",
        detainee: str = "",
        triage_for: Callable[[Review], Report | None] | None = None,
    ) -> None:
        """Work with ``client`` (gateway and own key-server identity), optionally filtered.

        ``triage_for`` triages an opened message (after its logged grant) for the message
        screen's highlights; it runs in the background, and when it fails the message is
        shown without them.
        """
        super().__init__()
        self.client = client
        self.institution = institution
        self.detainee = detainee
        self.triage_for = triage_for
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
            report = self._triage(review)
            self.call_from_thread(self.push_screen, MessageScreen(review, report))

    def _triage(self, review: Review) -> Report | None:
        """Triage's report on an opened message, or None; it never stops the message showing."""
        if self.triage_for is None:
            return None
        try:
            with self._lock:
                return self.triage_for(review)
        except Exception as exc:  # triage helps; it never stands in the way
            why = exc.explain() if isinstance(exc, SealpostError) else type(exc).__name__
            self.call_from_thread(
                self.notify,
                _("Triage did not run ({why}): the message is shown without highlights.", why=why),
                severity="warning",
                timeout=10,
                markup=False,
            )
            return None

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


def _shifted(marks: Sequence[display.Mark], offset: int, length: int) -> list[display.Mark]:
    """Marks in a text counted from ``offset`` (a PDF page), clipped to its ``length``."""
    return [
        display.Mark(max(0, m.start - offset), min(length, m.end - offset), m.number)
        for m in marks
        if m.end > offset and m.start < offset + length
    ]


def _cut(part: Part) -> list[Static]:
    """A note when a text is longer than is shown."""
    note = display.cut_note(part)
    return [Static(note, classes="note", markup=False)] if note else []
