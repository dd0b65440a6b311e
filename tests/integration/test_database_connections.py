"""Pooled PostgreSQL connections: reads in autocommit, writes in transactions; checked
when idle, all replaced when the server went away.

A read's statements each see what was committed when they began (READ COMMITTED did
no more), so reads run without BEGIN and COMMIT; a write must stay one transaction
even on a connection a read used just before.

A connection used a moment ago is handed out without a round trip to check it. So
that a restarted server costs one failed request rather than one per pooled
connection, the first failure replaces every connection in the pool, whether the
failing statement ran through SQLAlchemy or on the driver (gateway/storage/direct.py).
A connection that sat idle is checked before use and replaced if it is dead.

At a failover (docs/operations.md section 9) the group-commit batch in flight is the
request that fails: it answers UNAVAILABLE, caused by the lost connection, and the next
batch commits on a new one, in the same process.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from sealpost.gateway import store, translog
from sealpost.gateway.errors import Unavailable
from sealpost.gateway.storage import database
from sealpost.gateway.storage.database import Database
from sealpost.gateway.storage.groupcommit import GroupCommit

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]


def _pid(connection: Connection) -> int:
    pid: int = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return pid


def _pooled_pids(db: Database, count: int) -> list[int]:
    """Put ``count`` connections in the pool (used just now); their server process ids."""
    held = [db.reader.connect() for _ in range(count)]
    try:
        return [_pid(connection) for connection in held]
    finally:
        for connection in held:
            connection.close()


def _terminate(db: Database, pids: list[int]) -> None:
    """End those server processes from a connection outside the pool."""
    engine = create_engine(db.reader.url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            for pid in pids:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        engine.dispose()


@pytest.fixture
def trusting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Connections count as used a moment ago for the whole test."""
    monkeypatch.setattr(database, "PING_AFTER_IDLE_S", 3600.0)


@pytest.mark.usefixtures("trusting")
def test_a_driver_statement_on_a_lost_connection_replaces_the_whole_pool(db: Database) -> None:
    lost = _pooled_pids(db, 3)
    _terminate(db, lost)
    # Not checked at checkout: the first statement, on the driver, finds the loss.
    with pytest.raises(Unavailable):
        db.read(lambda c: store.key_record(c, b"k" * 32))
    # Every later request gets a new connection, none of the other two lost ones.
    after = [db.read(_pid) for _ in range(3)]
    assert not set(after) & set(lost)


@pytest.mark.usefixtures("trusting")
def test_a_sqlalchemy_statement_on_a_lost_connection_replaces_the_whole_pool(
    db: Database,
) -> None:
    lost = _pooled_pids(db, 3)
    _terminate(db, lost)
    with pytest.raises(Unavailable):
        db.read(lambda c: c.execute(text("SELECT 1")).scalar_one())
    after = [db.read(_pid) for _ in range(3)]
    assert not set(after) & set(lost)


@pytest.mark.usefixtures("trusting")
def test_a_batch_on_a_lost_connection_answers_unavailable_and_the_next_one_commits(
    db: Database,
) -> None:
    committer = GroupCommit(db, scope=translog.Deferred)
    lost: list[int] = []

    def cut_off(connection: Connection) -> object:
        lost.append(_pid(connection))
        _terminate(db, lost)
        return store.key_record(connection, b"k" * 32)  # a driver statement, as sends run

    try:
        with pytest.raises(Unavailable) as refused:
            asyncio.run(committer.run(cut_off))
        # The loss itself, not an error of the cleanup after it (the log names this type).
        assert isinstance(refused.value.__cause__, OperationalError)
        assert asyncio.run(committer.run(_pid)) not in lost
    finally:
        committer.close()


def test_an_idle_connection_is_checked_and_a_dead_one_replaced(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "PING_AFTER_IDLE_S", 0.0)
    lost = _pooled_pids(db, 2)
    _terminate(db, lost)
    # Both requests succeed: each dead connection is found at checkout and replaced.
    after = [db.read(_pid) for _ in range(2)]
    assert not set(after) & set(lost)
    assert db.read(lambda c: store.key_record(c, b"k" * 32)) is None


def _in_transaction(connection: Connection) -> bool:
    driver = connection.connection.driver_connection
    assert driver is not None
    return bool(driver.info.transaction_status != 0)  # 0: idle, outside a transaction


def test_reads_run_in_autocommit_and_writes_stay_transactions(database_url: str) -> None:
    db = Database(database_url, pool_size=1)  # one connection, used by reads and writes
    try:
        db.write(lambda c: c.execute(text("CREATE TABLE probe (n INTEGER PRIMARY KEY)")))

        def read(connection: Connection) -> tuple[bool, int]:
            count = connection.execute(text("SELECT count(*) FROM probe")).scalar_one()
            return _in_transaction(connection), count

        assert db.read(read) == (False, 0)

        def refused_write(connection: Connection) -> None:
            connection.execute(text("INSERT INTO probe (n) VALUES (1)"))
            assert _in_transaction(connection)
            connection.execute(text("INSERT INTO probe (n) VALUES (2)"))
            raise RuntimeError

        with pytest.raises(RuntimeError):
            db.write(refused_write)
        assert db.read(read) == (False, 0)  # both inserts were undone together
        db.write(lambda c: c.execute(text("INSERT INTO probe (n) VALUES (3)")))
        assert db.read(read) == (False, 1)
    finally:
        db.dispose()
