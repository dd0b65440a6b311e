"""The gateway's SQL transparency log: appends per second and proof times at 1M and 10M leaves.

Everything measured goes through the gateway's own code (gateway/translog.py on a
database migrated by Alembic, gateway/storage/groupcommit.py for batching):

- appends as sends make them: one "message accepted" event per job, up to
  ``MAX_BATCH`` jobs per durable commit (group commit: the jobs back to back, a
  SAVEPOINT each only if one of them refuses, and the batch's appends deferred to its
  end as the gateway configures it);
- appends of a whole batch of events in one ``translog.append`` call;
- one event per durable commit (no group commit), for contrast;
- inclusion and consistency proofs generated from the database (one read
  transaction each, as the gateway serves them) and verified (pure code), at
  1M and 10M leaves (the smaller size is a prefix of the same log).

The large log is built by bulk insert: the same Merkle code computes every node,
and the rows go in with executemany (SQLite) or COPY (PostgreSQL) with durability off
for the build only. Same-run references: a bare INSERT of leaf-sized rows, the same
number per durable commit, with no Merkle tree and no SQLAlchemy (for the append
ratio); and one SHA-256 call (for proof times).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import psycopg
from sqlalchemy import Connection

from bench import Result
from bench.bench_merkle import sha256_rate
from sealpost._internal.devservers import PostgresServer
from sealpost._internal.logs import configure as configure_logs
from sealpost.crypto import merkle
from sealpost.crypto.logentry import LogAction, LogEvent, encode_event
from sealpost.gateway import store, translog
from sealpost.gateway.storage.database import Database, create_database_engine, migrate
from sealpost.gateway.storage.groupcommit import MAX_BATCH, GroupCommit
from sealpost.v1 import log_pb2

NAME = "translog"
APPEND_TARGET = ">= 20,000 appends/s"
PROOF_TARGET = "< 1000 us"
#: Leaves hashed and inserted per step of the bulk build.
BUILD_CHUNK = 1 << 16
#: A build slower than this is reported as such (the spec's "reasonable time").
BUILD_BUDGET_SECONDS = 600.0
_T0 = 1_767_225_600_000
_DIGEST = "ab" * 32


def _progress(text: str) -> None:
    print(f"translog: {text}", file=sys.stderr, flush=True)


def _loadavg() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


# --------------------------------------------------------------------------- leaves


def _event(i: int, *, spread: bool = True) -> LogEvent:
    """A "message accepted" event as the send path logs it (message ``i``).

    With ``spread`` the sender and the detainee vary with ``i``; without, they are fixed.
    """
    account, detainee = (i % 5000, i % 12000) if spread else (0, 0)
    return LogEvent(
        action=LogAction.MESSAGE_ACCEPTED,
        actor=f"relative:acct-{account:016x}",
        time_ms=_T0 + i,
        subjects=[("message", i.to_bytes(16, "big").hex()), ("detainee", f"d-{detainee:05d}")],
        extra={"envelope_digest": _DIGEST, "direction": "inbound"},
    )


class _LeafFactory:
    """Canonical leaves for the bulk build without encoding 10M events one by one.

    The encoding is length-prefixed, so replacing the fixed-width message id and the
    time in one encoded template gives exactly ``encode_event`` of the changed event
    (checked for a few indices on construction).
    """

    def __init__(self) -> None:
        template = encode_event(_event(0, spread=False))
        marker = (0).to_bytes(16, "big").hex().encode()
        cut = template.index(marker)
        self._head = template[:3]  # version and action; the 8-byte time follows
        self._middle = template[11:cut]
        self._tail = template[cut + len(marker) :]
        for i in (1, 4999, 123_456_789):
            if self.leaf(i) != encode_event(_event(i, spread=False)):
                raise AssertionError("the leaf template no longer matches encode_event")

    def leaf(self, i: int) -> bytes:
        """``encode_event(_event(i, spread=False))``, by substitution."""
        return (
            self._head
            + (_T0 + i).to_bytes(8, "big")
            + self._middle
            + i.to_bytes(16, "big").hex().encode()
            + self._tail
        )


# --------------------------------------------------------------------------- databases


Writer = Callable[[str, Sequence[tuple[Any, ...]]], None]


class _Backend(Protocol):
    """One database under test: its URL, a bare-insert reference and a bulk loader."""

    name: str
    url: str

    def bare_insert_rate(self, rows: int, per_commit: int) -> float:
        """Rows per second of a plain INSERT, ``per_commit`` rows per durable commit."""
        ...

    def bulk(self) -> AbstractContextManager[Writer]:
        """A writer of (table, rows) for the build, durability off, committed at the end."""
        ...


class _Sqlite:
    def __init__(self, root: Path) -> None:
        self.name = "sqlite"
        self.root = root
        self.url = f"sqlite:///{root / 'translog.db'}"

    def bare_insert_rate(self, rows: int, per_commit: int) -> float:
        connection = sqlite3.connect(self.root / "bare.db", isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("CREATE TABLE bare (idx INTEGER PRIMARY KEY, leaf BLOB NOT NULL)")
            factory = _LeafFactory()
            data = [(i, factory.leaf(i)) for i in range(rows)]
            started = time.perf_counter()
            for start in range(0, rows, per_commit):
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany(
                    "INSERT INTO bare VALUES (?, ?)", data[start : start + per_commit]
                )
                connection.execute("COMMIT")
            return rows / (time.perf_counter() - started)
        finally:
            connection.close()

    @contextmanager
    def bulk(self) -> Iterator[Writer]:
        connection = sqlite3.connect(self.root / "translog.db", isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=DELETE")
            connection.execute("PRAGMA synchronous=OFF")
            connection.execute("PRAGMA cache_size=-262144")
            connection.execute("BEGIN")

            def write(table: str, rows: Sequence[tuple[Any, ...]]) -> None:
                marks = ", ".join("?" * len(rows[0]))
                connection.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # noqa: S608

            yield write
            connection.execute("COMMIT")
            connection.execute("PRAGMA journal_mode=WAL")  # the gateway's mode from here on
        finally:
            connection.close()


class _Postgres:
    def __init__(self, server: PostgresServer, database: str) -> None:
        self.name = "postgresql"
        self.url = server.create_database(database)
        self._dsn = f"host=127.0.0.1 port={server.port} user=postgres dbname={database}"

    def bare_insert_rate(self, rows: int, per_commit: int) -> float:
        factory = _LeafFactory()
        data = [(i, factory.leaf(i)) for i in range(rows)]
        with psycopg.connect(self._dsn) as connection:
            connection.execute("CREATE TABLE bare (idx bigint PRIMARY KEY, leaf bytea NOT NULL)")
            connection.commit()
            started = time.perf_counter()
            with connection.cursor() as cursor:
                for start in range(0, rows, per_commit):
                    cursor.executemany(
                        "INSERT INTO bare VALUES (%s, %s)", data[start : start + per_commit]
                    )
                    connection.commit()
            return rows / (time.perf_counter() - started)

    @contextmanager
    def bulk(self) -> Iterator[Writer]:
        columns = {
            "log_nodes": "(level, idx, hash)",
            "log_leaves": "(idx, leaf)",
            "gateway_state": "(name, value)",
        }
        with psycopg.connect(self._dsn) as connection:
            connection.execute("SET synchronous_commit = off")

            def write(table: str, rows: Sequence[tuple[Any, ...]]) -> None:
                statement = f"COPY {table} {columns[table]} FROM STDIN"
                with connection.cursor().copy(statement) as copy:
                    for row in rows:
                        copy.write_row(row)

            yield write
            connection.commit()
            connection.autocommit = True
            connection.execute("ANALYZE log_nodes")
            connection.execute("ANALYZE log_leaves")


def _migrated(url: str) -> None:
    engine = create_database_engine(url)
    try:
        migrate(engine)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- appends


async def _group_commit(db: Database, count: int, offset: int) -> float:
    """Sends' appends: one event per job, jobs batched by the gateway's group commit."""
    committer = GroupCommit(db, scope=translog.Deferred)

    def job(i: int, connection: Any) -> translog.Appended:
        event = _event(i)
        return store.log(
            connection,
            event.action,
            event.actor,
            event.time_ms,
            list(event.subjects),
            scope=frozenset({"pi-bench"}),
            **dict(event.extra),
        )

    try:
        started = time.perf_counter()
        await asyncio.gather(
            *(committer.run(partial(job, i)) for i in range(offset, offset + count))
        )
        return count / (time.perf_counter() - started)
    finally:
        committer.close()


def _group_commit_process(url: str, count: int, offset: int) -> tuple[float, float]:
    """One gateway process's sends: (start, end) wall-clock times of its group commits."""
    db = Database(url)
    try:
        started = time.time()
        asyncio.run(_group_commit(db, count, offset))
        return started, time.time()
    finally:
        db.dispose()


