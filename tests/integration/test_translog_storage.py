"""The transparency log on SQL (gateway/translog.py) on SQLite and PostgreSQL.

Roots and proofs read from the database must equal those of the pure RFC 9162 tree over
the same leaves, and the node lookups behind every append and proof must use the primary
key: a lookup that scans ``log_nodes`` makes each send cost more as the log grows. Under
group commit the appends of a batch are deferred to its end: indices stay contiguous,
a refused job leaves no leaf, and a read in the batch sees the batch's own leaves.
"""

from __future__ import annotations

import asyncio
import threading
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Connection, text

from sealpost.crypto import merkle
from sealpost.crypto.keys import PrivateKeys
from sealpost.crypto.logentry import LogAction, LogEvent, encode_event
from sealpost.gateway import translog
from sealpost.gateway.storage.database import Database
from sealpost.gateway.storage.groupcommit import GroupCommit
from sealpost.v1 import log_pb2

pytestmark = pytest.mark.integration


def _event(i: int) -> LogEvent:
    return LogEvent(
        action=LogAction.MESSAGE_ACCEPTED,
        actor=f"relative:acct-{i % 7}",
        time_ms=1_767_225_600_000 + i,
        subjects=[("message", i.to_bytes(16, "big").hex()), ("detainee", f"d-{i % 5}")],
        extra={"envelope_digest": "cd" * 32},
    )


def _append_in_batches(db: Database, count: int, sizes: tuple[int, ...]) -> list[bytes]:
    """Append ``count`` events in batches cycling through ``sizes``; returns the leaves."""
    leaves: list[bytes] = []
    turn = 0
    while len(leaves) < count:
        n = min(sizes[turn % len(sizes)], count - len(leaves))
        events = [_event(len(leaves) + k) for k in range(n)]

        def append(connection: Connection, events: list[LogEvent] = events) -> Any:
            return translog.append(connection, events)

        appended = db.write(append)
        assert [a.index for a in appended] == list(range(len(leaves), len(leaves) + n))
        leaves += [a.leaf for a in appended]
        turn += 1
    return leaves


def test_roots_and_proofs_match_the_pure_tree(db: Database) -> None:
    leaves = _append_in_batches(db, 77, (1, 3, 16, 5))
    assert leaves == [encode_event(_event(i)) for i in range(77)]
    for size in (1, 2, 7, 32, 33, 77):
        assert db.read(partial(translog.root, tree_size=size)) == merkle.tree_hash(leaves[:size])
    for index, size in ((0, 1), (5, 6), (31, 77), (76, 77), (40, 64)):
        proof = db.read(partial(translog.inclusion_proof, index=index, tree_size=size))
        assert list(proof.path) == merkle.inclusion_path(leaves[:size], index)
        merkle.verify_inclusion(
            leaf_hash=merkle.leaf_hash(leaves[index]),
            index=index,
            size=size,
            proof=list(proof.path),
            root=merkle.tree_hash(leaves[:size]),
        )
    for first, second in ((1, 77), (32, 77), (33, 64), (76, 77)):
        consistency = db.read(partial(translog.consistency_proof, first=first, second=second))
        assert list(consistency.path) == merkle.consistency_path(leaves[:second], first)


def test_a_missing_node_is_an_error_not_a_wrong_proof(db: Database) -> None:
    _append_in_batches(db, 8, (8,))
    store = db.read(lambda c: translog.SqlNodeStore(c).get_many([(0, 7), (3, 0)]))
    assert len(store) == 2
    with pytest.raises(KeyError):
        db.read(lambda c: translog.SqlNodeStore(c).get_many([(0, 8)]))


def _looked_up(monkeypatch: pytest.MonkeyPatch, run: Any) -> list[list[merkle.NodeKey]]:
    """The key lists ``run`` asks the node store for."""
    seen: list[list[merkle.NodeKey]] = []
    original = translog.SqlNodeStore.get_many

    def recording(store: translog.SqlNodeStore, keys: Any) -> list[bytes]:
        seen.append(list(keys))
        return original(store, keys)

    monkeypatch.setattr(translog.SqlNodeStore, "get_many", recording)
    run()
    monkeypatch.undo()
    return seen


