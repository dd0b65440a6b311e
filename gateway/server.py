"""The gateway process: three TLS ports, health checking, reflection and graceful shutdown.

Relatives and staff connect to the public port (server TLS); institution
terminals to the terminal port, which requires a client certificate signed by
the gateway's CA (mutual TLS); browsers to the web port (the Connect protocol
over HTTPS, gateway/web.py), which serves the relatives' calls from the same
services. ``serve`` marks every service SERVING once the ports are bound,
reports NOT_SERVING while the database is unreachable, and on SIGTERM or SIGINT
lets in-flight calls finish within the grace period. With a metrics port it also
serves Prometheus metrics (gateway/metrics.py), and with an OTLP endpoint in the
environment it traces each call (gateway/tracing.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from sealpost import __version__
from sealpost._internal import exposition
from sealpost._internal.logs import get_logger
from sealpost.crypto import logentry, webrelease
from sealpost.crypto.limits import DEFAULT_LIMITS
from sealpost.crypto.logentry import ROW_RETENTION_OPERATION, LogAction
from sealpost.escrow import client as escrow_client
from sealpost.escrow._transport import KeyServerConfig
from sealpost.escrow.errors import EscrowError
from sealpost.gateway import (
    certreload,
    custody,
    directory,
    keystore,
    metrics,
    newsmail,
    store,
    tracing,
    translog,
    web,
    webapp,
    witnesses,
)
from sealpost.gateway.auth import JwksCache, StaffVerifier
from sealpost.gateway.calls import CallObserver, grpc_servicer
from sealpost.gateway.config import GatewayConfig
from sealpost.gateway.errors import ConfigError, GatewayError
from sealpost.gateway.guard import Guard
from sealpost.gateway.interceptors import ObservingInterceptor, RequestContextInterceptor
from sealpost.gateway.ratelimit import PublicLimits, RateLimiter
from sealpost.gateway.services.admin import AdminService
from sealpost.gateway.services.audit import AuditService
from sealpost.gateway.services.context import Context, wall_clock_ms
from sealpost.gateway.services.relative import RelativeService
from sealpost.gateway.services.review import ReviewService
from sealpost.gateway.services.terminal import TerminalService
from sealpost.gateway.storage.database import Database
from sealpost.gateway.storage.groupcommit import GroupCommit
from sealpost.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    log_pb2,
    relative_pb2,
    relative_pb2_grpc,
    review_pb2,
    review_pb2_grpc,
    terminal_pb2,
    terminal_pb2_grpc,
)

_log = get_logger("sealpost.gateway")

#: Largest request the server parses at all; an envelope's own limits are tighter.
MAX_MESSAGE_BYTES = DEFAULT_LIMITS.max_envelope_bytes + 1024 * 1024
#: Seconds between health probes of the database and the key server.
HEALTH_PROBE_SECONDS = 2.0
#: The health-check name under which the key server's state is reported. The gateway
#: itself stays SERVING while the key server is down: messages wait, nothing slips through.
KEY_SERVER_HEALTH = "sealpost.KeyServer"
#: The health-check name of the browser port (which also answers GET /healthz itself).
WEB_HEALTH = "sealpost.Web"


@dataclass(frozen=True)
class ServiceBinding:
    """One API service: its full name, the implementation, and its gRPC registration."""

    name: str
    #: The transport-neutral implementation (gateway/calls.py): request in, response out.
    service: Any
    #: The generated servicer base class and the function that adds one to a server.
    base: type
    register: Callable[[Any, aio.Server], None]
    descriptor: Any

    @property
    def servicer(self) -> Any:
        """The grpcio servicer over the implementation."""
        return grpc_servicer(self.service, self.base, self.descriptor)


def _binding(module: Any, grpc_module: Any, service_name: str, service: Any) -> ServiceBinding:
    descriptor = module.DESCRIPTOR.services_by_name[service_name]
    return ServiceBinding(
        descriptor.full_name,
        service,
        getattr(grpc_module, f"{service_name}Servicer"),
        getattr(grpc_module, f"add_{service_name}Servicer_to_server"),
        descriptor,
    )


def build_services(ctx: Context, ca: Any) -> list[ServiceBinding]:
    """The API v1 services over ``ctx``."""
    return [
        _binding(relative_pb2, relative_pb2_grpc, "RelativeService", RelativeService(ctx)),
        _binding(terminal_pb2, terminal_pb2_grpc, "TerminalService", TerminalService(ctx)),
        _binding(review_pb2, review_pb2_grpc, "ReviewService", ReviewService(ctx)),
        _binding(admin_pb2, admin_pb2_grpc, "AdminService", AdminService(ctx, ca)),
        _binding(audit_pb2, audit_pb2_grpc, "AuditService", AuditService(ctx)),
    ]


def build_context(
    config: GatewayConfig,
) -> tuple[Context, keystore.TlsFiles, custody.KeyServerCustody | None]:
    """Open the database, load the keys, and make the shared context."""
    tls = keystore.load_tls(config.state_dir)
    db = Database(config.database)
    db.check_schema()
    now = wall_clock_ms()
    kept: custody.KeyServerCustody | None = None
    if config.key_custody == "key-server":
        kept = custody.KeyServerCustody(config)
        try:
            keys = kept.keys(db.read(directory.published_directory_key))
        except EscrowError as exc:
            raise ConfigError([f"key server: {exc}"]) from exc
    else:
        keys = keystore.load_keys(config.state_dir)

    def prepare(connection: Connection) -> directory.Directory:
        store.ensure_default_regimes(connection, now)
        return directory.load_or_create(connection, keys, now)

    gateway_directory = db.write(prepare)

    def sign_batch_head(connection: Connection) -> object:
        """One head per batch that asked for one (a send: its answer carries the proof).

        A key server that cannot sign now (key_custody = key-server) does not fail the
        batch: its answers carry no proof, and the next periodic signing covers it.
        """
        try:
            return translog.sign_head_if_grown(
                connection, ctx.directory.keys.log, ctx.directory.log.id, ctx.clock()
            )
        except EscrowError as exc:
            _log.warning("gateway.sign_head_failed", error_type=type(exc).__name__)
            return None

    staff = None
    if config.staff_auth_enabled:
        staff = StaffVerifier(
            JwksCache(config.key_server_address), config.oidc_issuer, config.oidc_audience
        )
    ctx = Context(
        db=db,
        directory=gateway_directory,
        rate=RateLimiter(config.send_rate_per_minute),
        public_limits=PublicLimits.of(config.public_limits),
        staff=staff,
        group_commit=GroupCommit(db, scope=lambda c: translog.Deferred(c, sign_batch_head)),
        auditor_witnesses=witnesses.auditor_witnesses(config.witness_keys.keys),
    )
    return ctx, tls, kept


async def keep_keys(ctx: Context, kept: custody.KeyServerCustody, interval: float) -> None:
    """Keep the keys at the key server current, every ``interval`` seconds.

    Renew the gateway's token, refresh the session-token keys, adopt newer signing keys. A
    failure is logged and tried again next round; the keys in memory go on serving.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(kept.renew_token)
            await asyncio.to_thread(kept.tokens.refresh)
            published = await ctx.db.aread(directory.published_directory_key)
            newer = await asyncio.to_thread(kept.newer_keys, ctx.directory.keys, published)
            if newer is not None:
                adopt = functools.partial(
                    custody.adopt_keys, current=ctx.directory, keys=newer, now_ms=ctx.clock()
                )
                ctx.directory = await ctx.write(adopt)
        except (EscrowError, GatewayError, SQLAlchemyError) as exc:
            _log.warning("gateway.key_server_chore_failed", error_type=type(exc).__name__)


