"""A bare grpcio unary echo server in its own process: the reference for the send path."""

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


async def main(port_file: Path) -> None:
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
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    port_file.write_text(str(port))
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
