"""The browser port's gate: what it refuses before a request reaches Connect (gateway/web.py)."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any, Final

import pytest

from sealpost.gateway.authz import RULES, WEB_METHODS
from sealpost.gateway.web import BrowserGate, listening_socket
from sealpost.gateway.webapp import WebApp

ORIGIN: Final = "https://post.example.test"
PATH: Final = "/sealpost.v1.RelativeService/SendMessage"
LIMIT: Final = 1000


class Inner:
    """The Connect application behind the gate: records that a request got through."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok", "more_body": False})


def serve(
    method: str = "POST",
    path: str = PATH,
    headers: dict[str, str] | None = None,
    *,
    serving: bool = True,
    app: WebApp | None = None,
) -> tuple[int, dict[str, str], bytes, int]:
    """Pass one request through a gate; (status, headers, body, calls that got through)."""
    inner = Inner()
    gate = BrowserGate(
        inner,
        origins=[ORIGIN],
        max_body=LIMIT,
        paths=[PATH],
        serving=lambda: serving,
        webapp=app,
    )
    sent: list[dict[str, Any]] = []
    raw = {"content-type": "application/proto", **(headers or {})}
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in raw.items()],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(gate(scope, receive, send))
    start = sent[0]
    answer = {k.decode(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], answer, body, inner.calls


def test_a_request_without_origin_passes_without_cors() -> None:
    status, headers, _, calls = serve()
    assert (status, calls) == (200, 1)
    assert "access-control-allow-origin" not in headers
    assert headers["cache-control"] == "no-store"


def test_the_configured_origin_passes_with_cors_naming_it() -> None:
    status, headers, _, calls = serve(headers={"origin": ORIGIN})
    assert (status, calls) == (200, 1)
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["vary"] == "Origin"


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "null", ORIGIN + ".evil.example", ORIGIN.upper(), ORIGIN + "/"],
)
def test_another_origin_is_refused_before_the_request_is_read(origin: str) -> None:
    status, headers, body, calls = serve(headers={"origin": origin})
    assert (status, calls) == (403, 0)
    assert json.loads(body)["code"] == "permission_denied"
    assert "access-control-allow-origin" not in headers


def test_a_preflight_is_answered_for_the_configured_origin() -> None:
    status, headers, _, calls = serve("OPTIONS", headers={"origin": ORIGIN})
    assert (status, calls) == (204, 0)
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["access-control-allow-methods"] == "POST"
    allowed = headers["access-control-allow-headers"].split(", ")
    assert {"authorization", "content-type", "connect-protocol-version"} <= set(allowed)


def test_a_preflight_from_another_origin_or_for_another_path_is_refused() -> None:
    assert serve("OPTIONS", headers={"origin": "https://evil.example"})[0] == 403
    assert serve("OPTIONS", path="/x/Y", headers={"origin": ORIGIN})[0] == 404


@pytest.mark.parametrize("length", [str(LIMIT + 1), str(10**12)])
def test_a_body_over_the_limit_is_refused_from_its_length(length: str) -> None:
    status, _, body, calls = serve(headers={"content-length": length})
    assert (status, calls) == (413, 0)
    assert json.loads(body)["code"] == "resource_exhausted"


def test_a_body_at_the_limit_passes() -> None:
    assert serve(headers={"content-length": str(LIMIT)})[3] == 1


@pytest.mark.parametrize("length", ["-1", "1e3", " 5", "0x10"])
def test_a_malformed_length_is_refused(length: str) -> None:
    assert serve(headers={"content-length": length})[:1] == (400,)


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/grpc", "application/grpc-web+proto", ""]
)
def test_only_binary_protobuf_is_let_through(content_type: str) -> None:
    status, _, _, calls = serve(headers={"content-type": content_type})
    assert (status, calls) == (415, 0)


@pytest.mark.parametrize("content_type", ["application/proto", "application/connect+proto"])
def test_connect_binary_forms_pass(content_type: str) -> None:
    assert serve(headers={"content-type": content_type})[3] == 1


def test_unknown_paths_and_other_methods_are_refused() -> None:
    assert serve(path="/sealpost.v1.AdminService/RevokeKey")[0] == 404
    assert serve("GET")[0] == 405
    assert serve("PUT")[0] == 405


def test_health_follows_the_gateway() -> None:
    assert serve("GET", "/healthz")[:3:2] == (200, b"SERVING\n")
    assert serve("GET", "/healthz", serving=False)[:3:2] == (503, b"NOT_SERVING\n")


def test_browsers_reach_only_the_relatives_calls_and_the_logs_read_only_ones() -> None:
    assert set(RULES) >= WEB_METHODS
    services = {path.split("/")[1] for path in WEB_METHODS}
    assert services == {"sealpost.v1.RelativeService", "sealpost.v1.AuditService"}
    relative = {path for path in RULES if path.startswith("/sealpost.v1.RelativeService/")}
    assert relative <= WEB_METHODS
    audit = {path.rsplit("/", 1)[1] for path in WEB_METHODS if "AuditService" in path}
    assert audit == {
        "GetTreeHead",
        "ListTreeHeads",
        "GetInclusionProof",
        "GetConsistencyProof",
        "GetCosignatures",
    }


def test_connections_to_the_port_send_without_waiting_for_acknowledgements() -> None:
    """An answer's head and body leave at once (TCP_NODELAY), not 40 ms apart."""

    async def accept_one() -> int:
        sock = listening_socket("127.0.0.1", 0, reuse_port=False)
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            raw = writer.get_extra_info("socket")
            accepted.set_result(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(connected, sock=sock)
        async with server:
            _reader, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
            nodelay = await asyncio.wait_for(accepted, 10)
            writer.close()
        return nodelay

    assert asyncio.run(accept_one()) != 0
