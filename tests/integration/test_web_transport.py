"""The browser port: the same calls, rights, limits and checks as the gRPC port, over Connect.

Against a real gateway process and OpenBao; the Connect client is tests/connect.py,
written from the protocol's specification.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import grpc
import pytest

from sealpost._internal.devservers import (
    GatewayProcess,
    OpenBaoDevServer,
    gateway_channel,
    gateway_health,
)
from sealpost._internal.stack import Stack, approve_all, running_stack, setup_institutions
from sealpost.clients.relative.sdk import RelativeClient
from sealpost.clients.terminal.reply import send_reply
from sealpost.escrow.bootstrap import BootstrapResult
from sealpost.gateway.authz import RULES, WEB_METHODS
from sealpost.gateway.server import MAX_MESSAGE_BYTES, WEB_HEALTH
from sealpost.v1 import audit_pb2, envelope_pb2, relative_pb2
from tests.connect import ConnectClient, Reply, envelope

pytestmark = pytest.mark.integration

ORIGIN: Final = "https://post.example.test"
A: Final = "web-a"
B: Final = "web-b"
REL: Final = "/sealpost.v1.RelativeService/"
AUD: Final = "/sealpost.v1.AuditService/"

# Who may call what over the browser port, written out by hand from SPEC.md section 2
# (not computed from gateway/authz.py, so that a change of rights fails here too).
ANYONE = frozenset({"anonymous", "relative", "officer", "auditor"})
SIGNED_IN = frozenset({"relative", "officer", "auditor"})
RELATIVE = frozenset({"relative"})
EXPECTED: Final[dict[str, frozenset[str]]] = {
    REL + "GetDirectory": ANYONE,
    REL + "CreateChallenge": ANYONE,
    REL + "Login": ANYONE,
    REL + "RegisterDevice": frozenset({"anonymous", "relative"}),
    REL + "RequestContact": RELATIVE,
    REL + "ListContacts": RELATIVE,
    REL + "SendMessage": RELATIVE,
    REL + "StreamInbox": RELATIVE,
    REL + "AcknowledgeMessage": RELATIVE,
    REL + "GetMessageStatus": RELATIVE,
    REL + "GetReceiptProof": RELATIVE,
    REL + "GetKeyRecords": SIGNED_IN,
    REL + "CreateDeviceLink": RELATIVE,
    REL + "ListDevices": RELATIVE,
    REL + "RevokeDevice": RELATIVE,
    REL + "SetNotifications": RELATIVE,
    REL + "GetNotifications": RELATIVE,
    AUD + "GetTreeHead": SIGNED_IN,
    AUD + "ListTreeHeads": SIGNED_IN,
    AUD + "GetInclusionProof": SIGNED_IN,
    AUD + "GetConsistencyProof": SIGNED_IN,
    AUD + "GetCosignatures": SIGNED_IN,
}
STREAMS: Final = frozenset({REL + "StreamInbox"})


@dataclass
class World:
    """A gateway with a browser port for ``ORIGIN``, and a caller of each kind."""

    stack: Stack
    web: ConnectClient
    tokens: dict[str, str | None]
    relative: RelativeClient

    @property
    def gateway(self) -> GatewayProcess:
        return self.stack.gateway


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    openbao: OpenBaoDevServer,
    keyserver: BootstrapResult,
) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("web")
    database = f"sqlite:///{workdir / 'web.db'}"
    env = {"SEALPOST_WEB_ORIGINS": ORIGIN}
    with running_stack(workdir / "gateway", openbao, keyserver, database, env) as stack:
        gateway = stack.gateway
        relative = stack.relative("Web")
        tokens: dict[str, str | None] = {
            "anonymous": None,
            "relative": relative.token,
            "officer": stack.staff_token(["administrator", "screener", "approver"], ["*"])[1],
            "auditor": stack.staff_token(["auditor"], ["*"])[1],
        }
        web = ConnectClient("127.0.0.1", gateway.web_port, gateway.ca_pem)
        yield World(stack, web, tokens, relative)


def message_id(item: relative_pb2.StreamInboxResponse) -> bytes:
    return envelope_pb2.EnvelopeHeader.FromString(item.envelope.header).message_id


def over_web(world: World, path: str, body: bytes, token: str | None) -> Reply:
    if path in STREAMS:
        return world.web.stream(path, body, token=token)
    return world.web.unary(path, body, token=token)


def over_grpc(world: World, path: str, body: bytes, token: str | None) -> str:
    """The gRPC port's status name for the same request bytes and credentials."""
    metadata = () if token is None else (("authorization", f"Bearer {token}"),)
    with world.stack.endpoint.channel() as channel:
        try:
            if path in STREAMS:
                stream: grpc.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(path)
                list(stream(body, metadata=metadata, timeout=30))
            else:
                unary: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(path)
                unary(body, metadata=metadata, timeout=30)
        except grpc.RpcError as error:
            return str(error.code().name)
    return "OK"


