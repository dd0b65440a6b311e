"""The key server as a three-node OpenBao Raft cluster: the leader fails during intake.

Real ``bao server`` processes (not dev mode) with integrated storage, TLS and two
file audit devices each (sealpost/_internal/baocluster.py), a real gateway, a real
intake loop on a thread. The leader is killed while messages come in, and the test
shows (docs/operations.md, section 8):

- intake goes on against the new leader; no non-privileged message is released
  without its escrow blob, none is lost or taken in twice (SPEC P2);
- a screener's decrypt after the failover works, through a standby's forwarding or
  the new leader, and is in the new leader's audit devices (P6);
- ``sealpost audit reconcile`` over every node's files, the failed leader's included,
  matches every decrypt to its grant, compares the two devices, and still flags a
  decrypt without a grant (P14);
- a Raft snapshot can be taken for backups.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from sealpost._internal.baocluster import BaoNode, OpenBaoCluster
from sealpost._internal.devservers import DevServerError, gateway_health
from sealpost._internal.stack import (
    CLUSTER_ISSUER,
    ClusterStack,
    approve_all,
    bootstrap_cluster,
    running_cluster_stack,
    screening_order,
    setup_institutions,
)
from sealpost.clients.audit.reconcile import Reason
from sealpost.clients.review.client import ReviewClient
from sealpost.clients.terminal.intake import CollectingReporter, IntakeLoop, MemoryStateStore
from sealpost.clients.terminal.profile import INTAKE_RETRY
from sealpost.escrow.auditlog import read_audit_log
from sealpost.escrow.blob import EscrowedKey
from sealpost.escrow.bootstrap import BootstrapResult, BootstrapSettings
from sealpost.escrow.client import EscrowClient, KeyServerConfig
from sealpost.gateway.server import KEY_SERVER_HEALTH
from sealpost.v1 import common_pb2
from tests.integration.test_terminal_failclosed import LoopThread, states, wait_until
from tests.integration.test_terminal_intake import (
    FAST,
    message_rows,
    send_many,
    verified_lawyer,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

A = "pi-raft"
RELEASED = common_pb2.MESSAGE_STATE_RELEASED
QUEUED = common_pb2.MESSAGE_STATE_QUEUED
#: The gateway and the key-server nodes share this machine's clock.
LEEWAY_S = 1.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBaoCluster]:
    """Three OpenBao nodes in one Raft cluster, initialised and unsealed; stopped after."""
    running = OpenBaoCluster(tmp_path_factory.mktemp("raft"))
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def keyserver(cluster: OpenBaoCluster) -> BootstrapResult:
    """The cluster bootstrapped for Sealpost, with one identity-token issuer for all nodes."""
    return bootstrap_cluster(cluster)


@pytest.fixture
def stack(
    tmp_path: Path, cluster: OpenBaoCluster, keyserver: BootstrapResult
) -> Iterator[ClusterStack]:
    """A gateway (SQLite) that knows every node; actor factories that name every node."""
    with running_cluster_stack(
        tmp_path / "gateway", cluster, keyserver, f"sqlite:///{tmp_path / 'ha.db'}"
    ) as running:
        yield running


def decrypted_ids(paths: Sequence[Path]) -> set[bytes]:
    """Message ids of the successful decrypts the audit files record."""
    found: set[bytes] = set()
    for path in paths:
        if path.exists():
            for event in read_audit_log(path):
                if event.operation == "decrypt" and event.outcome == "succeeded":
                    found.update(m for m in event.message_ids if m is not None)
    return found


def encrypted_ids(paths: Sequence[Path]) -> set[bytes]:
    """Message ids the audit files record as escrowed (transit encrypt)."""
    found: set[bytes] = set()
    for path in paths:
        if path.exists():
            for event in read_audit_log(path):
                if event.operation == "encrypt":
                    found.update(m for m in event.message_ids if m is not None)
    return found


def reconcile(stack: ClusterStack, audit_logs: Sequence[str]) -> tuple[int, Any]:
    """``sealpost audit reconcile --json`` as the auditor runs it, in its own process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALPOST_")}
    args = [sys.executable, "-m", "sealpost", "audit", "reconcile", "--json", "-q"]
    args += ["--database-url", stack.gateway.database_url, "--leeway-seconds", str(LEEWAY_S)]
    for spec in audit_logs:
        args += ["--audit-log", spec]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=180, check=False)
    try:
        return done.returncode, json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"not JSON (exit {done.returncode}): {done.stdout}\n{done.stderr}")


