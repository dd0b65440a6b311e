"""``sealpost review``: the screening queue, lawful review, verdicts, retrospective requests.

Every command signs in as a staff member. Opening a message asks the gateway for a
grant (logged in the transparency log before the key leaves, SPEC P6), checks that
the grant is in a signed tree head, has the key server decrypt the data key with the
screener's own identity (logged there too), checks the key commitment (P3) and
decrypts locally. ``verify-evidence`` checks an exported bundle offline.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sealpost.clients._cli import (
    CaFile,
    DirectoryKey,
    Gateway,
    JsonOutput,
    KeyServer,
    StaffOptions,
    User,
    cli_app,
    directory_key_bytes,
    emit,
    fail,
    key_prefix,
    run,
    table,
)
from sealpost.clients._problems import problem_of
from sealpost.clients._text import enum_word, isolate
from sealpost.clients.review import _format, display
from sealpost.clients.review.errors import EvidenceCheckError, EvidenceError
from sealpost.crypto.keyrecords import DirectoryPin
from sealpost.errors import SealpostError
from sealpost.i18n import _, _n
from sealpost.v1 import common_pb2, review_pb2

if TYPE_CHECKING:
    from sealpost.clients.review.client import Review, ReviewClient
    from sealpost.clients.review.evidence import EvidenceReport
    from sealpost.clients.triage.sealed import Summary
    from sealpost.clients.triage.signals import Report
    from sealpost.crypto.envelope import Part
    from sealpost.escrow.client import SealingClient

#: Bytes of a message id (crypto.envelope.MESSAGE_ID_BYTES).
MESSAGE_ID_BYTES = 16
#: Longest approval of a retrospective request the gateway accepts (SPEC 3.9).
MAX_VALID_DAYS = 30
#: The largest photo ``open`` draws on a terminal, in cells.
PREVIEW_COLUMNS = 60
PREVIEW_ROWS = 15

app = cli_app(
    help=_(
        "Screeners and approvers: the screening queue, lawful review, retrospective requests.\n\n"
        "Decrypts with the screener's own key-server identity; every grant is logged in the "
        "gateway's transparency log before the key leaves, and every decrypt in the key "
        "server's audit log."
    )
)
retro_app = cli_app(
    help=_("Retrospective access to past messages: file, list, decide (four eyes), list messages.")
)
app.add_typer(retro_app, name="retro")
watchlist_app = cli_app(
    help=_(
        "Triage watch lists of an institution and its detainees: names under a contact ban, "
        "co-defendants, code words. Sealed at the key server; every change is logged."
    )
)
app.add_typer(watchlist_app, name="watchlist")


@dataclass
class ReviewOptions(StaffOptions):
    """The staff options plus the pinned directory key (needed to open messages)."""

    directory_key: str = ""

    def pin(self) -> DirectoryPin:
        """The pinned directory key; a clear complaint when it is missing or malformed."""
        return parse_pin(self.directory_key)

    def review_client(self, *, decrypt: bool) -> ReviewClient:
        """A review client; with ``decrypt``, also the key-server client under one's own token."""
        from sealpost.clients.review.client import ReviewClient  # noqa: PLC0415
        from sealpost.escrow.bootstrap import BootstrapSettings  # noqa: PLC0415
        from sealpost.escrow.client import EscrowClient  # noqa: PLC0415

        staff = self.client()
        if not decrypt:
            # Queue, verdicts and requests verify nothing against the pin; open() refuses
            # to run without the key-server client, so this pin is never used.
            return ReviewClient(staff, DirectoryPin(b""))
        pin = self.pin()
        escrow = EscrowClient(
            self.key_server_config(),
            self.key_server_token(),
            key=BootstrapSettings(prefix=key_prefix()).escrow_key,
        )
        return ReviewClient(staff, pin, escrow)

    def sealing_client(self) -> SealingClient:
        """The key-server client for triage summaries and watch lists, under your own token."""
        from sealpost.escrow.bootstrap import BootstrapSettings  # noqa: PLC0415
        from sealpost.escrow.client import SealingClient  # noqa: PLC0415

        return SealingClient(
            self.key_server_config(),
            self.key_server_token(),
            key=BootstrapSettings(prefix=key_prefix()).triage_key,
        )


def parse_pin(text: str) -> DirectoryPin:
    """A directory pin from 64 hex digits."""
    return DirectoryPin(directory_key_bytes(text))


def parse_message_id(text: str) -> bytes:
    """A message id from 32 hex digits, as the queue prints it."""
    wrong = _("a message id is {digits} hex digits", digits=2 * MESSAGE_ID_BYTES)
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raise typer.BadParameter(wrong) from None
    if len(raw) != MESSAGE_ID_BYTES:
        raise typer.BadParameter(wrong)
    return raw


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@app.callback()
def _options(
    ctx: typer.Context,
    gateway: Gateway = "127.0.0.1:50051",
    ca_file: CaFile = Path("sealpost-state/tls/ca.pem"),
    key_server: KeyServer = "",
    user: User = "",
    directory_key: DirectoryKey = "",
    json_output: JsonOutput = False,
) -> None:
    """Where the gateway and the key server are, who you are, and the pinned directory key."""
    ctx.obj = ReviewOptions(
        gateway, ca_file, key_server, user, json_output, directory_key=directory_key
    )


