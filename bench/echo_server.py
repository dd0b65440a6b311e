"""A bare grpcio unary echo server in its own process: the reference for the send path.

``python -m bench.echo_server PORT_FILE [CERT KEY] [--threads]``: with a certificate and
key (PEM files), over TLS as the gateway's public port serves; without, in plain text.
The asyncio server by default (as the gateway's); ``--threads``, grpcio's thread-pool
server, to compare what each costs per call.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from grpc import aio


def _identity(data: bytes) -> bytes:
    return data


async def _echo(request: bytes, _context: aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


def _echo_sync(request: bytes, _context: Any) -> bytes:
    return request


def _handler(echo: Any) -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        "bench.Echo",
        {
            "Echo": grpc.unary_unary_rpc_method_handler(
                echo, request_deserializer=_identity, response_serializer=_identity
            )
        },
    )


def _port(server: Any, tls: tuple[Path, Path] | None) -> int:
    if tls is None:
        return int(server.add_insecure_port("127.0.0.1:0"))
    cert, key = (path.read_bytes() for path in tls)
    credentials = grpc.ssl_server_credentials([(key, cert)])
    return int(server.add_secure_port("127.0.0.1:0", credentials))


async def main(port_file: Path, tls: tuple[Path, Path] | None = None) -> None:
    """Serve /bench.Echo/Echo (asyncio server) on a free loopback port until killed."""
    server = aio.server()
    server.add_generic_rpc_handlers((_handler(_echo),))
    port = _port(server, tls)
    await server.start()
    port_file.write_text(str(port))
    await server.wait_for_termination()


def main_threads(port_file: Path, tls: tuple[Path, Path] | None = None) -> None:
    """The same with grpcio's thread-pool server (8 workers, one per sender)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((_handler(_echo_sync),))
    port = _port(server, tls)
    server.start()
    port_file.write_text(str(port))
    threading.Event().wait()


if __name__ == "__main__":
    threads = "--threads" in sys.argv
    given = [Path(arg) for arg in sys.argv[1:] if arg != "--threads"]
    tls_files = (given[1], given[2]) if len(given) == 3 else None
    if threads:
        main_threads(given[0], tls_files)
    else:
        asyncio.run(main(given[0], tls_files))