def test_the_browser_methods_are_the_relatives_and_the_logs_read_only_calls() -> None:
    assert set(EXPECTED) == WEB_METHODS
    assert set(RULES) >= WEB_METHODS


@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_the_rights_hold_over_both_transports_alike(world: World, path: str) -> None:
    """Every caller gets the same answer over Connect as over gRPC, and only the right ones in."""
    for caller, token in world.tokens.items():
        web = over_web(world, path, b"", token)
        assert web.grpc_name == over_grpc(world, path, b"", token), (path, caller, web.message)
        if caller in EXPECTED[path]:
            assert web.grpc_name not in {"UNAUTHENTICATED", "PERMISSION_DENIED"}, (path, caller)
            assert web.grpc_name not in {"INTERNAL", "UNKNOWN"}, (path, caller, web.message)
        elif caller == "anonymous":
            assert web.code == "unauthenticated", (path, caller)
            # A stream's error comes in its end message, after a 200 (Connect protocol).
            assert web.status == (200 if path in STREAMS else 401)
        else:
            assert web.code == "permission_denied", (path, caller)
            assert web.status == (200 if path in STREAMS else 403)


@pytest.mark.parametrize(
    "path",
    [
        "/sealpost.v1.TerminalService/StreamIntake",
        "/sealpost.v1.AdminService/CreateInstitution",
        "/sealpost.v1.ReviewService/GrantAccess",
        AUD + "GetEntries",
        AUD + "GrantEscrowAudit",
        "/grpc.health.v1.Health/Check",
    ],
)
def test_staff_terminal_and_auditor_calls_are_not_on_the_browser_port(
    world: World, path: str
) -> None:
    for token in world.tokens.values():
        reply = world.web.unary(path, b"", token=token)
        assert (reply.status, reply.code) == (404, "unimplemented")


def test_a_relative_reads_a_reply_through_the_browser_stream(world: World) -> None:
    admin, terminals = setup_institutions(world.stack, [("web-d-1", A, "regular")])
    world.relative.request_contact("web-d-1")
    approve_all(admin, A)
    receipt = send_reply(
        terminals[A], "web-d-1", world.relative.account_id, "مرحبا", world.stack.escrow_for(A)
    )
    request = relative_pb2.StreamInboxRequest().SerializeToString()
    reply = world.web.stream(REL + "StreamInbox", request, token=world.tokens["relative"])
    assert reply.code == "ok", reply.message
    items = [relative_pb2.StreamInboxResponse.FromString(m) for m in reply.messages]
    ids = [message_id(item) for item in items]
    assert receipt.message_id in ids
    # The same items, field for field, as the gRPC stream gives the SDK.
    assert [m.message_id for m in world.relative.inbox()] == ids
    # Resuming after the last cursor gives nothing more.
    after = relative_pb2.StreamInboxRequest(after_cursor=items[-1].cursor).SerializeToString()
    rest = world.web.stream(REL + "StreamInbox", after, token=world.tokens["relative"])
    assert (rest.code, rest.messages) == ("ok", [])