# --------------------------------------------------------------------------- queue


@app.command(
    "queue",
    help=_(
        "Messages waiting for screening in your institutions: with triage's findings first "
        "among themselves, otherwise longest waiting first."
    ),
)
def queue(
    ctx: typer.Context,
    institution: Annotated[str, typer.Option(help=_("Only this institution."))] = "",
    detainee: Annotated[str, typer.Option(help=_("Only this detainee."))] = "",
    by_age: Annotated[
        bool,
        typer.Option(
            "--by-age", help=_("Longest waiting first; do not open the triage summaries.")
        ),
    ] = False,
    reads: Annotated[
        list[str] | None,
        typer.Option(
            "--reads",
            metavar="LANG",
            help=_(
                "Only messages in a language you read (a code such as nl, ar, tr; repeat "
                "for more), and those whose language triage could not tell."
            ),
        ),
    ] = None,
) -> None:
    """Messages waiting for screening: triage's findings first among themselves, then by age."""
    from sealpost.clients.review import triage  # noqa: PLC0415

    options: ReviewOptions = ctx.obj
    client = options.review_client(decrypt=False)
    items = run(lambda: client.queue(institution, detainee))
    summaries: dict[bytes, Summary | None] = {i.message_id: None for i in items}
    if not by_age and any(i.triage_seal for i in items):
        summaries = _open_summaries(options, items, summaries)
    ordered = triage.ranked(items, summaries)
    hidden: list[str] = []
    if reads:
        ordered, hidden = triage.for_readers(ordered, frozenset(reads))
    rows = [
        (
            *_format.item_row(r.item),
            triage.signals_cell(r.summary),
            triage.language_cell(r.summary),
        )
        for r in ordered
    ]
    headers = (*_format.queue_headers(), _("signals"), _("language"))
    text = table(headers, rows) if ordered else _("queue empty")
    if hidden:
        text += "\n" + _n(
            "{count} message in another language is left for a colleague: {languages}",
            "{count} messages in other languages are left for a colleague: {languages}",
            len(hidden),
            languages=", ".join(sorted(set(hidden))),
        )
    data = {
        "items": [
            {**_format.item_json(r.item), "triage": triage.summary_json(r.summary)} for r in ordered
        ]
    }
    emit(options, data, text)


def _open_summaries(
    options: ReviewOptions,
    items: list[review_pb2.QueueItem],
    unread: dict[bytes, Summary | None],
) -> dict[bytes, Summary | None]:
    """The queue's summaries, opened with your own key-server token; unread if that fails."""
    from sealpost.clients.review import triage  # noqa: PLC0415

    try:
        return triage.open_summaries(options.sealing_client(), items)
    except (typer.BadParameter, SealpostError) as exc:
        found = problem_of(exc) if isinstance(exc, SealpostError) else None
        why = found.message if found is not None else str(exc)
        if isinstance(exc, typer.BadParameter):
            why = exc.format_message()
        typer.echo(
            _(
                "warning: the triage summaries were not opened ({why}); the queue is in age order",
                why=why,
            ),
            err=True,
        )
        return unread


@app.command(
    "decisions",
    help=_(
        "Time from the screening queue to a verdict, per institution and per screener "
        "(median and 90th percentile), and what waits now."
    ),
)
def decisions(
    ctx: typer.Context,
    institution: Annotated[str, typer.Option(help=_("Only this institution."))] = "",
    days: Annotated[
        int, typer.Option(min=1, max=3660, help=_("Verdicts of the last this many days."))
    ] = 30,
) -> None:
    """Time from the screening queue to a verdict, per institution and per screener."""
    options: ReviewOptions = ctx.obj
    since = _now_ms() - days * 86_400_000
    reply = run(lambda: options.review_client(decrypt=False).decision_times(institution, since))

    def span(seconds: float) -> str:
        return _format.waited(int(seconds))

    rows = [
        (
            r.institution_id,
            _("(all screeners)"),
            str(r.verdicts),
            span(r.median_seconds) if r.verdicts else "",
            span(r.p90_seconds) if r.verdicts else "",
            str(r.undecided),
            span(r.oldest_undecided_seconds) if r.undecided else "",
        )
        for r in reply.institutions
    ] + [
        (
            r.institution_id,
            r.screener.removeprefix("staff:"),
            str(r.verdicts),
            span(r.median_seconds),
            span(r.p90_seconds),
            "",
            "",
        )
        for r in reply.screeners
    ]
    headers = (
        _("institution"),
        _("screener"),
        _("verdicts"),
        _("median"),
        _("90%"),
        _("waiting now"),
        _("oldest waiting"),
    )
    text = table(headers, rows) if rows else _("no verdicts and nothing waiting")
    emit(options, reply, text)


