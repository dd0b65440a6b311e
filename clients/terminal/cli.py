"""``sealpost terminal``: an institution terminal's intake loop, delivery desk and replies.

Every command works on one terminal profile (``--profile``, env SEALPOST_TERMINAL_PROFILE)
whose secrets are encrypted under a passphrase (env SEALPOST_PASSPHRASE, or asked for
without echo). Output is for people, or JSON with ``--json``. Message content appears
only where an officer asks for it: ``show``, ``print`` and the receipt of ``reply``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import grpc
import typer

from sealpost.clients._cli import (
    DirectoryKey,
    cli_app,
    directory_key_bytes,
    fail,
    refuse,
    remember_where,
    report,
)
from sealpost.clients._grpc import ClientError
from sealpost.clients._problems import ExitCode, Problem, problem_of
from sealpost.clients._text import isolate
from sealpost.clients.terminal.errors import TerminalRevokedError, UnprovenReleaseError
from sealpost.errors import SealpostError
from sealpost.i18n import _

# The desk (PDF fonts), the key-server client and X.509 load on first use, so that every
# `sealpost` command starts quickly.
if TYPE_CHECKING:
    from sealpost.clients.terminal.client import Escrow, TerminalClient
    from sealpost.clients.terminal.desk import DeliveryDesk, DeliveryItem
    from sealpost.clients.terminal.intake import BatchReport
    from sealpost.clients.terminal.profile import TerminalProfile
    from sealpost.clients.terminal.reply import HandedInReply

T = TypeVar("T")

DEFAULT_PROFILE = Path("sealpost-terminal")
#: Bytes of a message id (crypto.envelope.MESSAGE_ID_BYTES).
MESSAGE_ID_BYTES = 16
#: Exit code of ``intake --once`` when messages still wait (key server or mailbox key).
EXIT_STILL_WAITING = 3
#: `deliveries` found messages listed as released whose release the log does not prove.
EXIT_UNPROVEN_RELEASE = 4

app = cli_app(
    help=(
        "Institution terminals: take in messages, escrow their keys, deliver, send replies.\n\n"
        "Authenticates to the gateway with the institution's client certificate; the "
        "institution key and the key-server token stay encrypted in the terminal profile."
    )
)

ProfileFolder = Annotated[
    Path,
    typer.Option(
        "--profile",
        envvar="SEALPOST_TERMINAL_PROFILE",
        help="Folder of the terminal profile (encrypted under a passphrase).",
    ),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


# --------------------------------------------------------------------- plumbing


def _passphrase(*, new: bool = False, env: str = "SEALPOST_PASSPHRASE", what: str = "") -> str:
    given = os.environ.get(env)
    if given:
        return given
    what = what or "the terminal profile"
    prompt = f"Choose a passphrase for {what}" if new else f"Passphrase of {what}"
    answer: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=new)
    return answer


def _emit(json_output: bool, data: object, text: str) -> None:
    if json_output:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    elif text:
        typer.echo(text)


def _run(action: Callable[[], T]) -> T:
    """Run a command body: a failure becomes one clear line and its exit code."""
    try:
        return action()
    except ClientError as exc:
        if exc.code == grpc.StatusCode.UNAUTHENTICATED:
            fail(TerminalRevokedError())
        raise


def _open(folder: Path) -> TerminalProfile:
    from sealpost.clients.terminal.profile import TerminalProfile  # noqa: PLC0415

    return _run(lambda: TerminalProfile.open(folder.expanduser(), _passphrase()))


@contextmanager
def _session(folder: Path) -> Iterator[TerminalProfile]:
    opened = _open(folder)
    remember_where(gateway=opened.settings.gateway, key_server=opened.settings.key_server)
    yield opened


def _desk(client: TerminalClient, opened: TerminalProfile) -> DeliveryDesk:
    """The delivery desk; its witness checks every head that proves a release."""
    from sealpost.clients.terminal.desk import DeliveryDesk  # noqa: PLC0415
    from sealpost.clients.terminal.witness import for_terminal  # noqa: PLC0415

    witness = for_terminal(client, opened.folder)
    return DeliveryDesk(client, opened.settings.institution_id, observe=witness.observe)


def _message_id(value: str) -> bytes:
    try:
        message_id = bytes.fromhex(value)
    except ValueError:
        raise typer.BadParameter("a message id is 32 hexadecimal digits") from None
    if len(message_id) != MESSAGE_ID_BYTES:
        raise typer.BadParameter("a message id is 32 hexadecimal digits")
    return message_id


def _to_stdout(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _item_line(item: DeliveryItem) -> str:
    extras = []
    if item.privileged:
        extras.append("privileged")
    if item.attachments:
        extras.append(f"{item.attachments} attachment{'s' if item.attachments > 1 else ''}")
    tail = f"  ({', '.join(extras)})" if extras else ""
    sent = item.sent_at.astimezone().strftime("%Y-%m-%d %H:%M")
    return f"{item.message_id.hex()}  {item.detainee_id}  {sent}  {isolate(item.sender_name)}{tail}"


# --------------------------------------------------------------------- enrolment


@app.command()
def enroll(
    certificates: Annotated[
        Path,
        typer.Option(
            "--certificates",
            help="Folder written by `sealpost admin terminal issue --out` "
            "(terminal-key.pem, terminal.pem, ca.pem).",
        ),
    ],
    gateway: Annotated[
        str,
        typer.Option(
            "--gateway",
            envvar="SEALPOST_TERMINAL_GATEWAY",
            help="The gateway's terminal port, host:port (mutual TLS).",
        ),
    ],
    key_server: Annotated[
        str,
        typer.Option(
            "--key-server", envvar="SEALPOST_KEY_SERVER_ADDRESS", help="The key server's URL."
        ),
    ],
    directory_key: DirectoryKey,
    key_server_ca: Annotated[
        str, typer.Option(help="CA bundle for the key server's TLS certificate.")
    ] = "",
    escrow_prefix: Annotated[
        str, typer.Option(help="The key server's Sealpost name prefix.")
    ] = "sealpost",
    institution_key: Annotated[
        Path | None,
        typer.Option(
            help="The institution key exported from an enrolled terminal (`export-key`); "
            "without it a new institution key is registered.",
        ),
    ] = None,
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
) -> None:
    """Create the encrypted terminal profile from an issued certificate folder.

    The key-server token (encrypt-only) comes from SEALPOST_KEY_SERVER_TOKEN or a prompt.
    Registers the institution key when the institution has none yet.
    """
    from sealpost.clients.terminal import enroll as enrolment  # noqa: PLC0415
    from sealpost.clients.terminal.profile import read_institution_key  # noqa: PLC0415

    pin = directory_key_bytes(directory_key)
    token = os.environ.get("SEALPOST_KEY_SERVER_TOKEN") or typer.prompt(
        "The terminal's key-server token", hide_input=True
    )
    imported = None
    if institution_key is not None:
        export_passphrase = _passphrase(env="SEALPOST_EXPORT_PASSPHRASE", what="the exported key")
        imported = _run(lambda: read_institution_key(institution_key, export_passphrase))
    passphrase = _passphrase(new=True)
    result = _run(
        lambda: enrolment.enroll(
            profile.expanduser(),
            passphrase,
            certificates,
            gateway=gateway,
            key_server=key_server,
            key_server_token=token,
            directory_pin=pin,
            key_server_ca=key_server_ca,
            escrow_prefix=escrow_prefix,
            institution_key=imported,
        )
    )
    settings = result.profile.settings
    data = {
        "profile": str(result.profile.folder),
        "institutionId": settings.institution_id,
        "terminalId": settings.terminal_id,
        "institutionKeyId": settings.institution_key_id.hex(),
        "registeredInstitutionKey": result.registered_key,
    }
    key_note = (
        "registered a new institution key"
        if result.registered_key
        else "took over the exported institution key"
    )
    _emit(
        json_output,
        data,
        f"terminal {settings.terminal_id} of {settings.institution_id} enrolled in "
        f"{result.profile.folder}/; {key_note} ({settings.institution_key_id.hex()[:16]}...).\n"
        f"The profile now holds the TLS key encrypted: delete "
        f"{certificates / enrolment.KEY_FILE} once you have checked that it works.",
    )


@app.command("export-key")
def export_key(
    out: Annotated[Path, typer.Option(help="File to write (never overwritten).")],
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
) -> None:
    """Export the institution key, under its own passphrase, for another terminal here.

    The export passphrase comes from SEALPOST_EXPORT_PASSPHRASE or a prompt.
    """
    from sealpost.clients.terminal.profile import export_institution_key  # noqa: PLC0415

    with _session(profile) as opened:
        passphrase = _passphrase(new=True, env="SEALPOST_EXPORT_PASSPHRASE", what="the export")
        _run(lambda: export_institution_key(opened, out, passphrase))
    _emit(
        json_output,
        {"out": str(out), "institutionId": opened.settings.institution_id},
        f"institution key of {opened.settings.institution_id} written to {out}; "
        "carry it to the other terminal and delete it after `enroll --institution-key`",
    )


# --------------------------------------------------------------------- intake


class _Printer:
    """Progress of the intake loop: a line per batch and per notice, or JSON lines."""

    def __init__(self, json_output: bool) -> None:
        self.json = json_output

    def batch(self, report: BatchReport) -> None:
        if self.json:
            typer.echo(json.dumps(report.to_json()))
        else:
            typer.echo(report.line())

    def notice(self, kind: str, text: str) -> None:
        if self.json:
            typer.echo(json.dumps({"event": "notice", "kind": kind, "text": text}))
        else:
            typer.echo(f"! {text}")


@app.command()
def intake(
    once: Annotated[
        bool, typer.Option("--once", help="Take in what is there now, then exit.")
    ] = False,
    max_wait: Annotated[
        float,
        typer.Option(help="With --once: seconds to keep retrying while the key server is down."),
    ] = 60.0,
    batch_size: Annotated[
        int, typer.Option(min=1, max=200, help="Messages per escrow batch.")
    ] = 200,
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
) -> None:
    """Take in new messages: open, verify, escrow in batches, report (Ctrl-C stops).

    Fail closed: while the key server is sealed, stopped or refusing, non-privileged
    messages wait at the gateway and the loop retries with backoff. With --once the exit
    code is 3 when messages still wait.
    """
    from sealpost.clients.terminal.intake import IntakeLoop, IntakeSettings  # noqa: PLC0415
    from sealpost.clients.terminal.profile import escrow_with  # noqa: PLC0415
    from sealpost.clients.terminal.witness import for_terminal  # noqa: PLC0415

    with _session(profile) as opened:
        client = opened.client()
        escrow_client = opened.escrow_client()
        loop = IntakeLoop(
            client,
            escrow_with(escrow_client),
            opened.state_store(),
            settings=IntakeSettings(batch_size=batch_size),
            reporter=_Printer(json_output),
            renew=escrow_client.renew_self,
            witness=for_terminal(client, opened.folder),
        )

        def stop(_signal: int, _frame: FrameType | None) -> None:
            loop.stop()

        previous = [signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)]
        try:
            with opened.intake_lock():
                summary = _run(lambda: loop.run_once(max_wait=max_wait) if once else loop.run())
        finally:
            for sig, handler in zip((signal.SIGINT, signal.SIGTERM), previous, strict=True):
                signal.signal(sig, handler)
            client.close()
            escrow_client.close()
    # JSON lines: one object per batch and notice, then the summary.
    typer.echo(json.dumps(summary.to_json()) if json_output else summary.line())
    if once and not summary.drained:
        raise typer.Exit(EXIT_STILL_WAITING)


# --------------------------------------------------------------------- the delivery desk


@app.command()
def deliveries(
    detainee: Annotated[str, typer.Option(help="Only this detainee's messages.")] = "",
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
) -> None:
    """Released messages waiting for delivery (no content is shown)."""
    with _session(profile) as opened:
        client = opened.client()
        desk = _desk(client, opened)
        try:
            items = _run(lambda: desk.pending(detainee))
        finally:
            client.close()
    _emit(
        json_output,
        [i.to_json() for i in items],
        "\n".join(_item_line(i) for i in items) or "no messages waiting for delivery",
    )
    if desk.unproven:
        # Loud, and a failing exit: the gateway offered messages the log does not release.
        for refused in desk.unproven:
            typer.echo(f"REFUSED: {UnprovenReleaseError(refused).explain()}", err=True)
        raise typer.Exit(EXIT_UNPROVEN_RELEASE)


@app.command()
def show(
    message_id: Annotated[str, typer.Argument(help="The message id (hex), from `deliveries`.")],
    save_attachments: Annotated[
        Path | None,
        typer.Option(help="Save the attachments into this folder (files only you can read)."),
    ] = None,
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
) -> None:
    """Show a released message on screen (it is not acknowledged as delivered)."""
    wanted = _message_id(message_id)
    with _session(profile) as opened:
        client = opened.client()
        desk = _desk(client, opened)
        try:
            message = _run(lambda: desk.open(wanted))
            saved = (
                _run(lambda: desk.save_attachments(message, save_attachments))
                if save_attachments is not None
                else []
            )
        finally:
            client.close()
    item = message.item
    attachments: list[dict[str, Any]] = [
        {
            "name": part.filename,
            "contentType": part.content_type,
            "size": len(part.data),
            **({"savedTo": str(saved[i])} if saved else {}),
        }
        for i, part in enumerate(message.attachments)
    ]
    lines = [
        f"message {item.message_id.hex()} for {item.detainee_id}",
        f"from:  {isolate(item.sender_name)}{'  (privileged)' if item.privileged else ''}",
        f"sent:  {item.sent_at.astimezone().strftime('%Y-%m-%d %H:%M %z')}",
        "",
        message.text,
    ]
    for index, part in enumerate(message.attachments):
        where = f" -> {saved[index]}" if saved else ""
        lines.append(f"[attachment] {part.filename or 'unnamed'} ({part.content_type}){where}")
    lines += [f"[withheld] {withheld.note()}" for withheld in message.withheld]
    _emit(
        json_output,
        {
            **item.to_json(),
            "text": message.text,
            "attachments": attachments,
            "withheld": [w.note() for w in message.withheld],
        },
        "\n".join(lines),
    )


@app.command("print")
def print_message(
    message_id: Annotated[str, typer.Argument(help="The message id (hex), from `deliveries`.")],
    out: Annotated[
        str, typer.Option(help="PDF file to write, or - for standard output (a printer pipe).")
    ],
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
) -> None:
    """Print a released message to PDF and acknowledge its delivery with the reference."""
    wanted = _message_id(message_id)
    to_stdout = out == "-"
    if to_stdout and json_output:
        raise typer.BadParameter("--json and --out - both use standard output")
    with _session(profile) as opened:
        client = opened.client()
        desk = _register_desk(client, opened)
        try:
            printed = _run(
                lambda: desk.print_pdf(
                    wanted,
                    None if to_stdout else Path(out),
                    write=_to_stdout if to_stdout else None,
                )
            )
        finally:
            client.close()
    data = {
        "messageId": printed.message_id.hex(),
        "deliveryReference": printed.reference,
        "out": out,
        "acknowledged": True,
    }
    text = f"printed {printed.message_id.hex()} to {out}; delivered, reference {printed.reference}"
    if to_stdout:
        typer.echo(text, err=True)
    else:
        _emit(json_output, data, text)


# --------------------------------------------------------------------- replies


@app.command()
def contacts(
    detainee_id: Annotated[str, typer.Argument(help="The detainee.")],
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
) -> None:
    """The detainee's approved contacts (whom a reply can go to)."""
    with _session(profile) as opened:
        client = opened.client()
        try:
            found = _run(lambda: client.contacts(detainee_id))
        finally:
            client.close()
    data = [
        {
            "accountId": c.account_id,
            "displayName": c.display_name,
            "privileged": c.privileged,
            "devices": len(c.device_keys),
        }
        for c in found
    ]
    lines = [
        f"{c.account_id}  {isolate(c.display_name)}{'  (privileged)' if c.privileged else ''}"
        for c in found
    ]
    _emit(json_output, data, "\n".join(lines) or "no approved contacts")