def _load_webapp(config: GatewayConfig, ctx: Context) -> webapp.WebApp | None:
    """The web app the browser port serves: none if off, or if the default is not built."""
    if config.web_app is None:
        return None
    if config.web_app == webapp.BUILT_APP and not webapp.BUILT_APP.is_dir():
        _log.info("gateway.web_app_not_built")
        return None
    try:
        app = webapp.load(config.web_app, ctx.directory.keys.directory.signing_key)
    except (OSError, webapp.WebAppError) as exc:
        raise ConfigError([f"web_app: {exc}"]) from None
    app.leaf_index, app.leaf = ctx.db.write(
        lambda connection: record_release(connection, app, ctx.clock())
    )
    _log.info("gateway.web_app", version=app.app_version, log_index=app.leaf_index)
    return app


def record_release(connection: Connection, app: webapp.WebApp, now_ms: int) -> tuple[int, bytes]:
    """The log entry (index, leaf) recording ``app``'s release; appended if not the newest.

    Taken under the log's lock, so that workers starting together record it once.
    """
    translog.size(connection, for_update=True)
    index = store.web_app_release_index(connection)
    if index is not None:
        (entry,) = translog.entries_at(connection, [index])
        event = logentry.decode_event(entry.leaf)
        if event.extra.get(webrelease.DIGEST_FIELD) == app.digest.hex():
            return index, entry.leaf
    appended = store.log(
        connection,
        LogAction.ADMIN_ACTION,
        store.GATEWAY_ACTOR,
        now_ms,
        [("web_app", app.app_version)],
        scope=translog.PUBLIC,
        operation=webrelease.OPERATION,
        **{webrelease.DIGEST_FIELD: app.digest.hex(), webrelease.VERSION_FIELD: app.app_version},
    )
    store.set_web_app_release_index(connection, appended.index)
    return appended.index, appended.leaf


