"""TLS 1.3 only on the gateway's ports by default; TLS 1.2 only when an operator allows it."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest

from sealpost._internal.devservers import GatewayProcess

pytestmark = pytest.mark.integration


def handshake(port: int, *, tls12: bool) -> str:
    """The TLS version a client that speaks only TLS 1.2 (or only 1.3) agrees on, or the error."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    if tls12:
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    else:
        context.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw) as tls,
        ):
            return str(tls.version())
    except (ssl.SSLError, OSError) as exc:
        return f"refused: {exc.__class__.__name__}"


def test_the_gateway_speaks_tls_13_only(gateway: GatewayProcess) -> None:
    for port in (gateway.port, gateway.terminal_port):
        assert handshake(port, tls12=True).startswith("refused"), port
    assert handshake(gateway.port, tls12=False) == "TLSv1.3"


def test_tls_12_is_accepted_when_allowed(tmp_path: Path) -> None:
    allowed = GatewayProcess(tmp_path / "old-clients", env={"SEALPOST_ALLOW_TLS12": "true"})
    allowed.start()
    try:
        assert handshake(allowed.port, tls12=True) == "TLSv1.2"
        assert handshake(allowed.port, tls12=False) == "TLSv1.3"
    finally:
        allowed.stop()
