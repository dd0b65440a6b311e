"""``sealpost gateway``: run the gateway server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from sealpost._internal import logs
from sealpost.gateway.config import GatewayConfig
from sealpost.gateway.errors import ConfigError

app = typer.Typer(
    help="Run the Sealpost gateway (gRPC API v1, health checking, reflection).",
    no_args_is_help=True,
)


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on (env SEALPOST_HOST, default 127.0.0.1)."),
    ] = None,
    port: Annotated[
        str | None,
        typer.Option(help="Port; 0 picks a free one (env SEALPOST_PORT, default 50051)."),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(help="debug, info, warning or error (env SEALPOST_LOG_LEVEL, default info)."),
    ] = None,
    grace_seconds: Annotated[
        str | None,
        typer.Option(
            help="Seconds in-flight calls get on shutdown (env SEALPOST_GRACE_SECONDS, default 5)."
        ),
    ] = None,
    port_file: Annotated[
        Path | None,
        typer.Option(
            help="Write the bound port to this file once serving (env SEALPOST_PORT_FILE)."
        ),
    ] = None,
) -> None:
    """Serve the API until SIGTERM or Ctrl-C, then shut down gracefully."""
    flags = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "grace_seconds": grace_seconds,
        "port_file": str(port_file) if port_file is not None else None,
    }
    try:
        config = GatewayConfig.load(flags)
    except ConfigError as exc:
        typer.echo(f"sealpost gateway serve: {exc.explain()}", err=True)
        raise typer.Exit(2) from exc
    logs.configure(config.log_level)
    try:
        asyncio.run(serve_forever(config))
    except OSError as exc:
        typer.echo(f"sealpost gateway serve: cannot listen on {config.address}: {exc}", err=True)
        raise typer.Exit(1) from exc


async def serve_forever(config: GatewayConfig) -> None:
    """Imported lazily so that ``--help`` stays fast."""
    from sealpost.gateway.server import serve as run  # noqa: PLC0415

    await run(config)
