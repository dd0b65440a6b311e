"""``sealpost admin``: institutions, detainees, regimes, orders, contacts, terminals and keys.

Every command signs in as a staff member (key-server identity token) and
calls the gateway's AdminService; every change lands in the transparency log.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from sealpost.clients._cli import (
    CaFile,
    Gateway,
    JsonOutput,
    KeyServer,
    StaffOptions,
    User,
    emit,
    run,
)
from sealpost.v1 import admin_pb2

app = typer.Typer(
    help=(
        "Administrators: institutions, detainees, regimes, orders, contacts, terminals, keys.\n\n"
        "Administrators manage who may talk to whom and never read content."
    ),
    no_args_is_help=True,
)
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
