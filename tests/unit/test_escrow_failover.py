"""A key server of several nodes: the client moves to the next address when a node fails.

The nodes are a fake transport mounted on the client's HTTP session: each address
answers as a node would (active, standby redirecting, sealed, refusing connections),
and every request is recorded, so the tests see which node each attempt reached.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import requests.adapters
import requests.exceptions
from requests.structures import CaseInsensitiveDict

from sealpost.escrow import client as escrow_client
from sealpost.escrow._transport import Connection, KeyServerConfig, RetryPolicy
from sealpost.escrow.errors import (
    KeyServerUnavailableError,
    PermissionDeniedError,
    TransportSecurityError,
)
from sealpost.gateway.auth import JwksCache
from sealpost.gateway.config import GatewayConfig
from sealpost.gateway.errors import ConfigError, Unavailable

A, B, C = "https://bao-1:8200", "https://bao-2:8200", "https://bao-3:8200"
CLUSTER = KeyServerConfig(f"{A}, {B},{C}/")
FAST = RetryPolicy(max_attempts=5, initial_delay=0.1, max_delay=1.0, max_elapsed=30)

Node = Callable[[requests.PreparedRequest], requests.Response]


def answer(status: int, body: object = None, headers: Mapping[str, str] | None = None) -> Node:
    """A node that answers every request with ``status`` and a JSON ``body``."""

    def respond(request: requests.PreparedRequest) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response._content = b"" if body is None else json.dumps(body).encode()
        response.headers = CaseInsensitiveDict(
            {"Content-Type": "application/json", **(headers or {})}
        )
        response.url = request.url or ""
        response.request = request
        return response

    return respond


def refuses(error: Exception) -> Node:
    """A node that cannot be reached: the connection fails with ``error``."""

    def respond(_request: requests.PreparedRequest) -> requests.Response:
        raise error

    return respond


ACTIVE = answer(200, {"data": {"ok": True}})
DOWN = refuses(requests.exceptions.ConnectionError("connection refused"))
SEALED = answer(503, {"errors": ["Vault is sealed"]})
#: A standby that cannot reach the active node points at it (forwarding failed).
REDIRECTS = answer(307, None, {"Location": "https://elsewhere.example:8200/v1/x"})


class FakeNodes(requests.adapters.BaseAdapter):
    """Answers each request as the node at its address does; records the addresses."""

    def __init__(self, nodes: dict[str, Node]) -> None:
        super().__init__()
        self.nodes = nodes
        self.asked: list[str] = []

    def send(self, request: requests.PreparedRequest, *_args: Any, **_kwargs: Any) -> Any:
        parts = urlsplit(request.url or "")
        address = f"{parts.scheme}://{parts.netloc}"
        self.asked.append(address)
        return self.nodes[address](request)

    def close(self) -> None:
        """Nothing to close."""


class FakeTime:
    """A clock that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def connect(
    nodes: FakeNodes, fake: FakeTime, policy: RetryPolicy = FAST, config: KeyServerConfig = CLUSTER
) -> Connection:
    return Connection(
        config,
        "t",
        retry=policy,
        sleep=fake.sleep,
        clock=fake.clock,
        rand=lambda: 1.0,
        transport=nodes,
    )


def read(conn: Connection, *, retry: bool = True) -> Any:
    return conn.call("read", lambda c: c.adapter.get("/v1/sys/x"), retry=retry)


# --------------------------------------------------------------------------- configuration


def test_a_comma_separated_address_names_every_node_in_order() -> None:
    assert CLUSTER.addresses == (A, B, C)
    assert CLUSTER.address == A
    assert KeyServerConfig(addresses=(A, B)).address == A
    assert KeyServerConfig(A).addresses == (A,)
    # A copy with other settings keeps every address.
    copy = dataclasses.replace(CLUSTER, timeout=2.0)
    assert copy.addresses == (A, B, C)
    assert copy.address == A


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"address": f"{A},{A}"}, "twice"),
        ({"address": f"{A},bao-2:8200"}, "http"),
        ({"address": " , "}, "missing"),
        ({}, "missing"),
        ({"address": C, "addresses": (A, B)}, "once"),
    ],
)
def test_addresses_are_checked(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        KeyServerConfig(**kwargs)


# --------------------------------------------------------------------------- failover


def test_a_refused_connection_moves_to_the_next_node_and_stays_there() -> None:
    nodes, fake = FakeNodes({A: DOWN, B: ACTIVE, C: ACTIVE}), FakeTime()
    conn = connect(nodes, fake)
    assert read(conn) == {"data": {"ok": True}}
    assert nodes.asked == [A, B]
    assert fake.sleeps == pytest.approx([0.1])  # the usual backoff between the attempts
    assert conn.address == B
    read(conn)
    assert nodes.asked == [A, B, B]


@pytest.mark.parametrize("node", [SEALED, REDIRECTS], ids=["sealed", "redirecting"])
def test_a_sealed_or_redirecting_node_is_passed_over(node: Node) -> None:
    nodes, fake = FakeNodes({A: node, B: DOWN, C: ACTIVE}), FakeTime()
    assert read(connect(nodes, fake)) == {"data": {"ok": True}}
    assert nodes.asked == [A, B, C]
    assert len(fake.sleeps) == 2


def test_a_redirect_is_never_followed() -> None:
    """The token would travel to wherever Location points; the client asks its own list."""
    nodes, fake = FakeNodes({A: REDIRECTS, B: REDIRECTS, C: REDIRECTS}), FakeTime()
    policy = RetryPolicy(max_attempts=4, initial_delay=0.0, max_delay=0.0)
    with pytest.raises(KeyServerUnavailableError, match="redirected") as info:
        read(connect(nodes, fake, policy))
    assert info.value.status == 307
    assert nodes.asked == [A, B, C, A]
    assert "https://elsewhere.example:8200" not in nodes.asked


def test_every_node_down_gives_up_after_the_attempts_going_round() -> None:
    nodes, fake = FakeNodes({A: DOWN, B: DOWN, C: DOWN}), FakeTime()
    with pytest.raises(KeyServerUnavailableError, match="cannot connect"):
        read(connect(nodes, fake))
    assert nodes.asked == [A, B, C, A, B]
    assert fake.sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8])


