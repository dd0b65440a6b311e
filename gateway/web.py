"""The API for browsers: the Connect protocol over HTTPS, on a third port (docs/gateway.md).

Browsers cannot read HTTP/2 trailers, so gRPC does not reach them. This port serves the
methods in ``authz.WEB_METHODS`` (the relatives' service and the log's read-only calls)
with connect-python's ASGI application under uvicorn, in the gateway's own event loop. It
calls the very service objects the gRPC servicers call, through the same Guard, public
limits, request checks, error table and call log (gateway/calls.py): what is added here
is only what a browser needs and an open port must refuse.

- **Origins.** A request from a web page carries ``Origin``. Only the configured origins
  are answered, with CORS headers naming exactly that origin; any other page is refused
  with 403 before its body is read. A request without ``Origin`` is not from a page (the
  Node.js client, curl) and is served as on the gRPC port.
- **Size.** A body larger than the largest request is refused from its Content-Length
  before it is read; a chunked one is cut off where it passes that size
  (``read_max_bytes``), before anything is parsed.
- **Form.** Binary Protobuf over the Connect protocol only (``application/proto`` and
  ``application/connect+proto``): no JSON parser and no decompression on the public port.
- **TLS** with the gateway's certificate, 1.3 only unless TLS 1.2 is allowed, as on the
  gRPC ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Collection, Generator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import grpc
import uvicorn
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.request import RequestContext
from connectrpc.server import ConnectASGIApplication, Endpoint
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from sealpost._internal.logs import get_logger
from sealpost.gateway.authz import WEB_METHODS
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
from sealpost.gateway.webapp import CONTENT_SECURITY_POLICY, WebApp, content_type, served_path

if TYPE_CHECKING:
    from sealpost.gateway.interceptors import Guard
    from sealpost.gateway.server import ServiceBinding

_log = get_logger("sealpost.gateway.web")

#: The path of the plain health answer (200 SERVING, 503 NOT_SERVING), for load balancers.
HEALTH_PATH: Final = "/healthz"
#: Request content types served: Connect's unary and streaming forms of binary Protobuf.
CONTENT_TYPES: Final = ("application/proto", "application/connect+proto")
#: Request headers a page may send (preflight's Access-Control-Allow-Headers).
ALLOWED_HEADERS: Final = (
    "authorization",
    "content-type",
    "connect-protocol-version",
    "connect-timeout-ms",
    REQUEST_ID_KEY,
)
#: Response headers a page may read (Access-Control-Expose-Headers).
EXPOSED_HEADERS: Final = (REQUEST_ID_KEY, RETRY_AFTER_KEY)
#: How long a browser may cache a preflight answer, in seconds.
PREFLIGHT_MAX_AGE: Final = 600


def _connect_code(code: grpc.StatusCode) -> Code:
    """Connect's name for a gRPC status code: the same codes (one spelt differently)."""
    if code == grpc.StatusCode.CANCELLED:
        return Code.CANCELED
    return Code[code.name]


def _credentials(ctx: RequestContext[Any, Any]) -> Credentials:
    """What a browser call carries of its caller: its address and an authorization header."""
    peer = ctx.client_address or ""
    host = peer.rpartition(":")[0] if ":" in peer else peer
    return Credentials(
        peer=host.strip("[]"),
        authorization=ctx.request_headers.get("authorization"),
    )


def _start(method: str, ctx: RequestContext[Any, Any]) -> CallLog:
    log = CallLog(method, ctx.request_headers.get(REQUEST_ID_KEY))
    ctx.response_headers[REQUEST_ID_KEY] = log.request_id
    return log


async def _admit(log: CallLog, guard: Guard, request: Any, ctx: RequestContext[Any, Any]) -> None:
    """The request checks and the Guard, as on the gRPC ports; raises if the call is refused."""
    check_request(request)
    log.admitted(await guard.admit(log.method, request, _credentials(ctx)))