@app.command()
def reply(
    detainee_id: Annotated[str, typer.Argument(help="The detainee who writes.")],
    to: Annotated[str, typer.Option("--to", help="The contact's account id (see `contacts`).")],
    text: Annotated[str | None, typer.Option(help="The reply's text.")] = None,
    text_file: Annotated[
        Path | None, typer.Option(help="Read the text from a UTF-8 file instead.")
    ] = None,
    attach: Annotated[
        list[Path] | None,
        typer.Option(help="A scanned page (photo or PDF) to attach; repeat for more."),
    ] = None,
    receipt: Annotated[
        str | None,
        typer.Option(
            help="Write the detainee's receipt (PDF, in their language) to this file, "
            "or - for standard output."
        ),
    ] = None,
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
) -> None:
    """Seal a detainee's reply to the contact's devices, escrow it and hand it to the gateway.

    Says truthfully whether it went on to the contact or waits for a screener.
    """
    from sealpost.clients.terminal.desk import deliver_pdf  # noqa: PLC0415
    from sealpost.clients.terminal.profile import escrow_with  # noqa: PLC0415
    from sealpost.clients.terminal.reply import reply_receipt  # noqa: PLC0415
    from sealpost.escrow.client import RetryPolicy  # noqa: PLC0415

    if text is not None and text_file is not None:
        raise typer.BadParameter("give --text or --text-file, not both")
    if receipt == "-" and json_output:
        raise typer.BadParameter("--json and --receipt - both use standard output")
    body = text or ""
    if text_file is not None:
        try:
            body = text_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise typer.BadParameter(f"cannot read {text_file} as UTF-8 text: {exc}") from exc
    with _session(profile) as opened:
        client = opened.client()
        # Interactive: the default, more patient retries; a reply is never sent unescrowed.
        escrow_client = opened.escrow_client(RetryPolicy())
        try:
            handed = _run(
                lambda: _send(client, detainee_id, to, body, escrow_with(escrow_client), attach)
            )
        finally:
            client.close()
            escrow_client.close()
    name = handed.sent.contact.display_name
    line = _reply_line(handed)
    if receipt is not None:
        # The reply has left: a receipt that cannot be written must not hide that.
        try:
            pdf = reply_receipt(
                handed, opened.settings.institution_id, opened.register, dt.datetime.now(dt.UTC)
            )
            deliver_pdf(
                pdf,
                None if receipt == "-" else Path(receipt),
                _to_stdout if receipt == "-" else None,
            )
        except (SealpostError, OSError) as exc:
            why = exc.explain() if isinstance(exc, SealpostError) else str(exc)
            refuse(
                _("{done}, but the receipt could not be written: {why}", done=line, why=why),
                code="receipt_not_written",
                exit=ExitCode.FAILED,
            )
        line += f"; receipt written to {receipt}"
    data = {
        "messageId": handed.message_id.hex(),
        "acceptedAtMs": handed.sent.receipt.accepted_at_ms,
        "to": name,
        "status": handed.status,
        "waitsForScreening": handed.waits_for_screening,
        **({"receipt": receipt} if receipt is not None else {}),
    }
    if receipt == "-":
        typer.echo(line, err=True)
    else:
        _emit(json_output, data, line)