def test_a_following_stream_delivers_what_arrives_while_it_is_open(world: World) -> None:
    admin, terminals = setup_institutions(world.stack, [("web-d-2", B, "regular")])
    world.relative.request_contact("web-d-2")
    approve_all(admin, B)
    start = list(world.relative.inbox())
    cursor = start[-1].cursor if start else ""
    connection = world.web.connection()
    try:
        request = relative_pb2.StreamInboxRequest(after_cursor=cursor, follow=True)

        connection.request(
            "POST",
            REL + "StreamInbox",
            body=envelope(request.SerializeToString()),
            headers={
                "content-type": "application/connect+proto",
                "authorization": f"Bearer {world.tokens['relative']}",
            },
        )
        # The answer's headers come with its first message: send one, then read.
        escrow = world.stack.escrow_for(B)
        first = send_reply(terminals[B], "web-d-2", world.relative.account_id, "een", escrow)
        response = connection.getresponse()
        assert response.status == 200

        def next_item() -> relative_pb2.StreamInboxResponse:
            flags, length = response.read(1)[0], int.from_bytes(response.read(4), "big")
            assert flags == 0  # a message, not the end of the stream
            return relative_pb2.StreamInboxResponse.FromString(response.read(length))

        assert message_id(next_item()) == first.message_id
        # The stream has answered, so it now follows: what arrives next comes by itself.
        second = send_reply(terminals[B], "web-d-2", world.relative.account_id, "twee", escrow)
        assert message_id(next_item()) == second.message_id
    finally:
        connection.close()


def test_answers_carry_the_request_id_and_the_log_read_calls_answer(world: World) -> None:
    token = world.tokens["relative"]
    offered = world.web.unary(
        AUD + "GetTreeHead",
        audit_pb2.GetTreeHeadRequest().SerializeToString(),
        token=token,
        headers={"x-request-id": "web-request-0001"},
    )
    assert offered.code == "ok", offered.message
    assert offered.headers["x-request-id"] == "web-request-0001"
    head = audit_pb2.GetTreeHeadResponse.FromString(offered.messages[0])
    assert head.tree_head.tree_head
    made = world.web.unary(
        AUD + "GetTreeHead", b"", token=token, headers={"x-request-id": "bad id"}
    )
    assert made.headers["x-request-id"] != "bad id"
    assert len(made.headers["x-request-id"]) == 16


# --- Origins -------------------------------------------------------------------------------


def test_only_the_configured_origin_gets_cors_and_others_are_refused(world: World) -> None:
    path = REL + "GetDirectory"
    mine = world.web.unary(path, b"", headers={"origin": ORIGIN})
    assert mine.code == "ok"
    assert mine.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in mine.headers["access-control-expose-headers"]
    assert "Origin" in mine.headers["vary"]

    other = world.web.unary(path, b"", headers={"origin": "https://evil.example"})
    assert (other.status, other.code) == (403, "permission_denied")
    assert "access-control-allow-origin" not in other.headers
    # Look-alikes of the configured origin are other origins.
    for near in (ORIGIN + ":443", ORIGIN.replace("https", "http"), ORIGIN.upper(), "null"):
        assert world.web.unary(path, b"", headers={"origin": near}).status == 403, near

    # Without Origin the caller is not a web page (Node.js, curl): served, without CORS.
    bare = world.web.unary(path, b"")
    assert bare.code == "ok"
    assert "access-control-allow-origin" not in bare.headers