# --------------------------------------------------------------------------- open


def _write_new(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only, never overwriting one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _safe_name(name: str, index: int, taken: set[str]) -> str:
    """A file name inside the target folder: the sender's base name, else a numbered one."""
    base = Path(name).name if name else ""
    if base in {"", ".", ".."} or base.startswith("."):
        base = f"attachment-{index}"
    candidate = base
    counter = 1
    while candidate in taken:
        counter += 1
        candidate = f"{counter}-{base}"
    taken.add(candidate)
    return candidate


def save_attachments(review: Review, folder: Path) -> list[Path]:
    """Write the attachments into ``folder`` (created, owner-only); returns the paths."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    taken = {p.name for p in folder.iterdir()}
    paths: list[Path] = []
    for index, part in enumerate(review.attachments, start=1):
        path = folder / _safe_name(part.filename, index, taken)
        _write_new(path, part.data)
        paths.append(path)
    return paths


def _open_header(review: Review) -> str:
    grant = review.grant
    return _(
        "ACCESS LOGGED: grant {grant}, legal basis: {basis}; transparency log entry #{entry} "
        "in a signed tree head of size {size}. The key server logged the decrypt under your "
        "own identity.",
        grant=grant.grant_id,
        basis=_format.legal_basis(grant.legal_basis),
        entry=grant.grant_entry.index,
        size=review.tree_head.tree_size,
    )


@dataclass(frozen=True)
class Layout:
    """How ``open`` lays out a message for people (docs/review.md, "The open command")."""

    #: Keep the text in logical order, unshaped, unwrapped and unmarked (``--raw``).
    raw: bool = False
    #: Cells a line of right-to-left text may take (the terminal's width, or 80).
    width: int = 80
    #: Draw photos and colour the marks: only when printing to a terminal.
    terminal: bool = False


def _layout(raw: bool) -> Layout:
    """The layout for this output: the terminal's width; photos only on a terminal."""
    terminal = sys.stdout.isatty() and not raw
    return Layout(raw=raw, width=shutil.get_terminal_size((80, 24)).columns, terminal=terminal)


def _shown_text(text: str, marks: tuple[display.Mark, ...], layout: Layout) -> str:
    """A text of the message as the layout wants it: marked and laid out, or as sent."""
    if layout.raw:
        return display.visible(text)
    shown = display.lines(
        text, marks, layout.width, wrap_ltr=False, decoration=display.plain_decoration
    )
    return display.plain(shown, styled=layout.terminal)


def _attachment_shown(
    index: int, part: Part, report: Report | None, texts: dict[tuple[int, str], str],
    layout: Layout,
) -> list[str]:  # fmt: skip
    """What can be shown of one attachment: its text, its PDF text, its photo, or why not."""
    kind = display.media_type(part)
    if kind.startswith("text/"):
        text = display.part_text(part)
        texts[(index, "text")] = text
        shown = _shown_text(text, display.marks_for(report, index, "text", text), layout)
        return [shown, *filter(None, [display.cut_note(part)])]
    if kind == "application/pdf":
        return _pdf_shown(index, part, report, texts, layout)
    if kind.startswith("image/"):
        columns = min(PREVIEW_COLUMNS, layout.width)
        picture = display.picture(part.data, columns, PREVIEW_ROWS)
        lines = [display.picture_words(picture)]
        if picture is not None and layout.terminal:
            lines += display.ansi(picture)
        if display.wants_ocr(report, index):
            text, why = display.ocr_text(part.data)
            lines.append(_("Text read in the image (OCR):"))
            if why:
                lines.append(why)
            else:
                texts[(index, "ocr")] = text
                lines.append(
                    _shown_text(text, display.marks_for(report, index, "ocr", text), layout)
                )
        return lines
    return [
        _(
            "Not shown here ({type}). To look at it, save it: sealpost review open "
            "--save-attachments FOLDER.",
            type=part.content_type,
        )
    ]


def _pdf_shown(
    index: int, part: Part, report: Report | None, texts: dict[tuple[int, str], str],
    layout: Layout,
) -> list[str]:  # fmt: skip
    pdf = display.pdf(index, part.data)
    if pdf.note:
        return [pdf.note]
    texts[(index, "pdf")] = pdf.text
    marks = display.marks_for(report, index, "pdf", pdf.text)
    count = max(pdf.page_count, len(pdf.pages))
    lines: list[str] = []
    if count > len(pdf.pages):
        lines.append(
            _("The first {shown} of {count} pages are shown.", shown=len(pdf.pages), count=count)
        )
    for number, (offset, text) in enumerate(pdf.pages, start=1):
        lines.append(_("— page {page} of {count} —", page=number, count=count))
        page_marks = tuple(
            display.Mark(max(0, m.start - offset), min(len(text), m.end - offset), m.number)
            for m in marks
            if m.end > offset and m.start < offset + len(text)
        )
        lines.append(_shown_text(text, page_marks, layout))
    return lines


def _open_text(
    review: Review,
    saved: list[Path],
    evidence_file: Path | None,
    *,
    report: Report | None = None,
    layout: Layout | None = None,
) -> str:
    """The opened message for people: header, the text, every attachment, the signals."""
    layout = layout or Layout()
    grant = review.grant
    name = grant.sender_display_name or review.sender.subject
    sender = isolate(display.visible(name)) if layout.raw else display.visual(name)
    parts = tuple(review.message.parts)
    texts: dict[tuple[int, str], str] = {}
    body = display.part_text(parts[0]) if display.is_body(parts, 0) else ""
    if display.is_body(parts, 0):
        texts[(0, "text")] = body
    labels = {
        "message": _("message"),
        "detainee": _("detainee"),
        "sender": _("sender"),
        "accepted": _("accepted"),
    }
    width = max(len(label) for label in labels.values()) + 2
    lines = [
        _open_header(review),
        "",
        labels["message"].ljust(width) + review.message.header.message_id.hex(),
        labels["detainee"].ljust(width)
        + f"{grant.detainee_id}  ({_format.direction_words(grant.direction)})",
        labels["sender"].ljust(width) + sender,
        labels["accepted"].ljust(width) + _format.when(grant.accepted_at_ms),
        "",
        _shown_text(body, display.marks_for(report, 0, "text", body), layout),
    ]
    if display.is_body(parts, 0) and display.cut_note(parts[0]):
        lines.append(display.cut_note(parts[0]))
    if review.attachments:
        lines += ["", _("attachments:")]
        for index, part in enumerate(review.attachments, start=1):
            filename = part.filename if layout.raw else display.visual(part.filename)
            lines.append(
                "  " + _attachment_line(index, filename, part.content_type, len(part.data))
            )
        for index, part in enumerate(parts):
            if display.is_body(parts, index):
                continue
            number = display.attachment_number(parts, index)
            filename = part.filename if layout.raw else display.visual(part.filename)
            lines += ["", f"[{number}] {filename or _('(no name)')}"]
            lines += _attachment_shown(index, part, report, texts, layout)
    if report is not None:
        shown = display.visible if layout.raw else display.visual
        found = display.signal_lines(report, parts, texts, shown)
        lines += ["", _("triage signals (they point at what may matter; they decide nothing):")]
        lines += found or [_("none")]
    if saved:
        lines.append(_("saved to {folder}/ (owner-only files)", folder=saved[0].parent))
    if evidence_file is not None:
        lines.append(
            _(
                "evidence written to {file}: it holds the content and this message's data key; "
                "keep it as confidential as the message",
                file=evidence_file,
            )
        )
    return "\n".join(lines)


def _attachment_line(index: int | None, filename: str, content_type: str, size: int) -> str:
    """One attachment for people: ``[1] scan.pdf  application/pdf  1234 bytes``."""
    name = filename or _("(no name)")
    described = _n(
        "{name}  {type}  {count} byte",
        "{name}  {type}  {count} bytes",
        size,
        name=name,
        type=content_type,
    )
    return described if index is None else f"[{index}] {described}"


def _open_json(
    review: Review,
    saved: list[Path],
    evidence_file: Path | None,
    report: Report | None = None,
) -> dict[str, Any]:
    grant = review.grant
    attachments: list[dict[str, Any]] = [
        {"filename": p.filename, "contentType": p.content_type, "size": len(p.data)}
        for p in review.attachments
    ]
    for entry, path in zip(attachments, saved, strict=False):
        entry["savedTo"] = str(path)
    data: dict[str, Any] = {
        "messageId": review.message.header.message_id.hex(),
        "grantId": grant.grant_id,
        "legalBasis": enum_word(common_pb2.LegalBasis, grant.legal_basis),
        "detaineeId": grant.detainee_id,
        "direction": _format.direction(grant.direction),
        "acceptedAt": _format.when(grant.accepted_at_ms),
        "sender": {"subject": review.sender.subject, "displayName": grant.sender_display_name},
        "logEntry": grant.grant_entry.index,
        "treeSize": review.tree_head.tree_size,
        "text": review.text,
        "attachments": attachments,
    }
    if evidence_file is not None:
        data["evidence"] = str(evidence_file)
    if report is not None:
        data["triage"] = json.loads(report.to_json())
    return data


def _export(review: Review, pin: DirectoryPin, path: Path) -> None:
    """Export the bundle, check it as an outsider would, then write it (owner-only)."""
    from sealpost.clients.review.evidence import export_evidence, verify_evidence  # noqa: PLC0415

    bundle = export_evidence(review, exported_at_ms=_now_ms())
    verify_evidence(bundle, pin)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(bundle)


@app.command(
    "open",
    help=_("Open a message: a logged grant, your own decrypt at the key server, checks, the text."),
)
def open_message(
    ctx: typer.Context,
    message_id: Annotated[str, typer.Argument(help=_("The message id (hex), as the queue shows."))],
    retrospective: Annotated[
        str,
        typer.Option(
            "--retrospective", help=_("Open under this approved retrospective request of yours.")
        ),
    ] = "",
    save_attachments_to: Annotated[
        Path | None,
        typer.Option("--save-attachments", help=_("Also write the attachments into this folder.")),
    ] = None,
    evidence_file: Annotated[
        Path | None,
        typer.Option(
            "--evidence",
            help=_("Also write an evidence bundle (content, data key, signatures, logged grant)."),
        ),
    ] = None,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw",
            help=_(
                "Print the text in logical order as sent: right-to-left text not shaped or "
                "reordered, nothing wrapped or marked, no photos (for a terminal that lays out "
                "right-to-left text itself, and for scripts; --json gives the exact text)."
            ),
        ),
    ] = False,
) -> None:
    """Open a message: a logged grant, your own decrypt at the key server, checks, the text."""
    options: ReviewOptions = ctx.obj
    raw_id = parse_message_id(message_id)
    pin = options.pin()
    # Triage's report on the opened message, for its highlights; None shows none.
    report: Report | None = None

    def open_it() -> tuple[Review, list[Path]]:
        review = options.review_client(decrypt=True).open(raw_id, retrospective)
        if evidence_file is not None:
            _export(review, pin, evidence_file)
        saved = save_attachments(review, save_attachments_to) if save_attachments_to else []
        return review, saved

    review, saved = run(open_it)
    if not raw:
        report = triage_report(options, review)
    show_opened(options, review, saved, evidence_file, report=report, raw=raw)


