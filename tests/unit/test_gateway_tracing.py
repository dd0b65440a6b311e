"""Traces of the gateway's calls: off without an endpoint; a span carries method and status only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sealpost.gateway import tracing
from sealpost.gateway.errors import ConfigError
from sealpost.gateway.interceptors import ObservingInterceptor
from sealpost.v1 import relative_pb2

SEND = "/sealpost.v1.RelativeService/SendMessage"
SECRET_TEXT = "geheime tekst die nooit in een spoor mag"
PERSON = "acct-5f2d9c7e"


class FakeContext:
    def __init__(self, status: grpc.StatusCode | None = None) -> None:
        self.status = status

    def code(self) -> grpc.StatusCode | None:
        return self.status


class Details:
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = (("authorization", f"Bearer {PERSON}"),)


def _call(tracer: tracing.CallTracer, request: bytes, status: grpc.StatusCode | None) -> None:
    interceptor = ObservingInterceptor([tracer])

    async def behaviour(raw: bytes, context: FakeContext) -> bytes:
        return raw

    async def run() -> None:
        async def continuation(_details: grpc.HandlerCallDetails) -> Any:
            return grpc.unary_unary_rpc_method_handler(behaviour)

        handler: Any = await interceptor.intercept_service(continuation, Details(SEND))  # type: ignore[arg-type]
        with contextlib.suppress(RuntimeError):
            await handler.unary_unary(request, FakeContext(status))

    asyncio.run(run())


def test_with_no_endpoint_nothing_of_opentelemetry_is_imported_or_started() -> None:
    environment = {
        k: v
        for k, v in os.environ.items()
        if k != tracing.ENDPOINT_VARIABLE and not k.startswith("OTEL_")
    }
    probe = (
        "import sys, threading\n"
        "from sealpost.gateway import server, tracing\n"
        "before = {t.name for t in threading.enumerate()}\n"
        "tracer = tracing.from_environment()\n"
        "import json\n"
        "print(json.dumps({\n"
        "  'tracer': tracer is None,\n"
        "  'modules': sorted(m for m in sys.modules if m.startswith('opentelemetry')),\n"
        "  'threads': sorted({t.name for t in threading.enumerate()} - before),\n"
        "}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout) == {"tracer": True, "modules": [], "threads": []}


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"SEALPOST_OTEL_ENDPOINT": ""}, None),
        ({"SEALPOST_OTEL_ENDPOINT": "http://127.0.0.1:4318"}, "http://127.0.0.1:4318/v1/traces"),
        (
            {"SEALPOST_OTEL_ENDPOINT": "https://otel.example:4318/"},
            "https://otel.example:4318/v1/traces",
        ),
        ({"SEALPOST_OTEL_ENDPOINT": "http://c:4318/v1/traces"}, "http://c:4318/v1/traces"),
        # OpenTelemetry's own variables: its exporter reads them itself.
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, ""),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ""),
    ],
)
def test_where_spans_go(environ: dict[str, str], expected: str | None) -> None:
    assert tracing.endpoint_of(environ) == expected


def test_an_endpoint_that_is_no_url_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="SEALPOST_OTEL_ENDPOINT: expected an http"):
        tracing.endpoint_of({"SEALPOST_OTEL_ENDPOINT": "otel-collector:4317"})


def test_a_call_makes_one_span_with_its_method_and_status_and_no_request_field() -> None:
    exported = InMemorySpanExporter()
    tracer = tracing.with_processor(SimpleSpanProcessor(exported))
    request = relative_pb2.SendMessageRequest()
    request.envelope.header = SECRET_TEXT.encode()
    _call(tracer, request.SerializeToString(), None)
    _call(tracer, b"", grpc.StatusCode.PERMISSION_DENIED)
    _call(tracer, b"", grpc.StatusCode.UNAVAILABLE)
    tracer.close()

    spans = exported.get_finished_spans()
    assert [span.name for span in spans] == ["sealpost.v1.RelativeService/SendMessage"] * 3
    assert all(span.kind.name == "SERVER" for span in spans)
    assert [dict(span.attributes or {}) for span in spans] == [
        {
            "rpc.system": "grpc",
            "rpc.service": "sealpost.v1.RelativeService",
            "rpc.method": "SendMessage",
            "rpc.grpc.status_code": code,
        }
        for code in (0, 7, 14)
    ]
    # A refusal is the caller's; UNAVAILABLE is the server's trouble.
    assert [span.status.status_code.name for span in spans] == ["UNSET", "UNSET", "ERROR"]
    assert all(span.end_time is not None and span.start_time is not None for span in spans)
    assert all(not span.events and not span.links for span in spans)
    whole = "".join(span.to_json() for span in spans)
    assert SECRET_TEXT not in whole
    assert PERSON not in whole
    assert "authorization" not in whole
    assert spans[0].resource.attributes["service.name"] == tracing.SERVICE_NAME


def test_the_service_name_is_sealposts_unless_opentelemetry_is_told_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    own = tracing.with_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    assert own.provider.resource.attributes["service.name"] == "sealpost-gateway"
    own.close()
    monkeypatch.setenv("OTEL_SERVICE_NAME", "gateway-noord")
    named = tracing.with_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    assert named.provider.resource.attributes["service.name"] == "gateway-noord"
    named.close()