class Gateway:
    """A built, not yet started, gateway server."""

    def __init__(
        self,
        config: GatewayConfig,
        ctx: Context,
        tls: keystore.TlsFiles,
        services: Sequence[ServiceBinding] | None = None,
        *,
        reuse_port: bool = False,
        gateway_metrics: metrics.GatewayMetrics | None = None,
        tracer: tracing.CallTracer | None = None,
    ) -> None:
        """A gateway over ``ctx``; ``gateway_metrics`` and ``tracer`` observe every call.

        The metrics are served on the metrics port if configured (a worker's are served
        by its supervisor).
        """
        self.config = config
        self.ctx = ctx
        self.tls = tls
        self.services = list(services or build_services(ctx, tls.ca_pair()))
        self.guard = Guard(ctx)
        self.metrics = gateway_metrics
        self.tracer = tracer
        observers: list[CallObserver] = []
        if gateway_metrics is not None:
            observers.append(gateway_metrics.requests)
        if tracer is not None:
            observers.append(tracer)
        interceptors: list[aio.ServerInterceptor] = [RequestContextInterceptor(self.guard)]
        if observers:
            interceptors.insert(0, ObservingInterceptor(observers))
        self.server = aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                # Several worker processes share the ports (gateway/workers.py); otherwise a
                # second gateway on the same port must fail to start, not share it by accident.
                ("grpc.so_reuseport", 1 if reuse_port else 0),
            ],
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        for binding in self.services:
            binding.register(binding.servicer, self.server)
        names = [b.name for b in self.services]
        health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
        reflection.enable_server_reflection(
            [*names, health_name, reflection.SERVICE_NAME], self.server
        )
        self.port = 0
        self.terminal_port = 0
        self.web_port: int | None = None
        self.metrics_port: int | None = None
        self.metrics_endpoint: exposition.MetricsEndpoint | None = None
        self.reuse_port = reuse_port
        self.web: web.BrowserPort | None = None
        self.web_context: ssl.SSLContext | None = None
        self.webapp: webapp.WebApp | None = None
        if config.web_port is not None:
            self.webapp = _load_webapp(config, ctx)
            app = web.application(
                self.services,
                self.guard,
                origins=config.web_origins,
                max_body=MAX_MESSAGE_BYTES,
                serving=lambda: bool(self._serving),
                webapp=self.webapp,
                observers=observers,
            )
            context = web.tls_context(tls.server, tls.server_key, allow_tls12=config.allow_tls12)
            self.web_context = context
            self.web = web.BrowserPort(app, context, grace_seconds=config.grace_seconds)
        self._serving: bool | None = None

    def _credentials(self, *, client_auth: bool) -> grpc.ServerCredentials:
        """TLS for a gRPC port; a renewed certificate on disk serves new connections at once."""
        files = certreload.CertificateFiles(
            self.tls.server, self.tls.server_key, self.tls.ca if client_auth else None
        )
        return files.credentials()

    async def start(self) -> tuple[int, int]:
        """Bind the ports and start; returns (public port, terminal port)."""
        try:
            self.port = self.server.add_secure_port(
                self.config.address, self._credentials(client_auth=False)
            )
            self.terminal_port = self.server.add_secure_port(
                self.config.terminal_address, self._credentials(client_auth=True)
            )
        except RuntimeError as exc:  # grpc's way of saying the bind failed
            raise OSError("the address is in use or not available") from exc
        if self.web is not None and self.config.web_port is not None:
            sock = web.listening_socket(
                self.config.host, self.config.web_port, reuse_port=self.reuse_port
            )
            self.web_port = await self.web.start(sock)
        if self.metrics is not None and self.config.metrics_port is not None:
            self.metrics_endpoint = exposition.MetricsEndpoint(
                self.metrics.registry, self.config.host, self.config.metrics_port
            )
            self.metrics_port = self.metrics_endpoint.start()
        await self.server.start()
        await self.set_health(serving=True)
        return self.port, self.terminal_port

    @property
    def ports(self) -> dict[str, int]:
        """The bound ports by name, as the port file gives them."""
        ports = {"port": self.port, "terminal_port": self.terminal_port}
        if self.web_port is not None:
            ports["web_port"] = self.web_port
        if self.metrics_port is not None:
            ports["metrics_port"] = self.metrics_port
        return ports

    async def stop(self) -> None:
        """Mark NOT_SERVING, let in-flight calls finish, then sign what they appended."""
        await self.set_health(serving=False)
        if self.web is not None:
            await asyncio.gather(self.server.stop(self.config.grace_seconds), self.web.stop())
        else:
            await self.server.stop(self.config.grace_seconds)
        await self.sign_if_grown()
        if self.ctx.group_commit is not None:
            await asyncio.to_thread(self.ctx.group_commit.close)
        self.ctx.db.dispose()
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.stop()
        if self.tracer is not None:
            await asyncio.to_thread(self.tracer.close)  # exports the spans still buffered

    async def set_health(self, *, serving: bool) -> None:
        """Report every service SERVING or NOT_SERVING."""
        if serving == self._serving:
            return
        self._serving = serving
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await self.health.set("", status)
        for binding in self.services:
            await self.health.set(binding.name, status)
        if self.web is not None:
            await self.health.set(WEB_HEALTH, status)

    async def watch_database(self) -> None:
        """Report NOT_SERVING while the database does not answer, SERVING when it does."""
        while True:
            await asyncio.sleep(HEALTH_PROBE_SECONDS)
            up = await asyncio.to_thread(self.ctx.db.ping)
            if self.metrics is not None and self.metrics.state is not None:
                self.metrics.state.database(up=up)
            if up != self._serving:
                _log.warning("gateway.database", status="up" if up else "down")
            await self.set_health(serving=up)

    async def sign_if_grown(self) -> log_pb2.SignedTreeHead | None:
        """Sign a tree head if the log has grown since the newest one; the head, or None.

        A read decides whether to try at all; the write decides again with the log's
        size row locked (translog.sign_head_if_grown), so that several gateway processes
        doing this side by side sign one head per growth. A failure is logged, not raised:
        the next round tries again.
        """
        keys, key_id = self.ctx.directory.keys.log, self.ctx.directory.log.id
        try:
            if not await self.ctx.db.aread(translog.needs_head):
                return None
            head = await self.ctx.write(
                lambda c: translog.sign_head_if_grown(c, keys, key_id, self.ctx.clock())
            )
        except (GatewayError, SQLAlchemyError, EscrowError) as exc:
            _log.warning("gateway.sign_head_failed", error_type=type(exc).__name__)
            return None
        if head is not None:
            size = log_pb2.TreeHead.FromString(head.tree_head).tree_size
            _log.debug("gateway.head_signed", tree_size=size)
        return head

    async def sign_heads(self) -> None:
        """Sign a head whenever the log has grown, every ``head_interval_seconds`` (SPEC P13)."""
        while True:
            await asyncio.sleep(self.config.head_interval_seconds)
            await self.sign_if_grown()

    async def apply_retention(self) -> int:
        """Delete settled messages older than the retention period, logged; how many.

        In one transaction: the rows go and an ADMIN_ACTION entry (``row_retention``)
        records the cutoff and the count, so that the auditor's replay drops the same
        messages (docs/operations.md, "Retention of rows"). Several gateways may run this
        side by side: the second finds nothing left and logs nothing.
        """
        now = self.ctx.clock()
        cutoff = now - int(self.config.retention_days * 86_400_000)

        def retain(connection: Connection) -> int:
            gone = store.delete_settled_before(connection, cutoff)
            if gone:
                store.log(
                    connection,
                    LogAction.ADMIN_ACTION,
                    store.GATEWAY_ACTOR,
                    now,
                    scope=translog.PUBLIC,
                    operation=ROW_RETENTION_OPERATION,
                    before_ms=str(cutoff),
                    messages=str(len(gone)),
                )
            return len(gone)

        try:
            deleted = await self.ctx.write(retain)
        except (GatewayError, SQLAlchemyError) as exc:
            _log.warning("gateway.retention_failed", error_type=type(exc).__name__)
            return 0
        if deleted:
            _log.info("gateway.retention", count=deleted)
        return deleted

    async def retain_rows(self) -> None:
        """Apply the retention period every ``retention_interval_seconds``."""
        while True:
            await self.apply_retention()
            await asyncio.sleep(self.config.retention_interval_seconds)

    async def record_state(self) -> bool:
        """Read the database's figures into the metrics once; False if the read failed."""
        assert self.metrics is not None
        assert self.metrics.state is not None
        try:
            snapshot = await asyncio.to_thread(self.ctx.db.read, metrics.read_state)
        except (GatewayError, SQLAlchemyError) as exc:
            self.metrics.state.refresh_failures.inc()
            _log.warning("gateway.metrics_failed", error_type=type(exc).__name__)
            return False
        self.metrics.state.record(snapshot, self.ctx.clock())
        return True

    async def refresh_metrics(self) -> None:
        """Read the database's figures every ``metrics.REFRESH_SECONDS`` (not at scrape time)."""
        while True:
            await self.record_state()
            await asyncio.sleep(metrics.REFRESH_SECONDS)

    async def watch_key_server(self, address: str) -> None:
        """Report the key server's state (reachable, unsealed) under KEY_SERVER_HEALTH."""
        config = KeyServerConfig(address, timeout=HEALTH_PROBE_SECONDS)
        last: str | None = None
        while True:
            try:
                state = await asyncio.to_thread(escrow_client.health, config)
                status = "ready" if state.ready else ("sealed" if state.sealed else "uninitialised")
            except EscrowError:
                status = "unreachable"
            if self.metrics is not None and self.metrics.state is not None:
                self.metrics.state.key_server_state(status)
            if status != last:
                log = _log.info if status == "ready" else _log.warning
                log("gateway.key_server", status=status)
                serving = (
                    health_pb2.HealthCheckResponse.SERVING
                    if status == "ready"
                    else health_pb2.HealthCheckResponse.NOT_SERVING
                )
                await self.health.set(KEY_SERVER_HEALTH, serving)
                last = status
            await asyncio.sleep(HEALTH_PROBE_SECONDS)


