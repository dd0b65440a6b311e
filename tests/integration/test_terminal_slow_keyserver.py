"""Fail closed when the key server is slow (SPEC P2): a delaying TCP proxy between the
terminal's escrow client and OpenBao holds every answer longer than the client waits.

Nothing non-privileged may be released without escrow while answers are late, the intake
loop must say so, and once answers are on time again the backlog drains with every message
taken in exactly once. The sealed and stopped cases: test_terminal_failclosed.py.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sealpost._internal.devservers import OpenBaoDevServer
from sealpost._internal.stack import (
    Stack,
    approve_all,
    bootstrap_openbao,
    setup_institutions,
    start_gateway,
)
from sealpost.clients.terminal.intake import CollectingReporter, IntakeLoop, MemoryStateStore
from sealpost.clients.terminal.profile import INTAKE_RETRY, escrow_with
from sealpost.crypto.logentry import LogAction
from sealpost.escrow.bootstrap import BootstrapSettings, KeyServerBootstrap
from sealpost.escrow.client import EscrowClient, KeyServerConfig
from sealpost.v1 import common_pb2
from tests.integration.test_terminal_failclosed import LoopThread, event_counts, states, wait_until
from tests.integration.test_terminal_intake import FAST, message_rows, send_many, verified_lawyer

pytestmark = pytest.mark.integration

A = "pi-slow"
RELEASED = common_pb2.MESSAGE_STATE_RELEASED
ACCEPTED = common_pb2.MESSAGE_STATE_ACCEPTED
#: Seconds the escrow client waits for an answer, and how late the proxy delivers answers.
CLIENT_TIMEOUT = 1.0
LATE = 3.0


class DelayingProxy:
    """A TCP proxy on 127.0.0.1 that holds each chunk of the server's answers ``delay`` seconds.

    Requests go through at once, so the key server does the work; only its answers are late.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.delay = 0.0
        #: Answer chunks held back so far (to show the answers were late, not lost).
        self.delayed = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._spawn(self._accept)

    @property
    def address(self) -> str:
        """The proxy's URL, for a KeyServerConfig."""
        host, port = self._listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            self._spawn(self._pump, client, server, False)
            self._spawn(self._pump, server, client, True)

    def _pump(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        try:
            while not self._closed.is_set():
                chunk = source.recv(65536)
                if not chunk:
                    break
                if answers and self.delay > 0:
                    self.delayed += 1
                    time.sleep(self.delay)
                sink.sendall(chunk)
        except OSError:
            pass  # the other side gave up (the client timed out): drop the connection
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stop accepting, close every connection and wait for the threads."""
        self._closed.set()
        self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            sock.close()
        for thread in threads:
            thread.join(LATE + 2)


@pytest.fixture
def slow_stack(tmp_path: Path, fresh_openbao: OpenBaoDevServer) -> Iterator[Stack]:
    """A gateway on SQLite against an OpenBao of this test's own."""
    keyserver = bootstrap_openbao(fresh_openbao)
    gateway = start_gateway(
        tmp_path / "gateway", fresh_openbao, keyserver, f"sqlite:///{tmp_path / 'slow.db'}"
    )
    stack = Stack(fresh_openbao, keyserver, gateway)
    try:
        yield stack
    finally:
        stack.close()
        gateway.stop()


@pytest.fixture
def proxy(fresh_openbao: OpenBaoDevServer) -> Iterator[DelayingProxy]:
    """The delaying proxy in front of the test's OpenBao."""
    host, port = fresh_openbao.address.removeprefix("http://").rsplit(":", 1)
    running = DelayingProxy((host, int(port)))
    try:
        yield running
    finally:
        running.close()


def _escrow_client(stack: Stack, address: str) -> EscrowClient:
    """The terminal's encrypt-only escrow client, talking to ``address``."""
    admin = KeyServerBootstrap(
        KeyServerConfig(stack.openbao.address),
        stack.openbao.root_token,
        BootstrapSettings(prefix=stack.prefix),
    )
    try:
        token = admin.create_terminal_token(A).token
    finally:
        admin.close()
    return EscrowClient(
        KeyServerConfig(address, timeout=CLIENT_TIMEOUT),
        token,
        key=BootstrapSettings(prefix=stack.prefix).escrow_key,
        retry=INTAKE_RETRY,
    )


def test_a_slow_key_server_holds_mail_back_and_the_backlog_drains_when_it_is_fast_again(
    slow_stack: Stack, proxy: DelayingProxy
) -> None:
    stack = slow_stack
    admin, terminals = setup_institutions(stack, [("d-1", A, "regular")])
    terminal = terminals[A]
    relative = stack.relative("Broer")
    relative.request_contact("d-1")
    lawyer = verified_lawyer(stack, admin, ["d-1"])
    approve_all(admin, A)
    client = _escrow_client(stack, proxy.address)
    store = MemoryStateStore()
    reporter = CollectingReporter()
    loop = IntakeLoop(terminal, escrow_with(client), store, settings=FAST, reporter=reporter)
    with LoopThread(loop):
        before = send_many([relative], ["d-1"], 3, prefix="before")
        wait_until(lambda: states(stack, before) == {RELEASED})

        proxy.delay = LATE
        held = send_many([relative], ["d-1"], 12, prefix="held")
        privileged = send_many([lawyer], ["d-1"], 2, prefix="privileged")
        # Privileged mail carries no escrow: it goes while the key server is slow.
        wait_until(lambda: states(stack, privileged) == {RELEASED})
        wait_until(lambda: _late_notices(reporter) >= 2)
        assert loop.waiting_for_key_server
        assert proxy.delayed > 0  # the key server answered, too late: slow, not down
        rows = message_rows(stack)
        assert states(stack, held) == {ACCEPTED}
        assert all(rows[m].escrow is None for m in held)
        deliverable = {d.message_id for d in terminal.all_deliveries()}
        assert not deliverable & set(held)

        proxy.delay = 0.0
        wait_until(lambda: states(stack, held) == {RELEASED})
        wait_until(lambda: not loop.waiting_for_key_server)

    # Every message taken in exactly once; escrow recorded for all but the privileged.
    counts = event_counts(stack)
    for message_id in [*before, *held, *privileged]:
        assert counts[(LogAction.MESSAGE_RELEASED, message_id.hex())] == 1
        escrowed = 0 if message_id in privileged else 1
        assert counts[(LogAction.MESSAGE_ESCROWED, message_id.hex())] == escrowed
    delivered = sorted(d.message_id for d in terminal.all_deliveries())
    assert delivered == sorted([*before, *held, *privileged])
    assert any("key server is back" in text for _kind, text in reporter.notices)
    # Nothing is stuck: a fresh pass from the saved cursor finds no backlog.
    again = IntakeLoop(terminal, escrow_with(client), store, settings=FAST).run_once(max_wait=5)
    assert again.received == 0
    client.close()


def _late_notices(reporter: CollectingReporter) -> int:
    """How often the loop reported the key server unavailable."""
    return sum(kind == "key-server" and "unavailable" in text for kind, text in reporter.notices)
