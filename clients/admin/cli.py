"""``sealpost admin``: institutions, detainees, regimes, orders, contacts, terminals and keys.

Every command signs in as a staff member (key-server identity token) and
calls the gateway's AdminService; every change lands in the transparency log.
Commands that change the key server (bootstrap, staff logins, terminal tokens,
rotation, retention) record what they changed there too (SPEC P14).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from sealpost.clients._cli import (
    CaFile,
    Gateway,
    JsonOutput,
    KeyServer,
    StaffOptions,
    User,
    cli_app,
    emit,
    key_prefix,
    refuse,
    run,
)
from sealpost.clients._problems import ExitCode
from sealpost.clients.admin import registry
from sealpost.clients.admin.record import record_actions, settle
from sealpost.i18n import _, _n
from sealpost.v1 import admin_pb2

app = cli_app(
    help=_(
        "Administrators: institutions, detainees, regimes, orders, contacts, terminals, keys.\n\n"
        "Administrators manage who may talk to whom and never read content."
    )
)
registry.register(app)
terminal_app = cli_app(
    help=_(
        "Terminal certificates (issue, list, revoke) and key-server tokens (token, revoke-token)."
    )
)
app.add_typer(terminal_app, name="terminal")


@app.callback()
def _options(
    ctx: typer.Context,
    gateway: Gateway = "127.0.0.1:50051",
    ca_file: CaFile = Path("sealpost-state/tls/ca.pem"),
    key_server: KeyServer = "",
    user: User = "",
    json_output: JsonOutput = False,
) -> None:
    """Where the gateway and the key server are, and who you are."""
    ctx.obj = StaffOptions(gateway, ca_file, key_server, user, json_output)


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


@terminal_app.command(
    "issue",
    help=_(
        "Make a key pair here, have the gateway's CA certify it for one institution, save both."
        "\n\nThe private key never leaves this machine: only a certificate signing request goes "
        "out."
    ),
)
def terminal_issue(
    ctx: typer.Context,
    institution: Annotated[str, typer.Option(help=_("The institution the terminal belongs to."))],
    out: Annotated[Path, typer.Option(help=_("Folder for the terminal's key and certificates."))],
    days: Annotated[int, typer.Option(help=_("Validity in days (at most 398)."))] = 90,
) -> None:
    """Make a key pair here, have the gateway's CA certify it for one institution, save both.

    The private key never leaves this machine: only a certificate signing request goes out.
    """
    from sealpost.gateway import pki  # noqa: PLC0415

    options: StaffOptions = ctx.obj
    csr, key = pki.make_csr("sealpost-terminal")

    def issue() -> admin_pb2.IssueTerminalCertificateResponse:
        reply: admin_pb2.IssueTerminalCertificateResponse = options.client().call(
            "admin",
            "IssueTerminalCertificate",
            admin_pb2.IssueTerminalCertificateRequest(
                institution_id=institution, csr_pem=csr.decode(), valid_days=days
            ),
        )
        return reply

    reply = run(issue)
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "terminal-key.pem", key, 0o600)
    _write(out / "terminal.pem", reply.certificate_pem.encode(), 0o644)
    _write(out / "ca.pem", reply.ca_certificate_pem.encode(), 0o644)
    emit(
        options,
        reply.terminal,
        _(
            "terminal {terminal} of {institution}: certificate {fingerprint}... written to "
            "{folder}/",
            terminal=reply.terminal.terminal_id,
            institution=institution,
            fingerprint=reply.terminal.certificate_fingerprint[:16],
            folder=out,
        ),
    )


@terminal_app.command("list", help=_("Terminals and their certificates."))
def terminal_list(
    ctx: typer.Context,
    institution: Annotated[str, typer.Option(help=_("Only this institution."))] = "",
) -> None:
    """Terminals and their certificates."""
    options: StaffOptions = ctx.obj
    reply: admin_pb2.ListTerminalsResponse = run(
        lambda: options.client().call(
            "admin", "ListTerminals", admin_pb2.ListTerminalsRequest(institution_id=institution)
        )
    )
    lines = [
        f"{t.terminal_id}  {t.institution_id}  "
        f"{_('revoked') if t.HasField('revoked_at') else _('active')}  "
        f"{t.certificate_fingerprint[:16]}"
        for t in reply.terminals
    ]
    emit(options, reply, "\n".join(lines) or _("no terminals"))


@terminal_app.command(
    "revoke", help=_("Revoke a terminal's certificate: its next call is refused.")
)
def terminal_revoke(
    ctx: typer.Context,
    terminal_id: Annotated[str, typer.Argument(help=_("The terminal to cut off."))],
) -> None:
    """Revoke a terminal's certificate: its next call is refused."""
    options: StaffOptions = ctx.obj
    reply: admin_pb2.RevokeTerminalResponse = run(
        lambda: options.client().call(
            "admin", "RevokeTerminal", admin_pb2.RevokeTerminalRequest(terminal_id=terminal_id)
        )
    )
    emit(options, reply.terminal, _("terminal {terminal} revoked", terminal=terminal_id))


