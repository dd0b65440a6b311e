"""The send path against a bare gRPC echo, measured in the same run with the same client.

Send path = SDK seal (1 KiB) + gRPC over TLS + gateway verify + store + log, 8 concurrent
senders, each its own account. Reference = the same 8-way client calling a bare grpcio
unary echo server (its own process) with a 1 KiB payload, over TLS as the gateway's
public port (and, for continuity, in plain text). Reports throughput and its ratio to the
echo's (the old target, at least 0.6) and p50/p99 latency, for SQLite and PostgreSQL,
with the gateway as one process and as two worker processes (``--workers 2``).

Throughput on a shared two-core machine moves with the load, and measures the senders
too. The gateway's own cost is its CPU time per accepted send (all its processes, from
/proc), set against the TLS echo server's CPU time per call in the same run: the targets
are at most 2x on SQLite and 2.5x on PostgreSQL (docs/performance.md, fourth round).
The PostgreSQL server's and the senders' (this process) CPU per send are reported too.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc import aio

from bench import Result
from bench.processes import context_switches, cpu_seconds, family
from bench.profiling import profiled
from sealpost._internal.devservers import OpenBaoDevServer, PostgresServer
from sealpost._internal.stack import (
    Stack,
    approve_all,
    bootstrap_openbao,
    setup_institutions,
    start_gateway,
)
from sealpost.clients._grpc import bearer
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto.envelope import Part
from sealpost.gateway import pki
from sealpost.gateway.services.context import wall_clock_ms
from sealpost.v1 import relative_pb2, relative_pb2_grpc

SENDERS = 8
PAYLOAD = 1024
#: (database, gateway worker processes) measured, in this order.
CONFIGURATIONS = (("sqlite", 1), ("postgresql", 1), ("sqlite", 2), ("postgresql", 2))
#: The gateway's CPU per accepted send, at most this many times the TLS echo's per call.
CPU_TARGETS = {"sqlite": 2.0, "postgresql": 2.5}


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg()[:2])


async def _drive(
    calls: list[Callable[[], Awaitable[object]]], seconds: float
) -> tuple[float, list[float]]:
    """Run each caller in a loop for ``seconds``; returns (calls per second, latencies)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def loop(call: Callable[[], Awaitable[object]]) -> int:
        n = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)
            n += 1
        return n

    started = time.perf_counter()
    counts = await asyncio.gather(*(loop(c) for c in calls))
    return sum(counts) / (time.perf_counter() - started), latencies


@dataclass
class _Echo:
    rate: float
    latencies: list[float]
    #: The echo server's CPU milliseconds per call.
    cpu_ms: float
    #: The server's context switches per call, all its threads.
    switches: float


async def _echo_rate(seconds: float, *, tls: bool, threads: bool = False) -> _Echo:
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        command = [sys.executable, "-m", "bench.echo_server", str(port_file)]
        if threads:
            command.append("--threads")
        credentials = None
        if tls:
            ca = pki.create_ca("bench echo CA")
            issued = pki.issue_server_certificate(ca, ["127.0.0.1"])
            cert, key = Path(tmp) / "server.pem", Path(tmp) / "server-key.pem"
            cert.write_bytes(issued.certificate_pem)
            key.write_bytes(issued.key_pem)
            command += [str(cert), str(key)]
            credentials = grpc.ssl_channel_credentials(ca.certificate_pem)
        server = subprocess.Popen(command)
        try:
            while not port_file.exists() or not port_file.read_text():
                await asyncio.sleep(0.05)
            address = f"127.0.0.1:{port_file.read_text()}"
            body = b"x" * PAYLOAD
            channel = (
                aio.insecure_channel(address)
                if credentials is None
                else aio.secure_channel(address, credentials)
            )
            async with channel:
                echo = channel.unary_unary(
                    "/bench.Echo/Echo",
                    request_serializer=lambda b: b,
                    response_deserializer=lambda b: b,
                )
                await echo(body)
                before = cpu_seconds(server.pid)
                switches = context_switches(server.pid)
                rate, latencies = await _drive(
                    [lambda: echo(body) for _ in range(SENDERS)], seconds
                )
                used = cpu_seconds(server.pid) - before
                switched = context_switches(server.pid) - switches
                calls = len(latencies)
                return _Echo(rate, latencies, 1000 * used / calls, switched / calls)
        finally:
            server.kill()
            server.wait()


@dataclass
class _Run:
    rate: float
    latencies: list[float]
    #: CPU milliseconds per send, by who spent them.
    cpu_ms: dict[str, float]
    #: The gateway's context switches per send, all its threads.
    switches: float


def _cpu(pids: dict[str, list[int]]) -> dict[str, float]:
    used = {name: sum(cpu_seconds(pid) for pid in group) for name, group in pids.items()}
    gateway = pids["gateway"]
    used["gateway (kernel)"] = sum(cpu_seconds(pid, system_only=True) for pid in gateway)
    used["senders (this process)"] = time.process_time()
    return used