def _reply_line(handed: HandedInReply) -> str:
    """Where the reply is, as the gateway said: "sent" only when it went on to the contact."""
    head = f"reply {handed.message_id.hex()} from {handed.detainee_id}"
    name = isolate(handed.sent.contact.display_name)
    if handed.status == "sent":
        return f"{head} sent to {name}"
    if handed.waits_for_screening:
        return f"{head} handed in, not sent yet: it waits for a screener before it goes to {name}"
    return f"{head} handed in, not sent"


def _send(
    client: TerminalClient,
    detainee_id: str,
    account_id: str,
    text: str,
    escrow: Escrow,
    attach: list[Path] | None,
) -> HandedInReply:
    """Send a reply; a key server that cannot escrow means the reply is not sent."""
    from sealpost.clients.terminal.reply import hand_in_reply  # noqa: PLC0415
    from sealpost.escrow.errors import EscrowError  # noqa: PLC0415

    try:
        return hand_in_reply(client, detainee_id, account_id, text, escrow, attach or ())
    except EscrowError as exc:
        problem = problem_of(exc)
        assert problem is not None
        report(
            Problem(
                problem.code,
                _(
                    "{problem} The reply was not sent: replies are escrowed before they leave.",
                    problem=problem.message,
                ),
                problem.exit,
                problem.detail,
            )
        )
        raise typer.Exit(int(problem.exit)) from exc


