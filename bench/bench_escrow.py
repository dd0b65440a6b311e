"""Escrow at intake against a real OpenBao dev server: batched messages/s (spec section 6).

The benchmark starts its own ``bao server -dev`` (in memory, two file audit
devices, as for the tests), bootstraps it and escrows with a terminal token.
Reference, same run: single-item transit encrypt calls per second. Target:
at least 2,000 messages/s batched.
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import Result
from sealpost._internal.devservers import OpenBaoDevServer
from sealpost._internal.logs import configure as configure_logs
from sealpost.escrow.bootstrap import KeyServerBootstrap
from sealpost.escrow.client import ESCROW_BATCH_SIZE, EscrowClient, KeyServerConfig

TARGET = ">= 2,000 messages/s batched"


def _items(count: int) -> list[tuple[bytes, bytes]]:
    return [(os.urandom(16), os.urandom(32)) for _ in range(count)]


def _single_rate(config: KeyServerConfig, token: str, seconds: float) -> float:
    """Single-item encrypt calls per second, one caller."""
    with EscrowClient(config, token) as client:
        items = _items(200)
        client.escrow(*items[0])
        done = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            client.escrow(*items[done % len(items)])
            done += 1
        return done / (time.perf_counter() - started)


def _batched_rate(config: KeyServerConfig, token: str, seconds: float, workers: int) -> float:
    """Messages per second escrowed in batches of ESCROW_BATCH_SIZE by ``workers`` callers."""
    chunk = _items(ESCROW_BATCH_SIZE * 5)
    deadline = time.perf_counter() + seconds

    def worker() -> int:
        done = 0
        with EscrowClient(config, token) as client:
            while time.perf_counter() < deadline:
                done += len(client.escrow_batch(chunk))
        return done

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        counts = list(pool.map(lambda _i: worker(), range(workers)))
    return sum(counts) / (time.perf_counter() - started)


def run(quick: bool) -> list[Result]:
    """Sequential and concurrent batched escrow, with single-item encrypt as the reference."""
    seconds = 1.0 if quick else 4.0
    configure_logs("info")  # per-batch debug records would drown the table
    with tempfile.TemporaryDirectory(prefix="sealpost-bench-") as tmp:
        server = OpenBaoDevServer(Path(tmp))
        server.start()
        try:
            config = KeyServerConfig(server.address)
            admin = KeyServerBootstrap(config, server.root_token)
            admin.run()
            token = admin.create_terminal_token("bench").token
            admin.close()
            single = _single_rate(config, token, seconds)
            results = [
                Result("escrow", "single-item encrypt, 1 caller", single, "calls/s"),
            ]
            for workers in (1, 4):
                rate = _batched_rate(config, token, seconds, workers)
                results.append(
                    Result(
                        "escrow",
                        f"batched x{ESCROW_BATCH_SIZE}, {workers} caller(s)",
                        rate,
                        "messages/s",
                        reference=single,
                        reference_label="single-item calls/s",
                        target=TARGET,
                    )
                )
            return results
        finally:
            server.stop()
