"""The real-server fixtures themselves: OpenBao starts, answers, audits and is torn down."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

from sealpost._internal.devservers import DevServerError, OpenBaoDevServer

pytestmark = pytest.mark.integration


def _get(server: OpenBaoDevServer, path: str) -> dict[str, object]:
    url = f"{server.address}{path}"
    request = urllib.request.Request(url, headers={"X-Vault-Token": server.root_token})  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
        body: dict[str, object] = json.load(response)
        return body


def test_openbao_starts_answers_and_is_torn_down(tmp_path: Path) -> None:
    server = OpenBaoDevServer(tmp_path)
    server.start()
    pid = server.pid
    assert pid is not None
    try:
        health = server.health()
        assert health["initialized"] is True
        assert health["sealed"] is False
        assert server.address.startswith("http://127.0.0.1:")
        audit = _get(server, "/v1/sys/audit")
        assert "sealpost-audit/" in audit
        assert server.audit_log.exists()
        assert oct(server.audit_log.stat().st_mode & 0o777) == "0o600"
    finally:
        server.stop()
    assert server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(DevServerError, match="not answering"):
        server.health()


def test_every_request_is_in_the_audit_log(openbao: OpenBaoDevServer) -> None:
    _get(openbao, "/v1/sys/mounts")
    lines = [json.loads(line) for line in openbao.audit_log.read_text().splitlines()]
    paths = [entry["request"]["path"] for entry in lines if entry.get("type") == "request"]
    assert "sys/mounts" in paths
    # Tokens are HMAC'd in the audit log, never written in clear.
    assert openbao.root_token not in openbao.audit_log.read_text()


def test_root_token_is_random_per_server(tmp_path: Path) -> None:
    a, b = OpenBaoDevServer(tmp_path / "a"), OpenBaoDevServer(tmp_path / "b")
    assert a.root_token != b.root_token
    assert a.port != b.port or a.workdir != b.workdir