# --------------------------------------------------------------------- withheld messages


def _register_desk(client: TerminalClient, opened: TerminalProfile) -> DeliveryDesk:
    """The desk, speaking to each detainee in the language the register records."""
    desk = _desk(client, opened)
    desk.register = opened.register
    return desk


@app.command()
def withheld(
    detainee: Annotated[str, typer.Option(help="Only this detainee's messages.")] = "",
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
) -> None:
    """Messages a screener withheld, to and from detainees held here (no content).

    Each detainee is to be told on paper: `print-notice` prints the notice.
    """
    with _session(profile) as opened:
        client = opened.client()
        desk = _register_desk(client, opened)
        try:
            items = _run(lambda: desk.withheld(detainee))
        finally:
            client.close()
    lines = [
        f"{i.message_id.hex()}  {i.detainee_id}  "
        f"{i.withheld_at.astimezone().strftime('%Y-%m-%d %H:%M')}  "
        f"{'from' if i.inbound else 'to'} {isolate(i.counterpart_name)}  {i.reason_name}"
        for i in items
    ]
    _emit(
        json_output,
        [i.to_json() for i in items],
        "\n".join(lines) or "no withheld messages",
    )


@app.command("print-notice")
def print_notice(
    message_id: Annotated[str, typer.Argument(help="The message id (hex), from `withheld`.")],
    out: Annotated[
        str, typer.Option(help="PDF file to write, or - for standard output (a printer pipe).")
    ],
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
) -> None:
    """Print the notice telling a detainee that a message was withheld, why, how to complain."""
    wanted = _message_id(message_id)
    to_stdout = out == "-"
    if to_stdout and json_output:
        raise typer.BadParameter("--json and --out - both use standard output")
    with _session(profile) as opened:
        client = opened.client()
        desk = _register_desk(client, opened)
        try:
            reference = _run(
                lambda: desk.print_notice(
                    wanted,
                    None if to_stdout else Path(out),
                    write=_to_stdout if to_stdout else None,
                )
            )
        finally:
            client.close()
    text = f"printed the withholding notice for {wanted.hex()} to {out}; reference {reference}"
    if to_stdout:
        typer.echo(text, err=True)
    else:
        _emit(json_output, {"messageId": wanted.hex(), "reference": reference, "out": out}, text)


