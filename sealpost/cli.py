"""The ``sealpost`` command: one entry point, a subcommand per kind of user.

Started as a program, sealpost.command chooses the staff language before this module is
imported, so that help texts are in it too.
"""

from __future__ import annotations

import typer

from sealpost import __version__, i18n
from sealpost.clients import _cli, demo
from sealpost.clients.admin import cli as admin_cli
from sealpost.clients.audit import cli as audit_cli
from sealpost.clients.relative import cli as relative_cli
from sealpost.clients.review import cli as review_cli
from sealpost.clients.terminal import cli as terminal_cli
from sealpost.gateway import cli as gateway_cli
from sealpost.i18n import _

app = _cli.cli_app(
    help=_(
        "Sealpost: end-to-end encrypted messages between relatives and detainees, "
        "with audited key escrow for lawful review."
    ),
)


app.add_typer(gateway_cli.app, name="gateway")
app.add_typer(relative_cli.app, name="relative")
app.add_typer(terminal_cli.app, name="terminal")
app.add_typer(review_cli.app, name="review")
# An outsider checks an exported evidence bundle with the auditor's tools as well.
audit_cli.app.command("verify-evidence", help=review_cli.VERIFY_EVIDENCE_HELP)(
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
        help=_("Print the version and exit."),
    ),
    verbose: bool = typer.Option(
        False,
        "--verbose",
        envvar=_cli.VERBOSE_ENV,
        help=_("On a failure, also show the underlying error (gRPC's, the key server's)."),
    ),
    language: str = typer.Option(
        "",
        "--language",
        help=_("nl or en: the language of the staff programs (default: from the locale)."),
    ),
) -> None:
    """Sealpost's command line."""
    _cli.set_verbose(verbose)
    if language:
        i18n.use_staff_language(i18n.staff_language_from(language))