def triage_report(options: ReviewOptions, review: Review) -> Report | None:
    """Triage of an opened message with its watch lists, for highlights; None if it cannot.

    Only after the logged grant (the message is open). A missing triage library, a key
    server that cannot open the lists, or any refusal leaves the message shown unmarked,
    with a warning.
    """
    from sealpost.clients.review import triage  # noqa: PLC0415

    try:
        client = options.review_client(decrypt=False)
        lists = triage.lists_for(client, options.sealing_client(), "", review.grant.detainee_id)
        return triage.report_for(review, lists)
    except (ImportError, SealpostError, typer.BadParameter) as exc:
        typer.echo(
            _("warning: triage's marks are not shown ({why})", why=type(exc).__name__), err=True
        )
        return None


def show_opened(
    options: ReviewOptions,
    review: Review,
    saved: list[Path],
    evidence_file: Path | None,
    *,
    report: Report | None = None,
    raw: bool = False,
) -> None:
    """Print an opened message: laid out and marked for people, exact with --json.

    People see every attachment as far as it can be shown and, with ``report``, triage's
    spans marked and its signals listed; --json has the text exactly as sent, and the
    report when given.
    """
    emit(
        options,
        _open_json(review, saved, evidence_file, report),
        _open_text(review, saved, evidence_file, report=report, layout=_layout(raw)),
    )