# --------------------------------------------------------------------- the detainee register

detainee_app = cli_app(
    help=(
        "The institution's register of its detainees: the name it records and the language "
        "each reads (nl, en, ar, tr, pl). Kept sealed in this terminal's profile; the gateway "
        "never learns them. Documents for a detainee not in the register are in Dutch."
    ),
    no_args_is_help=True,
)
app.add_typer(detainee_app, name="detainee")


@detainee_app.command("set")
def detainee_set(
    detainee_id: Annotated[str, typer.Argument(help="The detainee's id at the gateway.")],
    name: Annotated[
        str | None, typer.Option(help="The name as the institution records it.")
    ] = None,
    language: Annotated[
        str | None,
        typer.Option(help="The language of the detainee's documents: nl, en, ar, tr or pl."),
    ] = None,
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
) -> None:
    """Register a detainee at admission (a name is needed), or change their name or language."""
    with _session(profile) as opened:
        register = _run(lambda: opened.register.set(detainee_id, name=name, language=language))
        _run(lambda: opened.set_register(register))
    entry = register.lookup(detainee_id.strip())
    _emit(
        json_output,
        entry.to_json(),
        f"{entry.detainee_id}: {isolate(entry.name)}, documents in {entry.language}",
    )


@detainee_app.command("list")
def detainee_list(
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
) -> None:
    """The detainees in the register, with their names and languages."""
    with _session(profile) as opened:
        entries = list(opened.register)
    _emit(
        json_output,
        [entry.to_json() for entry in entries],
        "\n".join(f"{e.detainee_id}  {e.language}  {isolate(e.name)}" for e in entries)
        or "no detainees in the register (their documents are in Dutch, by id)",
    )


