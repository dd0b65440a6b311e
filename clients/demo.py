"""``sealpost demo``: one scripted day of Sealpost on this machine, every part real.

The day itself is in ``sealpost.clients.scripted_day``; it is imported only when the
demo runs, so that every other ``sealpost`` command starts quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Run Sealpost on this machine: key server, gateway, a scripted day.")


@app.callback(invoke_without_command=True)
def run(
    out: Annotated[
        Path, typer.Option(help="Folder for logs and other artefacts (emptied first).")
    ] = Path("demo-out"),
    hold: Annotated[
        bool, typer.Option(help="Keep both servers running after the day until Ctrl-C.")
    ] = False,
) -> None:
    """Play the scripted day against a real OpenBao and gateway; exit 0 if all of it held.

    Starts OpenBao (dev server) and the gateway on SQLite on free loopback ports; one
    line per step says what happened and who could see what; delivery slips, the
    evidence bundle, the audit report and the logs land in --out.
    """
    from sealpost.clients.scripted_day import play_day  # noqa: PLC0415

    if not play_day(out, hold=hold):
        raise typer.Exit(1)
