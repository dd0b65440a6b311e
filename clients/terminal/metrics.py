"""Prometheus metrics of a terminal's intake loop (``sealpost terminal intake --metrics-port``).

Counts, durations and states only, never an id, a name or content: intake batches and
their messages by outcome, escrow calls to the key server (duration, failures, data
keys escrowed), triage summaries sealed or failed, the witness's cosigned heads and
the log size it has witnessed, and the key server's state as the last batch found it.

It hooks into the loop without changing it: ``MetricsReporter`` wraps the loop's
reporter (one BatchReport per batch), ``timed_escrow`` and ``counted_triage`` wrap the
escrow and triage steps, and ``follow`` reads the loop's running totals at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sealpost.clients.terminal.client import Escrow, Intake
from sealpost.clients.terminal.intake import BatchReport, IntakeLoop, Reporter
from sealpost.escrow.errors import EscrowError, KeyServerUnavailableError, PermissionDeniedError
from sealpost.v1 import envelope_pb2

if TYPE_CHECKING:
    from sealpost.clients.terminal.triage import TriageOutcome

#: Where each message of a batch ended up; together they add up to the messages received.
OUTCOMES: Final = (
    "released",
    "privileged",
    "queued",
    "rejected",
    "malformed",
    "known_malformed",
    "waiting_for_key_server",
    "waiting_for_mailbox",
)
#: The key server as a batch found it (intake's KeyServerStatus, less "not asked").
KEY_SERVER_STATES: Final = ("ok", "unavailable", "refused", "failing")
#: Upper bounds of the escrow call buckets, in seconds (a batch of up to 200 data keys).
ESCROW_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

Triage = Callable[[Sequence[tuple[Intake, bytes]]], "TriageOutcome"]


def outcomes(report: BatchReport) -> dict[str, int]:
    """How many of the batch's messages ended up where (OUTCOMES, in order)."""
    return {
        "released": report.released - report.released_privileged,
        "privileged": report.released_privileged,
        "queued": report.queued,
        "rejected": report.rejected,
        "malformed": report.malformed + report.refused,
        "known_malformed": report.known_malformed,
        "waiting_for_key_server": report.waiting_for_key_server,
        "waiting_for_mailbox": report.waiting_for_mailbox,
    }


def _failure(exc: EscrowError) -> str:
    if isinstance(exc, KeyServerUnavailableError):
        return "unavailable"
    if isinstance(exc, PermissionDeniedError):
        return "refused"
    return "failing"


class TerminalMetrics:
    """The intake loop's metrics, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        """The metrics, in ``registry`` (a new one by default)."""
        self.registry = registry or CollectorRegistry()
        self.batches = Counter(
            "sealpost_terminal_intake_batches",
            "Intake batches processed.",
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "sealpost_terminal_intake_batch_duration_seconds",
            "Time to open, verify, escrow and submit one batch.",
            buckets=ESCROW_BUCKETS,
            registry=self.registry,
        )
        self.messages = Counter(
            "sealpost_terminal_intake_messages",
            "Messages of intake batches by outcome; a message that waits is counted again at "
            "each try.",
            ["outcome"],
            registry=self.registry,
        )
        self.escrow_seconds = Histogram(
            "sealpost_terminal_escrow_duration_seconds",
            "Time of one escrow call to the key server (one batch of data keys), failed or not.",
            buckets=ESCROW_BUCKETS,
            registry=self.registry,
        )
        self.escrow_failures = Counter(
            "sealpost_terminal_escrow_failures",
            "Escrow calls that failed: unavailable (sealed, down), refused (token), failing.",
            ["reason"],
            registry=self.registry,
        )
        self.escrowed = Counter(
            "sealpost_terminal_escrowed_keys",
            "Data keys escrowed with the key server.",
            registry=self.registry,
        )
        self.triage = Counter(
            "sealpost_terminal_triage_messages",
            "Queued messages triaged for screeners: summary sealed, or failed (they wait "
            "without one).",
            ["result"],
            registry=self.registry,
        )
        self.key_server = Gauge(
            "sealpost_terminal_key_server_state",
            "The key server as the last batch that asked it found it: 1 for that state.",
            ["state"],
            registry=self.registry,
        )
        for outcome in OUTCOMES:
            self.messages.labels(outcome)
        for reason in KEY_SERVER_STATES[1:]:
            self.escrow_failures.labels(reason)
        for result in ("sealed", "failed"):
            self.triage.labels(result)

    def batch(self, report: BatchReport) -> None:
        """Count one batch in."""
        self.batches.inc()
        self.batch_seconds.observe(report.seconds)
        for outcome, count in outcomes(report).items():
            if count:
                self.messages.labels(outcome).inc(count)
        if report.key_server != "not asked":
            for state in KEY_SERVER_STATES:
                self.key_server.labels(state).set(1 if state == report.key_server else 0)

    def timed_escrow(self, escrow: Escrow) -> Escrow:
        """``escrow``, timed, its failures counted by kind (and raised as before)."""

        def timed(items: Sequence[tuple[bytes, bytes]]) -> list[envelope_pb2.EscrowBlob]:
            started = time.perf_counter()
            try:
                blobs = escrow(items)
            except EscrowError as exc:
                self.escrow_failures.labels(_failure(exc)).inc()
                raise
            finally:
                self.escrow_seconds.observe(time.perf_counter() - started)
            self.escrowed.inc(len(blobs))
            return blobs

        return timed

    def counted_triage(self, triage: Triage) -> Triage:
        """``triage``, its sealed and failed summaries counted."""

        def counted(queued: Sequence[tuple[Intake, bytes]]) -> TriageOutcome:
            outcome = triage(queued)
            self.triage.labels("sealed").inc(outcome.sealed)
            self.triage.labels("failed").inc(outcome.failed)
            return outcome

        return counted

    def follow(self, loop: IntakeLoop) -> None:
        """Show the loop's witness totals (read at scrape time)."""
        self.registry.register(_WitnessCollector(loop))


class _WitnessCollector(Collector):
    """The witness's running totals, as the loop keeps them (clients/terminal/intake.py)."""

    def __init__(self, loop: IntakeLoop) -> None:
        self.loop = loop

    def collect(self) -> Iterator[Metric]:
        summary = self.loop.summary
        yield CounterMetricFamily(
            "sealpost_terminal_witness_heads_cosigned",
            "Tree heads of the gateway's log this terminal checked and cosigned.",
            value=summary.heads_cosigned,
        )
        yield GaugeMetricFamily(
            "sealpost_terminal_witnessed_log_size",
            "Tree size of the newest head this terminal has witnessed (0: none yet).",
            value=summary.witnessed_size,
        )
        yield GaugeMetricFamily(
            "sealpost_terminal_waiting_for_key_server",
            "1 while escrow fails and non-privileged messages wait (fail closed), else 0.",
            value=1 if self.loop.waiting_for_key_server else 0,
        )


class MetricsReporter:
    """A Reporter that counts each batch, then hands everything to ``inner``."""

    def __init__(self, inner: Reporter, metrics: TerminalMetrics) -> None:
        """Report to ``inner``; count in ``metrics``."""
        self.inner = inner
        self.metrics = metrics

    def batch(self, report: BatchReport) -> None:
        """Count the batch; pass it on."""
        self.metrics.batch(report)
        self.inner.batch(report)

    def notice(self, kind: str, text: str) -> None:
        """Pass it on (notices carry text: not counted)."""
        self.inner.notice(kind, text)
