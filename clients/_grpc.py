"""Channels to the gateway and per-call credentials, shared by every client program."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from sealpost.errors import SealpostError

#: Messages up to the envelope limit (25 MiB of content) plus framing.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_OPTIONS: Sequence[tuple[str, int]] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
)


class ClientError(SealpostError):
    """A call to the gateway failed; carries the gRPC status code and the gateway's words."""

    def __init__(self, code: grpc.StatusCode, message: str, *, address: str = "") -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        #: The gateway's address, when the caller knew it (for the words of a failure).
        self.address = address

    @classmethod
    def of(cls, error: grpc.RpcError, *, address: str = "") -> ClientError:
        """Wrap a gRPC error."""
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        details = error.details() if hasattr(error, "details") else str(error)
        return cls(code, details or "", address=address)


@dataclass(frozen=True)
class Endpoint:
    """Where the gateway is and which CA its certificate chains to."""

    address: str
    ca_pem: bytes

    def channel(self) -> grpc.Channel:
        """A TLS channel (server authentication only)."""
        return grpc.secure_channel(
            self.address, grpc.ssl_channel_credentials(self.ca_pem), options=_OPTIONS
        )

    def mutual_tls_channel(self, key_pem: bytes, certificate_pem: bytes) -> grpc.Channel:
        """A mutual-TLS channel presenting a client certificate (terminals)."""
        credentials = grpc.ssl_channel_credentials(self.ca_pem, key_pem, certificate_pem)
        return grpc.secure_channel(self.address, credentials, options=_OPTIONS)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying a bearer token."""
    return (("authorization", f"Bearer {token}"),)