def test_a_failed_call_without_retries_sends_the_next_call_to_the_next_node() -> None:
    nodes, fake = FakeNodes({A: DOWN, B: ACTIVE, C: ACTIVE}), FakeTime()
    conn = connect(nodes, fake)
    with pytest.raises(KeyServerUnavailableError):
        read(conn, retry=False)
    assert read(conn, retry=False) == {"data": {"ok": True}}
    assert nodes.asked == [A, B]
    assert fake.sleeps == []


def test_a_refusal_is_the_cluster_s_answer_not_a_node_failure() -> None:
    nodes, fake = (
        FakeNodes({A: answer(403, {"errors": ["permission denied"]}), B: ACTIVE, C: ACTIVE}),
        FakeTime(),
    )
    conn = connect(nodes, fake)
    with pytest.raises(PermissionDeniedError):
        read(conn)
    assert nodes.asked == [A]
    assert conn.address == A


def test_a_tls_failure_is_not_passed_over() -> None:
    """A certificate that does not verify may be an attack: stop, never try elsewhere."""
    failing = refuses(requests.exceptions.SSLError("certificate verify failed"))
    nodes, fake = FakeNodes({A: failing, B: ACTIVE, C: ACTIVE}), FakeTime()
    with pytest.raises(TransportSecurityError):
        read(connect(nodes, fake))
    assert nodes.asked == [A]


def test_one_address_keeps_the_old_behaviour() -> None:
    nodes, fake = FakeNodes({A: SEALED}), FakeTime()
    conn = connect(nodes, fake, RetryPolicy(max_attempts=3, initial_delay=0.1), KeyServerConfig(A))
    with pytest.raises(KeyServerUnavailableError, match="sealed"):
        read(conn)
    assert nodes.asked == [A, A, A]


# --------------------------------------------------------------------------- health


def health_of(monkeypatch: pytest.MonkeyPatch, nodes: FakeNodes) -> escrow_client.KeyServerHealth:
    monkeypatch.setattr(escrow_client, "Connection", functools.partial(Connection, transport=nodes))
    return escrow_client.health(CLUSTER)


def status(*, sealed: bool = False, standby: bool = False) -> Node:
    return answer(
        200, {"initialized": True, "sealed": sealed, "standby": standby, "version": "2.7.2"}
    )


def test_health_of_a_cluster_is_the_first_ready_node(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = FakeNodes({A: DOWN, B: status(sealed=True), C: status(standby=True)})
    state = health_of(monkeypatch, nodes)
    assert state.ready
    assert state.standby
    assert nodes.asked == [A, B, C]


def test_health_says_sealed_when_no_node_is_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = FakeNodes({A: status(sealed=True), B: DOWN, C: status(sealed=True)})
    state = health_of(monkeypatch, nodes)
    assert state.sealed
    assert not state.ready


def test_health_raises_when_no_node_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KeyServerUnavailableError):
        health_of(monkeypatch, FakeNodes({A: DOWN, B: DOWN, C: DOWN}))


# --------------------------------------------------------------------------- the gateway


STAFF = {"SEALPOST_OIDC_ISSUER": f"{A}/v1/identity/oidc", "SEALPOST_OIDC_AUDIENCE": "sealpost"}


def test_the_gateway_takes_a_list_of_key_server_addresses() -> None:
    env = {**STAFF, "SEALPOST_KEY_SERVER_ADDRESS": f"{A}/, {B},{C}"}
    assert GatewayConfig.load({}, environ=env).key_server_address == f"{A},{B},{C}"
    for bad in (f"{A},{A}", f"{A},bao-2:8200", f"{A},"):
        with pytest.raises(ConfigError) as info:
            GatewayConfig.load({}, environ={**STAFF, "SEALPOST_KEY_SERVER_ADDRESS": bad})
        assert "SEALPOST_KEY_SERVER_ADDRESS: expected an http(s) URL, or several" in str(
            info.value.explain()
        )


def test_the_gateway_fetches_identity_keys_from_the_next_node() -> None:
    asked: list[str] = []
    down = {A}

    def fetch(url: str) -> Mapping[str, object]:
        asked.append(url.split("/v1/", maxsplit=1)[0])
        if url.startswith(tuple(down)):
            raise Unavailable("down")
        return {"keys": [url.split("/v1/", maxsplit=1)[0]]}

    cache = JwksCache(f"{A},{B},{C}", max_age_seconds=0.0, fetch=fetch)
    assert cache.keys() == {"keys": [B]}
    assert asked == [A, B]
    # The node that answered is asked first next time.
    down.add(B)
    assert cache.keys() == {"keys": [C]}
    assert asked == [A, B, B, C]
    down.update({C})
    with pytest.raises(Unavailable):
        cache.keys()
    assert asked[-3:] == [C, A, B]