def test_node_lookups_use_the_primary_key(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    _append_in_batches(db, 301, (100,))

    def proofs() -> None:
        db.read(lambda c: translog.inclusion_proof(c, 123, 300))
        db.read(lambda c: translog.consistency_proof(c, 77, 300))
        db.write(lambda c: translog.append(c, [_event(301)]))  # needs the left sibling 300

    key_lists = _looked_up(monkeypatch, proofs)
    assert len(key_lists) == 3, key_lists
    key_lists.append([(0, i) for i in range(256)])  # the largest shape
    with db.reader.connect() as connection:
        if db.dialect == "postgresql":
            # Seq scans off: a plan that can use the key does; one that cannot still scans.
            connection.execute(text("SET enable_seqscan = off"))
        for keys in key_lists:
            query, parameters = translog.node_lookup(db.dialect, keys)
            sql, arguments = query.sql(connection, parameters)
            if db.dialect == "sqlite":
                plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, arguments)
                details = " | ".join(str(row[-1]) for row in plan)
                assert "SCAN log_nodes" not in details, details
                assert "USING INDEX" in details, details
            else:
                plan = connection.exec_driver_sql("EXPLAIN " + sql, arguments)
                details = " | ".join(str(row[0]) for row in plan)
                assert "Seq Scan on log_nodes" not in details, details


def _get_many(db: Database, keys: list[merkle.NodeKey]) -> list[bytes]:
    return db.read(lambda c: translog.SqlNodeStore(c).get_many(keys))


def test_node_lookups_of_every_size_return_the_keys_in_order(db: Database) -> None:
    leaves = _append_in_batches(db, 300, (300,))
    hashes = [merkle.leaf_hash(leaf) for leaf in leaves]
    for count in (1, 2, 3, 5, 64, 255, 256, 257, 300):
        keys = [(0, (i * 7) % 300) for i in range(count)][::-1]
        got = _get_many(db, keys)
        assert got == [hashes[i] for _level, i in keys], count
    # Repeated keys, and keys of several levels in one lookup.
    mixed = [(1, 0), (0, 299), (1, 0), (8, 0), (0, 0)]
    got = _get_many(db, mixed)
    pairs = merkle.node_hash(hashes[0], hashes[1])
    assert got[0] == got[2] == pairs
    assert got[1] == hashes[299]
    assert got[4] == hashes[0]
    assert got[3] == merkle.tree_hash(leaves[:256])
    with pytest.raises(ValueError, match="1 to 256 keys"):
        translog.node_lookup("sqlite", [])
    with pytest.raises(ValueError, match="1 to 256 keys"):
        translog.node_lookup("postgresql", [(0, i) for i in range(257)])


# --------------------------------------------------------------------------- deferred appends


class _Refused(Exception):
    """A job's own refusal, after it appended."""


def test_group_commit_defers_appends_and_undoes_refused_jobs(db: Database) -> None:
    committer = GroupCommit(db, scope=translog.Deferred)

    def job(i: int, connection: Connection) -> translog.Appended:
        appended = translog.append(connection, [_event(i)])[0]
        if i % 3 == 1:
            raise _Refused(i)
        return appended

    async def run_all() -> list[translog.Appended | BaseException]:
        return await asyncio.gather(
            *(committer.run(partial(job, i)) for i in range(60)), return_exceptions=True
        )

    try:
        outcomes = asyncio.run(run_all())
    finally:
        committer.close()
    kept = [o for o in outcomes if isinstance(o, translog.Appended)]
    assert len(kept) == 40
    assert all(isinstance(o, _Refused) for o in outcomes if o not in kept)
    # Contiguous indices in job order, each pointing at the leaf its job appended.
    assert [a.index for a in kept] == list(range(40))
    stored = db.read(lambda c: translog.entries(c, 0, 100))
    assert [e.leaf for e in stored] == [a.leaf for a in kept]
    assert db.read(translog.size) == 40
    leaves = [a.leaf for a in kept]
    assert db.read(partial(translog.root, tree_size=40)) == merkle.tree_hash(leaves)


def _refused_job(connection: Connection) -> None:
    """Appends leaf 6, signs a head (which must cover it), then is refused."""
    second = translog.append(connection, [_event(6)])[0]
    assert second.index == 6
    head = translog.sign_head(connection, PrivateKeys.generate(), b"\x01" * 32, 1_767_225_600_000)
    assert log_pb2.TreeHead.FromString(head.tree_head).tree_size == 7
    raise _Refused


