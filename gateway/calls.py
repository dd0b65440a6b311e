"""An API call as any transport hands it to the gateway: who is calling, and how to serve it.

The gateway's services are plain objects: each method takes a parsed request and returns
a response (or yields them, for a stream), and reads its caller from ``CALLER``. A
transport turns its protocol into that: it builds ``Credentials`` from what the call
carries (an ``authorization`` header, a client certificate of mutual TLS, the peer's
address), has the one Guard admit the call (gateway/guard.py), and maps errors to its own
status codes through the one table in gateway/errors.py. The gRPC port does so in
gateway/interceptors.py and ``grpc_servicer`` below; a second transport adds an adapter,
not a copy of any handler.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import ServiceDescriptor


@dataclass(frozen=True)
class Credentials:
    """What a transport knows of a caller; the Guard trusts none of it before checking."""

    #: The client's address without its port (for the limits of unauthenticated calls).
    peer: str = ""
    #: The ``authorization`` header as received (``Bearer <token>``), if any.
    authorization: str | None = None
    #: The client certificate (PEM) presented over mutual TLS (terminals), if any.
    certificate_pem: bytes | None = field(default=None, repr=False)


Unary = Callable[[Any], Awaitable[Any]]
Streaming = Callable[[Any], AsyncIterator[Any]]


def grpc_servicer(service: object, base: type, descriptor: ServiceDescriptor) -> Any:
    """A grpcio servicer (a subclass of the generated ``base``) calling ``service``'s methods.

    grpcio calls ``Method(request, context)``; the gateway's services take the request
    only (the interceptor has admitted the call and set its caller already).
    """

    def unary(name: str) -> Callable[..., Awaitable[Any]]:
        async def call(self: Any, request: Any, context: Any) -> Any:
            handler: Unary = getattr(service, name)
            return await handler(request)

        return call

    def streaming(name: str) -> Callable[..., AsyncIterator[Any]]:
        async def call(self: Any, request: Any, context: Any) -> AsyncIterator[Any]:
            handler: Streaming = getattr(service, name)
            async for item in handler(request):
                yield item

        return call

    methods = {
        method.name: streaming(method.name) if method.server_streaming else unary(method.name)
        for method in descriptor.methods
    }
    return type(f"{type(service).__name__}OverGrpc", (base,), methods)()
