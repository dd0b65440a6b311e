"""Prometheus metrics over plain HTTP: the one endpoint the gateway and the terminal serve.

``MetricsEndpoint`` answers ``GET /metrics`` (and HEAD) with a registry's samples in
Prometheus' text format, and 404 for any other path, on a thread of its own. It has
no authentication and no TLS: bind it to an address only the operators' Prometheus
reaches (docs/operations.md, section 13). It imports nothing of the gateway, so that
the workers' supervisor (gateway/workers.py) stays small.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any, Final
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

#: The one path the endpoint answers.
METRICS_PATH: Final = "/metrics"
#: Where prometheus-client's multiprocess mode keeps each process's values (its own name).
MULTIPROCESS_VARIABLE: Final = "PROMETHEUS_MULTIPROC_DIR"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def multiprocess_registry(folder: str) -> CollectorRegistry:
    """A registry that adds up what the worker processes wrote into ``folder``."""
    from prometheus_client import multiprocess  # noqa: PLC0415

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
    return registry


class _Server(ThreadingMixIn, WSGIServer):
    """One thread per scrape; none outlives the process."""

    daemon_threads = True


class _V6Server(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """No access log on standard error (the programs' logs are structured)."""

    def log_message(self, format: str, *args: Any) -> None:  # the base's parameter names
        """Say nothing."""


def _only_metrics(app: WsgiApp) -> WsgiApp:
    """``app`` at METRICS_PATH for GET and HEAD; 404 for anything else."""

    def route(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != METRICS_PATH or environ.get("REQUEST_METHOD") not in (
            "GET",
            "HEAD",
        ):
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"not found: the metrics are at /metrics\n"]
        return app(environ, start_response)

    return route


class MetricsEndpoint:
    """``GET /metrics`` over plain HTTP on a thread of its own."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        """Bind ``host``:``port`` now (0: any free port); OSError if it cannot."""
        server_class = _V6Server if ":" in host else _Server
        self._server = make_server(
            host,
            port,
            _only_metrics(make_wsgi_app(registry)),
            server_class=server_class,
            handler_class=_QuietHandler,
        )
        self.port = int(self._server.server_port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sealpost-metrics", daemon=True
        )

    def start(self) -> int:
        """Start answering; the bound port."""
        self._thread.start()
        return self.port

    def stop(self) -> None:
        """Stop answering and close the port."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def samples(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """The samples of a scrape as (name, labels, value)."""
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            yield sample.name, dict(sample.labels), float(sample.value)
