"""The gateway's Prometheus metrics: calls, message states, the screening queue, the log, health.

Off unless ``--metrics-port`` (SEALPOST_METRICS_PORT) is given. The endpoint is plain
HTTP on the gateway's host and answers ``GET /metrics`` only; it is meant for the
operators' Prometheus and must not be reachable from outside (docs/operations.md,
section 13). What it carries is counts, durations and states, never content:

- every call (``RequestMetrics``, a call observer on both transports): the method's full
  name, which is one the server serves, never a path a caller sent, and the status code;
- what the database holds (``StateMetrics``), read every ``REFRESH_SECONDS`` by one
  process, not at scrape time: messages by state, the screening queue's depth and its
  longest wait per institution id, the log's size and its newest signed head;
- the database's and the key server's health, from the probes the gateway makes anyway.

No label holds a message id, an account, a detainee, a person's name or any text a
caller wrote. Institution ids are labels: operators see them in the database already,
and they name institutions, not people (SPEC P11 keeps them from relatives, who never
reach this port).

Several worker processes (``--workers N``, gateway/workers.py) share one endpoint: the
supervisor serves it in prometheus-client's multiprocess mode, adding up the workers'
call counters and histograms from files in a private temporary folder; only the first
worker reads the database's figures and probes for them, so they are never added up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from sqlalchemy import Connection

from sealpost import __version__
from sealpost.gateway import states, store, translog
from sealpost.gateway.calls import CallEnd

#: Seconds between two reads of the database's figures (messages, queue, log).
REFRESH_SECONDS: Final = 5.0
#: Upper bounds of the call duration buckets, in seconds.
CALL_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: What the key-server probe can find (server.watch_key_server).
KEY_SERVER_STATES: Final = ("ready", "sealed", "uninitialised", "unreachable")


def state_label(state: states.State) -> str:
    """``accepted``, ``queued``, ... for a message state."""
    return states.name(state).lower()


class RequestMetrics:
    """Calls by transport, method and status code; unary calls' durations; open streams."""

    def __init__(self, registry: CollectorRegistry) -> None:
        """The call metrics, in ``registry``."""
        self.calls = Counter(
            "sealpost_gateway_requests",
            "Calls answered, by transport (grpc, connect), method and gRPC status code.",
            ["transport", "method", "code"],
            registry=registry,
        )
        self.seconds = Histogram(
            "sealpost_gateway_request_duration_seconds",
            "Time from a unary call's arrival to its answer, by transport and method.",
            ["transport", "method"],
            buckets=CALL_BUCKETS,
            registry=registry,
        )
        self.streams = Gauge(
            "sealpost_gateway_streams_open",
            "Server streams open now (terminals' intake, inboxes, review queues), by method.",
            ["transport", "method"],
            multiprocess_mode="livesum",
            registry=registry,
        )

    def begin(self, transport: str, method: str, *, streaming: bool) -> CallEnd:
        """Count the call when it ends; time it if unary, count it as open if a stream."""
        started = time.perf_counter()
        if streaming:
            self.streams.labels(transport, method).inc()

        def end(code: grpc.StatusCode) -> None:
            self.calls.labels(transport, method, code.name).inc()
            if streaming:
                self.streams.labels(transport, method).dec()
            else:
                self.seconds.labels(transport, method).observe(time.perf_counter() - started)

        return end


@dataclass(frozen=True)
class StateSnapshot:
    """The database's figures at one moment (counts and times only)."""

    #: Messages stored, by state (every state named, 0 for none).
    messages: dict[str, int]
    #: Per institution id: (messages waiting for a screener, when the longest waiting was
    #: queued in ms, None for an empty queue).
    queue: dict[str, tuple[int, int | None]]
    log_size: int
    #: (tree size, timestamp in ms) of the newest signed head; None before the first.
    head: tuple[int, int] | None


def read_state(connection: Connection) -> StateSnapshot:
    """The figures ``StateMetrics`` shows, in one read transaction (indexed, aggregate)."""
    counts = store.count_by_state(connection)
    return StateSnapshot(
        messages={
            state_label(state): counts.get(state, 0)
            for state in sorted(states.TRANSITIONS)  # every state, in the API's order
        },
        queue=store.queue_by_institution(connection),
        log_size=translog.stored_size(connection),
        head=translog.newest_head_summary(connection),
    )


