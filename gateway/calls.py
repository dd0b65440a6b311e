"""An API call as any transport hands it to the gateway: who is calling, and how to serve it.

The gateway's services are plain objects: each method takes a parsed request and returns
a response (or yields them, for a stream), and reads its caller from ``CALLER``. A
transport turns its protocol into that: it builds ``Credentials`` from what the call
carries (an ``authorization`` header, a client certificate of mutual TLS, the peer's
address), checks the parsed request (``check_request``), has the one Guard admit the call
(gateway/guard.py), and answers errors through ``answer``, which uses the one table in
gateway/errors.py. ``CallLog`` gives every call, whatever its transport, a request id and
the same finishing log record. The gRPC ports do so in gateway/interceptors.py and
``grpc_servicer`` below, the browser port in gateway/web.py; a transport adds an adapter,
not a copy of any handler.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import grpc
import structlog
from google.protobuf.descriptor import FieldDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from sealpost._internal.logs import get_logger
from sealpost.errors import SealpostError
from sealpost.gateway.errors import InvalidArgument, ResourceExhausted, status_for
from sealpost.gateway.principals import Principal

#: The request id a caller may send and every answer carries (metadata or header).
REQUEST_ID_KEY: Final = "x-request-id"
#: Seconds to wait before retrying, on an answer of RESOURCE_EXHAUSTED.
RETRY_AFTER_KEY: Final = "retry-after-seconds"
#: The answer to bytes that are not a request of the method called, on every transport.
NOT_A_REQUEST: Final = "the request is not a valid message for this method"
_REQUEST_ID_RE: Final = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

_log = get_logger("sealpost.gateway.rpc")


#: How an observer is told that a call ended: the status code its caller gets.
CallEnd = Callable[[grpc.StatusCode], None]


class CallObserver(Protocol):
    """Told of every call, whatever its transport (metrics, traces): method and status only.

    ``method`` is the full name of a method the server serves (``sealpost.v1.Service/Method``),
    never a path a caller made up; nothing of the request, its caller or its answer is passed.
    """

    def begin(self, transport: str, method: str, *, streaming: bool) -> CallEnd:
        """A call of ``method`` over ``transport`` (``grpc``, ``connect``) starts now."""
        ...


def method_name(path: str) -> str:
    """``sealpost.v1.Service/Method`` for the path ``/sealpost.v1.Service/Method``."""
    return path.removeprefix("/")


@dataclass(frozen=True)
class Credentials:
    """What a transport knows of a caller; the Guard trusts none of it before checking."""

    #: The client's address without its port (for the limits of unauthenticated calls).
    peer: str = ""
    #: The ``authorization`` header as received (``Bearer <token>``), if any.
    authorization: str | None = None
    #: The client certificate (PEM) presented over mutual TLS (terminals), if any.
    certificate_pem: bytes | None = field(default=None, repr=False)


def request_id(offered: str | None) -> str:
    """The caller's request id if well formed, otherwise a new random one."""
    if offered is not None and _REQUEST_ID_RE.match(offered):
        return offered
    return secrets.token_hex(8)


@dataclass(frozen=True)
class Answer:
    """How a transport answers a failed call: a status code, a safe message, a retry hint."""

    code: grpc.StatusCode
    message: str
    #: Seconds as text (``"1.5"``) for RESOURCE_EXHAUSTED, else None.
    retry_after: str | None = None


def answer(error: BaseException) -> Answer:
    """The answer to a call that raised ``error``; a bug is logged and answers INTERNAL."""
    if isinstance(error, NotImplementedError):
        return Answer(grpc.StatusCode.UNIMPLEMENTED, "not implemented yet")
    code = status_for(error)
    if code is None:
        _log.error("rpc.bug", error_type=type(error).__name__)
        return Answer(grpc.StatusCode.INTERNAL, "internal error")
    message = error.explain() if isinstance(error, SealpostError) else str(error)
    retry_after = None
    if isinstance(error, ResourceExhausted):
        # Rounded up to a tenth: a hint of "0.0" would invite an immediate retry.
        wait = math.ceil(error.retry_after_seconds * 10) / 10
        retry_after = f"{max(wait, 0.1):.1f}"
    return Answer(code, message, retry_after)


class CallLog:
    """One call's request id and its finishing log record.

    The record carries method, status code, role and duration: never request or response
    content, never a credential.
    """

    def __init__(self, method: str, offered_request_id: str | None) -> None:
        self.method = method
        self.request_id = request_id(offered_request_id)
        self.started = time.perf_counter()
        self.role = ""
        self.code = grpc.StatusCode.OK
        structlog.contextvars.bind_contextvars(request_id=self.request_id, method=method)

    def admitted(self, principal: Principal) -> None:
        """Remember the caller's roles for the log record."""
        self.role = ",".join(sorted(r.value for r in principal.roles))

    def failed(self, error: BaseException) -> Answer:
        """The answer to ``error``, remembered for the log record."""
        result = answer(error)
        self.code = result.code
        return result

    def finish(self, code: grpc.StatusCode | None = None) -> None:
        """Log the outcome of the call (``code`` overrides the one remembered)."""
        fields: dict[str, Any] = {
            "duration_ms": round((time.perf_counter() - self.started) * 1000, 3),
            "code": (code or self.code).name,
        }
        if self.role:
            fields["role"] = self.role
        _log.info("rpc.finished", **fields)
        structlog.contextvars.clear_contextvars()


#: Whether a message type can hold text anywhere, by full name (``_holds_text``).
_HOLDS_TEXT: dict[str, bool] = {}


def _holds_text(descriptor: Any, _seen: set[str] | None = None) -> bool:
    """True if a message of this type can hold a string field at any depth (maps included)."""
    known = _HOLDS_TEXT.get(descriptor.full_name)
    if known is not None:
        return known
    seen = set() if _seen is None else _seen
    if descriptor.full_name in seen:
        return False  # a type inside its own fields: the outer call looks at the rest
    seen.add(descriptor.full_name)
    holds = any(
        field.type == FieldDescriptor.TYPE_STRING
        or (field.message_type is not None and _holds_text(field.message_type, seen))
        for field in descriptor.fields
    )
    if _seen is None:  # a nested answer may be partial while a cycle is open
        _HOLDS_TEXT[descriptor.full_name] = holds
    return holds


def check_request(message: Message) -> None:
    """InvalidArgument if a text field anywhere in ``message`` holds a NUL character.

    No id or text of the API contains one, and PostgreSQL refuses to compare with one.
    A message whose type holds no text at any depth (a send: bytes only) is not walked.
    """
    if not _holds_text(message.DESCRIPTOR):
        return
    for field_, value in message.ListFields():
        if field_.message_type is not None and field_.message_type.GetOptions().map_entry:
            items: Any = [*value.keys(), *value.values()]
        else:
            items = value if field_.is_repeated else (value,)
        for item in items:
            if isinstance(item, Message):
                check_request(item)
            elif isinstance(item, str) and "\0" in item:
                raise InvalidArgument(f"{field_.name} contains a NUL character")


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
