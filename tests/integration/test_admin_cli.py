"""``sealpost admin terminal``: issue, list and revoke terminal certificates through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from sealpost._internal.stack import Stack
from sealpost.clients.terminal.client import TerminalClient
from sealpost.v1 import admin_pb2, terminal_pb2

pytestmark = pytest.mark.integration


def _admin(stack: Stack, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    ca = stack.gateway.state_dir / "tls" / "ca.pem"
    env = {**os.environ, "SEALPOST_STAFF_TOKEN": token}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sealpost",
            "admin",
            "--gateway",
            stack.gateway.address,
            "--ca-file",
            str(ca),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_issue_list_revoke_terminal(stack: Stack, tmp_path: Path) -> None:
    admin = stack.staff(["administrator"], ["*"])
    admin.call(
        "admin",
        "CreateInstitution",
        admin_pb2.CreateInstitutionRequest(institution_id="pi-cli", name="PI CLI"),
    )
    _name, token = stack.staff_token(["administrator"], ["pi-cli"])
    out = tmp_path / "terminal"
    issued = _admin(
        stack, token, "--json", "terminal", "issue", "--institution", "pi-cli", "--out", str(out)
    )
    assert issued.returncode == 0, issued.stderr
    terminal_id = json.loads(issued.stdout)["terminalId"]
    assert oct((out / "terminal-key.pem").stat().st_mode & 0o777) == "0o600"

    client = TerminalClient(
        stack.terminal_endpoint,
        stack.pin,
        (out / "terminal-key.pem").read_bytes(),
        (out / "terminal.pem").read_bytes(),
    )
    client.stub.ListHeldDetainees(terminal_pb2.ListHeldDetaineesRequest(), timeout=10)

    listed = _admin(stack, token, "terminal", "list")
    assert terminal_id in listed.stdout
    assert "active" in listed.stdout

    # Another institution's administrator cannot revoke it.
    _other, other_token = stack.staff_token(["administrator"], ["pi-elsewhere"])
    refused = _admin(stack, other_token, "terminal", "revoke", terminal_id)
    assert refused.returncode == 1
    assert refused.stderr == "error: outside your institutions\n"

    assert _admin(stack, token, "terminal", "revoke", terminal_id).returncode == 0
    with pytest.raises(grpc.RpcError) as revoked:
        client.stub.ListHeldDetainees(terminal_pb2.ListHeldDetaineesRequest(), timeout=10)
    assert revoked.value.code() == grpc.StatusCode.UNAUTHENTICATED
    client.close()


def test_admin_without_credentials_says_how_to_sign_in(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not used")
    result = subprocess.run(
        [sys.executable, "-m", "sealpost", "admin", "--ca-file", str(ca), "terminal", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("SEALPOST_")},
    )
    assert result.returncode == 2
    assert "--key-server and --user" in result.stderr
