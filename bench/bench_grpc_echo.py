"""Reference figure: a bare grpcio unary echo on loopback, the yardstick for the send path."""

from __future__ import annotations

import asyncio
import time

import grpc
from grpc import aio

from bench import Result

_METHOD = "/bench.Echo/Echo"


def _identity(data: bytes) -> bytes:
    return data


async def _echo(request: bytes, _context: aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


async def echo_rate(payload: int = 1024, senders: int = 8, seconds: float = 3.0) -> float:
    """Calls per second of a bare unary echo with ``senders`` concurrent callers."""
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
    body = b"x" * payload
    done = 0
    try:
        async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(
                _METHOD, request_serializer=_identity, response_deserializer=_identity
            )
            await call(body)
            deadline = time.perf_counter() + seconds

            async def sender() -> int:
                n = 0
                while time.perf_counter() < deadline:
                    await call(body)
                    n += 1
                return n

            started = time.perf_counter()
            counts = await asyncio.gather(*(sender() for _ in range(senders)))
            elapsed = time.perf_counter() - started
            done = sum(counts)
    finally:
        await server.stop(None)
    return done / elapsed


def run(quick: bool) -> list[Result]:
    """Echo throughput at 1 KiB with 8 concurrent senders."""
    rate = asyncio.run(echo_rate(seconds=1.0 if quick else 3.0))
    return [Result("grpc_echo", "unary echo, 1 KiB, 8 senders", rate, "calls/s")]