key_app = cli_app(
    help=_(
        "The escrow key at the key server: versions, rotation, bootstrap, recording key-server "
        "actions. Retiring old versions: `sealpost admin retention`."
    )
)
app.add_typer(key_app, name="key")


def _key_admin(options: StaffOptions) -> Any:
    from sealpost.escrow.bootstrap import BootstrapSettings  # noqa: PLC0415
    from sealpost.escrow.client import KeyAdminClient  # noqa: PLC0415

    return KeyAdminClient(
        options.key_server_config(),
        options.key_server_token(),
        key=BootstrapSettings(prefix=key_prefix()).escrow_key,
    )


def _bootstrap_runner(options: StaffOptions, issuer: str | None = None) -> Any:
    """The key server's bootstrap client, with the operator's token (tokens, staff logins)."""
    from sealpost.escrow.bootstrap import BootstrapSettings, KeyServerBootstrap  # noqa: PLC0415

    return KeyServerBootstrap(
        options.key_server_config(),
        options.key_server_token(),
        BootstrapSettings(prefix=key_prefix(), issuer=issuer),
    )


def _key_line(info: Any) -> str:
    versions = ", ".join(f"v{v} ({_day(info.created(v))})" for v in info.available_versions)
    days = info.auto_rotate_period.days
    rotation = (
        _n("rotates every {count} day", "rotates every {count} days", days)
        if days
        else _("rotates every {period}", period=info.auto_rotate_period)
    )
    return _(
        "escrow key {name}: latest v{latest}, decrypts from v{oldest}; versions {versions}; "
        "{rotation}",
        name=info.name,
        latest=info.latest_version,
        oldest=info.min_decryption_version,
        versions=versions,
        rotation=rotation,
    )


def _day(seconds: int | None) -> str:
    import datetime as dt  # noqa: PLC0415

    if seconds is None:
        return "?"
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d")


def _key_json(info: Any) -> dict[str, Any]:
    return {
        "name": info.name,
        "latestVersion": info.latest_version,
        "minDecryptionVersion": info.min_decryption_version,
        "availableVersions": list(info.available_versions),
        "autoRotateSeconds": int(info.auto_rotate_period.total_seconds()),
    }


Receipt = Annotated[
    Path | None,
    typer.Option(help=_("Also write what was changed at the key server to this file.")),
]


def _noted(actions: list[Any], note: str) -> list[Any]:
    import dataclasses  # noqa: PLC0415

    return [dataclasses.replace(a, note=note) for a in actions]


@key_app.command(
    "info",
    help=_("Show the escrow key's versions, which still decrypt, and the rotation schedule."),
)
def key_info(ctx: typer.Context) -> None:
    """Show the escrow key's versions, which still decrypt, and the rotation schedule."""
    options: StaffOptions = ctx.obj
    info = run(lambda: _key_admin(options).key_info())
    emit(options, _key_json(info), _key_line(info))


@key_app.command(
    "rotate",
    help=_("Start a new escrow key version now; older ones still decrypt. Logged at the gateway."),
)
def key_rotate(ctx: typer.Context) -> None:
    """Start a new escrow key version now; older ones still decrypt. Logged at the gateway."""
    options: StaffOptions = ctx.obj

    def rotate() -> Any:
        admin = _key_admin(options)
        try:
            info = admin.rotate()
        finally:
            done = _noted(admin.take_actions(), "manual rotation")
            admin.close()
        settle(options, done, record=True, receipt=None)
        return info

    info = run(rotate)
    emit(
        options,
        _key_json(info),
        _("rotated: new escrow key version v{version}", version=info.latest_version),
    )


