"""Several gateway worker processes on one port (``--workers``), on SQLite and PostgreSQL.

Each test finds out which worker serves which connection from the kernel's socket
tables, so that "a send to one worker is seen by the other" is checked, not assumed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from sealpost._internal.devservers import DevServerError, GatewayProcess, OpenBaoDevServer
from sealpost._internal.stack import Stack, approve_all, setup_institutions, start_gateway
from sealpost.clients._grpc import bearer
from sealpost.clients.relative.sdk import Contact, RelativeClient
from sealpost.escrow.bootstrap import BootstrapResult
from sealpost.gateway.storage.schema import log_leaves, tree_heads
from sealpost.v1 import admin_pb2, common_pb2, log_pb2, relative_pb2, relative_pb2_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WORKERS = 2


def _children(pid: int) -> list[int]:
    """Child processes of ``pid`` that run a gateway worker (not multiprocessing's helper)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and b"spawn_main" in command:
            found.append(int(entry.name))
    return sorted(found)


def _established(pid: int, port: int) -> set[int]:
    """Socket inodes of ``pid`` that are established connections to local ``port``."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    connected = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
                connected.add(int(fields[9]))
    return inodes & connected


@pytest.fixture
def workers_stack(
    tmp_path: Path, openbao: OpenBaoDevServer, keyserver: BootstrapResult, database_url: str
) -> Iterator[Stack]:
    gateway = start_gateway(
        tmp_path / "gateway",
        openbao,
        keyserver,
        database_url,
        extra_env={"SEALPOST_WORKERS": str(WORKERS)},
    )
    stack = Stack(openbao, keyserver, gateway)
    try:
        yield stack
    finally:
        stack.close()
        gateway.stop()


def _channels_on_each_worker(
    gateway: GatewayProcess, workers: list[int]
) -> dict[int, grpc.Channel]:
    """One open channel per worker: connect new channels until every worker has one."""
    owned: dict[int, grpc.Channel] = {}
    spare: list[grpc.Channel] = []
    for _attempt in range(64):
        before = {w: _established(w, gateway.port) for w in workers}
        channel = grpc.secure_channel(gateway.address, grpc.ssl_channel_credentials(gateway.ca_pem))
        grpc.channel_ready_future(channel).result(timeout=10)
        grown = [w for w in workers if _established(w, gateway.port) - before[w]]
        assert len(grown) == 1, "each new connection is served by exactly one worker"
        if grown[0] in owned:
            spare.append(channel)
        else:
            owned[grown[0]] = channel
        if len(owned) == len(workers):
            break
    for channel in spare:
        channel.close()
    assert len(owned) == len(workers), "the kernel never gave a connection to some worker"
    return owned


def _send(
    stub: relative_pb2_grpc.RelativeServiceStub, sender: RelativeClient, contact: Contact, text: str
) -> log_pb2.Receipt:
    request = sender.seal(contact, text)
    reply = stub.SendMessage(request, metadata=bearer(sender.token), timeout=30)
    receipt: log_pb2.Receipt = reply.receipt
    return receipt


def _status(
    stub: relative_pb2_grpc.RelativeServiceStub, sender: RelativeClient, message_id: bytes
) -> int:
    reply = stub.GetMessageStatus(
        relative_pb2.GetMessageStatusRequest(message_id=message_id),
        metadata=bearer(sender.token),
        timeout=30,
    )
    return int(reply.status)


def test_workers_share_the_port_and_the_database(workers_stack: Stack, database_url: str) -> None:
    stack = workers_stack
    workers = _children(stack.gateway.process.pid)
    assert len(workers) == WORKERS
    admin, terminals = setup_institutions(stack, [("d-w1", "pi-workers", "regular")])
    sender = stack.relative("Worker test")
    sender.request_contact("d-w1")
    approve_all(admin, "pi-workers")
    contact = sender.contact("d-w1")
    channels = _channels_on_each_worker(stack.gateway, workers)
    stubs = {w: relative_pb2_grpc.RelativeServiceStub(c) for w, c in channels.items()}
    first, second = workers
    try:
        # A send to either worker is visible through the other.
        on_first = _send(stubs[first], sender, contact, "to the first worker")
        on_second = _send(stubs[second], sender, contact, "to the second worker")
        pending = common_pb2.DELIVERY_STATUS_PENDING
        assert _status(stubs[second], sender, on_first.message_id) == pending
        assert _status(stubs[first], sender, on_second.message_id) == pending

        # Idempotency holds across workers: a replay to the other worker is refused.
        replay = relative_pb2.SendMessageRequest()
        replay.envelope.CopyFrom(sender.seal(contact, "replayed").envelope)
        stubs[first].SendMessage(replay, metadata=bearer(sender.token), timeout=30)
        with pytest.raises(grpc.RpcError) as refused:
            stubs[second].SendMessage(replay, metadata=bearer(sender.token), timeout=30)
        assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS

        # Both workers write at once: group commit in each still makes one contiguous log.
        receipts: list[log_pb2.Receipt] = []
        errors: list[BaseException] = []

        def burst(worker: int) -> None:
            try:
                for i in range(15):
                    receipts.append(_send(stubs[worker], sender, contact, f"burst {i}"))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=burst, args=(w,)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors
        assert len(receipts) == 30
    finally:
        for channel in channels.values():
            channel.close()

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.select(log_leaves.c.idx, log_leaves.c.leaf))
            stored = {row.idx: row.leaf for row in rows}
    finally:
        engine.dispose()
    assert sorted(stored) == list(range(len(stored)))
    every = [on_first, on_second, *receipts]
    assert len({r.entry.index for r in every}) == len(every)
    for receipt in every:
        assert stored[receipt.entry.index] == receipt.entry.leaf
    # Each receipt verifies against a signed head, whichever worker answers.
    for receipt in (on_first, on_second, receipts[0], receipts[-1]):
        sender.confirm(receipt.message_id, receipt.envelope_digest)
    # The terminal sees every message, whichever worker accepted it and serves the stream.
    intake = terminals["pi-workers"].intake()
    assert {i.message_id for i in intake} >= {r.message_id for r in every}


def test_a_second_gateway_without_workers_cannot_take_the_port(workers_stack: Stack) -> None:
    """Port sharing is only for workers of one gateway: a stray second gateway must fail."""
    stack = workers_stack
    stray = GatewayProcess(stack.gateway.workdir / "stray", database_url=stack.gateway.database_url)
    stray.port = stack.gateway.port
    with pytest.raises(DevServerError, match=r"exited|did not start"):
        stray.start(timeout=30)
    stray.stop()


def test_every_worker_signs_heads_and_never_two_for_one_size(
    workers_stack: Stack, database_url: str
) -> None:
    """Each worker runs the signer (SPEC P13); the size row's lock keeps them from doubling."""
    stack = workers_stack
    admin, _terminals = setup_institutions(stack, [("d-sign", "pi-sign", "regular")])
    for n in range(6):
        admin.call(
            "admin",
            "CreateInstitution",
            admin_pb2.CreateInstitutionRequest(institution_id=f"pi-sign-{n}", name=f"sign {n}"),
        )
    engine = sa.create_engine(database_url)
    try:
        deadline = time.monotonic() + 15
        while True:
            with engine.connect() as connection:
                size = connection.execute(sa.select(sa.func.count()).select_from(log_leaves))
                leaves = int(size.scalar_one())
                heads = [
                    int(s)
                    for s in connection.execute(
                        sa.select(tree_heads.c.tree_size).order_by(tree_heads.c.id)
                    ).scalars()
                ]
            if heads and max(heads) == leaves:
                break
            assert time.monotonic() < deadline, "no head covered the log within 15 s"
            time.sleep(0.2)
        time.sleep(5)  # two more rounds of every worker: nothing grew, nothing is signed
        with engine.connect() as connection:
            again = [
                int(s)
                for s in connection.execute(
                    sa.select(tree_heads.c.tree_size).order_by(tree_heads.c.id)
                ).scalars()
            ]
    finally:
        engine.dispose()
    assert again == heads
    assert len(set(heads)) == len(heads), f"two heads of one size: {heads}"
