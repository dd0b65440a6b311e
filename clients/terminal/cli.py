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
    table,
)
from sealpost.clients._grpc import ClientError
from sealpost.clients._problems import ExitCode, Problem, problem_of
from sealpost.clients._text import isolate
from sealpost.clients.terminal.errors import TerminalRevokedError, UnprovenReleaseError
from sealpost.errors import SealpostError
from sealpost.i18n import _, _n

# The desk (PDF fonts), the key-server client and X.509 load on first use, so that every
# `sealpost` command starts quickly.
if TYPE_CHECKING:
    from sealpost._internal.exposition import MetricsEndpoint
    from sealpost.clients.terminal.client import Escrow, TerminalClient
    from sealpost.clients.terminal.config import TerminalConfig
    from sealpost.clients.terminal.desk import DeliveryDesk, DeliveryItem, WithheldItem
    from sealpost.clients.terminal.intake import BatchReport, Reporter
    from sealpost.clients.terminal.metrics import TerminalMetrics, Triage
    from sealpost.clients.terminal.profile import TerminalProfile
    from sealpost.clients.terminal.reply import HandedInReply
    from sealpost.clients.terminal.triage import IntakeTriage

T = TypeVar("T")

DEFAULT_PROFILE = Path("sealpost-terminal")
#: Bytes of a message id (crypto.envelope.MESSAGE_ID_BYTES).
MESSAGE_ID_BYTES = 16
#: Exit code of ``intake --once`` when messages still wait (key server or mailbox key).
EXIT_STILL_WAITING = 3
#: `deliveries` found messages listed as released whose release the log does not prove.
EXIT_UNPROVEN_RELEASE = 4

app = cli_app(
    help=_(
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
        help=_("Folder of the terminal profile (encrypted under a passphrase)."),
    ),
]
JsonOutput = Annotated[bool, typer.Option("--json", help=_("Print JSON for scripts."))]
SettingsFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help=_(
            "TOML settings file: gateway, key_server, batch_size, triage, max_wait, metrics_port, "
            "passphrase_file; flags and SEALPOST_TERMINAL_* variables override it, it "
            "overrides the profile's addresses (env SEALPOST_TERMINAL_CONFIG). See "
            "docs/operations.md, section 12."
        ),
    ),
]


# --------------------------------------------------------------------- plumbing


def _passphrase(*, new: bool = False, env: str = "SEALPOST_PASSPHRASE", prompt: str = "") -> str:
    """The passphrase from ``env``, or asked for (``prompt``; the profile's by default)."""
    given = os.environ.get(env)
    if given:
        return given
    if not prompt:
        prompt = (
            _("Choose a passphrase for the terminal profile")
            if new
            else _("Passphrase of the terminal profile")
        )
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


def _settings(
    flags: dict[str, str | None] | None = None, config_file: Path | None = None
) -> TerminalConfig:
    """The operator's settings: flags over variables over the settings file (config.py)."""
    from sealpost.clients.terminal.config import TerminalConfig  # noqa: PLC0415

    return _run(lambda: TerminalConfig.load(flags or {}, config_file=config_file))


def _profile_passphrase(config: TerminalConfig) -> str:
    """SEALPOST_PASSPHRASE, else the passphrase file of the settings, else a prompt."""
    from sealpost.clients.terminal.errors import TerminalSettingsError  # noqa: PLC0415

    if os.environ.get("SEALPOST_PASSPHRASE") or config.passphrase_file is None:
        return _passphrase()
    path = config.passphrase_file
    try:
        passphrase = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        fail(
            TerminalSettingsError(
                [_("cannot read the passphrase from {file}: {reason}", file=path, reason=exc)]
            )
        )
    if not passphrase:
        fail(TerminalSettingsError([_("{file} holds no passphrase", file=path)]))
    return passphrase


def _open(folder: Path, config: TerminalConfig) -> TerminalProfile:
    from sealpost.clients.terminal.profile import TerminalProfile  # noqa: PLC0415

    passphrase = _profile_passphrase(config)
    return _run(lambda: TerminalProfile.open(folder.expanduser(), passphrase))


