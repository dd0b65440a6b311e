"""``sealpost terminal intake --metrics-port``: a following intake, scraped while it runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sealpost._internal.exposition import samples
from sealpost._internal.stack import Stack, approve_all
from sealpost.v1 import admin_pb2
from tests.integration.test_terminal_cli import (
    INSTITUTION,
    Terminal,
    _enroll_args,
    _issue,
    _terminal_token,
)

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> tuple[str, Samples]:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback
        text = answer.read().decode()
    return text, {(n, frozenset(labels.items())): v for n, labels, v in samples(text)}


def get(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_following_intake_serves_its_metrics(stack: Stack, tmp_path: Path) -> None:
    admin = stack.staff(["administrator"], ["*"])
    admin.call(
        "admin",
        "CreateInstitution",
        admin_pb2.CreateInstitutionRequest(institution_id=INSTITUTION, name="PI metrics"),
    )
    admin.call(
        "admin",
        "IntakeDetainee",
        admin_pb2.IntakeDetaineeRequest(
            detainee_id="d-metrics", institution_id=INSTITUTION, regime="regular"
        ),
    )
    _name, staff_token = stack.staff_token(["administrator"], [INSTITUTION])
    terminal = Terminal(tmp_path / "profile", _terminal_token(stack))
    _issue(stack, staff_token, tmp_path / "issued")
    assert terminal(*_enroll_args(stack, tmp_path / "issued")).returncode == 0
    assert terminal("intake", "--once").returncode == 0  # makes the mailbox key
    relative = stack.relative("Grootvader Pietersen")
    relative.request_contact("d-metrics")
    approve_all(admin, INSTITUTION)
    sent = [
        relative.send_sealed(relative.seal("d-metrics", text)).message_id
        for text in ("Beste jongen, tot snel", "Nog een brief")
    ]

    following = subprocess.Popen(
        [sys.executable, "-m", "sealpost", "terminal", "intake", "--metrics-port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **terminal.env},
    )
    try:
        assert following.stdout is not None
        first = json.loads(following.stdout.readline())
        assert first["event"] == "metrics"
        url = first["url"]
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/metrics")
        deadline = time.monotonic() + 60
        while True:
            text, found = scrape(url)
            released = get(found, "sealpost_terminal_intake_messages_total", outcome="released")
            witnessed = get(found, "sealpost_terminal_witnessed_log_size")
            if (released == 2 and witnessed) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        following.send_signal(signal.SIGTERM)
        out, err = following.communicate(timeout=60)
    assert following.returncode == 0, err

    assert get(found, "sealpost_terminal_intake_messages_total", outcome="released") == 2
    assert get(found, "sealpost_terminal_intake_messages_total", outcome="queued") == 0
    batches = get(found, "sealpost_terminal_intake_batches_total")
    assert batches is not None
    assert batches >= 1
    assert get(found, "sealpost_terminal_escrowed_keys_total") == 2
    escrow_calls = get(found, "sealpost_terminal_escrow_duration_seconds_count")
    assert escrow_calls is not None
    assert escrow_calls >= 1
    assert get(found, "sealpost_terminal_escrow_failures_total", reason="unavailable") == 0
    assert get(found, "sealpost_terminal_key_server_state", state="ok") == 1
    assert get(found, "sealpost_terminal_waiting_for_key_server") == 0
    cosigned = get(found, "sealpost_terminal_witness_heads_cosigned_total")
    assert cosigned is not None
    assert cosigned >= 1
    witnessed = get(found, "sealpost_terminal_witnessed_log_size")
    assert witnessed is not None
    assert witnessed > 0
    for secret in [
        *(m.hex() for m in sent),
        relative.account_id,
        "Grootvader",
        "d-metrics",
        "Beste jongen",
    ]:
        assert secret not in text, secret
    # The summary still ends the run, as without metrics.
    assert json.loads(out.splitlines()[-1])["submitted"] == 2
