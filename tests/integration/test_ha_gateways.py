"""Two gateway processes against one PostgreSQL, behind a TCP load balancer; one dies.

The gateways share nothing but the database (and the state folder's keys, which every
gateway of one deployment holds): the transparency log stays one linear log because
each append locks the log's size row first (gateway/translog.py), and a terminal
connected to either gateway finds every message (its stream polls the database). The
test puts a plain TCP proxy in front of both, as any load balancer would be, has
relatives send from several threads, kills one gateway mid-run, and shows: the
proxy's next connections go to the survivor, every message whose receipt came back is
in the database and taken in by the terminal, and `sealpost audit verify` passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, select

from sealpost._internal.devservers import GatewayProcess, free_port
from sealpost._internal.stack import Stack, approve_all, setup_institutions
from sealpost.clients._grpc import ClientError, Endpoint
from sealpost.clients.relative.sdk import RelativeClient
from sealpost.gateway.storage import schema
from sealpost.gateway.storage.database import create_database_engine
from tests.integration.test_state_follows_log import log_key, verify

pytestmark = pytest.mark.integration

A = "pi-ha"
SENDERS = 4
PER_SENDER = 12


class Balancer:
    """A TCP proxy on a loopback port: each new connection to the next live backend."""

    def __init__(self, backends: list[tuple[str, int]]) -> None:
        self.backends = backends
        self.port = free_port()
        self._turn = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        future.result(10)

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(len(self.backends)):
            host, port = self.backends[next(self._turn) % len(self.backends)]
            try:
                up_reader, up_writer = await asyncio.open_connection(host, port)
            except OSError:
                continue  # a dead backend: the next one
            await asyncio.gather(
                self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
            )
            return
        writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@contextlib.contextmanager
def second_gateway(stack: Stack, workdir: Path) -> Iterator[GatewayProcess]:
    """Another gateway process of the same deployment: the same keys, the same database."""
    workdir.mkdir(parents=True)
    shutil.copytree(stack.gateway.state_dir, workdir / "state")
    other = GatewayProcess(workdir, env=stack.gateway.env, database_url=stack.gateway.database_url)
    other.start()
    try:
        yield other
    finally:
        other.stop()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_gateways_keep_one_log_and_lose_nothing_when_one_dies(
    stack: Stack, database_url: str, tmp_path: Path
) -> None:
    admin, terminals = setup_institutions(stack, [(f"d-ha-{i}", A, "regular") for i in range(2)])
    with second_gateway(stack, tmp_path / "gateway-b") as other:
        balancer = Balancer([("127.0.0.1", stack.gateway.port), ("127.0.0.1", other.port)])
        balancer.start()
        try:
            endpoint = Endpoint(balancer.address, stack.gateway.ca_pem)
            relatives = []
            for i in range(SENDERS):
                relative = RelativeClient(endpoint, stack.pin)
                relative.register(f"Relative {i}")
                relative.login()
                relative.request_contact(f"d-ha-{i % 2}")
                relatives.append(relative)
            approve_all(admin, A)

            acknowledged: list[bytes] = []
            failures: list[grpc.StatusCode] = []
            lock = threading.Lock()
            halfway = threading.Barrier(SENDERS + 1)

            def send(index: int, relative: RelativeClient) -> None:
                for n in range(PER_SENDER):
                    if n == PER_SENDER // 2:
                        halfway.wait(60)
                        halfway.wait(60)  # the main thread kills a gateway in between
                    for _attempt in range(5):
                        try:
                            receipt = relative.send(f"d-ha-{index % 2}", f"bericht {index}/{n}")
                        except ClientError as exc:
                            with lock:
                                failures.append(exc.code)
                            relative.close()  # a new connection: the balancer picks again
                            continue
                        with lock:
                            acknowledged.append(receipt.message_id)
                        break

            threads = [threading.Thread(target=send, args=(i, r)) for i, r in enumerate(relatives)]
            for thread in threads:
                thread.start()
            halfway.wait(60)
            other.kill()  # mid-run: half of the connections were to it
            halfway.wait(60)
            for thread in threads:
                thread.join(120)
            for relative in relatives:
                relative.close()
        finally:
            balancer.stop()

    assert len(acknowledged) == SENDERS * PER_SENDER
    # The killed gateway's clients saw UNAVAILABLE at most (gRPC reconnects through the
    # balancer, often before a call notices), and went on through the other.
    assert set(failures) <= {grpc.StatusCode.UNAVAILABLE}

    # Every acknowledged message is stored, once; the terminal (on the survivor) takes all in.
    engine = create_database_engine(database_url)
    with engine.connect() as connection:
        stored = set(connection.execute(select(schema.messages.c.message_id)).scalars())
        leaves = connection.execute(select(func.count()).select_from(schema.log_leaves)).scalar()
        indices = list(
            connection.execute(
                select(schema.log_leaves.c.idx).order_by(schema.log_leaves.c.idx)
            ).scalars()
        )
    engine.dispose()
    assert set(acknowledged) <= stored
    assert indices == list(range(leaves or 0))  # one linear log, no gap, no double index
    states = terminals[A].take_in(terminals[A].intake(), stack.escrow_for(A))
    assert set(acknowledged) <= set(states)

    code, state = verify(database_url, log_key(stack))
    assert (code, state["findings"]) == (0, [])
