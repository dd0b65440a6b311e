"""The gateway process: a gRPC server with health checking, reflection and graceful shutdown.

``serve`` builds the server from a ``GatewayConfig``, marks every service
SERVING once the port is bound, and on SIGTERM or SIGINT marks them
NOT_SERVING, lets in-flight calls finish within the grace period and stops.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sealpost import __version__
from sealpost._internal.logs import get_logger
from sealpost.gateway.config import GatewayConfig
from sealpost.gateway.interceptors import RequestContextInterceptor
from sealpost.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    relative_pb2,
    relative_pb2_grpc,
    review_pb2,
    review_pb2_grpc,
    terminal_pb2,
    terminal_pb2_grpc,
)

_log = get_logger("sealpost.gateway")

#: Largest request the server accepts; an envelope's own limits are tighter
#: (see crypto's limits), this only bounds what is parsed at all.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ServiceBinding:
    """One gRPC service: its full name, the implementation and how to register it."""

    name: str
    servicer: Any
    register: Callable[[Any, aio.Server], None]


def default_services() -> list[ServiceBinding]:
    """The API v1 services. Methods not yet implemented answer UNIMPLEMENTED.

    The generated servicer base classes answer UNIMPLEMENTED for every method;
    their typing stubs declare them abstract, hence the ignores below.
    """
    return [
        ServiceBinding(
            relative_pb2.DESCRIPTOR.services_by_name["RelativeService"].full_name,
            relative_pb2_grpc.RelativeServiceServicer(),  # type: ignore[abstract]
            relative_pb2_grpc.add_RelativeServiceServicer_to_server,
        ),
        ServiceBinding(
            terminal_pb2.DESCRIPTOR.services_by_name["TerminalService"].full_name,
            terminal_pb2_grpc.TerminalServiceServicer(),  # type: ignore[abstract]
            terminal_pb2_grpc.add_TerminalServiceServicer_to_server,
        ),
        ServiceBinding(
            review_pb2.DESCRIPTOR.services_by_name["ReviewService"].full_name,
            review_pb2_grpc.ReviewServiceServicer(),  # type: ignore[abstract]
            review_pb2_grpc.add_ReviewServiceServicer_to_server,
        ),
        ServiceBinding(
            admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
            admin_pb2_grpc.AdminServiceServicer(),  # type: ignore[abstract]
            admin_pb2_grpc.add_AdminServiceServicer_to_server,
        ),
        ServiceBinding(
            audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
            audit_pb2_grpc.AuditServiceServicer(),  # type: ignore[abstract]
            audit_pb2_grpc.add_AuditServiceServicer_to_server,
        ),
    ]


class Gateway:
    """A built, not yet started, gateway server."""

    def __init__(self, config: GatewayConfig, services: Sequence[ServiceBinding]) -> None:
        self.config = config
        self.services = list(services)
        self.server = aio.server(
            interceptors=[RequestContextInterceptor()],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ],
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        for binding in self.services:
            binding.register(binding.servicer, self.server)
        names = [b.name for b in self.services]
        reflection.enable_server_reflection(
            [
                *names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            self.server,
        )
        self.port = 0

    async def start(self) -> int:
        """Bind and start; returns the bound port and marks every service SERVING."""
        try:
            self.port = self.server.add_insecure_port(self.config.address)
        except RuntimeError as exc:  # grpc's way of saying the bind failed
            raise OSError("the address is in use or not available") from exc
        await self.server.start()
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        return self.port

    async def stop(self) -> None:
        """Mark NOT_SERVING, then let in-flight calls finish within the grace period."""
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(self.config.grace_seconds)

    async def _set_health(self, status: int) -> None:
        await self.health.set("", status)
        for binding in self.services:
            await self.health.set(binding.name, status)


async def serve(config: GatewayConfig, services: Sequence[ServiceBinding] | None = None) -> None:
    """Run the gateway until SIGTERM or SIGINT, then shut down gracefully."""
    gateway = Gateway(config, default_services() if services is None else services)
    port = await gateway.start()
    if config.port_file is not None:
        tmp = config.port_file.with_name(config.port_file.name + ".tmp")
        tmp.write_text(f"{port}\n")
        tmp.replace(config.port_file)  # atomic: readers never see a half-written port
    _log.info(
        "gateway.serving", address=config.host, port=port, pid=os.getpid(), version=__version__
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    await stop.wait()
    _log.info("gateway.stopping", signal=received[0], grace_seconds=config.grace_seconds)
    await gateway.stop()
    _log.info("gateway.stopped")
