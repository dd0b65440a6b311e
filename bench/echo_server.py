"""A bare grpcio unary echo server in its own process: the reference for the send path.

``python -m bench.echo_server PORT_FILE [CERT KEY]``: with a certificate and key (PEM
files), over TLS as the gateway's public port serves; without, in plain text.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import grpc
from grpc import aio


def _identity(data: bytes) -> bytes:
    return data


async def _echo(request: bytes, _context: aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


async def main(port_file: Path, tls: tuple[Path, Path] | None = None) -> None:
    """Serve /bench.Echo/Echo on a free loopback port until killed."""
    server = aio.server()
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo",
        {
            "Echo": grpc.unary_unary_rpc_method_handler(
                _echo, request_deserializer=_identity, response_serializer=_identity
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
    if tls is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        cert, key = (path.read_bytes() for path in tls)
        credentials = grpc.ssl_server_credentials([(key, cert)])
        port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    port_file.write_text(str(port))
    await server.wait_for_termination()


if __name__ == "__main__":
    given = [Path(arg) for arg in sys.argv[1:]]
    asyncio.run(main(given[0], (given[1], given[2]) if len(given) == 3 else None))
