"""The one place every call passes: request id, authentication, authorisation, errors, logging.

Each call gets a request id (the caller's ``x-request-id`` if well formed,
else a fresh one), bound into the log context and returned in the trailing
metadata. For API methods the caller is authenticated (gateway/auth.py) and
authorised against the table in gateway/authz.py before the handler runs.
Requests are parsed here too, so that bytes which are not a message of the
method, or text fields holding a NUL character, answer INVALID_ARGUMENT rather
than grpc's UNKNOWN or a database error. Errors are mapped
to gRPC status codes by the table in gateway/errors.py; an unexpected
exception is a bug and answers INTERNAL without detail. The
finishing log record carries method, status code, role and duration: never
request or response content, never a credential.
"""

from __future__ import annotations

import asyncio
import math
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, Protocol

import grpc
import structlog
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from grpc import aio

from sealpost._internal.logs import get_logger
from sealpost.errors import SealpostError
from sealpost.gateway.authz import RULES
from sealpost.gateway.calls import Credentials
from sealpost.gateway.errors import InvalidArgument, ResourceExhausted, status_for
from sealpost.gateway.principals import Principal
from sealpost.gateway.ratelimit import client_address

REQUEST_ID_KEY: Final = "x-request-id"
RETRY_AFTER_KEY: Final = "retry-after-seconds"
_REQUEST_ID_RE: Final = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

_log = get_logger("sealpost.gateway.rpc")


class Guard(Protocol):
    """Authenticates and authorises API calls (gateway/guard.py)."""

    async def admit(self, method: str, request: Any, credentials: Credentials) -> Principal:
        """The caller, if allowed to make this call; raises otherwise."""
        ...


def credentials_of(context: aio.ServicerContext[Any, Any]) -> Credentials:
    """What a gRPC call carries of its caller: certificate, authorization header, address."""
    certificates = list(context.auth_context().get("x509_pem_cert", ()))
    authorization = None
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            authorization = value
    return Credentials(
        peer=client_address(context.peer() or ""),
        authorization=authorization,
        certificate_pem=certificates[0] if certificates else None,
    )


def request_id_from(metadata: tuple[tuple[str, str | bytes], ...] | None) -> str:
    """The caller's request id if well formed, otherwise a new random one."""
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and _REQUEST_ID_RE.match(value):
            return value
    return secrets.token_hex(8)


class _Call:
    """One call's bookkeeping: start time, request id, outcome."""

    def __init__(self, method: str, context: aio.ServicerContext[Any, Any]) -> None:
        self.method = method
        self.context = context
        self.started = time.perf_counter()
        request_id = request_id_from(context.invocation_metadata())  # type: ignore[arg-type]
        structlog.contextvars.bind_contextvars(request_id=request_id, method=method)
        self.trailing: list[tuple[str, str]] = [(REQUEST_ID_KEY, request_id)]
        context.set_trailing_metadata(tuple(self.trailing))
        self.role = ""

    async def fail(self, error: BaseException) -> None:
        """Answer with the status the error maps to; bugs become INTERNAL."""
        code = status_for(error)
        if isinstance(error, ResourceExhausted):
            # Rounded up to a tenth: a hint of "0.0" would invite an immediate retry.
            wait = math.ceil(error.retry_after_seconds * 10) / 10
            self.trailing.append((RETRY_AFTER_KEY, f"{max(wait, 0.1):.1f}"))
            self.context.set_trailing_metadata(tuple(self.trailing))
        if code is None:
            _log.error("rpc.bug", error_type=type(error).__name__)
            await self.context.abort(grpc.StatusCode.INTERNAL, "internal error")
        message = error.explain() if isinstance(error, SealpostError) else str(error)
        await self.context.abort(code, message)

    def finish(self, error: BaseException | None) -> None:
        """Log the outcome of the call."""
        code: grpc.StatusCode | None = self.context.code()  # None until a handler sets one
        if code is None:
            code = grpc.StatusCode.UNKNOWN if error is not None else grpc.StatusCode.OK
        fields: dict[str, Any] = {
            "duration_ms": round((time.perf_counter() - self.started) * 1000, 3),
            "code": code.name,
        }
        if self.role:
            fields["role"] = self.role
        _log.info("rpc.finished", **fields)
        structlog.contextvars.clear_contextvars()


Parser = Callable[[bytes], Any]


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