@detainee_app.command("remove")
def detainee_remove(
    detainee_id: Annotated[str, typer.Argument(help="The detainee's id.")],
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
) -> None:
    """Take a detainee out of the register (released, or transferred away)."""
    with _session(profile) as opened:
        _run(lambda: opened.set_register(opened.register.remove(detainee_id)))
    _emit(json_output, {"removed": detainee_id}, f"{detainee_id} removed from the register")


# --------------------------------------------------------------------- status


@app.command()
def status(
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
) -> None:
    """The terminal's identity, the gateway, the key server and the intake cursor."""
    from sealpost.escrow.client import health  # noqa: PLC0415
    from sealpost.escrow.errors import EscrowError  # noqa: PLC0415

    with _session(profile) as opened:
        settings = opened.settings
        state = _run(lambda: opened.state_store().load())
        client = opened.client()
        gateway, institution_key, waiting = "ok", "valid", 0
        try:
            trust = client.directory()
            if client.institution_key_revoked(trust):
                institution_key = "revoked"
            waiting = len(list(client.all_deliveries()))
        except ClientError as exc:
            gateway = (
                "refuses this terminal (certificate revoked?)"
                if exc.code == grpc.StatusCode.UNAUTHENTICATED
                else f"unavailable ({exc.code.name})"
            )
        except SealpostError as exc:
            gateway = f"does not verify ({exc.explain()})"
        finally:
            client.close()
        try:
            answer = health(opened.key_server_config())
            key_server = "ready" if answer.ready else ("sealed" if answer.sealed else "not ready")
        except EscrowError as exc:
            key_server = f"unavailable ({type(exc).__name__})"
    data = {
        "profile": str(opened.folder),
        "institutionId": settings.institution_id,
        "terminalId": settings.terminal_id,
        "gateway": settings.gateway,
        "gatewayStatus": gateway,
        "keyServer": settings.key_server,
        "keyServerStatus": key_server,
        "institutionKeyId": settings.institution_key_id.hex(),
        "institutionKeyStatus": institution_key if settings.institution_key_id else "none",
        "cursor": state.cursor,
        "takenIn": state.taken_in,
        "malformed": len(state.malformed),
        "waitingForDelivery": waiting,
    }
    lines = [
        f"terminal {settings.terminal_id} of {settings.institution_id} ({opened.folder})",
        f"gateway     {settings.gateway}: {gateway}",
        f"key server  {settings.key_server}: {key_server}",
        f"institution key {settings.institution_key_id.hex()[:16]}...: {institution_key}",
        f"intake      {state.taken_in} taken in, cursor {state.cursor or '(start)'}, "
        f"{len(state.malformed)} malformed skipped",
        f"delivery    {waiting} released messages waiting",
    ]
    _emit(json_output, data, "\n".join(lines))
    if gateway != "ok":
        raise typer.Exit(1)
