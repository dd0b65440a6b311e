"""TLS 1.3 only on the gateway's ports, unless an operator allows TLS 1.2 for old clients.

grpcio (1.85) has no server option for the lowest TLS version (gRPC Core has one; the
Python binding does not pass it on: grpc/grpc#43074 and #43080 add it, unmerged). gRPC
Core does read ``GRPC_SSL_CIPHER_SUITES``, the cipher suites it offers for TLS 1.2 and
older; TLS 1.3 suites are not affected by it. So the gateway offers TLS 1.2 a single
suite its own certificate cannot serve (an RSA-signed suite for its ECDSA key, an ECDSA
one for an RSA key): no TLS 1.2 handshake can complete, and TLS 1.3 ones do.
tests/integration/test_tls_policy.py checks both against the running gateway.

Core reads the variable once, when grpc is loaded, so ``sealpost gateway serve`` starts
itself again, once, with the variable set (``restart_with_tls_policy``). Worker
processes inherit it. With ``--allow-tls12`` the variable is left as the operator set it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

CIPHER_ENV: Final = "GRPC_SSL_CIPHER_SUITES"
#: TLS 1.2 suites that need the other kind of certificate than the gateway's.
_NOT_FOR_EC: Final = "ECDHE-RSA-AES128-GCM-SHA256"
_NOT_FOR_RSA: Final = "ECDHE-ECDSA-AES128-GCM-SHA256"


def tls12_blocking_suites(server_key: Path) -> str:
    """The TLS 1.2 cipher list that no client can complete with this server key."""
    key = load_pem_private_key(server_key.read_bytes(), password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return _NOT_FOR_EC
    if isinstance(key, rsa.RSAPrivateKey):
        return _NOT_FOR_RSA
    raise ValueError("the gateway's TLS key is neither ECDSA nor RSA")


def wanted_suites(server_key: Path, *, allow_tls12: bool) -> str | None:
    """What ``GRPC_SSL_CIPHER_SUITES`` must be; None: leave it as it is."""
    return None if allow_tls12 else tls12_blocking_suites(server_key)


def restart_with_tls_policy(server_key: Path, *, allow_tls12: bool) -> None:
    """Start this command again with the cipher setting, unless it is already in place.

    Returns only when nothing needs to change; otherwise this process is replaced by the
    same command (same pid, same arguments, the one variable added).
    """
    wanted = wanted_suites(server_key, allow_tls12=allow_tls12)
    if wanted is None or os.environ.get(CIPHER_ENV) == wanted:
        return
    environment = {**os.environ, CIPHER_ENV: wanted}
    os.execve(  # noqa: S606 - our own interpreter and command, no shell
        sys.executable, [sys.executable, "-m", "sealpost", *sys.argv[1:]], environment
    )
