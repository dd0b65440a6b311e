"""Escrow key rotation and retention through `sealpost admin key|retention`, and the key
server's state in the gateway's health, against an OpenBao of the test's own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sealpost._internal.devservers import gateway_health
from sealpost._internal.stack import (
    Stack,
    approve_all,
    setup_institutions,
)
from sealpost.crypto.logentry import LogAction, decode_event
from sealpost.escrow.errors import EscrowError
from sealpost.v1 import admin_pb2, audit_pb2, common_pb2, log_pb2

pytestmark = pytest.mark.integration

A = "pi-keys"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: what this module tests does not depend on the database."""
    return f"sqlite:///{tmp_path / 'keys.db'}"


def _admin_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    _name, session, token = stack.staff_login(["administrator"], ["*"])
    env = {
        **os.environ,
        "SEALPOST_STAFF_TOKEN": token,
        "SEALPOST_KEY_SERVER_TOKEN": session.token,
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sealpost",
            "admin",
            "--gateway",
            stack.gateway.address,
            "--ca-file",
            str(stack.gateway.state_dir / "tls" / "ca.pem"),
            "--key-server",
            stack.openbao.address,
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_rotation_keeps_old_messages_readable_and_retention_shreds_them(
    own_stack: Stack,
) -> None:
    stack = own_stack
    admin, terminals = setup_institutions(stack, [("d-k", A, "regular")])
    admin.call(
        "admin",
        "SetRegime",
        admin_pb2.SetRegimeRequest(
            regime=admin_pb2.Regime(name="screen-all", policy=common_pb2.REGIME_POLICY_SCREEN_ALL)
        ),
    )
    admin.call(
        "admin",
        "SetDetaineeRegime",
        admin_pb2.SetDetaineeRegimeRequest(detainee_id="d-k", regime="screen-all"),
    )
    relative = stack.relative()
    relative.request_contact("d-k")
    approve_all(admin, A)
    terminal = terminals[A]
    old = relative.send("d-k", "onder versie 1")
    terminal.take_in(terminal.intake(), stack.escrow_for(A))

    info = _admin_cli(stack, "key", "info")
    assert info.returncode == 0, info.stderr
    assert "latest v1" in info.stdout
    rotated = _admin_cli(stack, "key", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert "v2" in rotated.stdout

    new = relative.send("d-k", "onder versie 2")
    terminal.take_in(terminal.intake(), stack.escrow_for(A))
    screener = stack.reviewer(["screener"], [A])
    assert screener.open(old.message_id).text == "onder versie 1"
    assert screener.open(new.message_id).text == "onder versie 2"

    # Nothing is old enough for a 30-day retention yet.
    nothing = _admin_cli(stack, "retention", "--keep-days", "30", "--yes")
    assert nothing.returncode == 0, nothing.stderr
    assert "nothing to retire" in nothing.stdout
    shred = _admin_cli(stack, "retention", "--retire-below", "2", "--yes")
    assert shred.returncode == 0, shred.stderr
    assert "retired versions [1]" in shred.stdout

    # Version 1 is gone for good: the screener can no longer open the old message.
    with pytest.raises(EscrowError):
        screener.open(old.message_id)
    assert screener.open(new.message_id).text == "onder versie 2"

    # Both key events are in the transparency log.
    auditor = stack.staff(["auditor"], ["*"])
    head = auditor.call("audit", "GetTreeHead", audit_pb2.GetTreeHeadRequest(fresh=True))
    size = log_pb2.TreeHead.FromString(head.tree_head.tree_head).tree_size
    entries = auditor.call("audit", "GetEntries", audit_pb2.GetEntriesRequest(start=0, end=size))
    actions = [decode_event(e.leaf).action for e in entries.entries]
    assert LogAction.ESCROW_KEY_ROTATED in actions
    assert LogAction.RETENTION_APPLIED in actions


def test_gateway_health_reports_the_key_server_and_stays_up(own_stack: Stack) -> None:
    stack = own_stack
    name = "sealpost.KeyServer"

    def status() -> str:
        return gateway_health(stack.gateway.address, stack.gateway.ca_pem, service=name)

    assert status() == "SERVING"
    stack.openbao.seal()
    deadline = time.monotonic() + 15
    while status() != "NOT_SERVING" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status() == "NOT_SERVING"
    assert gateway_health(stack.gateway.address, stack.gateway.ca_pem) == "SERVING"
    stack.openbao.unseal()
    deadline = time.monotonic() + 15
    while status() != "SERVING" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status() == "SERVING"
    assert "gateway.key_server" in stack.gateway.log_file.read_text()
