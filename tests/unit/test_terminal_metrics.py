"""The terminal's intake metrics, from the loop's own reports, escrow calls and triage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from prometheus_client import generate_latest

from sealpost._internal.exposition import samples
from sealpost.clients.terminal.client import TerminalClient
from sealpost.clients.terminal.intake import (
    BatchReport,
    CollectingReporter,
    IntakeLoop,
    MemoryStateStore,
)
from sealpost.clients.terminal.metrics import (
    OUTCOMES,
    MetricsReporter,
    TerminalMetrics,
    outcomes,
)
from sealpost.clients.terminal.triage import TriageOutcome
from sealpost.crypto.errors import DecryptionError
from sealpost.escrow.errors import PermissionDeniedError
from sealpost.v1 import common_pb2, terminal_pb2
from tests.unit.test_terminal_intake_loop import QUICK, FakeClient, FakeEscrow, FakeGateway


def _value(metrics: TerminalMetrics, name: str, **labels: str) -> float | None:
    for sample, found, value in samples(generate_latest(metrics.registry).decode()):
        if sample == name and found == labels:
            return value
    return None


def _loop(
    gateway: FakeGateway, escrow: FakeEscrow, metrics: TerminalMetrics
) -> tuple[IntakeLoop, CollectingReporter]:
    inner = CollectingReporter()
    loop = IntakeLoop(
        cast(TerminalClient, FakeClient(gateway)),
        metrics.timed_escrow(escrow),
        MemoryStateStore(),
        settings=QUICK,
        reporter=MetricsReporter(inner, metrics),
    )
    metrics.follow(loop)
    return loop, inner


def test_outcomes_add_up_to_the_messages_received() -> None:
    report = BatchReport(
        received=20,
        released=7,
        released_privileged=2,
        queued=4,
        rejected=1,
        malformed=2,
        refused=1,
        known_malformed=1,
        waiting_for_key_server=3,
        waiting_for_mailbox=1,
    )
    found = outcomes(report)
    assert tuple(found) == OUTCOMES
    assert found["released"] == 5
    assert found["privileged"] == 2
    assert found["malformed"] == 3
    assert sum(found.values()) == report.received


def test_a_run_counts_batches_outcomes_and_escrow() -> None:
    gateway = FakeGateway()
    gateway.add(5)
    gateway.add(2, privileged=True)
    broken = gateway.add(1)
    gateway.broken[broken[0]] = DecryptionError()
    metrics = TerminalMetrics()
    loop, inner = _loop(gateway, FakeEscrow(), metrics)
    summary = loop.run_once(max_wait=1)

    assert _value(metrics, "sealpost_terminal_intake_batches_total") == len(inner.batches) == 1
    counted = {
        outcome: _value(metrics, "sealpost_terminal_intake_messages_total", outcome=outcome)
        for outcome in OUTCOMES
    }
    assert counted == {
        "released": 5,
        "privileged": 2,
        "queued": 0,
        "rejected": 0,
        "malformed": 1,
        "known_malformed": 0,
        "waiting_for_key_server": 0,
        "waiting_for_mailbox": 0,
    }
    assert summary.released == 7  # the loop's own count: privileged included
    assert _value(metrics, "sealpost_terminal_escrowed_keys_total") == 5
    assert _value(metrics, "sealpost_terminal_escrow_duration_seconds_count") == 1
    assert _value(metrics, "sealpost_terminal_key_server_state", state="ok") == 1
    assert _value(metrics, "sealpost_terminal_key_server_state", state="unavailable") == 0
    assert _value(metrics, "sealpost_terminal_waiting_for_key_server") == 0
    text = generate_latest(metrics.registry).decode()
    for message_id in gateway.state:
        assert message_id.hex() not in text
    assert "d-1" not in text


def test_key_server_down_counts_failures_and_what_waits() -> None:
    gateway = FakeGateway()
    gateway.add(4)
    gateway.add(1, privileged=True)
    metrics = TerminalMetrics()
    loop, _inner = _loop(gateway, FakeEscrow(failures=1_000), metrics)
    loop.run_once(max_wait=0.1)

    failures = _value(metrics, "sealpost_terminal_escrow_failures_total", reason="unavailable")
    assert failures is not None
    assert failures >= 1
    assert _value(metrics, "sealpost_terminal_escrow_duration_seconds_count") == failures
    assert _value(metrics, "sealpost_terminal_escrowed_keys_total") == 0
    waiting = _value(
        metrics, "sealpost_terminal_intake_messages_total", outcome="waiting_for_key_server"
    )
    assert waiting is not None
    assert waiting >= 4  # counted again at each try
    assert _value(metrics, "sealpost_terminal_intake_messages_total", outcome="privileged") == 1
    assert _value(metrics, "sealpost_terminal_key_server_state", state="unavailable") == 1
    assert _value(metrics, "sealpost_terminal_key_server_state", state="ok") == 0
    assert _value(metrics, "sealpost_terminal_waiting_for_key_server") == 1


def test_a_refusing_key_server_is_told_apart() -> None:
    gateway = FakeGateway()
    gateway.add(1)
    metrics = TerminalMetrics()
    escrow = FakeEscrow(failures=1_000, error=PermissionDeniedError("token revoked"))
    loop, _inner = _loop(gateway, escrow, metrics)
    loop.run_once(max_wait=0.05)
    refused = _value(metrics, "sealpost_terminal_escrow_failures_total", reason="refused")
    assert refused is not None
    assert refused >= 1
    assert _value(metrics, "sealpost_terminal_escrow_failures_total", reason="unavailable") == 0
    assert _value(metrics, "sealpost_terminal_key_server_state", state="refused") == 1


def test_triage_counts_sealed_and_failed_summaries() -> None:
    gateway = FakeGateway()
    ids = gateway.add(3)
    metrics = TerminalMetrics()
    client_states = gateway.state

    class Queueing(FakeClient):
        def submit_escrow(
            self, submissions: Sequence[terminal_pb2.EscrowSubmission]
        ) -> dict[bytes, int]:
            results = super().submit_escrow(submissions)
            for message_id in results:
                client_states[message_id] = common_pb2.MESSAGE_STATE_QUEUED
            return dict.fromkeys(results, common_pb2.MESSAGE_STATE_QUEUED)

    inner = CollectingReporter()
    loop = IntakeLoop(
        cast(TerminalClient, Queueing(gateway)),
        metrics.timed_escrow(FakeEscrow()),
        MemoryStateStore(),
        settings=QUICK,
        reporter=MetricsReporter(inner, metrics),
        triage=metrics.counted_triage(
            lambda queued: TriageOutcome(sealed=len(queued) - 1, failed=1)
        ),
    )
    loop.run_once(max_wait=1)
    assert len(ids) == 3
    assert _value(metrics, "sealpost_terminal_intake_messages_total", outcome="queued") == 3
    assert _value(metrics, "sealpost_terminal_triage_messages_total", result="sealed") == 2
    assert _value(metrics, "sealpost_terminal_triage_messages_total", result="failed") == 1


def test_the_witness_totals_are_read_from_the_loop() -> None:
    metrics = TerminalMetrics()
    loop, _inner = _loop(FakeGateway(), FakeEscrow(), metrics)
    assert _value(metrics, "sealpost_terminal_witnessed_log_size") == 0
    loop.summary.heads_cosigned = 3
    loop.summary.witnessed_size = 1234
    assert _value(metrics, "sealpost_terminal_witness_heads_cosigned_total") == 3
    assert _value(metrics, "sealpost_terminal_witnessed_log_size") == 1234
