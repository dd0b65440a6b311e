"""A staff member's session: an identity token from the key server, presented to the gateway."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import grpc

from sealpost.clients._grpc import ClientError, Endpoint, bearer
from sealpost.crypto import keyrecords
from sealpost.crypto.keyrecords import DirectoryPin, VerifiedKey
from sealpost.v1 import (
    admin_pb2_grpc,
    audit_pb2_grpc,
    keys_pb2,
    relative_pb2,
    relative_pb2_grpc,
    review_pb2_grpc,
)


@dataclass(frozen=True)
class PinnedDirectory:
    """The directory and log key records, verified against the pinned directory key."""

    directory: VerifiedKey
    log: VerifiedKey
    revocations: list[keys_pb2.KeyRevocation]
    reply: relative_pb2.GetDirectoryResponse


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

    def directory(self, pin: DirectoryPin) -> PinnedDirectory:
        """The gateway's directory and log records, checked against ``pin`` (SPEC P7)."""
        stub = relative_pb2_grpc.RelativeServiceStub(self.channel)
        try:
            reply = stub.GetDirectory(relative_pb2.GetDirectoryRequest(), timeout=30)
        except grpc.RpcError as exc:
            raise ClientError.of(exc) from exc
        now = time.time_ns() // 1_000_000
        revocations = list(reply.revocations)
        directory = keyrecords.verify_directory_record(
            reply.directory_key,
            pin,
            now_ms=now,
            revocations=revocations,
            successions=reply.successions,
        )
        log = keyrecords.verify_key_record(
            reply.log_key,
            directory,
            now_ms=now,
            revocations=revocations,
            purpose=keys_pb2.KEY_PURPOSE_LOG,
        )
        return PinnedDirectory(directory, log, revocations, reply)

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
