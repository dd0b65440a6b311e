"""The ``sealpost`` command: one entry point, a subcommand per kind of user."""

from __future__ import annotations

import typer

from sealpost import __version__
from sealpost.clients import demo
from sealpost.clients.admin import cli as admin_cli
from sealpost.clients.audit import cli as audit_cli
from sealpost.clients.relative import cli as relative_cli
from sealpost.clients.review import cli as review_cli
from sealpost.clients.terminal import cli as terminal_cli
from sealpost.gateway import cli as gateway_cli

app = typer.Typer(
    help=(
        "Sealpost: end-to-end encrypted messages between relatives and detainees, "
        "with audited key escrow for lawful review."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


app.add_typer(gateway_cli.app, name="gateway")
app.add_typer(relative_cli.app, name="relative")
app.add_typer(terminal_cli.app, name="terminal")
app.add_typer(review_cli.app, name="review")
# An outsider checks an exported evidence bundle with the auditor's tools as well.
audit_cli.app.command("verify-evidence", help=review_cli.verify_evidence_command.__doc__)(
    review_cli.verify_evidence_command
)
app.add_typer(audit_cli.app, name="audit")
app.add_typer(admin_cli.app, name="admin")
app.command("demo", help=demo.HELP)(demo.run)


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