def news_mailer(config: GatewayConfig, ctx: Context) -> newsmail.NewsMailer | None:
    """The e-mail notices of news, when an SMTP relay is configured."""
    if not config.smtp_relay:
        return None
    host, _, port = config.smtp_relay.rpartition(":")
    relay = newsmail.Relay(
        host.strip("[]"), int(port), config.smtp_from, starttls=config.smtp_starttls
    )
    return newsmail.NewsMailer(
        ctx.db,
        relay,
        ctx.clock,
        interval_s=config.news_interval_seconds,
        quiet_s=config.news_quiet_seconds,
    )


async def serve(
    config: GatewayConfig,
    *,
    reuse_port: bool = False,
    on_ready: Callable[[dict[str, int]], None] | None = None,
    gateway_metrics: metrics.GatewayMetrics | None = None,
) -> None:
    """Run the gateway until SIGTERM or SIGINT, then shut down gracefully.

    ``reuse_port``, ``on_ready`` (told the bound ports) and ``gateway_metrics`` (recorded
    for the supervisor to serve) are for worker processes; a single gateway makes its
    own metrics when it has a metrics port.
    """
    ctx, tls, kept = await asyncio.to_thread(build_context, config)
    tracer = tracing.from_environment()
    if gateway_metrics is None and config.metrics_port is not None:
        gateway_metrics = metrics.GatewayMetrics()
    gateway = Gateway(
        config, ctx, tls, reuse_port=reuse_port, gateway_metrics=gateway_metrics, tracer=tracer
    )
    if kept is not None:
        watchers_extra = [asyncio.create_task(keep_keys(ctx, kept, config.key_refresh_seconds))]
    else:
        watchers_extra = []
    port, _ = await gateway.start()
    if on_ready is not None:
        on_ready(gateway.ports)
    config.write_port_file(gateway.ports)
    _log.info(
        "gateway.serving",
        address=config.host,
        port=port,
        web_port=gateway.web_port,
        metrics_port=gateway.metrics_port,
        pid=os.getpid(),
        version=__version__,
        database=ctx.db.dialect,
    )
    watchers = [
        asyncio.create_task(gateway.watch_database()),
        asyncio.create_task(gateway.sign_heads()),
    ]
    if gateway_metrics is not None and gateway_metrics.state is not None:
        gateway_metrics.state.database(up=True)  # it answered build_context a moment ago
        watchers.append(asyncio.create_task(gateway.refresh_metrics()))
    watchers += watchers_extra
    if config.key_server_address:
        watchers.append(asyncio.create_task(gateway.watch_key_server(config.key_server_address)))
    if config.retention_days:
        watchers.append(asyncio.create_task(gateway.retain_rows()))
    if gateway.web is not None and gateway.web_context is not None:
        files = certreload.CertificateFiles(gateway.tls.server, gateway.tls.server_key)
        watchers.append(
            asyncio.create_task(certreload.watch_browser_context(files, gateway.web_context))
        )
    mailer = news_mailer(config, ctx)
    if mailer is not None:
        mailer.start()
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
    for watcher in watchers:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    if mailer is not None:
        await mailer.stop()
    await gateway.stop()
    _log.info("gateway.stopped")
