"""The metrics endpoint with several workers, and traces to a real OTLP/HTTP receiver.

Real gateway processes on loopback; the OTLP receiver is a plain HTTP server in this
test that keeps what the gateway's exporter posts, read back with OpenTelemetry's own
protobuf classes.
"""

from __future__ import annotations

import sqlite3
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from sealpost._internal.devservers import DevServerError, GatewayProcess, gateway_health
from sealpost._internal.exposition import samples

pytestmark = pytest.mark.integration

HEALTH = "grpc.health.v1.Health/Check"
CHECKS = "sealpost_gateway_requests_total"


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback
        text = answer.read().decode()
    return {(n, frozenset(labels.items())): value for n, labels, value in samples(text)}


def health_checks(url: str) -> float:
    found = scrape(url)
    key = (CHECKS, frozenset({"transport": "grpc", "method": HEALTH, "code": "OK"}.items()))
    return found.get(key, 0.0)


@pytest.mark.slow
def test_workers_add_up_their_calls_and_show_the_database_once(tmp_path: Path) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    gateway = GatewayProcess(
        tmp_path / "gateway",
        env={"SEALPOST_WORKERS": "2", "SEALPOST_METRICS_PORT": "0", "TMPDIR": str(temporary)},
    )
    gateway.start()
    try:
        assert gateway.metrics_port
        (folder,) = temporary.glob("sealpost-metrics-*")
        assert folder.stat().st_mode & 0o777 == 0o700
        before = health_checks(gateway.metrics_url)
        # A new connection for each: the kernel spreads them over both workers.
        for _ in range(24):
            assert gateway_health(gateway.address, gateway.ca_pem) == "SERVING"
        assert health_checks(gateway.metrics_url) == before + 24

        with sqlite3.connect(gateway.database_url.removeprefix("sqlite:///")) as db:
            (log_size,) = db.execute(
                "SELECT value FROM gateway_state WHERE name = 'log_size'"
            ).fetchone()
        found = scrape(gateway.metrics_url)
        names = [name for name, _labels in found]
        # Read by one worker only: shown once, not added up, no per-process label.
        assert names.count("sealpost_log_size") == 1
        assert found[("sealpost_log_size", frozenset())] == log_size
        assert found[("sealpost_database_up", frozenset())] == 1
        assert names.count("sealpost_gateway_build_info") == 1
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{gateway.metrics_port}/debug", timeout=10)
        assert refused.value.code == 404
    finally:
        assert gateway.stop() == 0
    assert list(temporary.glob("sealpost-metrics-*")) == []  # the supervisor removed it


class Receiver:
    """An OTLP/HTTP endpoint on loopback that keeps each export it is sent."""

    def __init__(self) -> None:
        self.exports: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the name http.server calls
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.paths.append(self.path)
                receiver.exports.append(ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # the base's names
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    try:
        yield running
    finally:
        running.close()


def test_each_call_is_a_span_with_method_and_status_only(
    tmp_path: Path, receiver: Receiver
) -> None:
    gateway = GatewayProcess(tmp_path / "gateway", env={"SEALPOST_OTEL_ENDPOINT": receiver.url})
    gateway.start()
    try:
        for _ in range(3):
            gateway_health(gateway.address, gateway.ca_pem)
        with pytest.raises(DevServerError, match="NOT_FOUND"):
            gateway_health(gateway.address, gateway.ca_pem, service="no.Such")
    except Exception:
        gateway.stop()
        raise
    assert gateway.stop() == 0  # a graceful stop exports what is buffered

    assert receiver.paths
    assert set(receiver.paths) == {"/v1/traces"}
    spans = [
        (resource.resource, span)
        for export in receiver.exports
        for resource in export.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    assert len(spans) >= 4
    for resource, span in spans:
        assert span.name == HEALTH
        attributes = {a.key: a.value for a in span.attributes}
        assert set(attributes) == {
            "rpc.system",
            "rpc.service",
            "rpc.method",
            "rpc.grpc.status_code",
        }
        assert attributes["rpc.system"].string_value == "grpc"
        assert attributes["rpc.method"].string_value == "Check"
        assert span.end_time_unix_nano > span.start_time_unix_nano
        assert not span.events
        service = {a.key: a.value.string_value for a in resource.attributes}
        assert service["service.name"] == "sealpost-gateway"
    codes = sorted(
        a.value.int_value
        for _resource, span in spans
        for a in span.attributes
        if a.key == "rpc.grpc.status_code"
    )
    assert codes.count(0) >= 3
    assert 5 in codes  # NOT_FOUND: the health service knows no "no.Such"
    assert not any(b"no.Such" in span.SerializeToString() for _resource, span in spans)
