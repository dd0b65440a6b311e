"""OpenTelemetry traces of the gateway's calls: off unless an OTLP endpoint is configured.

With ``SEALPOST_OTEL_ENDPOINT`` (an OTLP/HTTP collector's base URL, such as
``http://127.0.0.1:4318``; the gateway posts to ``/v1/traces`` under it), or else the
standard ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``, and the
``otel`` extra installed (``pip install 'sealpost[otel]'``), each call gets one server span:
its name is the method's full name, its attributes the RPC system, service, method and
gRPC status code, and its duration the call's. Nothing else: no request or response
field, no metadata, no token, no id of a person or a message, no request id, no peer
address. Without either variable nothing of OpenTelemetry is imported and nothing starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

import grpc

from sealpost import __version__
from sealpost._internal.logs import get_logger
from sealpost.gateway.calls import CallEnd
from sealpost.gateway.errors import ConfigError
from sealpost.i18n import _

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

#: Sealpost's own setting: the collector's OTLP/HTTP base URL.
ENDPOINT_VARIABLE: Final = "SEALPOST_OTEL_ENDPOINT"
#: OpenTelemetry's own settings, read by its exporter when Sealpost's is not set.
STANDARD_VARIABLES: Final = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
#: The service name spans carry (OTEL_SERVICE_NAME overrides it).
SERVICE_NAME: Final = "sealpost-gateway"
#: Status codes that mark a server span as failed (OpenTelemetry's RPC conventions): the
#: server's fault, not a refusal of the caller's request.
ERROR_CODES: Final = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
_RPC_SYSTEM: Final = {"grpc": "grpc", "connect": "connect_rpc"}

_log = get_logger("sealpost.gateway.tracing")


class CallTracer:
    """A call observer that makes one span per call: method, status code, duration."""

    def __init__(self, provider: TracerProvider) -> None:
        """Spans from ``provider``, which exports them."""
        from opentelemetry import trace  # noqa: PLC0415 - only when tracing is on

        self.provider = provider
        self._trace = trace
        self._tracer = provider.get_tracer("sealpost.gateway", __version__)

    def begin(self, transport: str, method: str, *, streaming: bool) -> CallEnd:
        """Start the call's span; ended with its status code."""
        service, _slash, name = method.partition("/")
        span = self._tracer.start_span(
            method,
            kind=self._trace.SpanKind.SERVER,
            attributes={
                "rpc.system": _RPC_SYSTEM.get(transport, transport),
                "rpc.service": service,
                "rpc.method": name,
            },
        )

        def end(code: grpc.StatusCode) -> None:
            span.set_attribute("rpc.grpc.status_code", int(code.value[0]))
            if code in ERROR_CODES:
                span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, code.name))
            span.end()

        return end

    def close(self) -> None:
        """Export what is still buffered and stop."""
        self.provider.shutdown()


def endpoint_of(environ: Mapping[str, str]) -> str | None:
    """Where spans go: SEALPOST_OTEL_ENDPOINT's traces URL, "" for the standard variables.

    None when no variable is set: tracing is off. ConfigError for a value that is no URL.
    """
    own = environ.get(ENDPOINT_VARIABLE, "").strip()
    if own:
        if not own.startswith(("http://", "https://")):
            raise ConfigError(
                [
                    _(
                        "{setting}: expected {expect}, got {value}",
                        setting=ENDPOINT_VARIABLE,
                        expect=_("an http(s) URL"),
                        value=repr(own),
                    )
                ]
            )
        base = own.rstrip("/")
        return base if base.endswith("/v1/traces") else f"{base}/v1/traces"
    if any(environ.get(name, "").strip() for name in STANDARD_VARIABLES):
        return ""
    return None


def with_processor(processor: SpanProcessor) -> CallTracer:
    """A tracer whose spans go to ``processor`` (tests pass an in-memory exporter's)."""
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415

    resource = Resource.create({"service.version": __version__})  # reads OTEL_SERVICE_NAME
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(processor)
    return CallTracer(provider)


def from_environment(environ: Mapping[str, str] | None = None) -> CallTracer | None:
    """The gateway's tracer, or None when tracing is off or OpenTelemetry is not installed."""
    endpoint = endpoint_of(os.environ if environ is None else environ)
    if endpoint is None:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )
        from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415
    except ImportError as exc:
        _log.warning("gateway.tracing_unavailable", error_type=type(exc).__name__)
        return None
    # An empty endpoint: the exporter reads OpenTelemetry's own variables.
    exporter = OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
    tracer = with_processor(BatchSpanProcessor(exporter))
    _log.info("gateway.tracing", status="on")
    return tracer