def test_a_read_inside_the_batch_sees_its_own_appends(db: Database) -> None:
    _append_in_batches(db, 5, (5,))
    with db.writer.begin() as connection:
        deferred = translog.Deferred(connection)
        try:
            first = translog.append(connection, [_event(5)])[0]
            assert first.index == 5
            mark = deferred.mark()
            with pytest.raises(_Refused), connection.begin_nested():
                _refused_job(connection)
            deferred.rewind(mark)
            # The refused job's leaf, flushed by the head, was rolled back with it; the
            # first job's leaf is pending again, and the next append follows it.
            third = translog.append(connection, [_event(7)])[0]
            assert third.index == 6
            deferred.flush()
        finally:
            deferred.close()
    leaves = [e.leaf for e in db.read(lambda c: translog.entries(c, 0, 10))]
    assert leaves == [encode_event(_event(i)) for i in (0, 1, 2, 3, 4, 5, 7)]
    assert db.read(partial(translog.root, tree_size=7)) == merkle.tree_hash(leaves)


def test_a_head_is_signed_only_when_the_log_has_grown(db: Database) -> None:
    """sign_head_if_grown decides in the write transaction; needs_head is only a hint."""
    keys = PrivateKeys.generate()
    key_id = bytes(32)

    def sign(connection: Connection) -> log_pb2.SignedTreeHead | None:
        return translog.sign_head_if_grown(connection, keys, key_id, 1_767_225_600_000)

    def grow(count: int) -> None:
        db.write(lambda c: translog.append(c, [_event(1000 + k) for k in range(count)]))

    def sizes() -> list[int]:
        return [
            log_pb2.TreeHead.FromString(h.tree_head).tree_size
            for h in db.read(lambda c: translog.heads(c, 0, 100))
        ]

    assert db.write(sign) is None  # an empty log needs no head
    assert db.read(translog.needs_head) is False
    grow(5)
    assert db.read(translog.needs_head) is True
    assert db.write(sign) is not None
    assert db.write(sign) is None  # nothing grew since
    assert db.read(translog.needs_head) is False
    grow(3)
    assert db.write(sign) is not None
    assert sizes() == [5, 8]
    # A head signed by another path (a fresh head on request) counts as well.
    grow(1)
    db.write(lambda c: translog.sign_head(c, keys, key_id, 1_767_225_600_001))
    assert db.write(sign) is None
    assert sizes() == [5, 8, 9]


def test_a_batch_signs_one_head_covering_it_when_a_job_asks(db: Database) -> None:
    """One head per batch that asked (a send, whose answer carries the proof), none else."""
    keys = PrivateKeys.generate()

    def sign(connection: Connection) -> object:
        return translog.sign_head_if_grown(connection, keys, bytes(32), 1_767_225_600_000)

    def sizes() -> list[int]:
        return [
            log_pb2.TreeHead.FromString(h.tree_head).tree_size
            for h in db.read(lambda c: translog.heads(c, 0, 100))
        ]

    committer = GroupCommit(db, scope=lambda c: translog.Deferred(c, sign))

    def job(i: int, connection: Connection, *, wants: bool) -> int:
        appended = translog.append(connection, [_event(i)])[0]
        if wants:
            translog.want_head(connection)
        return appended.index

    async def one_batch(first: int, count: int, *, asking: int | None) -> list[int]:
        """``count`` jobs queued while the writer is held, so that they commit together."""
        started, release = threading.Event(), threading.Event()

        def hold(_connection: Connection) -> None:
            started.set()
            release.wait(10)

        held = asyncio.ensure_future(committer.run(hold))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        jobs = [
            asyncio.ensure_future(committer.run(partial(job, first + k, wants=k == asking)))
            for k in range(count)
        ]
        await asyncio.sleep(0)  # each job is queued once its task first runs
        release.set()
        await held
        return list(await asyncio.gather(*jobs))

    try:
        asyncio.run(one_batch(0, 3, asking=None))
        assert sizes() == []  # nobody asked: the periodic signer covers these later
        indices = asyncio.run(one_batch(3, 4, asking=0))
        assert indices == [3, 4, 5, 6]
        assert sizes() == [7]  # one head, covering every job of the batch
        asyncio.run(one_batch(7, 2, asking=1))
        assert sizes() == [7, 9]
    finally:
        committer.close()
    # Outside group commit, asking does nothing and costs nothing.
    db.write(translog.want_head)
    assert sizes() == [7, 9]