def _failure(log: CallLog, error: Exception, ctx: RequestContext[Any, Any]) -> ConnectError:
    result = log.failed(error)
    if result.retry_after is not None:
        ctx.response_headers[RETRY_AFTER_KEY] = result.retry_after
    return ConnectError(_connect_code(result.code), result.message)


def _observe(observers: Sequence[CallObserver], method: str, *, streaming: bool) -> list[CallEnd]:
    return [o.begin("connect", method_name(method), streaming=streaming) for o in observers]


def _unary(
    method: str, handler: Callable[[Any], Any], guard: Guard, observers: Sequence[CallObserver]
) -> Any:
    async def call(request: Any, ctx: RequestContext[Any, Any]) -> Any:
        log = _start(method, ctx)
        ends = _observe(observers, method, streaming=False)
        try:
            await _admit(log, guard, request, ctx)
            return await handler(request)
        except asyncio.CancelledError:
            log.code = grpc.StatusCode.CANCELLED
            raise
        except Exception as exc:  # every error is answered; bugs as INTERNAL
            raise _failure(log, exc, ctx) from None
        finally:
            log.finish()
            for end in ends:
                end(log.code)

    return call


def _streaming(
    method: str,
    handler: Callable[[Any], AsyncIterator[Any]],
    guard: Guard,
    observers: Sequence[CallObserver],
) -> Any:
    async def call(request: Any, ctx: RequestContext[Any, Any]) -> AsyncIterator[Any]:
        log = _start(method, ctx)
        ends = _observe(observers, method, streaming=True)
        try:
            await _admit(log, guard, request, ctx)
            async for item in handler(request):
                yield item
        except (asyncio.CancelledError, GeneratorExit):
            log.code = grpc.StatusCode.CANCELLED
            raise
        except Exception as exc:  # every error is answered; bugs as INTERNAL
            raise _failure(log, exc, ctx) from None
        finally:
            log.finish()
            for end in ends:
                end(log.code)

    return call


def endpoints(
    services: Sequence[ServiceBinding], guard: Guard, observers: Sequence[CallObserver] = ()
) -> dict[str, Any]:
    """The Connect endpoints of ``WEB_METHODS``, by path, over the services' one implementation.

    ``observers`` (metrics, traces) are told each call's method and status code.
    """
    found: dict[str, Any] = {}
    for binding in services:
        for method in binding.descriptor.methods:
            path = f"/{binding.name}/{method.name}"
            if path not in WEB_METHODS:
                continue
            info: MethodInfo[Any, Any] = MethodInfo(
                name=method.name,
                service_name=binding.name,
                input=GetMessageClass(method.input_type),
                output=GetMessageClass(method.output_type),
                idempotency_level=IdempotencyLevel.UNKNOWN,
                stream_type=StreamType.SERVER_STREAM
                if method.server_streaming
                else StreamType.UNARY,
            )
            handler = getattr(binding.service, method.name)
            if method.server_streaming:
                found[path] = Endpoint.server_stream(
                    info, _streaming(path, handler, guard, observers)
                )
            else:
                found[path] = Endpoint.unary(info, _unary(path, handler, guard, observers))
    missing = WEB_METHODS - found.keys()
    if missing:
        raise ValueError(f"no service implements {sorted(missing)}")
    return found


class _BinaryProtobuf:
    """Binary Protobuf; bytes that are not a request of the method answer as on the gRPC port."""

    def name(self) -> str:
        return "proto"

    def encode(self, message: Message) -> bytes:
        return message.SerializeToString()

    def decode(self, data: bytes | bytearray, message_class: type[Message]) -> Message:
        try:
            return message_class.FromString(bytes(data))
        except DecodeError:
            raise ConnectError(Code.INVALID_ARGUMENT, NOT_A_REQUEST) from None


class _Connect(ConnectASGIApplication[Mapping[str, Any]]):
    """connect-python's application over a fixed table of endpoints."""

    @property
    def path(self) -> str:
        return "/"


