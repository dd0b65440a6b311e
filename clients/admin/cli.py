"""``sealpost admin``: institutions, detainees, regimes, orders, contacts, terminals and keys.

Every command signs in as a staff member (key-server identity token) and
calls the gateway's AdminService; every change lands in the transparency log.
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
    emit,
    key_prefix,
    run,
)
from sealpost.clients.admin import registry
from sealpost.v1 import admin_pb2

app = typer.Typer(
    help=(
        "Administrators: institutions, detainees, regimes, orders, contacts, terminals, keys.\n\n"
        "Administrators manage who may talk to whom and never read content."
    ),
    no_args_is_help=True,
)
registry.register(app)
terminal_app = typer.Typer(help="Terminal certificates: issue, list, revoke.", no_args_is_help=True)
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


@terminal_app.command("issue")
def terminal_issue(
    ctx: typer.Context,
    institution: Annotated[str, typer.Option(help="The institution the terminal belongs to.")],
    out: Annotated[Path, typer.Option(help="Folder for the terminal's key and certificates.")],
    days: Annotated[int, typer.Option(help="Validity in days (at most 398).")] = 90,
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
        f"terminal {reply.terminal.terminal_id} of {institution}: certificate "
        f"{reply.terminal.certificate_fingerprint[:16]}... written to {out}/",
    )


@terminal_app.command("list")
def terminal_list(
    ctx: typer.Context,
    institution: Annotated[str, typer.Option(help="Only this institution.")] = "",
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
        f"{'revoked' if t.HasField('revoked_at') else 'active'}  {t.certificate_fingerprint[:16]}"
        for t in reply.terminals
    ]
    emit(options, reply, "\n".join(lines) or "no terminals")


@terminal_app.command("revoke")
def terminal_revoke(
    ctx: typer.Context,
    terminal_id: Annotated[str, typer.Argument(help="The terminal to cut off.")],
) -> None:
    """Revoke a terminal's certificate: its next call is refused."""
    options: StaffOptions = ctx.obj
    reply: admin_pb2.RevokeTerminalResponse = run(
        lambda: options.client().call(
            "admin", "RevokeTerminal", admin_pb2.RevokeTerminalRequest(terminal_id=terminal_id)
        )
    )
    emit(options, reply.terminal, f"terminal {terminal_id} revoked")


key_app = typer.Typer(
    help="The escrow key at the key server: versions, rotation, retention.", no_args_is_help=True
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


def _key_line(info: Any) -> str:
    versions = ", ".join(f"v{v} ({_day(info.created(v))})" for v in info.available_versions)
    return (
        f"escrow key {info.name}: latest v{info.latest_version}, decrypts from "
        f"v{info.min_decryption_version}; versions {versions}; rotates every "
        f"{info.auto_rotate_period.days or info.auto_rotate_period} days"
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


def _record(options: StaffOptions, kind: int, version: int, note: str) -> None:
    options.client().call(
        "admin",
        "RecordKeyEvent",
        admin_pb2.RecordKeyEventRequest(kind=kind, key_version=version, note=note),  # type: ignore[arg-type]
    )


@key_app.command("info")
def key_info(ctx: typer.Context) -> None:
    """Show the escrow key's versions, which still decrypt, and the rotation schedule."""
    options: StaffOptions = ctx.obj
    info = run(lambda: _key_admin(options).key_info())
    emit(options, _key_json(info), _key_line(info))


@key_app.command("rotate")
def key_rotate(ctx: typer.Context) -> None:
    """Start a new escrow key version now; older ones still decrypt. Logged at the gateway."""
    options: StaffOptions = ctx.obj

    def rotate() -> Any:
        info = _key_admin(options).rotate()
        _record(options, admin_pb2.KEY_EVENT_KIND_ROTATION, info.latest_version, "manual rotation")
        return info

    info = run(rotate)
    emit(options, _key_json(info), f"rotated: new escrow key version v{info.latest_version}")


@app.command("retention")
def retention(
    ctx: typer.Context,
    keep_days: Annotated[
        int, typer.Option(help="Keep messages escrowed in the last this many days readable.")
    ] = 0,
    retire_below: Annotated[
        int, typer.Option(help="Instead of --keep-days: retire every version below this one.")
    ] = 0,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Crypto-shred: retire escrow key versions whose messages are all older than --keep-days.

    Irreversible: nobody, not the key server's operators either, can decrypt them afterwards.
    """
    import time  # noqa: PLC0415

    options: StaffOptions = ctx.obj
    if (keep_days < 1) == (retire_below < 1):
        raise typer.BadParameter("give either --keep-days (at least 1) or --retire-below")
    admin = run(lambda: _key_admin(options))
    info = run(admin.key_info)
    keep = retire_below or info.retirable_below(int(time.time()) - keep_days * 86_400)
    if keep <= info.min_decryption_version:
        emit(options, _key_json(info), "nothing to retire: every version is still needed")
        return
    retired = [v for v in info.available_versions if v < keep]
    if not yes:
        typer.confirm(
            f"Retire escrow key versions {retired}? Messages escrowed under them can never "
            "be decrypted again.",
            abort=True,
        )

    def apply() -> Any:
        after = admin.apply_retention(keep)
        why = f"keep {keep_days} days" if keep_days else f"retire below v{keep}"
        _record(options, admin_pb2.KEY_EVENT_KIND_RETENTION, keep, why)
        return after

    after = run(apply)
    emit(
        options,
        _key_json(after),
        f"retired versions {retired}: escrow made with them is unreadable; decrypts from v{keep}",
    )
