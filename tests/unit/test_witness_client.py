"""The witness (clients/witness.py) and the intake loop's witness round, against plain fakes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import grpc
import pytest

from sealpost.clients._grpc import ClientError
from sealpost.clients.terminal.client import TerminalClient
from sealpost.clients.terminal.errors import LogWitnessError, TerminalRevokedError
from sealpost.clients.terminal.intake import (
    CollectingReporter,
    IntakeLoop,
    IntakeSettings,
    MemoryStateStore,
)
from sealpost.clients.witness import (
    FileWitnessStore,
    GatewayLog,
    MemoryWitnessStore,
    Observation,
    Witness,
    WitnessKey,
    WitnessStateError,
    head_document,
    parse_head,
)
from sealpost.crypto import cosignature, keyrecords, logentry, merkle
from sealpost.crypto._sodium import ed25519_public_from_seed, sha256
from sealpost.crypto.cosignature import Successor
from sealpost.crypto.errors import ForkError, ProofError, RollbackError, SignatureError
from sealpost.crypto.keys import PrivateKeys, SigningSeed
from sealpost.crypto.logentry import VerifiedTreeHead
from sealpost.v1 import keys_pb2, log_pb2

LOG_SEED = sha256(b"unit test log key")
LOG_KEY_ID = sha256(b"unit test log key record")
LOG_PUBLIC = ed25519_public_from_seed(LOG_SEED)
WITNESS_SEED = sha256(b"unit test witness key")
WITNESS_ID = cosignature.witness_key_id(ed25519_public_from_seed(WITNESS_SEED))
T0 = 1_800_000_000_000


class FakeLog:
    """A log in memory that signs heads, proves consistency, and can lie like a rogue one."""

    def __init__(self, leaves: int = 0) -> None:
        self.leaves: list[bytes] = []
        self.heads: list[log_pb2.SignedTreeHead] = []
        self.submitted: list[tuple[log_pb2.SignedTreeHead, log_pb2.Cosignature]] = []
        self.submit_error: ClientError | None = None
        self.clock = T0
        self.grow(leaves)

    def grow(self, count: int, tag: bytes = b"") -> log_pb2.SignedTreeHead:
        self.leaves += [tag + f"leaf {len(self.leaves) + i}".encode() for i in range(count)]
        return self.sign()

    def sign(self, size: int | None = None, root: bytes | None = None) -> log_pb2.SignedTreeHead:
        size = len(self.leaves) if size is None else size
        root = merkle.tree_hash(self.leaves[:size]) if root is None else root
        self.clock += 1000
        head = logentry.sign_tree_head(size, root, self.clock, LOG_KEY_ID, SigningSeed(LOG_SEED))
        self.heads.append(head)
        return head

    def roll_back(self, size: int) -> None:
        self.leaves = self.leaves[:size]
        self.heads = [h for h in self.heads if _size(h) <= size]

    def newest_head(self) -> log_pb2.SignedTreeHead:
        return self.heads[-1]

    def consistency_proof(self, first: int, second: int) -> log_pb2.ConsistencyProof:
        if not 0 <= first <= second <= len(self.leaves):
            raise ClientError(grpc.StatusCode.INVALID_ARGUMENT, "need sizes <= current")
        path = merkle.consistency_path(self.leaves[:second], first)
        return log_pb2.ConsistencyProof(first_size=first, second_size=second, path=path)

    def verify_head(self, head: log_pb2.SignedTreeHead) -> VerifiedTreeHead:
        return logentry.verify_tree_head(head, LOG_PUBLIC, LOG_KEY_ID)

    def submit(self, head: log_pb2.SignedTreeHead, cosig: log_pb2.Cosignature) -> int:
        if self.submit_error is not None:
            raise self.submit_error
        self.submitted.append((head, cosig))
        return _size(head)


def _size(head: log_pb2.SignedTreeHead) -> int:
    return int(log_pb2.TreeHead.FromString(head.tree_head).tree_size)


def _witness(log: FakeLog, store: MemoryWitnessStore | None = None) -> Witness:
    return Witness(
        log,
        store or MemoryWitnessStore(),
        WitnessKey(WITNESS_ID, WITNESS_SEED),
        clock=lambda: log.clock + 500,
    )


def test_first_head_is_kept_and_cosigned_then_only_newer_ones() -> None:
    log = FakeLog(5)
    witness = _witness(log)
    first = witness.witness()
    assert (first.relation, first.stored, first.cosigned) == (None, True, True)
    head, cosig = log.submitted[-1]
    cosignature.verify_cosignature(
        cosig,
        head.tree_head,
        witness_key_id=WITNESS_ID,
        public_key=ed25519_public_from_seed(WITNESS_SEED),
    )
    assert cosig.cosigned_at_ms == log.clock + 500
    again = witness.witness()
    assert (again.relation, again.stored, again.cosigned) == (Successor.SAME, False, False)
    log.grow(7)
    newer = witness.witness()
    assert (newer.relation, newer.stored, newer.cosigned) == (Successor.NEWER, True, True)
    assert witness.newest is not None
    assert witness.newest.tree_size == 12
    assert len(log.submitted) == 2
    assert witness.cosigned == 2
    # A later head of the same tree becomes the newest, and is cosigned.
    log.sign()
    same = witness.witness()
    assert (same.relation, same.stored, same.cosigned) == (Successor.SAME, True, True)


def test_an_older_head_of_the_same_history_is_accepted_but_not_kept() -> None:
    log = FakeLog(4)
    old = log.newest_head()
    log.grow(9)
    witness = _witness(log)
    witness.witness()
    verified = witness.observe(old)
    assert verified.tree_size == 4
    assert witness.newest is not None
    assert witness.newest.tree_size == 13
    assert len(log.submitted) == 1


def test_the_newest_head_going_back_is_a_rollback_even_as_a_prefix() -> None:
    log = FakeLog(10)
    witness = _witness(log)
    witness.witness()
    log.grow(5)
    witness.witness()
    log.heads.append(log.heads[0])  # the gateway offers an older head as its newest
    with pytest.raises(RollbackError, match="rolled back"):
        witness.witness()
    assert witness.newest is not None
    assert witness.newest.tree_size == 15


def test_a_log_cut_back_cannot_prove_the_head_seen() -> None:
    log = FakeLog(10)
    witness = _witness(log)
    witness.witness()
    log.grow(6)
    witness.witness()
    log.roll_back(12)
    log.sign()
    with pytest.raises(RollbackError, match="cannot prove"):
        witness.witness()
    # Grown again past the old size with other leaves: a fork, and the old head stays.
    log.grow(9, tag=b"forged ")
    with pytest.raises(ForkError):
        witness.witness()
    with pytest.raises(ForkError):
        witness.observe(log.newest_head())
    assert witness.newest is not None
    assert witness.newest.tree_size == 16


def test_two_roots_for_one_size_are_a_fork() -> None:
    log = FakeLog(8)
    witness = _witness(log)
    witness.witness()
    forked = log.sign(8, sha256(b"another history"))
    with pytest.raises(ForkError, match="two histories"):
        witness.observe(forked)


def test_a_head_that_does_not_verify_changes_nothing() -> None:
    log = FakeLog(3)
    witness = _witness(log)
    broken = log_pb2.SignedTreeHead()
    broken.CopyFrom(log.newest_head())
    broken.signature = bytes(64)
    with pytest.raises(SignatureError):
        witness.observe(broken)
    assert witness.newest is None
    assert log.submitted == []


def test_a_gateway_that_cannot_prove_its_own_newer_head() -> None:
    log = FakeLog(3)
    witness = _witness(log)
    witness.witness()
    ahead = log.sign(30, sha256(b"a root for leaves that are not there"))
    with pytest.raises(ProofError, match="its own tree head"):
        witness.observe(ahead)


def test_cosignature_refusals_are_reported_not_raised() -> None:
    log = FakeLog(3)
    witness = _witness(log)
    log.submit_error = ClientError(grpc.StatusCode.UNAVAILABLE, "gateway restarting")
    observed = witness.witness()
    assert observed.stored
    assert not observed.cosigned
    assert observed.submit_error == "UNAVAILABLE: gateway restarting"
    log.grow(1)
    log.submit_error = ClientError(grpc.StatusCode.ALREADY_EXISTS, "has it")
    assert witness.witness().cosigned
    log.grow(1)
    log.submit_error = ClientError(grpc.StatusCode.FAILED_PRECONDITION, "a newer one")
    assert witness.witness().submit_error is not None


def test_without_a_key_the_witness_checks_and_keeps_but_cosigns_nothing() -> None:
    log = FakeLog(3)
    witness = Witness(log, MemoryWitnessStore(), None)
    assert witness.witness().stored
    assert log.submitted == []


# --------------------------------------------------------------------------- files


def test_the_state_file_round_trips_owner_only(tmp_path: Path) -> None:
    log = FakeLog(6)
    store = FileWitnessStore(tmp_path / "profile" / "witness-state.json")
    witness = Witness(log, store, WitnessKey(WITNESS_ID, WITNESS_SEED), clock=lambda: T0 + 99)
    witness.witness()
    assert store.path.stat().st_mode & 0o777 == 0o600
    state = store.load()
    assert state is not None
    assert state.head == log.newest_head()
    assert state.cosigned_at_ms == T0 + 99
    document = json.loads(store.path.read_text())
    assert document["tree_size"] == 6
    # Another process with the same file sees the same newest head.
    assert Witness(log, FileWitnessStore(store.path), None).newest == witness.newest
    # The state file is itself a head file for `sealpost audit verify --since-head`.
    assert parse_head(store.path.read_bytes()) == log.newest_head()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="something-else"), "not witness state"),
        (lambda d: d.update(version=2), "version"),
        (lambda d: d.update(tree_size=99), "differs from its signed tree head"),
        (lambda d: d.update(signed_tree_head="not base64!"), "base64"),
        (lambda d: d.update(cosigned_at_ms=-1), "whole numbers"),
    ],
)
def test_a_damaged_state_file_is_refused(tmp_path: Path, change: object, message: str) -> None:
    log = FakeLog(2)
    store = FileWitnessStore(tmp_path / "witness-state.json")
    Witness(log, store, None).witness()
    document = json.loads(store.path.read_text())
    change(document)  # type: ignore[operator]
    store.path.write_text(json.dumps(document))
    with pytest.raises(WitnessStateError, match=message):
        store.load()
    store.path.write_text("{not json")
    with pytest.raises(WitnessStateError):
        store.load()


def test_head_files_in_json_and_binary() -> None:
    log = FakeLog(4)
    head = log.newest_head()
    verified = log.verify_head(head)
    document = json.dumps(head_document(head, verified)).encode()
    assert parse_head(document) == head
    assert parse_head(head.SerializeToString(deterministic=True)) == head
    with pytest.raises(WitnessStateError):
        parse_head(b"\xff\xff garbage")
    with pytest.raises(WitnessStateError):
        parse_head(json.dumps({"format": "sealpost-other", "signed_tree_head": ""}).encode())
    lying = json.loads(document)
    lying["root_hash"] = "00" * 32
    with pytest.raises(WitnessStateError, match="root_hash"):
        parse_head(json.dumps(lying).encode())


# --------------------------------------------------------------------------- the intake loop


class FakeWitness:
    """A witness whose rounds return or raise what the test says."""

    def __init__(self, *outcomes: Observation | Exception) -> None:
        self.outcomes = list(outcomes)
        self.rounds = 0

    def witness(self) -> Observation:
        self.rounds += 1
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class IdleClient:
    """A terminal client with nothing to take in."""

    def open_intake_stream(self, after_cursor: str = "", *, follow: bool = False) -> object:
        from tests.unit.test_terminal_intake_loop import FakeCall  # noqa: PLC0415

        return FakeCall([], follow)

    def hand_over(self) -> int:
        return 0

    def provision_missing_mailboxes(self) -> list[str]:
        return []


def _loop(witness: FakeWitness) -> tuple[IntakeLoop, CollectingReporter]:
    reporter = CollectingReporter()
    loop = IntakeLoop(
        cast(TerminalClient, IdleClient()),
        lambda items: [],
        MemoryStateStore(),
        settings=IntakeSettings(window_seconds=0.0, poll_seconds=0.01),
        reporter=reporter,
        witness=cast(Witness, witness),
    )
    return loop, reporter


def _observed(size: int, *, cosigned: bool = True, error: str | None = None) -> Observation:
    head = VerifiedTreeHead(1, size, bytes(32), T0, LOG_KEY_ID)
    return Observation(head, Successor.NEWER, stored=True, cosigned=cosigned, submit_error=error)


def test_the_intake_loop_witnesses_at_start_and_end_and_counts_cosignatures() -> None:
    witness = FakeWitness(_observed(10), _observed(11))
    loop, reporter = _loop(witness)
    summary = loop.run_once(max_wait=1)
    assert witness.rounds == 2
    assert (summary.heads_cosigned, summary.witnessed_size) == (2, 11)
    assert summary.to_json()["headsCosigned"] == 2
    assert reporter.notices == []


def test_a_fork_or_rollback_stops_the_intake_loop_loudly() -> None:
    for error in (ForkError("another history"), RollbackError("shorter"), SignatureError("x")):
        loop, reporter = _loop(FakeWitness(error))
        with pytest.raises(LogWitnessError) as stopped:
            loop.run_once(max_wait=1)
        assert "witness-state.json" in stopped.value.explain()
        assert [kind for kind, _ in reporter.notices] == ["witness"]


def test_a_gateway_that_cannot_be_asked_only_delays_the_witness() -> None:
    unavailable = ClientError(grpc.StatusCode.UNAVAILABLE, "restarting")
    loop, reporter = _loop(
        FakeWitness(unavailable, _observed(7, cosigned=False, error="UNAVAILABLE"))
    )
    summary = loop.run_once(max_wait=1)
    assert summary.witnessed_size == 7
    assert [kind for kind, _ in reporter.notices] == ["witness", "witness"]
    revoked = ClientError(grpc.StatusCode.UNAUTHENTICATED, "certificate revoked")
    loop, _reporter = _loop(FakeWitness(revoked))
    with pytest.raises(TerminalRevokedError):
        loop.run_once(max_wait=1)


def test_the_witness_interval_is_checked() -> None:
    with pytest.raises(ValueError, match="witness_seconds"):
        IntakeSettings(witness_seconds=0)


def _directory_and_log_key(
    not_before_s: int, not_after_s: int
) -> tuple[keyrecords.DirectoryPin, keyrecords.VerifiedKey, PrivateKeys]:
    """A directory key (pinned) and a log key record it issued, valid in the given window."""
    directory_keys = PrivateKeys(sha256(b"dir/x25519"), sha256(b"dir/ed25519"))
    log_keys = PrivateKeys(sha256(b"log/x25519"), sha256(b"log/ed25519"))
    pin = keyrecords.DirectoryPin(directory_keys.signing_key)
    directory = keyrecords.verify_directory_record(
        keyrecords.issue_directory_record(
            directory_keys, subject="directory", not_before=0, not_after=not_after_s + 3600
        ),
        pin,
        now_ms=T0,
    )
    record = keyrecords.issue_key_record(
        purpose=keys_pb2.KEY_PURPOSE_LOG,
        subject="log",
        encryption_key=b"",
        signing_key=log_keys.signing_key,
        not_before=not_before_s,
        not_after=not_after_s,
        directory_keys=directory_keys,
        directory_key_id=directory.id,
    )
    log_key = keyrecords.verify_key_record(
        record, directory, now_ms=T0, purpose=keys_pb2.KEY_PURPOSE_LOG
    )
    return pin, log_key, log_keys


def test_the_gateway_log_refuses_a_head_signed_outside_its_log_keys_validity() -> None:
    """A retired (or not yet valid) log key proves nothing, however good its signature."""
    pin, log_key, log_keys = _directory_and_log_key(T0 // 1000 - 3600, T0 // 1000 + 3600)
    gateway = GatewayLog(lambda: cast(grpc.Channel, None), pin, _log_keys={log_key.id: log_key})
    root = merkle.tree_hash([b"leaf"])
    inside = logentry.sign_tree_head(1, root, T0, log_key.id, log_keys)
    assert gateway.verify_head(inside).timestamp_ms == T0
    for at in (T0 + 3600 * 1000, T0 - 3601 * 1000):
        outside = logentry.sign_tree_head(1, root, at, log_key.id, log_keys)
        with pytest.raises(ProofError, match="outside the log key's validity"):
            gateway.verify_head(outside)