# --------------------------------------------------------------------------- verdict


class Decision(StrEnum):
    """A screener's verdict."""

    release = "release"
    withhold = "withhold"


class Reason(StrEnum):
    """Reason codes for withholding (the note carries the detail)."""

    order_and_security = "order-and-security"
    public_order = "public-order"
    crime_prevention = "crime-prevention"
    victim_protection = "victim-protection"


@app.command(
    "verdict",
    help=_("Release a message you opened, or withhold it with a reason code and a note."),
)
def verdict(
    ctx: typer.Context,
    message_id: Annotated[str, typer.Argument(help=_("The message id (hex)."))],
    decision: Annotated[Decision, typer.Argument(help=_("release or withhold."))],
    reason: Annotated[
        Reason | None, typer.Option(help=_("Required when withholding: the reason code."))
    ] = None,
    note: Annotated[str, typer.Option(help=_("For the file; never shown to the relative."))] = "",
) -> None:
    """Release a message you opened, or withhold it with a reason code and a note."""
    options: ReviewOptions = ctx.obj
    raw_id = parse_message_id(message_id)
    if decision is Decision.withhold and reason is None:
        raise typer.BadParameter(
            _("withholding needs --reason ({codes})", codes=", ".join(r.value for r in Reason))
        )
    if decision is Decision.release and reason is not None:
        raise typer.BadParameter(_("a reason is given only when withholding"))
    code = _format.REASONS[reason.value] if reason else common_pb2.WITHHOLD_REASON_UNSPECIFIED
    value = (
        common_pb2.VERDICT_RELEASE if decision is Decision.release else common_pb2.VERDICT_WITHHOLD
    )
    state = run(lambda: options.review_client(decrypt=False).verdict(raw_id, value, code, note))
    name = enum_word(common_pb2.MessageState, state)
    text = _("message {id} {state}", id=raw_id.hex(), state=_format.state_words(state))
    if reason:
        text += f" ({reason.value})"
    emit(options, {"messageId": raw_id.hex(), "state": name}, text)