def _preflight(world: World, origin: str, path: str) -> http.client.HTTPResponse:
    connection = world.web.connection()
    connection.request(
        "OPTIONS",
        path,
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_a_preflight_is_answered_for_the_configured_origin_only(world: World) -> None:
    ok = _preflight(world, ORIGIN, REL + "SendMessage")
    assert ok.status == 204
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert ok.headers["access-control-allow-methods"] == "POST"
    assert "authorization" in ok.headers["access-control-allow-headers"]
    assert _preflight(world, "https://evil.example", REL + "SendMessage").status == 403
    assert _preflight(world, ORIGIN, "/sealpost.v1.AdminService/RevokeKey").status == 404


# --- Size and form, before parsing ----------------------------------------------------------


def test_a_body_over_the_limit_is_refused_from_its_length_before_it_is_sent(
    world: World,
) -> None:
    """The answer comes while the client has sent the headers only."""
    with socket.create_connection(("127.0.0.1", world.gateway.web_port), timeout=10) as raw:
        context = ssl.create_default_context(cadata=world.gateway.ca_pem.decode())
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(
                (
                    f"POST {REL}SendMessage HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                    f"content-type: application/proto\r\n"
                    f"content-length: {MAX_MESSAGE_BYTES + 1}\r\n\r\n"
                ).encode()
            )
            answer = b""
            while b'"resource_exhausted"' not in answer and (more := tls.recv(4096)):
                answer += more
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"resource_exhausted"' in answer


def test_a_chunked_body_is_cut_off_at_the_limit(world: World) -> None:
    connection = world.web.connection()
    try:
        chunk = b"\x0a" * (1024 * 1024)
        chunks = [chunk] * (MAX_MESSAGE_BYTES // len(chunk) + 2)
        connection.request(
            "POST",
            REL + "SendMessage",
            body=iter(chunks),
            headers={"content-type": "application/proto", "authorization": "Bearer x"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        body = response.read()
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
        return  # cut off mid-send: refused before the end, as it should be
    finally:
        connection.close()
    assert response.status != 200
    assert b"resource_exhausted" in body


@pytest.mark.parametrize(
    ("content_type", "status"),
    [("application/json", 415), ("text/plain", 415), ("application/grpc-web+proto", 415)],
)
def test_only_binary_protobuf_is_accepted(world: World, content_type: str, status: int) -> None:
    connection = world.web.connection()
    connection.request(
        "POST", REL + "GetDirectory", body=b"{}", headers={"content-type": content_type}
    )
    response = connection.getresponse()
    response.read()
    connection.close()
    assert response.status == status


def test_garbage_and_nul_characters_are_invalid_arguments_as_over_grpc(world: World) -> None:
    token = world.tokens["relative"]
    garbage = world.web.unary(REL + "RequestContact", b"\xff\xff\xff", token=token)
    assert garbage.code == "invalid_argument"
    assert garbage.message == "the request is not a valid message for this method"
    nul = relative_pb2.RequestContactRequest(detainee_id="web\0d").SerializeToString()
    refused = world.web.unary(REL + "RequestContact", nul, token=token)
    assert refused.code == "invalid_argument"
    assert "NUL" in refused.message
    assert over_grpc(world, REL + "RequestContact", nul, token) == "INVALID_ARGUMENT"


def test_compressed_requests_are_refused(world: World) -> None:
    reply = world.web.unary(REL + "GetDirectory", b"", headers={"content-encoding": "gzip"})
    assert reply.code == "unimplemented"


# --- TLS and health ---------------------------------------------------------------------------


def test_tls_12_is_refused_and_13_served(world: World) -> None:
    context = ssl.create_default_context(cadata=world.gateway.ca_pem.decode())
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", world.gateway.web_port), timeout=10) as raw,
        pytest.raises(ssl.SSLError),
    ):
        context.wrap_socket(raw, server_hostname="127.0.0.1")
    context = ssl.create_default_context(cadata=world.gateway.ca_pem.decode())
    with (
        socket.create_connection(("127.0.0.1", world.gateway.web_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() == "TLSv1.3"


def test_health_is_reported_on_both_ports(world: World) -> None:
    connection = world.web.connection()
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    assert (response.status, response.read()) == (200, b"SERVING\n")
    connection.close()
    assert gateway_health(world.gateway.address, world.gateway.ca_pem, service=WEB_HEALTH) == (
        "SERVING"
    )


# --- Limits shared with the gRPC port, and the port switched off ------------------------------


def test_the_public_limits_count_both_transports_together(tmp_path: Path) -> None:
    env = {"SEALPOST_REGISTER_LIMIT": "2/h,100/min"}
    with GatewayProcess(tmp_path / "gw", env=env) as gateway:
        web = ConnectClient("127.0.0.1", gateway.web_port, gateway.ca_pem)
        path = REL + "RegisterDevice"
        body = relative_pb2.RegisterDeviceRequest().SerializeToString()

        with gateway_channel(gateway.address, gateway.ca_pem) as channel:
            unary: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(path)
            with pytest.raises(grpc.RpcError) as first:
                unary(body, timeout=10)
            assert first.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert web.unary(path, body).code == "invalid_argument"
        third = web.unary(path, body)
        assert third.code == "resource_exhausted"
        assert third.status == 429
        assert float(third.headers["retry-after-seconds"]) > 0


def test_the_browser_port_can_be_switched_off(tmp_path: Path) -> None:
    with GatewayProcess(tmp_path / "gw", extra_args=["--web-port", "off"]) as gateway:
        assert gateway.web_port == 0
        assert "web_port" not in gateway.port_file.read_text()