@contextmanager
def _session(folder: Path, config: TerminalConfig | None = None) -> Iterator[TerminalProfile]:
    """The opened profile, reaching the addresses the operator's settings give, if any."""
    config = config if config is not None else _settings()
    opened = _open(folder, config)
    opened.use_addresses(gateway=config.gateway, key_server=config.key_server)
    for name, stored, used in (
        ("gateway", opened.settings.gateway, opened.gateway),
        ("key_server", opened.settings.key_server, opened.key_server),
    ):
        if used != stored:
            typer.echo(
                _(
                    "note: {address} from {source} instead of the profile's {stored}",
                    address=used,
                    source=config.sources[name],
                    stored=stored,
                ),
                err=True,
            )
    remember_where(gateway=opened.gateway, key_server=opened.key_server)
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
        raise typer.BadParameter(_("a message id is 32 hexadecimal digits")) from None
    if len(message_id) != MESSAGE_ID_BYTES:
        raise typer.BadParameter(_("a message id is 32 hexadecimal digits"))
    return message_id


def _to_stdout(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _when(moment: dt.datetime) -> str:
    """A time in a listing: this computer's local time, to the minute."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def delivery_table(items: list[DeliveryItem]) -> str:
    """Released messages as columns: id, detainee, sent, sender, attachments, privileged."""
    headers = (
        _("message id"),
        _("detainee"),
        _("sent"),
        _("sender"),
        _("attachments"),
        _("privileged"),
    )
    rows = [
        (
            item.message_id.hex(),
            item.detainee_id,
            _when(item.sent_at),
            isolate(item.sender_name),
            str(item.attachments) if item.attachments else "",
            _("yes") if item.privileged else "",
        )
        for item in items
    ]
    return table(headers, rows)


def withheld_table(items: list[WithheldItem]) -> str:
    """Withheld messages as columns: id, detainee, withheld, direction, relative, reason."""
    headers = (
        _("message id"),
        _("detainee"),
        _("withheld"),
        _("direction"),
        _("relative"),
        _("reason"),
    )
    rows = [
        (
            item.message_id.hex(),
            item.detainee_id,
            _when(item.withheld_at),
            _("to the detainee") if item.inbound else _("reply"),
            isolate(item.counterpart_name),
            reason_words(item.reason_name),
        )
        for item in items
    ]
    return table(headers, rows)


def reason_words(name: str) -> str:
    """A withholding reason category in the staff language."""
    words = {
        "order_and_security": _("order and security"),
        "public_order": _("public order"),
        "crime_prevention": _("crime prevention"),
        "victim_protection": _("victim protection"),
    }
    return words.get(name, _("unspecified"))


# --------------------------------------------------------------------- enrolment


@app.command(
    help=_(
        "Create the encrypted terminal profile from an issued certificate folder.\n\n"
        "The key-server token (encrypt-only) comes from SEALPOST_KEY_SERVER_TOKEN or a "
        "prompt. Registers the institution key when the institution has none yet."
    )
)
def enroll(
    certificates: Annotated[
        Path,
        typer.Option(
            "--certificates",
            help=_(
                "Folder written by `sealpost admin terminal issue --out` "
                "(terminal-key.pem, terminal.pem, ca.pem)."
            ),
        ),
    ],
    gateway: Annotated[
        str,
        typer.Option(
            "--gateway",
            envvar="SEALPOST_TERMINAL_GATEWAY",
            help=_("The gateway's terminal port, host:port (mutual TLS)."),
        ),
    ],
    key_server: Annotated[
        str,
        typer.Option(
            "--key-server",
            envvar="SEALPOST_KEY_SERVER_ADDRESS",
            help=_("The key server's URL; a cluster's nodes separated by commas."),
        ),
    ],
    directory_key: DirectoryKey,
    key_server_ca: Annotated[
        str, typer.Option(help=_("CA bundle for the key server's TLS certificate."))
    ] = "",
    escrow_prefix: Annotated[
        str, typer.Option(help=_("The key server's Sealpost name prefix."))
    ] = "sealpost",
    institution_key: Annotated[
        Path | None,
        typer.Option(
            help=_(
                "The institution key exported from an enrolled terminal (`export-key`); "
                "without it a new institution key is registered."
            ),
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
        _("The terminal's key-server token"), hide_input=True
    )
    imported = None
    if institution_key is not None:
        export_passphrase = _passphrase(
            env="SEALPOST_EXPORT_PASSPHRASE", prompt=_("Passphrase of the exported key")
        )
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
    words = (
        _(
            "terminal {terminal} of {institution} enrolled in {folder}/; registered a new "
            "institution key ({key}...).",
            terminal=settings.terminal_id,
            institution=settings.institution_id,
            folder=result.profile.folder,
            key=settings.institution_key_id.hex()[:16],
        )
        if result.registered_key
        else _(
            "terminal {terminal} of {institution} enrolled in {folder}/; took over the "
            "exported institution key ({key}...).",
            terminal=settings.terminal_id,
            institution=settings.institution_id,
            folder=result.profile.folder,
            key=settings.institution_key_id.hex()[:16],
        )
    )
    advice = _(
        "The profile now holds the TLS key encrypted: delete {file} once you have checked "
        "that it works.",
        file=certificates / enrolment.KEY_FILE,
    )
    _emit(json_output, data, f"{words}\n{advice}")


@app.command(
    "export-key",
    help=_(
        "Export the institution key, under its own passphrase, for another terminal here.\n\n"
        "The export passphrase comes from SEALPOST_EXPORT_PASSPHRASE or a prompt."
    ),
)
def export_key(
    out: Annotated[Path, typer.Option(help=_("File to write (never overwritten)."))],
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
) -> None:
    """Export the institution key, under its own passphrase, for another terminal here.

    The export passphrase comes from SEALPOST_EXPORT_PASSPHRASE or a prompt.
    """
    from sealpost.clients.terminal.profile import export_institution_key  # noqa: PLC0415

    with _session(profile) as opened:
        passphrase = _passphrase(
            new=True,
            env="SEALPOST_EXPORT_PASSPHRASE",
            prompt=_("Choose a passphrase for the export"),
        )
        _run(lambda: export_institution_key(opened, out, passphrase))
    _emit(
        json_output,
        {"out": str(out), "institutionId": opened.settings.institution_id},
        _(
            "institution key of {institution} written to {out}; carry it to the other "
            "terminal and delete it after `enroll --institution-key`",
            institution=opened.settings.institution_id,
            out=out,
        ),
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
            typer.echo(_("! {notice}", notice=text))


def _metrics_endpoint(metrics: TerminalMetrics, port: int, json_output: bool) -> MetricsEndpoint:
    """The intake's metrics on 127.0.0.1:``port``, serving; a usage error if it cannot bind."""
    from sealpost._internal.exposition import MetricsEndpoint  # noqa: PLC0415

    try:
        endpoint = MetricsEndpoint(metrics.registry, "127.0.0.1", port)
    except OSError as exc:
        refuse(
            _(
                "cannot serve metrics on 127.0.0.1:{port}: {reason}",
                port=port,
                reason=exc.strerror or exc,
            )
        )
    bound = endpoint.start()
    url = f"http://127.0.0.1:{bound}/metrics"
    if json_output:
        typer.echo(json.dumps({"event": "metrics", "url": url}))
    else:
        typer.echo(_("metrics at {url}", url=url))
    return endpoint


def _reply_triage(client: TerminalClient, opened: TerminalProfile) -> IntakeTriage | None:
    """Triage for a reply that waits for a screener; None without the triage libraries."""
    try:
        from sealpost.clients.terminal.triage import IntakeTriage  # noqa: PLC0415
    except ImportError:
        return None
    return IntakeTriage(client, opened.sealing_client())


def _intake_triage(client: TerminalClient, opened: TerminalProfile) -> IntakeTriage:
    """Triage at intake; a usage error when the triage libraries are not installed."""
    try:
        from sealpost.clients.terminal.triage import IntakeTriage  # noqa: PLC0415
    except ImportError as exc:
        refuse(
            _(
                "triage needs the triage libraries ({missing}): install sealpost[triage], "
                "or take in with --no-triage",
                missing=exc.name or "?",
            )
        )
    return IntakeTriage(client, opened.sealing_client())


@app.command(
    help=_(
        "Take in new messages: open, verify, escrow in batches, report (Ctrl-C stops).\n\n"
        "Fail closed: while the key server is sealed, stopped or refusing, non-privileged "
        "messages wait at the gateway and the loop retries with backoff. With --once the exit "
        "code is 3 when messages still wait."
    )
)
def intake(
    once: Annotated[
        bool, typer.Option("--once", help=_("Take in what is there now, then exit."))
    ] = False,
    max_wait: Annotated[
        float | None,
        typer.Option(
            help=_(
                "With --once: seconds to keep retrying while the key server is down (env "
                "SEALPOST_TERMINAL_MAX_WAIT, default 60)."
            )
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=200,
            help=_("Messages per escrow batch (env SEALPOST_TERMINAL_BATCH_SIZE, default 200)."),
        ),
    ] = None,
    triage: Annotated[
        bool | None,
        typer.Option(
            "--triage/--no-triage",
            help=_(
                "Triage messages that wait for a screener and seal a summary for the "
                "institution's screeners (needs the triage extra; env SEALPOST_TERMINAL_TRIAGE, "
                "default on)."
            ),
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            help=_(
                "Serve Prometheus metrics of the intake on this port of 127.0.0.1 (plain "
                "HTTP, GET /metrics; 0: any free one; env SEALPOST_TERMINAL_METRICS_PORT). "
                "See docs/operations.md, section 13."
            ),
        ),
    ] = None,
    config: SettingsFile = None,
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

    settings = _settings(
        {
            "max_wait": None if max_wait is None else str(max_wait),
            "batch_size": None if batch_size is None else str(batch_size),
            "triage": None if triage is None else str(triage).lower(),
            "metrics_port": None if metrics_port is None else str(metrics_port),
        },
        config,
    )
    with _session(profile, settings) as opened:
        client = opened.client()
        escrow_client = opened.escrow_client()
        escrow = escrow_with(escrow_client)
        reporter: Reporter = _Printer(json_output)
        triage_step: Triage | None = _intake_triage(client, opened) if settings.triage else None
        metrics = None
        if settings.metrics_port is not None:
            from sealpost.clients.terminal.metrics import (  # noqa: PLC0415
                MetricsReporter,
                TerminalMetrics,
            )

            metrics = TerminalMetrics()
            escrow = metrics.timed_escrow(escrow)
            reporter = MetricsReporter(reporter, metrics)
            if triage_step is not None:
                triage_step = metrics.counted_triage(triage_step)
        loop = IntakeLoop(
            client,
            escrow,
            opened.state_store(),
            settings=IntakeSettings(batch_size=settings.batch_size),
            reporter=reporter,
            renew=escrow_client.renew_self,
            witness=for_terminal(client, opened.folder),
            triage=triage_step,
        )
        endpoint = None
        if metrics is not None and settings.metrics_port is not None:
            metrics.follow(loop)
            endpoint = _metrics_endpoint(metrics, settings.metrics_port, json_output)

        def stop(_signal: int, _frame: FrameType | None) -> None:
            loop.stop()

        previous = [signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)]
        try:
            with opened.intake_lock():
                summary = _run(
                    lambda: loop.run_once(max_wait=settings.max_wait) if once else loop.run()
                )
        finally:
            for sig, handler in zip((signal.SIGINT, signal.SIGTERM), previous, strict=True):
                signal.signal(sig, handler)
            if endpoint is not None:
                endpoint.stop()
            client.close()
            escrow_client.close()
    # JSON lines: one object per batch and notice, then the summary.
    typer.echo(json.dumps(summary.to_json()) if json_output else summary.line())
    if once and not summary.drained:
        raise typer.Exit(EXIT_STILL_WAITING)


# --------------------------------------------------------------------- the delivery desk


@app.command(help=_("Released messages waiting for delivery (no content is shown)."))
def deliveries(
    detainee: Annotated[str, typer.Option(help=_("Only this detainee's messages."))] = "",
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
        delivery_table(items) if items else _("no messages waiting for delivery"),
    )
    if desk.unproven:
        # Loud, and a failing exit: the gateway offered messages the log does not release.
        for refused in desk.unproven:
            typer.echo(_("REFUSED: {why}", why=UnprovenReleaseError(refused).explain()), err=True)
        raise typer.Exit(EXIT_UNPROVEN_RELEASE)


@app.command(help=_("Show a released message on screen (it is not acknowledged as delivered)."))
def show(
    message_id: Annotated[str, typer.Argument(help=_("The message id (hex), from `deliveries`."))],
    save_attachments: Annotated[
        Path | None,
        typer.Option(help=_("Save the attachments into this folder (files only you can read).")),
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
    sender = isolate(item.sender_name)
    lines = [
        _(
            "message {message} for {detainee}",
            message=item.message_id.hex(),
            detainee=item.detainee_id,
        ),
        _("from:  {sender}  (privileged)", sender=sender)
        if item.privileged
        else _("from:  {sender}", sender=sender),
        _("sent:  {when}", when=item.sent_at.astimezone().strftime("%Y-%m-%d %H:%M %z")),
        "",
        message.text,
    ]
    for index, part in enumerate(message.attachments):
        name = part.filename or _("unnamed")
        lines.append(
            _(
                "[attachment] {name} ({type}) -> {path}",
                name=name,
                type=part.content_type,
                path=saved[index],
            )
            if saved
            else _("[attachment] {name} ({type})", name=name, type=part.content_type)
        )
    lines += [_("[withheld] {note}", note=withheld.note()) for withheld in message.withheld]
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


PdfOut = Annotated[
    str, typer.Option(help=_("PDF file to write, or - for standard output (a printer pipe)."))
]


def _with_pdf_out(
    profile: Path,
    out: str,
    json_output: bool,
    make: Callable[[DeliveryDesk, Path | None, Callable[[bytes], None] | None], T],
) -> T:
    """Run a desk action that writes a PDF to ``out`` (a file, or ``-``: standard output)."""
    to_stdout = out == "-"
    if to_stdout and json_output:
        raise typer.BadParameter(_("--json and --out - both use standard output"))
    with _session(profile) as opened:
        client = opened.client()
        desk = _register_desk(client, opened)
        try:
            return _run(
                lambda: make(
                    desk, None if to_stdout else Path(out), _to_stdout if to_stdout else None
                )
            )
        finally:
            client.close()


@app.command(
    "print",
    help=_("Print a released message to PDF and acknowledge its delivery with the reference."),
)
def print_message(
    message_id: Annotated[str, typer.Argument(help=_("The message id (hex), from `deliveries`."))],
    out: PdfOut,
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
) -> None:
    """Print a released message to PDF and acknowledge its delivery with the reference."""
    wanted = _message_id(message_id)
    printed = _with_pdf_out(
        profile,
        out,
        json_output,
        lambda desk, path, write: desk.print_pdf(wanted, path, write=write),
    )
    data = {
        "messageId": printed.message_id.hex(),
        "deliveryReference": printed.reference,
        "out": out,
        "acknowledged": True,
    }
    text = _(
        "printed {message} to {out}; delivered, reference {reference}",
        message=printed.message_id.hex(),
        out=out,
        reference=printed.reference,
    )
    if out == "-":
        typer.echo(text, err=True)
    else:
        _emit(json_output, data, text)


# --------------------------------------------------------------------- replies


@app.command(help=_("The detainee's approved contacts (whom a reply can go to)."))
def contacts(
    detainee_id: Annotated[str, typer.Argument(help=_("The detainee."))],
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
    rows = [
        (c.account_id, isolate(c.display_name), _("yes") if c.privileged else "") for c in found
    ]
    headers = (_("account id"), _("name"), _("privileged"))
    _emit(json_output, data, table(headers, rows) if rows else _("no approved contacts"))


@app.command(
    help=_(
        "Seal a detainee's reply to the contact's devices, escrow it and hand it to the "
        "gateway.\n\nSays truthfully whether it went on to the contact or waits for a screener."
    )
)
def reply(
    detainee_id: Annotated[str, typer.Argument(help=_("The detainee who writes."))],
    to: Annotated[str, typer.Option("--to", help=_("The contact's account id (see `contacts`)."))],
    text: Annotated[str | None, typer.Option(help=_("The reply's text."))] = None,
    text_file: Annotated[
        Path | None, typer.Option(help=_("Read the text from a UTF-8 file instead."))
    ] = None,
    attach: Annotated[
        list[Path] | None,
        typer.Option(help=_("A scanned page (photo or PDF) to attach; repeat for more.")),
    ] = None,
    receipt: Annotated[
        str | None,
        typer.Option(
            help=_(
                "Write the detainee's receipt (PDF, in their language) to this file, "
                "or - for standard output."
            )
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
        raise typer.BadParameter(_("give --text or --text-file, not both"))
    if receipt == "-" and json_output:
        raise typer.BadParameter(_("--json and --receipt - both use standard output"))
    body = text or ""
    if text_file is not None:
        try:
            body = text_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise typer.BadParameter(
                _("cannot read {file} as UTF-8 text: {reason}", file=text_file, reason=exc)
            ) from exc
    with _session(profile) as opened:
        client = opened.client()
        # Interactive: the default, more patient retries; a reply is never sent unescrowed.
        escrow_client = opened.escrow_client(RetryPolicy())
        try:
            handed = _run(
                lambda: _send(
                    client,
                    detainee_id,
                    to,
                    body,
                    escrow_with(escrow_client),
                    attach,
                    _reply_triage(client, opened),
                )
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
        line = _("{done}; receipt written to {file}", done=line, file=receipt)
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
    reply_id = handed.message_id.hex()
    detainee = handed.detainee_id
    name = isolate(handed.sent.contact.display_name)
    if handed.status == "sent":
        return _(
            "reply {reply} from {detainee} sent to {name}",
            reply=reply_id,
            detainee=detainee,
            name=name,
        )
    if handed.waits_for_screening:
        return _(
            "reply {reply} from {detainee} handed in, not sent yet: it waits for a screener "
            "before it goes to {name}",
            reply=reply_id,
            detainee=detainee,
            name=name,
        )
    return _("reply {reply} from {detainee} handed in, not sent", reply=reply_id, detainee=detainee)


def _send(
    client: TerminalClient,
    detainee_id: str,
    account_id: str,
    text: str,
    escrow: Escrow,
    attach: list[Path] | None,
    triage: IntakeTriage | None = None,
) -> HandedInReply:
    """Send a reply; a key server that cannot escrow means the reply is not sent."""
    from sealpost.clients.terminal.reply import hand_in_reply  # noqa: PLC0415
    from sealpost.escrow.errors import EscrowError  # noqa: PLC0415

    try:
        return hand_in_reply(
            client, detainee_id, account_id, text, escrow, attach or (), triage=triage
        )
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


@app.command(
    help=_(
        "Messages a screener withheld, to and from detainees held here (no content).\n\n"
        "Each detainee is to be told on paper: `print-notice` prints the notice."
    )
)
def withheld(
    detainee: Annotated[str, typer.Option(help=_("Only this detainee's messages."))] = "",
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
    _emit(
        json_output,
        [i.to_json() for i in items],
        withheld_table(items) if items else _("no withheld messages"),
    )


@app.command(
    "print-notice",
    help=_(
        "Print the notice telling a detainee that a message was withheld, why, how to complain."
    ),
)
def print_notice(
    message_id: Annotated[str, typer.Argument(help=_("The message id (hex), from `withheld`."))],
    out: PdfOut,
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
) -> None:
    """Print the notice telling a detainee that a message was withheld, why, how to complain."""
    wanted = _message_id(message_id)
    reference = _with_pdf_out(
        profile,
        out,
        json_output,
        lambda desk, path, write: desk.print_notice(wanted, path, write=write),
    )
    text = _(
        "printed the withholding notice for {message} to {out}; reference {reference}",
        message=wanted.hex(),
        out=out,
        reference=reference,
    )
    if out == "-":
        typer.echo(text, err=True)
    else:
        _emit(json_output, {"messageId": wanted.hex(), "reference": reference, "out": out}, text)


# --------------------------------------------------------------------- the detainee register

detainee_app = cli_app(
    help=_(
        "The institution's register of its detainees: the name it records and the language "
        "each reads (nl, en, ar, tr, pl). Kept sealed in this terminal's profile; the gateway "
        "never learns them. Documents for a detainee not in the register are in Dutch."
    ),
    no_args_is_help=True,
)
app.add_typer(detainee_app, name="detainee")


@detainee_app.command(
    "set",
    help=_(
        "Register a detainee at admission (a name is needed), or change their name or language."
    ),
)
def detainee_set(
    detainee_id: Annotated[str, typer.Argument(help=_("The detainee's id at the gateway."))],
    name: Annotated[
        str | None, typer.Option(help=_("The name as the institution records it."))
    ] = None,
    language: Annotated[
        str | None,
        typer.Option(help=_("The language of the detainee's documents: nl, en, ar, tr or pl.")),
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
        _(
            "{detainee}: {name}, documents in {language}",
            detainee=entry.detainee_id,
            name=isolate(entry.name),
            language=entry.language,
        ),
    )


@detainee_app.command(
    "list", help=_("The detainees in the register, with their names and languages.")
)
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
        table(
            (_("detainee"), _("language"), _("name")),
            [(e.detainee_id, e.language, isolate(e.name)) for e in entries],
        )
        if entries
        else _("no detainees in the register (their documents are in Dutch, by id)"),
    )


@detainee_app.command(
    "remove", help=_("Take a detainee out of the register (released, or transferred away).")
)
def detainee_remove(
    detainee_id: Annotated[str, typer.Argument(help=_("The detainee's id."))],
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
) -> None:
    """Take a detainee out of the register (released, or transferred away)."""
    with _session(profile) as opened:
        _run(lambda: opened.set_register(opened.register.remove(detainee_id)))
    _emit(
        json_output,
        {"removed": detainee_id},
        _("{detainee} removed from the register", detainee=detainee_id),
    )


# --------------------------------------------------------------------- status


@app.command(help=_("The terminal's identity, the gateway, the key server and the intake cursor."))
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
        # Each status twice: in English for scripts (--json), in the staff language for people.
        gateway, institution_key, waiting = "ok", "valid", 0
        gateway_words, key_words = _("ok"), _("valid")
        try:
            trust = client.directory()
            if client.institution_key_revoked(trust):
                institution_key, key_words = "revoked", _("revoked")
            waiting = len(list(client.all_deliveries()))
        except ClientError as exc:
            if exc.code == grpc.StatusCode.UNAUTHENTICATED:
                gateway = "refuses this terminal (certificate revoked?)"
                gateway_words = _("refuses this terminal (certificate revoked?)")
            else:
                gateway = f"unavailable ({exc.code.name})"
                gateway_words = _("unavailable ({code})", code=exc.code.name)
        except SealpostError as exc:
            gateway = f"does not verify ({exc.explain()})"
            gateway_words = _("does not verify ({why})", why=exc.explain())
        finally:
            client.close()
        try:
            answer = health(opened.key_server_config())
            if answer.ready:
                key_server, key_server_words = "ready", _("ready")
            elif answer.sealed:
                key_server, key_server_words = "sealed", _("sealed")
            else:
                key_server, key_server_words = "not ready", _("not ready")
        except EscrowError as exc:
            key_server = f"unavailable ({type(exc).__name__})"
            key_server_words = _("unavailable ({code})", code=type(exc).__name__)
    data = {
        "profile": str(opened.folder),
        "institutionId": settings.institution_id,
        "terminalId": settings.terminal_id,
        "gateway": opened.gateway,
        "gatewayStatus": gateway,
        "keyServer": opened.key_server,
        "keyServerStatus": key_server,
        "institutionKeyId": settings.institution_key_id.hex(),
        "institutionKeyStatus": institution_key if settings.institution_key_id else "none",
        "cursor": state.cursor,
        "takenIn": state.taken_in,
        "malformed": len(state.malformed),
        "waitingForDelivery": waiting,
    }
    lines = [
        _(
            "terminal {terminal} of {institution} ({folder})",
            terminal=settings.terminal_id,
            institution=settings.institution_id,
            folder=opened.folder,
        ),
        _("gateway     {address}: {status}", address=opened.gateway, status=gateway_words),
        _("key server  {address}: {status}", address=opened.key_server, status=key_server_words),
        _(
            "institution key {key}...: {status}",
            key=settings.institution_key_id.hex()[:16],
            status=key_words if settings.institution_key_id else _("none"),
        ),
        _(
            "intake      {count} taken in, cursor {cursor}, {malformed} malformed skipped",
            count=state.taken_in,
            cursor=state.cursor or _("(start)"),
            malformed=len(state.malformed),
        ),
        _n(
            "delivery    {count} released message waiting",
            "delivery    {count} released messages waiting",
            waiting,
        ),
    ]
    _emit(json_output, data, "\n".join(lines))
    if gateway != "ok":
        raise typer.Exit(1)