@app.command(
    "release-withheld",
    help=_("Release a withheld message after a successful complaint, naming the decision."),
)
def release_withheld(
    ctx: typer.Context,
    message_id: Annotated[str, typer.Argument(help=_("The message id (hex)."))],
    complaint: Annotated[
        str,
        typer.Option(
            "--complaint",
            help=_("The complaint decision that orders the release (its case number)."),
        ),
    ] = "",
) -> None:
    """Release a withheld message after a successful complaint, naming the decision."""
    options: ReviewOptions = ctx.obj
    raw_id = parse_message_id(message_id)
    if not complaint.strip():
        raise typer.BadParameter(_("name the complaint decision with --complaint"))
    state = run(
        lambda: options.review_client(decrypt=False).release_withheld(raw_id, complaint.strip())
    )
    name = enum_word(common_pb2.MessageState, state)
    text = _(
        "message {id} released after complaint {reference}",
        id=raw_id.hex(),
        reference=complaint.strip(),
    )
    emit(
        options,
        {"messageId": raw_id.hex(), "state": name, "complaintReference": complaint.strip()},
        text,
    )


# --------------------------------------------------------------------------- retrospective


class RetroDirection(StrEnum):
    """Which messages a retrospective request covers."""

    both = "both"
    inbound = "inbound"
    outbound = "outbound"


class RetroStatus(StrEnum):
    """A retrospective request's status, for filtering."""

    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    expired = "expired"


class Decide(StrEnum):
    """An approver's decision."""

    approve = "approve"
    reject = "reject"


_RETRO_DIRECTIONS = {
    RetroDirection.both: common_pb2.DIRECTION_BOTH,
    RetroDirection.inbound: common_pb2.DIRECTION_INBOUND,
    RetroDirection.outbound: common_pb2.DIRECTION_OUTBOUND,
}


def parse_moment(text: str, *, end_of_day: bool) -> int:
    """Milliseconds since the epoch from an ISO date or date-time (UTC unless it says).

    A bare date means the start of that day, or with ``end_of_day`` the start of the next,
    so ``--from 2026-03-01 --to 2026-03-31`` covers all of March.
    """
    try:
        if len(text.strip()) == 10:
            day = dt.date.fromisoformat(text.strip())
            moment = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
            if end_of_day:
                moment += dt.timedelta(days=1)
        else:
            moment = dt.datetime.fromisoformat(text.strip())
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
    except ValueError:
        raise typer.BadParameter(
            _("{text} is not a date (2026-03-01) or date-time", text=repr(text))
        ) from None
    return int(moment.timestamp() * 1000)


@retro_app.command(
    "file",
    help=_("File a request for a detainee's past messages; another officer must approve it."),
)
def retro_file(
    ctx: typer.Context,
    detainee: Annotated[str, typer.Argument(help=_("The detainee whose past messages to open."))],
    period_from: Annotated[
        str, typer.Option("--from", help=_("Start of the period (date or date-time, UTC)."))
    ],
    period_to: Annotated[
        str, typer.Option("--to", help=_("End of the period; a date includes that whole day."))
    ],
    case: Annotated[str, typer.Option("--case", help=_("The case reference (e.g. OM 2026/778)."))],
    reason: Annotated[str, typer.Option("--reason", help=_("Why access is needed."))],
    direction: Annotated[
        RetroDirection, typer.Option(help=_("Messages to the detainee, from, or both."))
    ] = RetroDirection.both,
) -> None:
    """File a request for a detainee's past messages; another officer must approve it."""
    options: ReviewOptions = ctx.obj
    start = parse_moment(period_from, end_of_day=False)
    end = parse_moment(period_to, end_of_day=True)
    request = run(
        lambda: options.review_client(decrypt=False).file_retrospective(
            detainee, start, end, case, reason, _RETRO_DIRECTIONS[direction]
        )
    )
    emit(
        options,
        _format.request_json(request),
        _(
            "request {request} filed ({status}): a second officer must approve it before you "
            "can open anything",
            request=request.request_id,
            status=_format.retro_status_words(request.status),
        ),
    )


@retro_app.command("list", help=_("Retrospective requests at your institutions."))
def retro_list(
    ctx: typer.Context,
    status: Annotated[
        RetroStatus | None, typer.Option(help=_("Only requests in this status."))
    ] = None,
) -> None:
    """Retrospective requests at your institutions."""
    options: ReviewOptions = ctx.obj
    code = (
        _format.RETRO_STATUSES[status.value]
        if status
        else common_pb2.RETROSPECTIVE_STATUS_UNSPECIFIED
    )
    requests = run(lambda: options.review_client(decrypt=False).retrospective_requests(code))
    emit(
        options,
        {"requests": [_format.request_json(r) for r in requests]},
        "\n".join(_format.request_line(r) for r in requests) or _("no requests"),
    )