def key_server_health(stack: ClusterStack) -> str:
    """What the gateway's own probe of the key server says (grpc.health.v1)."""
    return gateway_health(stack.gateway.address, stack.gateway.ca_pem, service=KEY_SERVER_HEALTH)


def opened(screener: ReviewClient, message_id: bytes, text: str) -> None:
    """The screener opens the message (grant, own decrypt) and reads what was sent."""
    review = screener.open(message_id)
    assert review.text == text


def test_intake_and_review_go_on_when_the_leader_fails(
    cluster: OpenBaoCluster, stack: ClusterStack
) -> None:
    admin, terminals = setup_institutions(stack, [("d-1", A, "regular"), ("d-w", A, "regular")])
    stack.record_key_server_actions(admin)
    terminal = terminals[A]
    screening_order(admin, "d-w", note="zaak 2026/301")
    relative = stack.relative("Moeder")
    relative.request_contact("d-1")
    relative.request_contact("d-w")
    lawyer = verified_lawyer(stack, admin, ["d-1"])
    approve_all(admin, A)
    screener = stack.reviewer(["screener"], [A])

    store, reporter = MemoryStateStore(), CollectingReporter()
    # The terminal's own client settings: few attempts, the loop itself waits and retries.
    loop = IntakeLoop(
        terminal, stack.escrow_for(A, INTAKE_RETRY), store, settings=FAST, reporter=reporter
    )
    old_leader = cluster.wait_for_leader()
    assert old_leader.address == cluster.addresses[0]  # the address every client tries first
    assert key_server_health(stack) == "SERVING"
    with LoopThread(loop):
        before = send_many([relative], ["d-1", "d-w"], 20, prefix="voor")
        wait_until(lambda: states(stack, before) <= {RELEASED, QUEUED})
        opened(screener, before[1], "voor 1")  # d-w: under a screening order

        old_leader.kill()  # the machine fails: no step-down
        during = send_many([relative], ["d-1", "d-w"], 40, prefix="tijdens")
        privileged = send_many([lawyer], ["d-1"], 4, prefix="advocaat")
        new_leader = cluster.wait_for_leader(60, not_=old_leader)
        after = send_many([relative], ["d-1", "d-w"], 20, prefix="na")
        everything = [*before, *during, *after]
        wait_until(lambda: states(stack, [*everything, *privileged]) <= {RELEASED, QUEUED}, 60)

    # Nothing released without escrow (P2); privileged mail carries none (P4).
    rows = message_rows(stack)
    for message_id in everything:
        assert rows[message_id].escrow, message_id.hex()
    for message_id in privileged:
        assert rows[message_id].state == RELEASED
        assert rows[message_id].escrow is None
    delivered = [d.message_id for d in terminal.all_deliveries()]
    assert len(delivered) == len(set(delivered))
    assert set(delivered) == {m for m in [*everything, *privileged] if rows[m].state == RELEASED}
    assert store.state.taken_in == len(everything) + len(privileged)

    # The messages sent after the failover were escrowed by the new leader: its own audit
    # devices name them, and the failed leader's files end before them.
    assert set(after) <= encrypted_ids(new_leader.audit_logs)
    assert not set(after) & encrypted_ids(old_leader.audit_logs)
    assert set(before) <= encrypted_ids(old_leader.audit_logs)

    # Review after the failover: the screener from before (whose client may still point
    # at the failed node) and a new screener, whose identity token a new leader issued.
    queued = [m for m in [*during, *after] if rows[m].state == QUEUED]
    opened(screener, queued[0], "tijdens 1")
    newcomer = stack.reviewer(["screener"], [A])
    opened(newcomer, queued[-1], "na 19")
    assert {queued[0], queued[-1]} <= decrypted_ids(new_leader.audit_logs)
    assert before[1] in decrypted_ids(old_leader.audit_logs)
    assert not {queued[0], queued[-1]} & decrypted_ids(old_leader.audit_logs)
    assert stack.keyserver.issuer == f"{CLUSTER_ISSUER}/v1/identity/oidc"

    # The gateway's probe went on to the next node: it never saw the key server go away.
    assert key_server_health(stack) == "SERVING"
    assert "unreachable" not in stack.gateway.log_file.read_text()

    # The failed node comes back as a standby and catches up.
    cluster.restart(old_leader)
    assert cluster.leader() is new_leader
    assert {p["node_id"] for p in cluster.peers() if p["voter"]} == {n.name for n in cluster.nodes}

    # The auditor reads every node's files, the failed leader's too, per device.
    specs = cluster.audit_log_specs()
    code, found = reconcile(stack, specs)
    assert code == 0, json.dumps(found, indent=1)
    assert found["clean"]
    matched = {bytes.fromhex(m["message_id"]) for m in found["matched"]}
    assert matched == {before[1], queued[0], queued[-1]}
    assert found["devices"]["compared"]
    assert found["devices"]["names"] == ["sealpost-audit", "sealpost-audit-mirror"]
    assert not found["devices"]["missing"]
    assert not found["devices"]["differ"]
    assert found["key_server_changes"]["matched"]
    assert not found["key_server_changes"]["unmatched"]

    # Without the failed leader's files the decrypt made before the failover is not seen.
    survivors = [s for s in specs if not s.split("=", 1)[1].startswith(str(old_leader.workdir))]
    _code, partial = reconcile(stack, survivors)
    assert {bytes.fromhex(m["message_id"]) for m in partial["matched"]} == {
        queued[0],
        queued[-1],
    }

    # A decrypt without a grant, sent to a standby and forwarded, is still found.
    standby = next(n for n in cluster.standbys() if n is not new_leader)
    rogue = queued[1]
    with EscrowClient(
        KeyServerConfig(standby.address, verify=str(cluster.ca_file)),
        cluster.root_token,
        key=BootstrapSettings(prefix=stack.prefix).escrow_key,
    ) as root:
        root.decrypt_escrowed(EscrowedKey.from_bytes(rows[rogue].escrow))
    assert rogue in decrypted_ids(new_leader.audit_logs)
    assert rogue not in decrypted_ids(standby.audit_logs)
    code, found = reconcile(stack, specs)
    assert code == 1
    assert [u["message_id"] for u in found["unmatched"]] == [rogue.hex()]
    assert found["unmatched"][0]["reason"] == Reason.NO_IDENTITY.value