async def _send_rate(stack: Stack, seconds: float, label: str, postgres_pid: int | None) -> _Run:
    admin, _terminals = setup_institutions(stack, [("d-bench", "pi-bench", "regular")])
    senders = [stack.relative(f"bench {i}") for i in range(SENDERS)]
    for sender in senders:
        sender.request_contact("d-bench")
    approve_all(admin, "pi-bench")
    for sender in senders:
        sender.contact("d-bench")  # warm: verified mailbox key
    body = b"x" * PAYLOAD
    credentials = grpc.ssl_channel_credentials(stack.gateway.ca_pem)
    async with aio.secure_channel(stack.gateway.address, credentials) as channel:
        stub = relative_pb2_grpc.RelativeServiceStub(channel)

        def caller(index: int) -> Callable[[], Awaitable[object]]:
            sender = senders[index]
            mailbox = sender.contact("d-bench").mailbox
            assert mailbox is not None
            metadata = bearer(sender.token)

            async def call() -> object:
                envelope = crypto_envelope.seal_envelope(
                    [Part("text/plain; charset=utf-8", body)],
                    sender_keys=sender.keys,
                    sender_key_id=sender.key_id,
                    recipients=[mailbox],
                    now_ms=wall_clock_ms(),
                )
                request = relative_pb2.SendMessageRequest(envelope=envelope)
                return await stub.SendMessage(request, metadata=metadata, timeout=30)

            return call

        calls = [caller(i) for i in range(SENDERS)]
        await calls[0]()
        pids = {"gateway": family(stack.gateway.process.pid)}
        if postgres_pid is not None:
            pids["PostgreSQL"] = family(postgres_pid)
        before = _cpu(pids)
        switches = sum(context_switches(pid) for pid in pids["gateway"])
        with profiled(stack.gateway.process.pid, label):
            rate, latencies = await _drive(calls, seconds)
        after = _cpu(pids)
        switched = sum(context_switches(pid) for pid in pids["gateway"]) - switches
        per_send = {name: 1000 * (after[name] - before[name]) / len(latencies) for name in after}
        return _Run(rate, latencies, per_send, switched / len(latencies))


def _measure(database: str, seconds: float, workers: int) -> _Run:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        postgres = None
        if database == "postgresql":
            postgres = PostgresServer()
            postgres.start()
            url = postgres.create_database("bench")
        else:
            url = f"sqlite:///{root / 'bench.db'}"
        openbao = OpenBaoDevServer(root / "openbao")
        openbao.start()
        try:
            keyserver = bootstrap_openbao(openbao)
            gateway = start_gateway(
                root / "gateway",
                openbao,
                keyserver,
                url,
                extra_env={
                    "SEALPOST_SEND_RATE_PER_MINUTE": "1000000",
                    "SEALPOST_LOG_LEVEL": "warning",
                    "SEALPOST_WORKERS": str(workers),
                },
            )
            stack = Stack(openbao, keyserver, gateway)
            try:
                label = f"send-{database}-{workers}w"
                postgres_pid = postgres.pid if postgres is not None else None
                return asyncio.run(_send_rate(stack, seconds, label, postgres_pid))
            finally:
                stack.close()
                gateway.stop()
        finally:
            openbao.stop()
            if postgres is not None:
                postgres.stop()
                postgres.remove()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def run(quick: bool) -> list[Result]:
    """Echo references (TLS, plain), then the send path on SQLite and on PostgreSQL."""
    seconds = 3.0 if quick else 10.0
    echo = asyncio.run(_echo_rate(seconds, tls=True))
    plain = asyncio.run(_echo_rate(seconds, tls=False))
    pool = asyncio.run(_echo_rate(seconds, tls=True, threads=True))
    results = [
        Result("send", "bare grpcio echo over TLS, 1 KiB, 8 senders", echo.rate, "calls/s"),
        Result("send", "echo p50 (TLS)", _percentile(echo.latencies, 0.5), "ms"),
        Result("send", "echo server CPU per call (TLS)", echo.cpu_ms, "ms"),
        Result("send", "echo server context switches per call (TLS)", echo.switches, ""),
        Result("send", "bare grpcio echo in plain text, 1 KiB, 8 senders", plain.rate, "calls/s"),
        Result("send", "echo server CPU per call (plain)", plain.cpu_ms, "ms"),
        Result("send", "thread-pool echo over TLS, 1 KiB, 8 senders", pool.rate, "calls/s"),
        Result("send", "thread-pool echo server CPU per call (TLS)", pool.cpu_ms, "ms"),
        Result(
            "send", "thread-pool echo server context switches per call (TLS)", pool.switches, ""
        ),
    ]
    for database, workers in CONFIGURATIONS:
        run = _measure(database, seconds, workers)
        where = database if workers == 1 else f"{database}, {workers} workers"
        results += [
            Result(
                "send",
                f"gateway CPU per send ({where}), load {_load()}",
                run.cpu_ms["gateway"],
                "ms",
                reference=echo.cpu_ms,
                reference_label="TLS echo server CPU per call, ms",
                target=f"ratio <= {CPU_TARGETS[database]}",
            ),
            Result(
                "send",
                f"send path ({where}), 1 KiB, 8 senders",
                run.rate,
                "messages/s",
                reference=plain.rate,
                reference_label="plain-text echo calls/s, as in earlier rounds",
                target="ratio >= 0.6",
            ),
            Result("send", f"send p50 ({where})", _percentile(run.latencies, 0.5), "ms"),
            Result("send", f"send p99 ({where})", _percentile(run.latencies, 0.99), "ms"),
            Result("send", f"gateway context switches per send ({where})", run.switches, ""),
        ]
        results += [
            Result("send", f"{who} CPU per send ({where})", ms, "ms")
            for who, ms in run.cpu_ms.items()
            if who != "gateway"
        ]
    return results
