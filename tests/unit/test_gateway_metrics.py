"""The gateway's metrics: what a call counts, what the database's figures show, the setting."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from sealpost._internal.exposition import samples
from sealpost.gateway import metrics, states
from sealpost.gateway.config import GatewayConfig
from sealpost.gateway.errors import ConfigError
from sealpost.gateway.interceptors import ObservingInterceptor
from sealpost.gateway.storage.database import Database, create_database_engine, migrate

SEND = "/sealpost.v1.RelativeService/SendMessage"
INBOX = "/sealpost.v1.RelativeService/StreamInbox"


class FakeContext:
    """What the observing interceptor asks of a grpc call: its status code once answered."""

    def __init__(self) -> None:
        self.status: grpc.StatusCode | None = None

    def code(self) -> grpc.StatusCode | None:
        return self.status


class Details:
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


def scrape(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (name, frozenset(labels.items())): value
        for name, labels, value in samples(generate_latest(registry).decode())
    }


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return scrape(registry).get((name, frozenset(labels.items())))


async def _wrap(
    interceptor: ObservingInterceptor, method: str, handler: grpc.RpcMethodHandler[Any, Any]
) -> Any:
    """The wrapped handler (Any: it is called with a fake context)."""

    async def continuation(_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any]:
        return handler

    wrapped = await interceptor.intercept_service(continuation, Details(method))  # type: ignore[arg-type]
    assert wrapped is not None
    return wrapped


def _unary(behaviour: Callable[[Any, FakeContext], Awaitable[Any]]) -> Any:
    return grpc.unary_unary_rpc_method_handler(behaviour)


def test_calls_are_counted_by_method_and_the_code_the_caller_got() -> None:
    observed = metrics.GatewayMetrics(process=False)
    interceptor = ObservingInterceptor([observed.requests])

    async def answers(_request: Any, _context: FakeContext) -> bytes:
        return b"ok"

    async def refuses(_request: Any, context: FakeContext) -> bytes:
        context.status = grpc.StatusCode.PERMISSION_DENIED  # what context.abort sets
        raise RuntimeError("aborted")

    async def breaks(_request: Any, _context: FakeContext) -> bytes:
        raise ValueError("a bug")

    async def run() -> None:
        for behaviour, times in ((answers, 2), (refuses, 1), (breaks, 1)):
            handler = await _wrap(interceptor, SEND, _unary(behaviour))
            for _ in range(times):
                with contextlib.suppress(RuntimeError, ValueError):
                    await handler.unary_unary(b"\x01secret bytes", FakeContext())

    asyncio.run(run())
    registry = observed.registry
    method = "sealpost.v1.RelativeService/SendMessage"
    total = "sealpost_gateway_requests_total"
    assert value(registry, total, transport="grpc", method=method, code="OK") == 2
    assert value(registry, total, transport="grpc", method=method, code="PERMISSION_DENIED") == 1
    assert value(registry, total, transport="grpc", method=method, code="UNKNOWN") == 1
    assert (
        value(
            registry,
            "sealpost_gateway_request_duration_seconds_count",
            transport="grpc",
            method=method,
        )
        == 4
    )
    assert b"secret" not in generate_latest(registry)


def test_a_stream_is_open_while_it_runs_and_counted_when_it_ends() -> None:
    observed = metrics.GatewayMetrics(process=False)
    interceptor = ObservingInterceptor([observed.requests])
    method = "sealpost.v1.RelativeService/StreamInbox"
    seen_open: list[float | None] = []

    async def stream(_request: Any, _context: FakeContext) -> AsyncIterator[bytes]:
        seen_open.append(
            value(
                observed.registry, "sealpost_gateway_streams_open", transport="grpc", method=method
            )
        )
        yield b"one"
        raise asyncio.CancelledError  # the caller hung up

    async def run() -> None:
        handler = await _wrap(interceptor, INBOX, grpc.unary_stream_rpc_method_handler(stream))
        with pytest.raises(asyncio.CancelledError):
            async for _item in handler.unary_stream(b"", FakeContext()):
                pass

    asyncio.run(run())
    registry = observed.registry
    assert seen_open == [1]
    assert value(registry, "sealpost_gateway_streams_open", transport="grpc", method=method) == 0
    assert (
        value(
            registry,
            "sealpost_gateway_requests_total",
            transport="grpc",
            method=method,
            code="CANCELLED",
        )
        == 1
    )
    # Streams last as long as the caller follows: they are not in the duration histogram.
    assert (
        value(
            registry,
            "sealpost_gateway_request_duration_seconds_count",
            transport="grpc",
            method=method,
        )
        is None
    )


def test_an_unknown_method_is_not_wrapped_or_labelled() -> None:
    observed = metrics.GatewayMetrics(process=False)
    interceptor = ObservingInterceptor([observed.requests])

    async def run() -> Any:
        async def continuation(_details: grpc.HandlerCallDetails) -> None:
            return None  # grpc answers UNIMPLEMENTED itself

        return await interceptor.intercept_service(continuation, Details("/made.Up/Path"))  # type: ignore[arg-type]

    assert asyncio.run(run()) is None
    assert b"made.Up" not in generate_latest(observed.registry)


def test_the_database_figures_show_every_state_and_each_institution_queue() -> None:
    observed = metrics.GatewayMetrics(process=False)
    assert observed.state is not None
    snapshot = metrics.StateSnapshot(
        messages={"accepted": 1, "queued": 3, "released": 0},
        queue={"pi-noord": (3, 1_000_000), "pi-zuid": (0, None)},
        log_size=42,
        head=(40, 1_030_000),
    )
    observed.state.record(snapshot, now_ms=1_090_000)
    registry = observed.registry
    assert value(registry, "sealpost_messages", state="queued") == 3
    assert value(registry, "sealpost_screening_queue_messages", institution="pi-noord") == 3
    assert (
        value(registry, "sealpost_screening_queue_oldest_age_seconds", institution="pi-noord") == 90
    )
    assert value(registry, "sealpost_screening_queue_messages", institution="pi-zuid") == 0
    assert (
        value(registry, "sealpost_screening_queue_oldest_age_seconds", institution="pi-zuid") == 0
    )
    assert value(registry, "sealpost_log_size") == 42
    assert value(registry, "sealpost_log_signed_size") == 40
    assert value(registry, "sealpost_log_newest_head_age_seconds") == 60
    assert value(registry, "sealpost_metrics_refreshed_timestamp_seconds") == 1090


def test_key_server_and_database_health_are_one_hot_and_up_or_down() -> None:
    observed = metrics.GatewayMetrics(process=False)
    assert observed.state is not None
    observed.state.key_server_state("sealed")
    observed.state.database(up=False)
    registry = observed.registry
    found = {
        state: value(registry, "sealpost_key_server_state", state=state)
        for state in metrics.KEY_SERVER_STATES
    }
    assert found == {"ready": 0, "sealed": 1, "uninitialised": 0, "unreachable": 0}
    assert value(registry, "sealpost_database_up") == 0
    observed.state.key_server_state("ready")
    assert value(registry, "sealpost_key_server_state", state="ready") == 1
    assert value(registry, "sealpost_key_server_state", state="sealed") == 0


def test_a_worker_that_leaves_the_figures_to_another_has_none() -> None:
    worker = metrics.GatewayMetrics(reads_state=False, process=False)
    assert worker.state is None
    assert b"sealpost_messages" not in generate_latest(worker.registry)


def test_read_state_counts_from_an_empty_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'metrics.db'}"
    engine = create_database_engine(url)
    migrate(engine)
    engine.dispose()
    db = Database(url)
    try:
        snapshot = db.read(metrics.read_state)
    finally:
        db.dispose()
    assert snapshot.messages == {metrics.state_label(s): 0 for s in sorted(states.TRANSITIONS)}
    assert next(iter(snapshot.messages)) == "accepted"
    assert snapshot.queue == {}
    assert snapshot.log_size == 0
    assert snapshot.head is None


def test_the_metrics_port_is_off_by_default_and_read_from_flag_or_environment() -> None:
    assert GatewayConfig.load({}, environ={}).metrics_port is None
    assert GatewayConfig.load({}, environ={"SEALPOST_METRICS_PORT": "9464"}).metrics_port == 9464
    assert GatewayConfig.load({"metrics_port": "0"}, environ={}).metrics_port == 0
    assert GatewayConfig.load({"metrics_port": "off"}, environ={}).metrics_port is None
    assert GatewayConfig.load({"metrics_port": "9100"}, environ={}).settings() == {
        "metrics_port": "9100"
    }
    with pytest.raises(ConfigError, match="SEALPOST_METRICS_PORT: expected an integer"):
        GatewayConfig.load({}, environ={"SEALPOST_METRICS_PORT": "70000"})