def test_standbys_forward_and_a_raft_snapshot_can_be_taken(
    cluster: OpenBaoCluster, keyserver: BootstrapResult, tmp_path: Path
) -> None:
    leader = cluster.wait_for_leader()
    standby: BaoNode = cluster.standbys()[0]
    before = (
        len(list(read_audit_log(standby.audit_logs[0]))) if standby.audit_logs[0].exists() else 0
    )

    # A request to a standby alone is served: the standby forwards it to the active node,
    # which audits it; the standby itself records nothing (disable_standby_reads).
    message_id = os.urandom(16)
    with EscrowClient(
        KeyServerConfig(standby.address, verify=str(cluster.ca_file)),
        cluster.root_token,
        key=keyserver.escrow_key,
    ) as via_standby:
        (escrowed,) = via_standby.escrow_batch([(message_id, os.urandom(32))])
    assert escrowed.message_id == message_id
    assert message_id in encrypted_ids(leader.audit_logs)
    assert message_id not in encrypted_ids(standby.audit_logs)
    after = (
        len(list(read_audit_log(standby.audit_logs[0]))) if standby.audit_logs[0].exists() else 0
    )
    assert after == before

    # `bao operator raft snapshot save` against the active node: a sealed tarball of the
    # whole store (the escrow key included, encrypted under the barrier).
    snapshot = tmp_path / "raft.snap"
    cluster.snapshot_save(snapshot)
    with tarfile.open(snapshot, "r:gz") as archive:
        names = set(archive.getnames())
    assert {"meta.json", "state.bin", "SHA256SUMS", "SHA256SUMS.sealed"} <= names


def processes_under(folder: Path) -> list[int]:
    """Process ids whose command line names a file under ``folder``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(folder).encode() in command:
                found.append(int(entry.name))
    return found


def test_a_cluster_that_does_not_come_up_leaves_no_process(tmp_path: Path) -> None:
    cluster = OpenBaoCluster(tmp_path / "never")
    with pytest.raises(DevServerError, match="timed out"):
        cluster.start(timeout=0.0)
    assert all(node.pid is None for node in cluster.nodes)
    assert processes_under(tmp_path / "never") == []
