"""A gateway that is down, a wrong CA file, a name that does not resolve: one plain sentence.

Each is run as a person runs it (``python -m sealpost``, a real process, a real gateway),
and the whole of standard error is compared: no gRPC text, no C-core log line, unless
--verbose asks for the details.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sealpost._internal.devservers import GatewayProcess
from sealpost.gateway import pki

pytestmark = pytest.mark.integration


def _sealpost(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SEALPOST_", "GRPC_"))}
    return subprocess.run(
        [sys.executable, "-m", "sealpost", *args],
        capture_output=True,
        text=True,
        env={**clean, "SEALPOST_STAFF_TOKEN": "not-checked-before-the-connection", **(env or {})},
        timeout=60,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _other_ca(path: Path) -> Path:
    """A CA certificate that did not sign the gateway's."""
    path.write_bytes(pki.create_ca("Some other CA").certificate_pem)
    return path


def test_a_gateway_that_is_down(tmp_path: Path) -> None:
    address = f"127.0.0.1:{_free_port()}"
    ca = _other_ca(tmp_path / "ca.pem")

    down = _sealpost("review", "queue", "--gateway", address, "--ca-file", str(ca))

    assert down.returncode == 3
    assert down.stdout == ""
    assert down.stderr == (
        f"error: Nothing answers at {address}: is the gateway running, and is this its port? "
        "Check --gateway (SEALPOST_GATEWAY).\n"
        "  (--verbose shows the details)\n"
    )
    verbose = _sealpost("review", "queue", "--gateway", address, "--ca-file", str(ca), "--verbose")
    assert verbose.returncode == 3
    assert "  detail: failed to connect to all addresses" in verbose.stderr
    scripted = _sealpost("admin", "detainee", "list", "--json", "--gateway", address,
                         "--ca-file", str(ca))  # fmt: skip
    assert scripted.returncode == 3
    assert json.loads(scripted.stderr) == {
        "error": {
            "code": "gateway_unreachable",
            "message": f"Nothing answers at {address}: is the gateway running, and is this its "
            "port? Check --gateway (SEALPOST_GATEWAY).",
            "exit": 3,
        }
    }


def test_a_wrong_ca_file(gateway: GatewayProcess, tmp_path: Path) -> None:
    wrong = _other_ca(tmp_path / "other-ca.pem")

    refused = _sealpost("review", "queue", "--gateway", gateway.address, "--ca-file", str(wrong))

    assert refused.returncode == 2
    assert refused.stderr == (
        f"error: The TLS connection to the gateway at {gateway.address} failed: its certificate "
        f"is not signed by the CA in {wrong}, or it is not issued for that address. Check "
        "--ca-file (SEALPOST_CA_FILE) and --gateway.\n"
    )
    # The right CA file: the same command reaches the gateway (which then wants a real token).
    right = _sealpost(
        "review",
        "queue",
        "--gateway",
        gateway.address,
        "--ca-file",
        str(gateway.state_dir / "tls" / "ca.pem"),
        "--json",
    )
    assert json.loads(right.stderr)["error"]["code"] == "unauthenticated"


def test_a_missing_ca_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = _sealpost(
        "review", "queue", "--gateway", "127.0.0.1:1", "--ca-file", str(tmp_path / "nope.pem")
    )
    assert missing.returncode == 2
    assert missing.stderr == (
        f"error: Cannot read the CA file {tmp_path / 'nope.pem'}: No such file or directory. "
        "Check --ca-file (SEALPOST_CA_FILE).\n"
    )
    scripted = _sealpost("review", "queue", "--json", "--gateway", "127.0.0.1:1")
    assert scripted.returncode == 2
    assert json.loads(scripted.stderr)["error"]["code"] == "ca_file"
    usage = _sealpost("review", "queue", "--json", "--no-such-option")
    assert usage.returncode == 2
    assert json.loads(usage.stderr)["error"]["code"] == "usage"
