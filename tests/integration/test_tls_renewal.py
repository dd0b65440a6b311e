"""A renewed TLS certificate is served without a restart, on every port.

A running gateway's certificate is renewed on disk (`sealpost gateway renew-certificate`,
from the state folder's own CA); the same process then presents the new certificate to
new connections on the public port, the terminals' mutual-TLS port and the browser port,
and calls keep working. A half-written renewal (a certificate whose key is not there)
is not taken up: the old pair keeps serving.
"""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import pytest
from cryptography import x509

from sealpost._internal.devservers import GatewayProcess
from sealpost.gateway import pki
from tests.programs import sealpost

pytestmark = pytest.mark.integration


def _serial(port: int, ca: Path) -> int:
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _eventually(port: int, ca: Path, serial: int) -> int:
    deadline = time.monotonic() + 15
    while (seen := _serial(port, ca)) != serial and time.monotonic() < deadline:
        time.sleep(0.5)
    return seen


def test_a_renewed_certificate_serves_new_connections_without_a_restart(tmp_path: Path) -> None:
    gateway = GatewayProcess(tmp_path / "gateway", env={"SEALPOST_WEB_APP": "off"})
    gateway.extra_args = ["--web-port", "0"]
    gateway.start()
    try:
        ca = gateway.state_dir / "tls" / "ca.pem"
        certificate = gateway.state_dir / "tls" / "server.pem"
        pid = gateway.process.pid
        before = x509.load_pem_x509_certificate(certificate.read_bytes()).serial_number
        assert _serial(gateway.port, ca) == before

        # Half a renewal: a new certificate without its key is not taken up.
        other = pki.issue_server_certificate(
            pki.KeyPair(ca.read_bytes(), (ca.parent / "ca-key.pem").read_bytes()),
            ["127.0.0.1"],
        )
        old_certificate = certificate.read_bytes()
        certificate.write_bytes(other.certificate_pem)
        assert _serial(gateway.port, ca) == before
        certificate.write_bytes(old_certificate)

        done = sealpost("gateway", "renew-certificate", "--state-dir", str(gateway.state_dir))
        assert done.returncode == 0, done.stderr
        after = x509.load_pem_x509_certificate(certificate.read_bytes()).serial_number
        assert after != before
        assert _eventually(gateway.port, ca, after) == after
        assert _eventually(gateway.terminal_port, ca, after) == after
        assert _eventually(gateway.web_port, ca, after) == after
        assert gateway.process.pid == pid  # the same process: no restart
        assert pki.certificate_hosts(certificate.read_bytes()) == ["127.0.0.1", "localhost"]
    finally:
        gateway.stop()