@app.command(
    "retention",
    help=_(
        "Crypto-shred: retire escrow key versions whose messages are all older than --keep-days."
        "\n\nIrreversible: nobody, not the key server's operators either, can decrypt them "
        "afterwards."
    ),
)
def retention(
    ctx: typer.Context,
    keep_days: Annotated[
        int, typer.Option(help=_("Keep messages escrowed in the last this many days readable."))
    ] = 0,
    retire_below: Annotated[
        int,
        typer.Option(help=_("Instead of --keep-days: retire every version below this one.")),
    ] = 0,
    snapshots: Annotated[
        list[Path] | None,
        typer.Option(
            "--snapshots",
            help=_(
                "A folder of key-server snapshots (repeatable). Retention is refused while one "
                "is older than --keep-days: restoring it would bring back retired versions."
            ),
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help=_("Do not ask for confirmation."))] = False,
) -> None:
    """Crypto-shred: retire escrow key versions whose messages are all older than --keep-days.

    Irreversible: nobody, not the key server's operators either, can decrypt them afterwards.
    """
    import time  # noqa: PLC0415

    from sealpost.clients.admin.backups import too_old  # noqa: PLC0415

    options: StaffOptions = ctx.obj
    if (keep_days < 1) == (retire_below < 1):
        raise typer.BadParameter(_("give either --keep-days (at least 1) or --retire-below"))
    if snapshots and keep_days < 1:
        raise typer.BadParameter(
            _("give --keep-days with --snapshots: the retention period says how old one may be"),
            param_hint="--snapshots",
        )
    try:
        old = too_old(snapshots or [], int(time.time()) - keep_days * 86_400)
    except OSError as exc:
        raise typer.BadParameter(str(exc), param_hint="--snapshots") from None
    if old:
        refuse(
            _(
                "destroy these key-server snapshots first; they are older than {days} days "
                "and restoring one would bring back the versions retention retires: {files}",
                days=keep_days,
                files=", ".join(str(p) for p in old),
            ),
            code="old_snapshots",
            exit=ExitCode.FAILED,
        )
    admin = run(lambda: _key_admin(options))
    info = run(admin.key_info)
    keep = retire_below or info.retirable_below(int(time.time()) - keep_days * 86_400)
    if keep <= info.min_decryption_version:
        emit(options, _key_json(info), _("nothing to retire: every version is still needed"))
        return
    retired = [v for v in info.available_versions if v < keep]
    if not yes:
        typer.confirm(
            _(
                "Retire escrow key versions {versions}? Messages escrowed under them can never "
                "be decrypted again.",
                versions=retired,
            ),
            abort=True,
        )

    def apply() -> Any:
        why = f"keep {keep_days} days" if keep_days else f"retire below v{keep}"
        try:
            after = admin.apply_retention(keep)
        finally:
            done = _noted(admin.take_actions(), why)
        settle(options, done, record=True, receipt=None)
        return after

    after = run(apply)
    emit(
        options,
        _key_json(after),
        _(
            "retired versions {versions}: escrow made with them is unreadable; decrypts from "
            "v{version}",
            versions=retired,
            version=keep,
        ),
    )


@key_app.command(
    "schedule",
    help=_("Set the escrow key's automatic rotation period. Logged at the gateway."),
)
def key_schedule(
    ctx: typer.Context,
    days: Annotated[int, typer.Option(help=_("Rotate every this many days; 0 turns it off."))],
) -> None:
    """Set the escrow key's automatic rotation period. Logged at the gateway."""
    import datetime as dt  # noqa: PLC0415

    options: StaffOptions = ctx.obj
    if days < 0:
        raise typer.BadParameter(_("a period is not negative"), param_hint="--days")

    def schedule() -> Any:
        admin = _key_admin(options)
        try:
            info = admin.set_auto_rotate_period(dt.timedelta(days=days))
        finally:
            done = admin.take_actions()
            admin.close()
        settle(options, done, record=True, receipt=None)
        return info

    info = run(schedule)
    emit(options, _key_json(info), _key_line(info))


