"""Several gateway processes on one pair of ports, so that the gateway uses every core.

A Python process runs Python code on one core at a time (the GIL), and the gateway's
work per message is mostly Python: with one process, a 2-core machine leaves a core
for the clients and the key server at best. ``sealpost gateway serve --workers N``
starts N worker processes that each run the whole gateway and bind the same ports
with SO_REUSEPORT; the kernel spreads new connections over them.

The workers share nothing but the database, and what must hold across them holds
there, as it does for stateless replicas on several machines (SPEC section 5):

- writes are serialised by the database: SQLite takes its write lock at BEGIN, and
  a PostgreSQL transaction that appends to the transparency log locks the log's size
  row first, so group commit in each worker still yields one contiguous log;
- a message id is unique in the database, so a replay is refused whichever worker
  gets it, even when both copies arrive at once;
- streams are woken at once by sends to their own worker and find what the other
  workers accepted when they next poll (``Context.poll_seconds``, one second);
- the per-account flood guard counts per worker, so with N workers an account may
  send up to N times the configured rate (it is a flood guard, not a cap).

This process (the supervisor) prepares the database once, picks the ports when
asked for free ones, starts the workers, writes the port file once all of them
serve, and on SIGTERM or SIGINT stops them gracefully. If a worker dies, it stops
the others and exits with an error, for the service manager to restart the whole.

With a metrics port, the supervisor serves the one metrics endpoint for all of them
(prometheus-client's multiprocess mode): each worker writes its values into files in
an owner-only temporary folder, and the supervisor adds up the call counters and
histograms from there at each scrape. Only worker 0 reads the database's figures and
the probes' findings (gateway/metrics.py), so those are shown once, not added up. The
folder is removed when the supervisor stops.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import queue
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from multiprocessing.connection import wait
from typing import Any, Final

from sealpost import __version__
from sealpost._internal import exposition, logs
from sealpost._internal.logs import get_logger
from sealpost.gateway.config import GatewayConfig
from sealpost.gateway.errors import ConfigError

#: Seconds a worker may take to start serving.
START_TIMEOUT: Final = 60.0
#: How ``exec_supervisor`` hands the configuration to the supervisor process.
_CONFIG_ENV: Final = "SEALPOST_INTERNAL_SUPERVISOR_CONFIG"

_log = get_logger("sealpost.gateway.workers")


def _reserve(host: str, port: int) -> tuple[socket.socket | None, int]:
    """A port for the workers: ``port``, or a free one held (SO_REUSEPORT) until they bind."""
    if port != 0:
        return None, port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, 0))  # bound, never listening: it takes no connections
    return sock, int(sock.getsockname()[1])


def _prepare(config: GatewayConfig) -> None:
    """Check the schema, create the default regimes and the directory once, before the workers.

    Each worker does the same on start and then finds everything in place, so that
    workers starting together never race to create the same rows. Runs in a child
    process of its own, so that this supervisor never loads the gateway (memory).
    """
    from sealpost.gateway.server import build_context  # noqa: PLC0415

    logs.configure(config.log_level)
    try:
        ctx, _tls, kept = build_context(config)
    except ConfigError as exc:
        print(f"sealpost gateway serve: {exc.explain()}", file=sys.stderr)
        sys.exit(2)
    if ctx.group_commit is not None:
        ctx.group_commit.close()
    if kept is not None:
        kept.close()
    ctx.db.dispose()


def _worker(config: GatewayConfig, ready: Any, index: int, metrics_dir: str | None) -> None:
    """One worker process: the whole gateway, on ports shared with its siblings.

    With ``metrics_dir`` its metrics are written there for the supervisor to serve; worker
    0 also reads the database's figures.
    """
    import asyncio  # noqa: PLC0415

    gateway_metrics = None
    if metrics_dir is not None:
        # The supervisor put the folder in the environment this process started with:
        # prometheus-client picks its kind of values when first imported.
        assert os.environ.get(exposition.MULTIPROCESS_VARIABLE) == metrics_dir
        from sealpost.gateway.metrics import GatewayMetrics  # noqa: PLC0415

        gateway_metrics = GatewayMetrics(reads_state=index == 0, process=False)
    from sealpost.gateway.server import serve  # noqa: PLC0415

    logs.configure(config.log_level)
    asyncio.run(
        serve(
            config,
            reuse_port=True,
            on_ready=lambda ports: ready.put((os.getpid(), ports)),
            gateway_metrics=gateway_metrics,
        )
    )


def serve_workers(config: GatewayConfig) -> int:
    """Run ``config.workers`` gateway processes until SIGTERM or SIGINT; the exit code."""
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    spawn = multiprocessing.get_context("spawn")  # no fork of a process with threads
    preparing = spawn.Process(target=_prepare, args=(config,), name="gateway-prepare")
    preparing.start()
    preparing.join()
    if preparing.exitcode != 0:
        return 2 if preparing.exitcode == 2 else 1
    ready: Any = spawn.Queue()
    with ExitStack() as cleanup:
        metrics_dir = None
        endpoint = None
        if config.metrics_port is not None:
            metrics_dir = tempfile.mkdtemp(prefix="sealpost-metrics-")  # owner-only
            cleanup.callback(shutil.rmtree, metrics_dir, ignore_errors=True)
            os.environ[exposition.MULTIPROCESS_VARIABLE] = metrics_dir  # the workers inherit it
            # Bound before the workers start: a port in use fails the start at once.
            endpoint = exposition.MetricsEndpoint(
                exposition.multiprocess_registry(metrics_dir), config.host, config.metrics_port
            )
            cleanup.callback(endpoint.stop)
        return _supervise(config, spawn, ready, stop, received, metrics_dir, endpoint)


def _supervise(
    config: GatewayConfig,
    spawn: Any,
    ready: Any,
    stop: threading.Event,
    received: list[str],
    metrics_dir: str | None,
    endpoint: exposition.MetricsEndpoint | None,
) -> int:
    """Start the workers, serve until asked to stop or one dies; the exit code."""
    with ExitStack() as reserved:
        public, port = _reserve(config.host, config.port)
        terminal, terminal_port = _reserve(config.host, config.terminal_port)
        browser, web_port = (
            (None, None) if config.web_port is None else _reserve(config.host, config.web_port)
        )
        for sock in (public, terminal, browser):
            if sock is not None:
                reserved.callback(sock.close)
        worker_config = dataclasses.replace(
            config,
            port=port,
            terminal_port=terminal_port,
            web_port=web_port,
            metrics_port=None,  # the supervisor serves the metrics
            port_file=None,
            workers=1,
        )
        processes = [
            spawn.Process(
                target=_worker, args=(worker_config, ready, i, metrics_dir), name=f"gateway-{i}"
            )
            for i in range(config.workers)
        ]
        for process in processes:
            process.start()
        if not _wait_ready(processes, ready, stop):
            return _stop_all(processes, config.grace_seconds, failed=True)
    metrics_port = None if endpoint is None else endpoint.start()
    if config.port_file is not None:
        ports = {"port": port, "terminal_port": terminal_port}
        if web_port is not None:
            ports["web_port"] = web_port
        if metrics_port is not None:
            ports["metrics_port"] = metrics_port
        config.write_port_file(ports)
    _log.info(
        "gateway.serving",
        address=config.host,
        port=port,
        metrics_port=metrics_port,
        pid=os.getpid(),
        count=config.workers,
        version=__version__,
    )
    sentinels = [p.sentinel for p in processes]
    while not stop.is_set():
        if wait(sentinels, timeout=0.5) and not stop.wait(0.5):
            # A worker ended and nobody asked us to stop (a Ctrl-C reaches the workers too).
            _log.warning("gateway.worker_exited", count=config.workers)
            return _stop_all(processes, config.grace_seconds, failed=True)
    _log.info("gateway.stopping", signal=received[0], grace_seconds=config.grace_seconds)
    return _stop_all(processes, config.grace_seconds, failed=False)


def _wait_ready(processes: list[Any], ready: Any, stop: threading.Event) -> bool:
    """True once every worker serves; False if one exits, time runs out or we are stopped."""
    waiting = len(processes)
    deadline = time.monotonic() + START_TIMEOUT
    while waiting:
        if stop.is_set() or time.monotonic() > deadline:
            return False
        if any(not p.is_alive() for p in processes):
            _log.warning("gateway.worker_exited", count=len(processes))
            return False
        try:
            ready.get(timeout=0.2)
        except queue.Empty:
            continue
        waiting -= 1
    return True


def _stop_all(processes: list[Any], grace_seconds: float, *, failed: bool) -> int:
    """SIGTERM every worker, wait for the grace period and a margin, then kill."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + grace_seconds + 10
    for process in processes:
        process.join(max(0.1, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(5)
    if failed or any(p.exitcode not in (0, None) for p in processes):
        return 1
    _log.info("gateway.stopped")
    return 0


def exec_supervisor(config: GatewayConfig) -> None:
    """Become a lean supervisor process (same pid): ``python -m sealpost.gateway.workers``.

    The command line has loaded every ``sealpost`` command; the supervisor needs none
    of them, and it stays up as long as the workers do.
    """
    document = config.settings()
    # In the environment, not on the command line, which any local user can read: the
    # database URL may carry a password.
    environment = {**os.environ, _CONFIG_ENV: json.dumps(document)}
    os.execve(  # noqa: S606 - our own interpreter and module, no shell
        sys.executable, [sys.executable, "-m", "sealpost.gateway.workers"], environment
    )


def main() -> None:
    """Entry point after ``exec_supervisor``: the configuration comes in the environment."""
    flags = json.loads(os.environ.pop(_CONFIG_ENV))  # not handed down to the workers
    config = GatewayConfig.load(flags, environ={})
    logs.configure(config.log_level)
    sys.exit(serve_workers(config))


if __name__ == "__main__":
    main()