async def _respond(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _same_origin(origin: str, headers: Mapping[str, str]) -> bool:
    """Whether a page of this port itself sent the request (the web app, served here).

    A page elsewhere cannot pass: the browser sets both headers. DNS rebinding (another
    site's name pointed at this address) fails at TLS, as this port holds no certificate
    for that name.
    """
    host = headers.get("host")
    return host is not None and origin == f"https://{host}"


def _static_headers(path: str, length: int) -> list[tuple[bytes, bytes]]:
    """The headers of a file of the web app: its type, length and the pages' policy."""
    kind = content_type(path)
    assert kind is not None  # WebApp.body serves only files of known kinds
    return [
        (b"content-type", kind.encode()),
        (b"content-length", str(length).encode()),
        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"cross-origin-resource-policy", b"same-origin"),
        (b"strict-transport-security", b"max-age=31536000"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        # Revalidated on every load, so a new release is seen at once (no stale code).
        (b"cache-control", b"no-cache"),
    ]


def _connect_error_body(code: Code, message: str) -> bytes:
    """A Connect error as its JSON body, as Connect clients read it from any non-200 answer."""
    return json.dumps({"code": code.value, "message": message}).encode()


class BrowserGate:
    """The ASGI application of the browser port: origin, size and form checks, then Connect."""

    def __init__(
        self,
        app: Any,
        *,
        origins: Collection[str],
        max_body: int,
        paths: Collection[str],
        serving: Callable[[], bool],
        webapp: WebApp | None = None,
    ) -> None:
        self.app = app
        self.webapp = webapp
        self.origins = frozenset(origins)
        self.max_body = max_body
        self.paths = frozenset(paths)
        self.serving = serving

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", ()):
            name = raw_name.decode("latin-1").lower()
            headers.setdefault(name, raw_value.decode("latin-1"))
        if self.webapp is not None and scope["method"] in ("GET", "HEAD"):
            path = served_path(scope["path"])
            body = self.webapp.body(path)
            if body is not None:
                await _respond(
                    send,
                    200,
                    b"" if scope["method"] == "HEAD" else body,
                    _static_headers(path, len(body)),
                )
                return
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, code, message = refusal
            await _respond(
                send,
                status,
                _connect_error_body(code, message),
                [(b"content-type", b"application/json"), *self._cors(headers)],
            )
            return
        if scope["method"] == "OPTIONS":
            await _respond(send, 204, b"", self._preflight(headers))
            return
        if scope["path"] == HEALTH_PATH:
            serving = self.serving()
            body = b"SERVING\n" if serving else b"NOT_SERVING\n"
            await _respond(send, 200 if serving else 503, body, [(b"content-type", b"text/plain")])
            return
        extra = [*self._cors(headers), (b"cache-control", b"no-store")]

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            _log.error("web.bug", error_type=type(exc).__name__)
            raise

    def _refusal(self, scope: Any, headers: Mapping[str, str]) -> tuple[int, Code, str] | None:
        """Why this request is refused before it is read, or None."""
        origin = headers.get("origin")
        if origin is not None and origin not in self.origins and not _same_origin(origin, headers):
            return 403, Code.PERMISSION_DENIED, "requests from this web origin are not accepted"
        method, path = scope["method"], scope["path"]
        if path == HEALTH_PATH:
            return None if method == "GET" else (405, Code.UNIMPLEMENTED, "use GET")
        if path not in self.paths:
            return 404, Code.UNIMPLEMENTED, "no such method on this port"
        if method == "OPTIONS":
            return None if origin is not None else (400, Code.INVALID_ARGUMENT, "no origin")
        if method != "POST":
            return 405, Code.UNIMPLEMENTED, "use POST"
        return self._body_refusal(headers)

    def _body_refusal(self, headers: Mapping[str, str]) -> tuple[int, Code, str] | None:
        """Why this request's body is refused before it is read, or None."""
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in CONTENT_TYPES:
            return 415, Code.INVALID_ARGUMENT, "send binary Protobuf (application/proto)"
        length = headers.get("content-length")
        if length is None:
            return None  # chunked: cut off at the limit while it is read
        if not length.isdigit():
            return 400, Code.INVALID_ARGUMENT, "a malformed Content-Length"
        if int(length) > self.max_body:
            return 413, Code.RESOURCE_EXHAUSTED, f"the request is larger than {self.max_body} bytes"
        return None

    def _cors(self, headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
        origin = headers.get("origin")
        if origin is None or origin not in self.origins:
            return [(b"vary", b"Origin")]
        return [
            (b"access-control-allow-origin", origin.encode()),
            (b"access-control-expose-headers", ", ".join(EXPOSED_HEADERS).encode()),
            (b"vary", b"Origin"),
        ]

    def _preflight(self, headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
        return [
            *self._cors(headers),
            (b"access-control-allow-methods", b"POST"),
            (b"access-control-allow-headers", ", ".join(ALLOWED_HEADERS).encode()),
            (b"access-control-max-age", str(PREFLIGHT_MAX_AGE).encode()),
        ]


def application(
    services: Sequence[ServiceBinding],
    guard: Guard,
    *,
    origins: Collection[str],
    max_body: int,
    serving: Callable[[], bool],
    webapp: WebApp | None = None,
    observers: Sequence[CallObserver] = (),
) -> BrowserGate:
    """The browser port's ASGI application over the gateway's services (and the web app)."""
    table = endpoints(services, guard, observers)
    connect = _Connect(
        service=table,
        endpoints=lambda service: service,
        read_max_bytes=max_body,
        compressions=[],
        codecs=[_BinaryProtobuf()],
    )
    return BrowserGate(
        connect, origins=origins, max_body=max_body, paths=table, serving=serving, webapp=webapp
    )


#: uvicorn's own loggers: plain-text records outside the allow-list of _internal/logs.py.
_UVICORN_LOGGERS: Final = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


class _Server(uvicorn.Server):
    """uvicorn inside the gateway's loop: the gateway, not uvicorn, handles SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None]:
        yield


def tls_context(certificate: Path, key: Path, *, allow_tls12: bool) -> ssl.SSLContext:
    """The browser port's server TLS: the gateway's certificate, TLS 1.3 (or 1.2 if allowed)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2 if allow_tls12 else ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(certificate, key)
    context.set_alpn_protocols(["http/1.1"])
    return context


def listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A bound, listening TCP socket (``reuse_port`` for worker processes sharing the port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not left 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only
    # on sockets that say they are TCP, and the server writes an answer's head and body
    # apart; with Nagle on, the body waits out the client's delayed ACK (40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        sock.listen(512)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class BrowserPort:
    """The browser port, started and stopped with the gateway."""

    def __init__(self, app: BrowserGate, context: ssl.SSLContext, *, grace_seconds: float) -> None:
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            # Behind no proxy by default: a forwarded-for header would let any client pick
            # the address its public limits are counted against.
            proxy_headers=False,
            timeout_graceful_shutdown=max(1, round(grace_seconds)),
        )
        config.load()
        config.ssl = context
        for name in _UVICORN_LOGGERS:
            logging.getLogger(name).disabled = True
        self.server = _Server(config)
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self, sock: socket.socket) -> int:
        """Serve on ``sock``; returns the bound port once accepting."""
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self.server.serve(sockets=[sock]))
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise OSError("the browser port stopped while starting")
            await asyncio.sleep(0.01)
        _log.info("gateway.web_serving", port=self.port)
        return self.port

    async def stop(self) -> None:
        """Stop accepting, let open calls finish within the grace period, then close."""
        if self._task is None:
            return
        self.server.should_exit = True
        await self._task
        self._task = None