@retro_app.command(
    "decide",
    help=_("Approve (time-bound) or reject a colleague's request; never your own (four eyes)."),
)
def retro_decide(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(help=_("A colleague's request."))],
    decision: Annotated[Decide, typer.Argument(help=_("approve or reject."))],
    valid_days: Annotated[
        int,
        typer.Option(
            min=1, max=MAX_VALID_DAYS, help=_("How long an approval lasts (at most 30 days).")
        ),
    ] = 7,
    note: Annotated[str, typer.Option(help=_("For the file."))] = "",
) -> None:
    """Approve (time-bound) or reject a colleague's request; never your own (four eyes)."""
    options: ReviewOptions = ctx.obj
    approve = decision is Decide.approve
    until = _now_ms() + valid_days * 86_400_000 - 60_000 if approve else 0
    request = run(
        lambda: options.review_client(decrypt=False).decide_retrospective(
            request_id, approve=approve, valid_until_ms=until, note=note
        )
    )
    emit(options, _format.request_json(request), _format.request_line(request))


@retro_app.command(
    "messages",
    help=_("Messages your approved request covers; open each with --retrospective REQUEST_ID."),
)
def retro_messages(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(help=_("Your approved request."))],
) -> None:
    """Messages your approved request covers; open each with --retrospective REQUEST_ID."""
    options: ReviewOptions = ctx.obj
    items = run(lambda: options.review_client(decrypt=False).retrospective_messages(request_id))
    emit(
        options,
        {"items": [_format.item_json(i) for i in items]},
        table(_format.queue_headers(), [_format.item_row(i) for i in items])
        if items
        else _("no messages in the period"),
    )


# --------------------------------------------------------------------------- terminal UI


@app.command("tui", help=_("The screening queue in a terminal user interface, for daily work."))
def tui(
    ctx: typer.Context,
    institution: Annotated[str, typer.Option(help=_("Only this institution's queue."))] = "",
    detainee: Annotated[str, typer.Option(help=_("Only this detainee's queue."))] = "",
) -> None:
    """The screening queue in a terminal user interface, for daily work."""
    from sealpost.clients.review.tui import ReviewApp  # noqa: PLC0415

    options: ReviewOptions = ctx.obj
    client = run(lambda: options.review_client(decrypt=True))
    try:
        ReviewApp(
            client,
            institution=institution,
            detainee=detainee,
            triage_for=lambda review: triage_report(options, review),
        ).run()
    finally:
        client.staff.close()
        if client.escrow is not None:
            client.escrow.close()


# --------------------------------------------------------------------------- evidence


def _report_text(report: EvidenceReport) -> str:
    """The verification report for people (check names and details stay as the bundle has them)."""
    passed, failed = _("ok"), _("FAILED")
    mark = max(len(passed), len(failed))
    lines = [_("evidence for message {id}:", id=report.message_id.hex())]
    lines += [
        f"  {(passed if c.passed else failed).ljust(mark)}  {c.name:<11} {c.detail}"
        for c in report.checks
    ]
    if not report.verified:
        return "\n".join(lines)
    labels = {"message": _("message"), "grant": _("grant"), "log": _("log")}
    # Values line up one column past the longest label ("message   " in English).
    width = max(len(label) for label in labels.values()) + 3
    lines += [
        "",
        labels["message"].ljust(width)
        + _(
            "{direction} for detainee {detainee}, accepted {accepted}, sender key of {sender}",
            direction=_report_direction(report.direction),
            detainee=report.detainee_id,
            accepted=_format.when(report.accepted_at_ms),
            sender=report.sender_subject,
        ),
        labels["grant"].ljust(width)
        + _(
            "{grant} on {basis}, to {actor} (key-server identity {entity}) at {time}",
            grant=report.grant_id,
            basis=_evidence_basis(report.legal_basis),
            actor=report.actor,
            entity=report.key_server_entity,
            time=_format.when(report.granted_at_ms),
        ),
        labels["log"].ljust(width)
        + _(
            "leaf #{leaf} in a signed tree head of size {size}",
            leaf=report.leaf_index,
            size=report.tree_size,
        ),
        "",
    ]
    for index, part in enumerate(report.parts):
        if index == 0 and part.content_type.startswith("text/"):
            lines.append(part.data.decode("utf-8", errors="replace"))
        else:
            lines.append(
                _("attachment")
                + " "
                + _attachment_line(None, part.filename, part.content_type, len(part.data))
            )
    return "\n".join(lines)


def _report_direction(direction: str) -> str:
    """The bundle's direction word (inbound, outbound) in the staff language."""
    words = {"inbound": _("to the detainee"), "outbound": _("from the detainee")}
    return words.get(direction, direction)


