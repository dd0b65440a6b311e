"""``sealpost demo``: one scripted day of Sealpost on this machine, every part real.

The day itself is in ``sealpost.clients.scripted_day`` and what ``--hold`` prints in
``sealpost.clients.demo_hold``; both are imported only when the demo runs, so that every
other ``sealpost`` command starts quickly.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated, Final

import typer

#: Exit codes of ``sealpost demo``.
EXIT_HELD: Final = 0
EXIT_FAILED: Final = 1
#: The signals that stop the demo, and with it the servers it started.
STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)

HELP: Final = (
    "Run Sealpost on this machine: key server, gateway, a scripted day.\n\n"
    "Starts OpenBao (dev server, in memory) and the gateway on SQLite on free 127.0.0.1 "
    "ports, plays the day with one line per step, and stops both. Delivery slips, the "
    "evidence bundle, the audit report and the logs land in --out.\n\n"
    "With --hold the servers keep running after the day. The demo prints their ports, the "
    "staff logins it made (each password in an owner-only file in OUT/logins/, never on "
    "the screen) and, for each role, the variables to export and the commands to try. "
    "Ctrl-C or SIGTERM stops both servers, then the demo.\n\n"
    "Exit codes: 0 every expectation of the day held (with --hold, also once stopped by "
    "Ctrl-C or SIGTERM); 1 an expectation did not hold, a server failed, or the demo was "
    "stopped before the day ended."
)


@contextlib.contextmanager
def stopped_by_signals() -> Iterator[None]:
    """Make SIGINT and SIGTERM raise KeyboardInterrupt, once, so the servers are stopped.

    Without this, SIGTERM ends Python at once and leaves OpenBao and the gateway running
    (each runs in a process group of its own). Signals that come while the servers stop are
    ignored, so that a second Ctrl-C cannot cut the stopping short.
    """

    def stop(_signum: int, _frame: FrameType | None) -> None:
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, stop) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run(
    out: Annotated[
        Path, typer.Option(help="Folder for logs and other artefacts (emptied first).")
    ] = Path("demo-out"),
    hold: Annotated[
        bool,
        typer.Option(
            help="After the day, keep both servers running and print how to try each role "
            "by hand, until Ctrl-C or SIGTERM."
        ),
    ] = False,
) -> None:
    """Play the scripted day; with --hold, keep the servers up for a person to try (HELP)."""
    from sealpost.clients.scripted_day import play_day  # noqa: PLC0415

    then = None
    if hold:
        from sealpost.clients.demo_hold import hold_servers  # noqa: PLC0415

        then = hold_servers
    with stopped_by_signals():
        held = play_day(out, then=then)
    if not held:
        raise typer.Exit(EXIT_FAILED)