class StateMetrics:
    """Gauges of what the database holds, and of the health probes.

    Set by one process only (see the module docstring); in multiprocess mode the most
    recently written value is shown.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        """The gauges, in ``registry``."""

        def gauge(name: str, text: str, labels: Iterable[str] = ()) -> Gauge:
            return Gauge(
                name, text, list(labels), multiprocess_mode="mostrecent", registry=registry
            )

        self.messages = gauge(
            "sealpost_messages",
            "Messages stored now, by state (settled ones go at retention).",
            ["state"],
        )
        self.queue = gauge(
            "sealpost_screening_queue_messages",
            "Messages waiting for a screener's verdict, by institution id.",
            ["institution"],
        )
        self.queue_age = gauge(
            "sealpost_screening_queue_oldest_age_seconds",
            "How long the longest waiting message has waited for a screener, by institution "
            "id (0: none waits).",
            ["institution"],
        )
        self.log_size = gauge("sealpost_log_size", "Leaves in the transparency log.")
        self.head_size = gauge(
            "sealpost_log_signed_size", "Tree size of the newest signed tree head (0: none yet)."
        )
        self.head_age = gauge(
            "sealpost_log_newest_head_age_seconds",
            "Age of the newest signed tree head when the figures were read (heads are signed "
            "only when the log grows).",
        )
        self.refreshed = gauge(
            "sealpost_metrics_refreshed_timestamp_seconds",
            "When the database's figures were last read (Unix time).",
        )
        self.refresh_failures = Counter(
            "sealpost_metrics_refresh_failures",
            "Reads of the database's figures that failed (the gauges keep their last values).",
            registry=registry,
        )
        self.database_up = gauge(
            "sealpost_database_up", "1 while the database answers the gateway's probe, else 0."
        )
        self.key_server = gauge(
            "sealpost_key_server_state",
            "The key server as the gateway's probe finds it: 1 for the current state.",
            ["state"],
        )
        self._lock = threading.Lock()

    def record(self, snapshot: StateSnapshot, now_ms: int) -> None:
        """Show ``snapshot``, read at ``now_ms`` (institutions are never deleted: no removals)."""
        with self._lock:
            for state, count in snapshot.messages.items():
                self.messages.labels(state).set(count)
            for institution, (waiting, oldest) in snapshot.queue.items():
                self.queue.labels(institution).set(waiting)
                age = 0.0 if oldest is None else max(0.0, (now_ms - oldest) / 1000)
                self.queue_age.labels(institution).set(age)
            self.log_size.set(snapshot.log_size)
            if snapshot.head is not None:
                size, signed_at_ms = snapshot.head
                self.head_size.set(size)
                self.head_age.set(max(0.0, (now_ms - signed_at_ms) / 1000))
            self.refreshed.set(now_ms / 1000)

    def database(self, *, up: bool) -> None:
        """The database probe's answer."""
        self.database_up.set(1 if up else 0)

    def key_server_state(self, state: str) -> None:
        """The key-server probe's finding, one of KEY_SERVER_STATES."""
        for known in KEY_SERVER_STATES:
            self.key_server.labels(known).set(1 if known == state else 0)


@dataclass
class GatewayMetrics:
    """One gateway process's metrics: the calls, and (if it reads them) the database's figures."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    requests: RequestMetrics = field(init=False)
    #: None in a worker that leaves the database's figures to the first worker.
    state: StateMetrics | None = field(init=False)
    reads_state: bool = True
    #: Process figures (CPU, memory, open files): not in multiprocess mode.
    process: bool = True

    def __post_init__(self) -> None:
        self.requests = RequestMetrics(self.registry)
        self.state = StateMetrics(self.registry) if self.reads_state else None
        info = Gauge(
            "sealpost_gateway_build_info",
            "1, labelled with the gateway's version.",
            ["version"],
            multiprocess_mode="max",
            registry=self.registry,
        )
        info.labels(__version__).set(1)
        if self.process:
            ProcessCollector(registry=self.registry)