def _evidence_basis(name: str) -> str:
    """The bundle's legal basis (its proto enum name) in the staff language."""
    try:
        return _format.legal_basis(common_pb2.LegalBasis.Value(name))
    except ValueError:
        return name


def verify_evidence_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help=_("The evidence bundle (JSON)."))],
    directory_key: DirectoryKey = "",
    json_output: JsonOutput = False,
) -> None:
    """Verify an evidence bundle offline against the pinned directory key.

    Checks the key records, the sender's signature, that the data key matches the signed
    commitment and decrypts to the bundle's content, and that the grant is in a signed tree
    head. Exit code 0 when every check passes, 1 when one fails (it is named).
    """
    from sealpost.clients.review.evidence import verify_evidence  # noqa: PLC0415

    as_json = json_output or bool(getattr(ctx.obj, "json", False))
    pin = parse_pin(directory_key or getattr(ctx.obj, "directory_key", ""))
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise typer.BadParameter(
            _("cannot read {file}: {reason}", file=file, reason=exc.strerror)
        ) from exc
    try:
        report = verify_evidence(data, pin)
    except EvidenceCheckError as exc:
        if as_json:
            document = {**exc.report.to_json(), "failedCheck": exc.check}
            typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        else:
            typer.echo(_report_text(exc.report))
        fail(exc)
    except EvidenceError as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        typer.echo(_report_text(report))


VERIFY_EVIDENCE_HELP = _(
    "Verify an evidence bundle offline against the pinned directory key.\n\n"
    "Checks the key records, the sender's signature, that the data key matches the signed "
    "commitment and decrypts to the bundle's content, and that the grant is in a signed tree "
    "head. Exit code 0 when every check passes, 4 when one fails (it is named), 2 when the "
    "file is not an evidence bundle this program reads."
)
app.command("verify-evidence", help=VERIFY_EVIDENCE_HELP)(verify_evidence_command)


# --------------------------------------------------------------------------- watch lists


@watchlist_app.command(
    "show",
    help=_(
        "Print an institution's watch lists (its own and its detainees', or one detainee's) "
        "in the file format that set reads."
    ),
)
def watchlist_show(
    ctx: typer.Context,
    institution: Annotated[str, typer.Option(help=_("The institution."))],
    detainee: Annotated[str, typer.Option(help=_("Only this detainee's list."))] = "",
) -> None:
    """Print an institution's watch lists in the file format that set reads."""
    from sealpost.clients.review import triage  # noqa: PLC0415

    options: ReviewOptions = ctx.obj
    found = run(
        lambda: triage.watch_lists(
            options.review_client(decrypt=False), options.sealing_client(), institution, detainee
        )
    )
    blocks = []
    for record, lst in found:
        title = (
            _("# detainee {detainee}", detainee=record.detainee_id)
            if record.detainee_id
            else _("# institution {institution}", institution=record.institution_id)
        )
        changed = _(
            "# version {version}, changed by {who} at {when}",
            version=record.version,
            who=record.updated_by,
            when=_format.when(record.updated_at_ms),
        )
        blocks.append(f"{title}\n{changed}\n{triage.format_list(lst.entries)}")
    data = {
        "lists": [
            {
                "institutionId": r.institution_id,
                "detaineeId": r.detainee_id,
                "version": r.version,
                "updatedBy": r.updated_by,
                "updatedAt": _format.when(r.updated_at_ms),
                "entries": [{"kind": e.kind.value, "text": e.text} for e in lst.entries],
            }
            for r, lst in found
        ]
    }
    emit(options, data, "\n".join(blocks) if blocks else _("no watch lists"))


@watchlist_app.command(
    "set",
    help=_(
        "Replace a watch list with the entries of FILE ('-' reads standard input): one per "
        "line, KIND: TEXT, with KIND contact-ban, co-defendant or code-word; lines starting "
        "with # are skipped. An empty file empties the list."
    ),
)
def watchlist_set(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help=_("The list file, or - for standard input."))],
    institution: Annotated[str, typer.Option(help=_("The institution."))],
    detainee: Annotated[
        str, typer.Option(help=_("The detainee's list; without it, the institution's own."))
    ] = "",
) -> None:
    """Replace a watch list with the entries of FILE."""
    from sealpost.clients.review import triage  # noqa: PLC0415

    options: ReviewOptions = ctx.obj
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        entries = triage.parse_list(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="FILE") from None
    reply = run(
        lambda: triage.set_watch_list(
            options.review_client(decrypt=False),
            options.sealing_client(),
            institution,
            detainee,
            entries,
        )
    )
    text_out = _n(
        "watch list set: {count} entry, version {version}, log entry {index}",
        "watch list set: {count} entries, version {version}, log entry {index}",
        len(entries),
        version=reply.list.version,
        index=reply.log_index,
    )
    emit(
        options,
        {"version": reply.list.version, "entries": len(entries), "logIndex": reply.log_index},
        text_out,
    )
