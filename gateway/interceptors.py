"""The one place where every call is tagged, timed and logged.

Each call gets a request id (the caller's ``x-request-id`` if it is a
well-formed one, else a fresh random one), bound into the log context for the
duration of the call and returned in the trailing metadata. The finishing
record carries method, status code and duration: never request or response
content, never metadata values other than the request id.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import grpc
import structlog
from grpc import aio

from sealpost._internal.logs import get_logger

REQUEST_ID_KEY: Final = "x-request-id"
_REQUEST_ID_RE: Final = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

_log = get_logger("sealpost.gateway.rpc")


def request_id_from(metadata: tuple[tuple[str, str | bytes], ...] | None) -> str:
    """The caller's request id if well formed, otherwise a new random one."""
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and _REQUEST_ID_RE.match(value):
            return value
    return secrets.token_hex(8)


class _CallRecord:
    """Start time and identity of one call, for its finishing log record."""

    def __init__(self, method: str, request_id: str) -> None:
        self.method = method
        self.request_id = request_id
        self.started = time.perf_counter()

    def finish(self, context: aio.ServicerContext[Any, Any], error: BaseException | None) -> None:
        code: grpc.StatusCode | None = context.code()  # None until a handler sets one
        if code is None:
            code = grpc.StatusCode.UNKNOWN if error is not None else grpc.StatusCode.OK
        fields: dict[str, Any] = {
            "duration_ms": round((time.perf_counter() - self.started) * 1000, 3),
            "code": code.name,
        }
        if error is not None and not isinstance(error, aio.AbortError):
            fields["error_type"] = type(error).__name__
            _log.error("rpc.failed", **fields)
        else:
            _log.info("rpc.finished", **fields)


def _begin(method: str, context: aio.ServicerContext[Any, Any]) -> _CallRecord:
    request_id = request_id_from(context.invocation_metadata())  # type: ignore[arg-type]
    structlog.contextvars.bind_contextvars(request_id=request_id, method=method)
    context.set_trailing_metadata(((REQUEST_ID_KEY, request_id),))
    return _CallRecord(method, request_id)


async def _maybe_await(value: Any) -> Any:
    if isinstance(value, Awaitable):
        return await value
    return value


async def _unimplemented(context: aio.ServicerContext[Any, Any]) -> None:
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, "method not implemented in this gateway")


def _wrap_unary(
    method: str, behaviour: Callable[..., Any]
) -> Callable[[Any, aio.ServicerContext[Any, Any]], Awaitable[Any]]:
    async def wrapped(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
        record = _begin(method, context)
        error: BaseException | None = None
        try:
            return await _maybe_await(behaviour(request, context))
        except NotImplementedError:
            await _unimplemented(context)
        except BaseException as exc:
            error = exc
            raise
        finally:
            record.finish(context, error)
            structlog.contextvars.clear_contextvars()

    return wrapped


def _wrap_stream(
    method: str, behaviour: Callable[..., Any]
) -> Callable[[Any, aio.ServicerContext[Any, Any]], AsyncIterator[Any]]:
    async def wrapped(request: Any, context: aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        record = _begin(method, context)
        error: BaseException | None = None
        try:
            result = behaviour(request, context)
            if hasattr(result, "__aiter__"):
                async for item in result:
                    yield item
            else:
                for item in await _maybe_await(result):
                    yield item
        except NotImplementedError:
            await _unimplemented(context)
        except BaseException as exc:
            error = exc
            raise
        finally:
            record.finish(context, error)
            structlog.contextvars.clear_contextvars()

    return wrapped


class RequestContextInterceptor(aio.ServerInterceptor):
    """Binds a request id to each call and logs its outcome."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        # Client-streaming methods: the API v1 has none; pass through untouched.
        return handler
