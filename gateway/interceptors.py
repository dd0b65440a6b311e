"""The gRPC ports' one place every call passes: request id, authentication, errors, logs.

The pieces every transport shares (request id, request checks, answers, the call's log
record) are in gateway/calls.py; this module applies them to grpcio's calls.

Each call gets a request id (the caller's ``x-request-id`` if well formed,
else a fresh one), bound into the log context and returned in the trailing
metadata. For API methods the caller is authenticated (gateway/auth.py) and
authorised against the table in gateway/authz.py before the handler runs.
Requests are parsed here too, so that bytes which are not a message of the
method, or text fields holding a NUL character, answer INVALID_ARGUMENT rather
than grpc's UNKNOWN or a database error. Errors are mapped
to gRPC status codes by the table in gateway/errors.py; an unexpected
exception is a bug and answers INTERNAL without detail.

``ObservingInterceptor`` sits outside that one: it tells the call observers (metrics,
gateway/metrics.py; traces, gateway/tracing.py) each call's method and final status
code, and nothing else of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

import grpc
from google.protobuf.message import DecodeError, Message
from grpc import aio

from sealpost.gateway.authz import RULES
from sealpost.gateway.calls import (
    NOT_A_REQUEST,
    REQUEST_ID_KEY,
    RETRY_AFTER_KEY,
    CallEnd,
    CallLog,
    CallObserver,
    Credentials,
    check_request,
    method_name,
)
from sealpost.gateway.errors import InvalidArgument
from sealpost.gateway.principals import Principal
from sealpost.gateway.ratelimit import client_address


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


def _offered_request_id(context: aio.ServicerContext[Any, Any]) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_KEY and isinstance(value, str):
            return value
    return None


class _Call:
    """One gRPC call: its log (gateway/calls.py) and its trailing metadata."""

    def __init__(self, method: str, context: aio.ServicerContext[Any, Any]) -> None:
        self.context = context
        self.log = CallLog(method, _offered_request_id(context))
        self.trailing: list[tuple[str, str]] = [(REQUEST_ID_KEY, self.log.request_id)]
        context.set_trailing_metadata(tuple(self.trailing))

    async def fail(self, error: BaseException) -> None:
        """Answer with the status the error maps to (bugs become INTERNAL)."""
        result = self.log.failed(error)
        if result.retry_after is not None:
            self.trailing.append((RETRY_AFTER_KEY, result.retry_after))
            self.context.set_trailing_metadata(tuple(self.trailing))
        await self.context.abort(result.code, result.message)

    def finish(self, error: BaseException | None) -> None:
        """Log the outcome of the call, with the code grpc is about to send."""
        code: grpc.StatusCode | None = self.context.code()  # None until a handler sets one
        if code is None:
            code = grpc.StatusCode.UNKNOWN if error is not None else grpc.StatusCode.OK
        self.log.finish(code)


Parser = Callable[[bytes], Any]


def _parser(deserializer: Parser | None) -> Parser:
    """The method's request parser, with a parse failure or a NUL in text as InvalidArgument."""
    if deserializer is None:
        return lambda raw: raw

    def parse(raw: bytes) -> Any:
        try:
            request = deserializer(raw)
        except DecodeError as exc:
            raise InvalidArgument(NOT_A_REQUEST) from exc
        if isinstance(request, Message):
            check_request(request)
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
        call.log.admitted(principal)

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


def _final_code(
    context: aio.ServicerContext[Any, Any], error: BaseException | None
) -> grpc.StatusCode:
    """The status code the caller gets, once the handler has returned or raised."""
    code: grpc.StatusCode | None = context.code()  # set by an abort; None on success
    if code is not None:
        return code
    if error is None:
        return grpc.StatusCode.OK
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


class ObservingInterceptor(aio.ServerInterceptor):
    """Tells the call observers of every call: its method's full name and its status code.

    Put first, so that it wraps the RequestContextInterceptor and sees the status code
    that one answered with. Only methods the server serves reach it (grpc answers any
    other path UNIMPLEMENTED before any interceptor's wrapper runs).
    """

    def __init__(self, observers: Sequence[CallObserver]) -> None:
        """Tell ``observers`` (none: wrap nothing)."""
        self.observers = tuple(observers)
        self._wrapped: dict[str, tuple[Any, grpc.RpcMethodHandler[Any, Any]]] = {}

    def _begin(self, method: str, *, streaming: bool) -> list[CallEnd]:
        return [o.begin("grpc", method, streaming=streaming) for o in self.observers]

    def _unary(self, method: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        async def wrapped(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            ends = self._begin(method, streaming=False)
            error: BaseException | None = None
            try:
                return await _maybe_await(behaviour(request, context))
            except BaseException as exc:
                error = exc
                raise
            finally:
                code = _final_code(context, error)
                for end in ends:
                    end(code)

        return wrapped

    def _stream(self, method: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        async def wrapped(
            request: Any, context: aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            ends = self._begin(method, streaming=True)
            error: BaseException | None = None
            try:
                async for item in behaviour(request, context):
                    yield item
            except BaseException as exc:
                error = exc
                raise
            finally:
                code = _final_code(context, error)
                for end in ends:
                    end(code)

        return wrapped

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """Wrap the handler of every method the server serves (streamed requests: not observed)."""
        handler = await continuation(handler_call_details)
        if handler is None or not self.observers:
            return handler
        path = handler_call_details.method
        cached = self._wrapped.get(path)
        if cached is not None and cached[0] is handler:
            return cached[1]
        method = method_name(path)
        wrapped = handler
        if handler.unary_unary is not None:
            wrapped = grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        elif handler.unary_stream is not None:
            wrapped = grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        self._wrapped[path] = (handler, wrapped)
        return wrapped
