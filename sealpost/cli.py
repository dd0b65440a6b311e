"""The ``sealpost`` command: one entry point, a subcommand per kind of user."""

from __future__ import annotations

import typer

from sealpost import __version__
from sealpost.clients import demo
from sealpost.clients.admin import cli as admin_cli
from sealpost.gateway import cli as gateway_cli

app = typer.Typer(
    help=(
        "Sealpost: end-to-end encrypted messages between relatives and detainees, "
        "with audited key escrow for lawful review."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _group(name: str, summary: str, detail: str) -> None:
    """A command group whose commands arrive with later parts of the system."""
    group = typer.Typer(help=f"{summary}\n\n{detail}", no_args_is_help=True)

    @group.callback(invoke_without_command=True)
    def _root(ctx: typer.Context) -> None:
        if ctx.invoked_subcommand is None:
            typer.echo(ctx.get_help())

    app.add_typer(group, name=name)


app.add_typer(gateway_cli.app, name="gateway")
_group(
    "relative",
    "Relatives and lawyers: register a device, request contacts, send and read messages.",
    "Works through the relative SDK (sealpost.clients.relative).",
)
_group(
    "terminal",
    "Institution terminals: take in messages, escrow their keys, deliver, send replies.",
    "Authenticates to the gateway with the institution's client certificate.",
)
_group(
    "review",
    "Screeners and approvers: the screening queue, lawful review, retrospective requests.",
    "Decrypts with the screener's own key-server identity; every grant is logged.",
)
_group(
    "audit",
    "Auditors: verify the transparency log, reconcile it with the key server, report.",
    "Needs read access only.",
)
app.add_typer(admin_cli.app, name="admin")
app.add_typer(demo.app, name="demo")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"sealpost {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Print the version and exit.",
    ),
) -> None:
    """Sealpost's command line."""


def main() -> None:
    """Console entry point."""
    app()