def _two_writers(url: str, count: int, offset: int) -> float:
    """Appends per second with two processes (two gateways) group-committing side by side.

    Each append locks the log's size row first (gateway/translog.py), so the two
    processes' batches commit one after the other: this against one process's rate is
    what serialising the log costs.
    """
    with concurrent.futures.ProcessPoolExecutor(max_workers=2) as pool:
        halves = [
            pool.submit(_group_commit_process, url, count // 2, offset + k * (count // 2))
            for k in range(2)
        ]
        spans = [h.result() for h in halves]
    return count / (max(e for _s, e in spans) - min(s for s, _e in spans))


def _append(connection: Connection, events: Sequence[LogEvent]) -> list[translog.Appended]:
    return translog.append(connection, events)


def _append_rates(
    backend: _Backend, where: str, offset: int, reference: float, quick: bool
) -> list[Result]:
    """Group-commit, whole-batch and one-per-commit append rates from leaf ``offset`` on."""
    jobs = 5_000 if quick else 20_000
    singles = 100 if quick else 300
    db = Database(backend.url)
    try:
        load = _loadavg()
        grouped = asyncio.run(_group_commit(db, jobs, offset))
        offset += jobs
        two = _two_writers(backend.url, jobs, offset)
        offset += jobs
        events = [_event(i) for i in range(offset, offset + jobs)]
        started = time.perf_counter()
        for start in range(0, jobs, MAX_BATCH):
            batch = events[start : start + MAX_BATCH]
            db.write(partial(_append, events=batch))
        whole = jobs / (time.perf_counter() - started)
        offset += jobs
        started = time.perf_counter()
        for i in range(offset, offset + singles):
            db.write(partial(_append, events=[_event(i)]))
        single = singles / (time.perf_counter() - started)
    finally:
        db.dispose()
    ref = (reference, f"bare INSERT rows/s, {MAX_BATCH} per commit")
    return [
        Result(
            NAME,
            f"append ({where}), group commit of {MAX_BATCH} sends, {load}",
            grouped,
            "appends/s",
            *ref,
            APPEND_TARGET,
        ),
        Result(
            NAME,
            f"append ({where}), group commit in two processes side by side (two gateways)",
            two,
            "appends/s",
            grouped,
            "one process's group commit, same run",
        ),
        Result(NAME, f"append ({where}), {MAX_BATCH} events per call", whole, "appends/s", *ref),
        Result(NAME, f"append ({where}), 1 event per commit", single, "appends/s", *ref),
    ]


# --------------------------------------------------------------------------- build


def _build(backends: Sequence[_Backend], size: int) -> list[Result]:
    """Bulk-build a ``size``-leaf log into every backend in one pass over the hashing."""
    _progress(f"building a {size:,}-leaf log ({', '.join(b.name for b in backends)}) ...")
    factory = _LeafFactory()
    memory = merkle.MemoryNodeStore()  # only for the left siblings the next chunk needs
    started = time.perf_counter()
    with _bulk_all(backends) as write:
        for start in range(0, size, BUILD_CHUNK):
            end = min(start + BUILD_CHUNK, size)
            leaves = [factory.leaf(i) for i in range(start, end)]
            runs = merkle.nodes_for_append(memory, start, [merkle.leaf_hash(x) for x in leaves])
            memory.put_many(runs)
            write("log_nodes", [row for run in runs for row in run.rows()])
            write("log_leaves", list(zip(range(start, end), leaves, strict=True)))
            if start and start % (BUILD_CHUNK * 16) == 0:
                elapsed = time.perf_counter() - started
                _progress(f"  {start:,} leaves, {elapsed:.0f} s, {_loadavg()}")
        write("gateway_state", [(translog.LOG_SIZE, size)])
    elapsed = time.perf_counter() - started
    label = ", ".join(b.name for b in backends)
    note = (
        ""
        if elapsed <= BUILD_BUDGET_SECONDS
        else f" (over the {BUILD_BUDGET_SECONDS:.0f} s budget)"
    )
    return [
        Result(NAME, f"bulk build {size:,} leaves ({label}){note}", elapsed, "s"),
        Result(NAME, f"bulk build {size:,} leaves ({label}), rate", size / elapsed, "leaves/s"),
    ]


@contextmanager
def _bulk_all(backends: Sequence[_Backend]) -> Iterator[Callable[[str, Sequence[Any]], None]]:
    with ExitStack() as stack:
        writers = [stack.enter_context(b.bulk()) for b in backends]

        def write(table: str, rows: Sequence[Any]) -> None:
            for writer in writers:
                writer(table, rows)

        yield write


# --------------------------------------------------------------------------- proofs


def _timed(calls: Sequence[Callable[[], object]]) -> tuple[float, float]:
    """Mean and 99th percentile of ``calls`` in microseconds."""
    times = []
    for call in calls:
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    times.sort()
    return 1e6 * sum(times) / len(times), 1e6 * times[int(0.99 * (len(times) - 1))]


def _proof_times(backend: _Backend, size: int, hash_us: float, samples: int) -> list[Result]:
    _progress(f"proofs at {size:,} leaves ({backend.name}) ...")
    db = Database(backend.url)
    rng = random.Random(size)
    try:
        root = db.read(lambda c: translog.root(c, size))
        indices = [rng.randrange(size) for _ in range(samples)]
        firsts = [rng.randrange(1, size) for _ in range(samples)]
        # Warm up: the first read of a connection pays for the pool and the schema.
        db.read(lambda c: translog.inclusion_proof(c, indices[0], size))
        leaf_hashes = db.read(
            lambda c: dict(
                zip(
                    indices,
                    translog.SqlNodeStore(c).get_many([(0, i) for i in indices]),
                    strict=True,
                )
            )
        )
        first_roots = {m: db.read(partial(translog.root, tree_size=m)) for m in firsts}

        def include(i: int) -> log_pb2.InclusionProof:
            return db.read(partial(translog.inclusion_proof, index=i, tree_size=size))

        def consist(m: int) -> log_pb2.ConsistencyProof:
            return db.read(partial(translog.consistency_proof, first=m, second=size))

        def verify_inclusion(i: int) -> None:
            merkle.verify_inclusion(
                leaf_hash=leaf_hashes[i],
                index=i,
                size=size,
                proof=list(inclusion[i].path),
                root=root,
            )

        def verify_consistency(m: int) -> None:
            merkle.verify_consistency(
                first_size=m,
                second_size=size,
                first_root=first_roots[m],
                second_root=root,
                proof=list(consistency[m].path),
            )

        inclusion = {i: include(i) for i in indices}
        consistency = {m: consist(m) for m in firsts}
        gen_inc = _timed([partial(include, i) for i in indices])
        gen_con = _timed([partial(consist, m) for m in firsts])
        ver_inc = _timed([partial(verify_inclusion, i) for i in indices])
        ver_con = _timed([partial(verify_consistency, m) for m in firsts])
    finally:
        db.dispose()
    label = "one SHA-256 call, us"
    rows = []
    where = f"{size:,} ({backend.name})"
    for what, (mean, p99) in (
        ("inclusion proof from SQL", gen_inc),
        ("consistency proof from SQL", gen_con),
        ("inclusion proof, verify", ver_inc),
        ("consistency proof, verify", ver_con),
    ):
        rows.append(
            Result(NAME, f"{what} @ {where} (mean)", mean, "us", hash_us, label, PROOF_TARGET)
        )
        rows.append(
            Result(NAME, f"{what} @ {where} (p99)", p99, "us", hash_us, label, PROOF_TARGET)
        )
    rows[0] = Result(
        NAME,
        f"inclusion proof from SQL @ {where} (mean), {_loadavg()}",
        gen_inc[0],
        "us",
        hash_us,
        label,
        PROOF_TARGET,
    )
    return rows


# --------------------------------------------------------------------------- run


def run(quick: bool) -> list[Result]:
    """References, appends on an empty log, the bulk build, proofs, appends on the large log."""
    configure_logs("warning")
    sizes = [100_000] if quick else [1_000_000, 10_000_000]
    samples = 300 if quick else 1000
    jobs = 5_000 if quick else 20_000
    reference = sha256_rate(0.5 if quick else 1.0)
    hash_us = 1e6 / reference
    results = [Result(NAME, f"reference: SHA-256, 65 bytes, {_loadavg()}", reference, "calls/s")]
    postgres = PostgresServer()
    postgres.start()
    try:
        with tempfile.TemporaryDirectory(prefix="sealpost-bench-translog-") as tmp:
            root = Path(tmp)
            (root / "large").mkdir()
            empty: list[_Backend] = [_Sqlite(root), _Postgres(postgres, "translog")]
            large: list[_Backend] = [_Sqlite(root / "large"), _Postgres(postgres, "large")]
            bare: dict[str, float] = {}
            for backend in empty:
                _migrated(backend.url)
                bare[backend.name] = backend.bare_insert_rate(jobs, MAX_BATCH)
                results.append(
                    Result(
                        NAME,
                        f"reference: bare INSERT ({backend.name}), {MAX_BATCH} per commit, "
                        + _loadavg(),
                        bare[backend.name],
                        "rows/s",
                    )
                )
                results += _append_rates(
                    backend, f"{backend.name}, empty log", 0, bare[backend.name], quick
                )
            for backend in large:
                _migrated(backend.url)
            results += _build(large, max(sizes))
            for backend in large:
                for size in sizes:  # each smaller size is a prefix of the same log
                    results += _proof_times(backend, size, hash_us, samples)
                where = f"{backend.name}, {max(sizes):,}-leaf log"
                results += _append_rates(backend, where, max(sizes), bare[backend.name], quick)
    finally:
        postgres.stop()
        postgres.remove()
    return results