@key_app.command(
    "bootstrap",
    help=_(
        "Set up (or check) the key server for Sealpost; write what changed to a receipt.\n\n"
        "Needs a key-server operator token in SEALPOST_KEY_SERVER_TOKEN (a root token made "
        "for the occasion). It runs before the gateway exists, so by default it only writes "
        "the receipt: once an administrator can sign in, record it with `admin key record`."
    ),
)
def key_bootstrap(
    ctx: typer.Context,
    receipt: Annotated[
        Path,
        typer.Option(help=_("Where to write what the bootstrap changed, for `admin key record`.")),
    ] = Path("key-server-bootstrap.json"),
    record: Annotated[
        bool,
        typer.Option(help=_("Record it in the log now (only once the gateway runs).")),
    ] = False,
    issuer: Annotated[
        str | None,
        typer.Option(
            help=_(
                "The issuer of staff identity tokens, one name for every node of a cluster "
                "(https://host:port); by default the answering node's api_addr."
            )
        ),
    ] = None,
) -> None:
    """Set up (or check) the key server for Sealpost; write what changed to a receipt.

    Needs a key-server operator token in SEALPOST_KEY_SERVER_TOKEN (a root token made
    for the occasion). It runs before the gateway exists, so by default it only writes
    the receipt: once an administrator can sign in, record it with `admin key record`.
    """
    options: StaffOptions = ctx.obj

    def setup() -> Any:
        runner = _bootstrap_runner(options, issuer)
        try:
            result = runner.run()
        finally:
            done = runner.take_actions()
            runner.close()
        return result, settle(options, done, record=record, receipt=receipt), len(done)

    result, recorded, actions = run(setup)
    pending = actions and not recorded
    later = (
        _("; record {receipt} with `sealpost admin key record`", receipt=receipt) if pending else ""
    )
    emit(
        options,
        {
            "issuer": result.issuer,
            "audience": result.audience,
            "jwksUri": result.jwks_uri,
            "changes": list(result.changes),
            "receipt": str(receipt) if actions else None,
            "recorded": recorded,
        },
        _n(
            "key server ready ({count} change); issuer {issuer}, audience {audience}",
            "key server ready ({count} changes); issuer {issuer}, audience {audience}",
            len(result.changes),
            issuer=result.issuer,
            audience=result.audience,
        )
        + later,
    )


@key_app.command(
    "record",
    help=_(
        "Record key-server actions from receipts in the transparency log (national "
        "administrators).\n\nFor work done before the gateway could record it: the bootstrap, "
        "the first administrator's login. Record each receipt once; an action is recorded within "
        "7 days."
    ),
)
def key_record(
    ctx: typer.Context,
    receipts: Annotated[
        list[Path],
        typer.Argument(help=_("Receipts written by `admin key bootstrap` and others.")),
    ],
) -> None:
    """Record key-server actions from receipts in the transparency log (national administrators).

    For work done before the gateway could record it: the bootstrap, the first
    administrator's login. Record each receipt once; an action is recorded within 7 days.
    """
    from sealpost.escrow.actions import load_receipt  # noqa: PLC0415

    options: StaffOptions = ctx.obj

    def record() -> int:
        actions = [a for path in receipts for a in load_receipt(path.read_bytes())]
        client = options.client()
        try:
            return record_actions(client, actions)
        finally:
            client.close()

    count = run(record)
    emit(
        options,
        {"recorded": count},
        _n(
            "recorded {count} key-server event in the log",
            "recorded {count} key-server events in the log",
            count,
        ),
    )


@terminal_app.command(
    "token",
    help=_(
        "Make a terminal's encrypt-only key-server token, write it to --out (owner-only) and "
        "record it in the transparency log.\n\n"
        "Needs a key-server operator token in SEALPOST_KEY_SERVER_TOKEN (a root token made for "
        "the occasion), and a national administrator signed in to record the change (--user "
        "with SEALPOST_PASSWORD or the prompt, or SEALPOST_STAFF_TOKEN). If the recording "
        "fails, the token stands, the change is kept in a receipt file and the error names the "
        "`sealpost admin key record` command that records it.\n\n"
        "The token can escrow data keys and never decrypt one; it is periodic (24 hours), and "
        "the terminal's intake loop renews it. It goes to --out only: hand it to the "
        'terminal\'s enrolment, SEALPOST_KEY_SERVER_TOKEN="$(cat FILE)" sealpost terminal '
        "enroll ... . Keep the accessor it prints: `sealpost admin terminal revoke-token "
        "ACCESSOR` revokes the token."
    ),
)
def terminal_token(
    ctx: typer.Context,
    institution: Annotated[str, typer.Argument(help=_("The institution the terminal belongs to."))],
    out: Annotated[Path, typer.Option(help=_("File for the token (written owner-only)."))],
    receipt: Receipt = None,
) -> None:
    """Make a terminal's key-server token and record it (the help is above)."""
    options: StaffOptions = ctx.obj

    def create() -> Any:
        runner = _bootstrap_runner(options)
        try:
            token = runner.create_terminal_token(institution)
        finally:
            done = runner.take_actions()
            runner.close()
        _write(out, token.token.encode(), 0o600)
        return token, settle(options, done, record=True, receipt=receipt)

    token, recorded = run(create)
    emit(
        options,
        {"institution": institution, "accessor": token.accessor, "recorded": recorded},
        _(
            "terminal token for {institution} written to {file}; accessor {accessor} "
            "(keep it to revoke the token)",
            institution=institution,
            file=out,
            accessor=token.accessor,
        ),
    )


