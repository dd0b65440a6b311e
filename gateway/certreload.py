"""The gateway's TLS certificate, renewed on disk and taken up without a restart.

The server certificate and key live at ``<state>/tls/server.pem`` and
``server-key.pem`` (the organisation's own certificate may be put there, or linked
there from its certificate manager). The gRPC ports ask for the certificate at every
new connection (gRPC's dynamic server credentials): when the files changed and the new
key matches the new certificate, new connections get it; connections already open keep
theirs. A half-written renewal (a certificate whose key is not there yet) is not taken
up: the old pair serves until both files agree. The browser port's TLS context is
reloaded the same way by :func:`watch_browser_context`.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sealpost._internal.logs import get_logger

_log = get_logger("sealpost.gateway.tls")

#: Seconds between two looks at the files for the browser port.
BROWSER_RELOAD_SECONDS = 5.0


@dataclass
class CertificateFiles:
    """A certificate, its key and (for mutual TLS) the CA clients' certificates chain to."""

    certificate: Path
    key: Path
    client_ca: Path | None = None
    _stamp: tuple[int, ...] | None = field(default=None, repr=False)

    def stamp(self) -> tuple[int, ...]:
        """What changes when a file is replaced or rewritten: size and time, in nanoseconds."""
        files = [self.certificate, self.key, *([self.client_ca] if self.client_ca else [])]
        return tuple(n for p in files for n in (p.stat().st_mtime_ns, p.stat().st_size))

    def pair(self) -> tuple[bytes, bytes] | None:
        """(key, certificate) PEM if the key belongs to the certificate; None if not (yet)."""
        key_pem, certificate_pem = self.key.read_bytes(), self.certificate.read_bytes()
        try:
            certificate = x509.load_pem_x509_certificate(certificate_pem)
            key = serialization.load_pem_private_key(key_pem, password=None)
        except ValueError:
            return None
        spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        if key.public_key().public_bytes(*spki) != certificate.public_key().public_bytes(*spki):
            return None
        return key_pem, certificate_pem

    def configuration(self) -> grpc.ServerCertificateConfiguration | None:
        """The gRPC certificate configuration of the files as they are, or None if unusable."""
        pair = self.pair()
        if pair is None:
            return None
        root = self.client_ca.read_bytes() if self.client_ca else None
        return grpc.ssl_server_certificate_configuration([pair], root_certificates=root)

    def changed(self) -> bool:
        """Whether the files changed since the last look (and remember this look)."""
        try:
            stamp = self.stamp()
        except OSError:
            return False  # mid-replacement: look again at the next connection
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        return True

    def credentials(self) -> grpc.ServerCredentials:
        """Server credentials that take up a renewed certificate at the next connection."""
        self.changed()
        initial = self.configuration()
        if initial is None:
            raise ValueError(f"{self.key} does not belong to {self.certificate}")

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            if not self.changed():
                return None
            fresh = self.configuration()
            if fresh is None:
                self._stamp = None  # not a pair yet: try again next time
                return None
            _log.info("gateway.tls_renewed", certificate=str(self.certificate))
            return fresh

        # The stubs say the fetcher returns a configuration; gRPC takes None as "unchanged".
        return grpc.dynamic_ssl_server_credentials(
            initial,
            fetch,  # type: ignore[arg-type]
            require_client_authentication=self.client_ca is not None,
        )


async def watch_browser_context(files: CertificateFiles, context: ssl.SSLContext) -> None:
    """Reload the browser port's certificate when the files change (new handshakes get it)."""
    files.changed()
    while True:
        await asyncio.sleep(BROWSER_RELOAD_SECONDS)
        if files.changed() and files.pair() is not None:
            try:
                context.load_cert_chain(files.certificate, files.key)
            except (OSError, ssl.SSLError):
                files._stamp = None
                continue
            _log.info("gateway.tls_renewed", certificate=str(files.certificate), port="browser")
