"""The gateway's small certificate authority for TLS and terminals' mutual TLS.

X.509 is the one place Sealpost uses the ``cryptography`` package: gRPC's TLS
needs certificates, and PyNaCl has no X.509. Message cryptography never goes
through here. A terminal makes its key pair and a certificate signing request
itself; the gateway signs it with a certificate bound to one institution, and
records the certificate's fingerprint so that revocation takes effect at once.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sealpost.gateway.errors import InvalidArgument

MAX_VALID_DAYS = 398


@dataclass(frozen=True)
class KeyPair:
    """A PEM certificate and its PEM private key."""

    certificate_pem: bytes
    key_pem: bytes


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_ca(common_name: str = "Sealpost gateway CA") -> KeyPair:
    """A self-signed CA for the gateway's server certificate and terminal certificates."""
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return KeyPair(certificate.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _load_ca(ca: KeyPair) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    certificate = x509.load_pem_x509_certificate(ca.certificate_pem)
    key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidArgument("the CA key must be an EC key")
    return certificate, key


def issue_server_certificate(ca: KeyPair, hosts: list[str]) -> KeyPair:
    """A TLS server certificate for ``hosts`` (IP addresses or DNS names)."""
    ca_cert, ca_key = _load_ca(ca)
    key = _new_key()
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=MAX_VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return KeyPair(certificate.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def certificate_hosts(certificate_pem: bytes) -> list[str]:
    """The names and addresses a certificate is for (its subject alternative names)."""
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n.value) for n in names if isinstance(n, x509.IPAddress | x509.DNSName)]


def make_csr(common_name: str) -> tuple[bytes, bytes]:
    """A new key pair and a certificate signing request for it: (csr_pem, key_pem)."""
    key = _new_key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def sign_terminal_csr(
    ca: KeyPair, csr_pem: bytes, *, terminal_id: str, institution_id: str, valid_days: int
) -> bytes:
    """A client certificate for one terminal of one institution; ignores the CSR subject."""
    if not 1 <= valid_days <= MAX_VALID_DAYS:
        raise InvalidArgument(f"valid_days must be between 1 and {MAX_VALID_DAYS}")
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise InvalidArgument("csr_pem is not a PEM certificate signing request") from exc
    try:
        if not csr.is_signature_valid:
            raise InvalidArgument("the certificate signing request's signature does not verify")
    except InvalidSignature as exc:  # pragma: no cover - older cryptography raises instead
        raise InvalidArgument(
            "the certificate signing request's signature does not verify"
        ) from exc
    public_key = csr.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise InvalidArgument("terminal keys must be EC (P-256) keys")
    ca_cert, ca_key = _load_ca(ca)
    now = _now()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, terminal_id),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, institution_id),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


@functools.lru_cache(maxsize=1024)
def fingerprint(certificate_pem: bytes) -> str:
    """Hex SHA-256 of the certificate's DER encoding: how the gateway recognises a terminal.

    Remembered per certificate (a pure function of its bytes): every terminal call asks.
    """
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem)
    except ValueError as exc:
        raise InvalidArgument("not a PEM certificate") from exc
    return certificate.fingerprint(hashes.SHA256()).hex()


def expiry_ms(certificate_pem: bytes) -> int:
    """The certificate's notAfter in milliseconds since the epoch."""
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    return int(certificate.not_valid_after_utc.timestamp() * 1000)


def server_names(certificate_pem: bytes) -> list[str]:
    """The DNS names and IP addresses a server certificate is for, in its order."""
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(name.value) for name in names if isinstance(name, x509.DNSName | x509.IPAddress)]