@key_app.command(
    "gateway-token",
    help=_(
        "Make the gateway's key-server token and write it to --out (owner-only), for "
        "key_custody = key-server.\n\n"
        "Needs a key-server operator token in SEALPOST_KEY_SERVER_TOKEN. The token signs with "
        "the directory and log keys, reads and rotates the session-token key, and can neither "
        "escrow nor decrypt; it is periodic (24 hours) and the gateway renews it while it runs. "
        "Point the gateway's key_server_token_file at the file. Keep the accessor it prints: "
        "`sealpost admin terminal revoke-token ACCESSOR` revokes it (a compromised gateway host)."
    ),
)
def key_gateway_token(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help=_("File for the token (written owner-only)."))],
) -> None:
    """Make the gateway's key-server token (the help is above)."""
    options: StaffOptions = ctx.obj

    def create() -> Any:
        runner = _bootstrap_runner(options)
        try:
            token = runner.create_gateway_token()
        finally:
            runner.close()
        _write(out, token.token.encode(), 0o600)
        return token

    token = run(create)
    emit(
        options,
        {"accessor": token.accessor},
        _(
            "gateway token written to {file}; accessor {accessor} (keep it to revoke the token)",
            file=out,
            accessor=token.accessor,
        ),
    )


@key_app.command(
    "rotate-signing-key",
    help=_(
        "Start a new version of the directory key or the log key at the key server "
        "(key_custody = key-server). Needs a key administrator's key-server token.\n\n"
        "Each gateway takes it up within its key_refresh_seconds. The log key: a new log "
        "record, signed by the directory key and recorded in the log; later tree heads are "
        "signed with the new version, earlier ones stay valid under the old record. The "
        "directory key: a hand-over signed by the old and the new version, published with the "
        "new directory record and recorded in the log; relatives, terminals and auditors who "
        "pinned the old key follow it, and what the old key signed stays valid "
        "(docs/operations.md, section 16)."
    ),
)
def key_rotate_signing_key(
    ctx: typer.Context,
    which: Annotated[str, typer.Argument(help=_("directory or log"))],
) -> None:
    """Start a new version of the directory or log key (the help is above)."""
    from sealpost.escrow import signing  # noqa: PLC0415
    from sealpost.escrow._transport import Connection  # noqa: PLC0415
    from sealpost.escrow.bootstrap import BootstrapSettings  # noqa: PLC0415

    options: StaffOptions = ctx.obj
    settings = BootstrapSettings(prefix=key_prefix())
    names = dict(zip(("directory", "log"), settings.signing_keys, strict=True))
    if which not in names:
        refuse(
            _("name the key to rotate: directory or log"), code="bad_argument", exit=ExitCode.USAGE
        )

    def rotate() -> int:
        connection = Connection(options.key_server_config(), options.key_server_token())
        try:
            return signing.rotate(connection, settings.signing_mount, names[which])
        finally:
            connection.close()

    version = run(rotate)
    emit(
        options,
        {"key": names[which], "latestVersion": version},
        _("rotated: new version v{version} of {key}", version=version, key=names[which]),
    )


@terminal_app.command(
    "revoke-token",
    help=_("Revoke a terminal's key-server token at once (a lost or compromised terminal)."),
)
def terminal_revoke_token(
    ctx: typer.Context,
    accessor: Annotated[str, typer.Argument(help=_("The token's accessor (printed at creation)."))],
    institution: Annotated[str, typer.Option(help=_("Whose terminal it was, for the log."))] = "",
    receipt: Receipt = None,
) -> None:
    """Revoke a terminal's key-server token at once (a lost or compromised terminal)."""
    options: StaffOptions = ctx.obj

    def revoke() -> int:
        runner = _bootstrap_runner(options)
        try:
            runner.revoke_token(accessor, target=institution)
        finally:
            done = runner.take_actions()
            runner.close()
        return settle(options, done, record=True, receipt=receipt)

    recorded = run(revoke)
    emit(options, {"revoked": True, "recorded": recorded}, _("terminal token revoked"))
