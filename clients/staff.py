"""A staff member's session: an identity token from the key server, presented to the gateway."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from sealpost.clients._grpc import ClientError, Endpoint, bearer
from sealpost.v1 import admin_pb2_grpc, audit_pb2_grpc, review_pb2_grpc


@dataclass
class StaffClient:
    """Calls the staff services with an identity token."""

    endpoint: Endpoint
    token: str
    _channel: grpc.Channel | None = None

    @property
    def channel(self) -> grpc.Channel:
        """The TLS channel to the public port."""
        if self._channel is None:
            self._channel = self.endpoint.channel()
        return self._channel

    def close(self) -> None:
        """Close the channel."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def call(self, service: str, method: str, request: object, timeout: float = 60) -> Any:
        """Call ``service``.``method`` ("admin", "review" or "audit"); ClientError on failure."""
        stubs = {
            "admin": admin_pb2_grpc.AdminServiceStub,
            "review": review_pb2_grpc.ReviewServiceStub,
            "audit": audit_pb2_grpc.AuditServiceStub,
        }
        stub = stubs[service](self.channel)
        try:
            return getattr(stub, method)(request, metadata=bearer(self.token), timeout=timeout)
        except grpc.RpcError as exc:
            raise ClientError.of(exc) from exc