def _refuse_nul(message: Message) -> None:
    """InvalidArgument if a text field anywhere in ``message`` holds a NUL character.

    No id or text of the API contains one, and PostgreSQL refuses to compare with one.
    A message whose type holds no text at any depth (a send: bytes only) is not walked.
    """
    if not _holds_text(message.DESCRIPTOR):
        return
    for field, value in message.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            items: Any = [*value.keys(), *value.values()]
        else:
            items = value if field.is_repeated else (value,)
        for item in items:
            if isinstance(item, Message):
                _refuse_nul(item)
            elif isinstance(item, str) and "\0" in item:
                raise InvalidArgument(f"{field.name} contains a NUL character")


def _parser(deserializer: Parser | None) -> Parser:
    """The method's request parser, with a parse failure or a NUL in text as InvalidArgument."""
    if deserializer is None:
        return lambda raw: raw

    def parse(raw: bytes) -> Any:
        try:
            request = deserializer(raw)
        except DecodeError as exc:
            raise InvalidArgument("the request is not a valid message for this method") from exc
        if isinstance(request, Message):
            _refuse_nul(request)
        return request

    return parse


def _parsing_each(behaviour: Callable[..., Any], parse: Parser) -> Callable[..., Any]:
    """A bidirectional-streaming handler whose raw requests are parsed as unary ones are."""

    async def wrapped(
        raw_requests: AsyncIterator[bytes], context: aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        async def requests() -> AsyncIterator[Any]:
            async for raw in raw_requests:
                try:
                    request = parse(raw)
                except InvalidArgument as exc:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.explain())
                yield request

        async for item in behaviour(requests(), context):
            yield item

    return wrapped


async def _maybe_await(value: Any) -> Any:
    if isinstance(value, Awaitable):
        return await value
    return value


class RequestContextInterceptor(aio.ServerInterceptor):
    """Tags, guards, maps errors and logs every call."""

    def __init__(self, guard: Guard | None = None) -> None:
        """``guard`` admits API calls; without one, API calls are refused."""
        self.guard = guard
        #: Wrapped handlers by method, with the handler each wraps: grpc asks for every call.
        self._wrapped: dict[str, tuple[Any, grpc.RpcMethodHandler[Any, Any]]] = {}

    async def _admit(self, method: str, request: Any, call: _Call) -> None:
        if method not in RULES:
            return  # health checking and reflection are not part of the API
        if self.guard is None:
            from sealpost.gateway.errors import Unavailable  # noqa: PLC0415

            raise Unavailable("this gateway is not ready to serve the API")
        principal = await self.guard.admit(method, request, credentials_of(call.context))
        call.role = ",".join(sorted(r.value for r in principal.roles))

    def _unary(
        self, method: str, behaviour: Callable[..., Any], parse: Parser
    ) -> Callable[..., Any]:
        async def wrapped(raw: bytes, context: aio.ServicerContext[Any, Any]) -> Any:
            call = _Call(method, context)
            error: BaseException | None = None
            try:
                request = parse(raw)
                await self._admit(method, request, call)
                return await _maybe_await(behaviour(request, context))
            except NotImplementedError as exc:
                error = exc
                await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not implemented yet")
            except (aio.AbortError, asyncio.CancelledError):
                raise
            except Exception as exc:  # every error is answered; bugs as INTERNAL
                error = exc
                await call.fail(exc)
            finally:
                call.finish(error)

        return wrapped

    def _stream(
        self, method: str, behaviour: Callable[..., Any], parse: Parser
    ) -> Callable[..., Any]:
        async def wrapped(raw: bytes, context: aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            call = _Call(method, context)
            error: BaseException | None = None
            try:
                request = parse(raw)
                await self._admit(method, request, call)
                result = behaviour(request, context)
                if hasattr(result, "__aiter__"):
                    async for item in result:
                        yield item
                else:
                    for item in await _maybe_await(result):
                        yield item
            except NotImplementedError as exc:
                error = exc
                await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not implemented yet")
            except (aio.AbortError, asyncio.CancelledError):
                raise
            except Exception as exc:  # every error is answered; bugs as INTERNAL
                error = exc
                await call.fail(exc)
            finally:
                call.finish(error)

        return wrapped

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """Wrap the handler of every method.

        The wrapper receives the raw request bytes and parses them itself (see the module
        docstring), so grpc is given no request deserializer.
        """
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        parse = _parser(handler.request_deserializer)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary, parse),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream, parse),
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            # Only reflection streams requests; outside the API, so only its parsing is ours.
            return grpc.stream_stream_rpc_method_handler(
                _parsing_each(handler.stream_stream, parse),
                response_serializer=handler.response_serializer,
            )
        return handler
