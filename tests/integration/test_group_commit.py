"""Group commit (gateway/storage/groupcommit.py) on SQLite and PostgreSQL.

Jobs queued while the writer is busy go into one transaction; each caller gets its
own job's result or refusal, after the commit, and a refused job's changes are
undone alone, also when the refusal is a constraint the store turned into
AlreadyExists. A batch runs without savepoints until a job refuses; then it is
rolled back and run again, each job in a savepoint. The writer wakes the callers'
event loop once per batch, not once per job: every wake-up is a system call and a
turn of the loop.
"""

from __future__ import annotations

import asyncio
import threading
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Connection, select, text

from sealpost.gateway import policy, states, store, translog
from sealpost.gateway.errors import AlreadyExists
from sealpost.gateway.storage import groupcommit
from sealpost.gateway.storage.database import Database
from sealpost.gateway.storage.direct import savepoint
from sealpost.gateway.storage.groupcommit import GroupCommit
from sealpost.gateway.storage.schema import feed, messages

pytestmark = pytest.mark.integration


class _Refused(Exception):
    pass


def test_a_batch_answers_each_caller_with_one_wake_up(db: Database) -> None:
    with db.writer.begin() as connection:
        connection.execute(text("CREATE TABLE batch_probe (n INTEGER PRIMARY KEY)"))
    committer = GroupCommit(db)
    release = threading.Event()

    def blocker(_connection: Connection) -> str:
        release.wait(10)
        return "first"

    def job(n: int, connection: Connection) -> int:
        connection.execute(text("INSERT INTO batch_probe (n) VALUES (:n)"), {"n": n})
        if n % 4 == 3:
            raise _Refused(n)
        return n * 10

    async def run_all() -> tuple[list[Any], int]:
        loop = asyncio.get_running_loop()
        wake_ups = 0
        original = loop.call_soon_threadsafe

        def counting(*args: Any, **kwargs: Any) -> Any:
            nonlocal wake_ups
            wake_ups += 1
            return original(*args, **kwargs)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign,assignment]
        first = asyncio.ensure_future(committer.run(blocker))
        await asyncio.sleep(0.2)  # the writer now holds the blocker's batch
        rest = [asyncio.ensure_future(committer.run(partial(job, n))) for n in range(20)]
        await asyncio.sleep(0.1)
        release.set()
        outcomes = await asyncio.gather(first, *rest, return_exceptions=True)
        return outcomes, wake_ups

    try:
        outcomes, wake_ups = asyncio.run(run_all())
    finally:
        committer.close()
    assert outcomes[0] == "first"
    for n, outcome in enumerate(outcomes[1:]):
        if n % 4 == 3:
            assert isinstance(outcome, _Refused)
        else:
            assert outcome == n * 10
    assert wake_ups == 2  # the blocker's batch, then the twenty jobs' batch
    stored = db.read(
        lambda c: c.execute(text("SELECT n FROM batch_probe ORDER BY n")).scalars().all()
    )
    assert stored == [n for n in range(20) if n % 4 != 3]


def _queued_behind_a_blocker(committer: GroupCommit, jobs: list[Any]) -> list[Any]:
    """Run ``jobs`` as one batch: queued while the writer holds a blocker's batch."""
    release = threading.Event()

    def blocker(_connection: Connection) -> None:
        release.wait(10)

    async def run_all() -> list[Any]:
        first = asyncio.ensure_future(committer.run(blocker))
        await asyncio.sleep(0.2)
        rest = [asyncio.ensure_future(committer.run(job)) for job in jobs]
        await asyncio.sleep(0.1)
        release.set()
        return (await asyncio.gather(first, *rest, return_exceptions=True))[1:]

    try:
        return asyncio.run(run_all())
    finally:
        committer.close()


@pytest.mark.parametrize("refused", [None, 0, 5, 9])
def test_a_refusal_runs_the_batch_again_each_job_in_a_savepoint(
    db: Database, monkeypatch: pytest.MonkeyPatch, refused: int | None
) -> None:
    with db.writer.begin() as connection:
        connection.execute(text("CREATE TABLE batch_probe (n INTEGER PRIMARY KEY)"))
    runs = [0] * 10
    savepoints = 0

    def counted(connection: Connection) -> Any:
        nonlocal savepoints
        savepoints += 1
        return savepoint(connection)

    monkeypatch.setattr(groupcommit, "savepoint", counted)

    def job(n: int, connection: Connection) -> int:
        runs[n] += 1
        connection.execute(text("INSERT INTO batch_probe (n) VALUES (:n)"), {"n": n})
        if n == refused:
            raise _Refused(n)
        return n

    outcomes = _queued_behind_a_blocker(GroupCommit(db), [partial(job, n) for n in range(10)])
    if refused is None:
        assert outcomes == list(range(10))
        assert runs == [1] * 10  # once each, and no savepoint at all
        assert savepoints == 0
    else:
        assert isinstance(outcomes[refused], _Refused)
        assert [o for n, o in enumerate(outcomes) if n != refused] == [
            n for n in range(10) if n != refused
        ]
        # Up to the refusal, then all ten again, each in its savepoint.
        assert runs == [2] * (refused + 1) + [1] * (9 - refused)
        assert savepoints == 10
    stored = db.read(
        lambda c: c.execute(text("SELECT n FROM batch_probe ORDER BY n")).scalars().all()
    )
    assert stored == [n for n in range(10) if n != refused]


NOW = 1_767_225_600_000


def _held_detainee(connection: Connection) -> None:
    store.ensure_default_regimes(connection, NOW)
    store.create_institution(connection, "pi-a", "PI A", NOW)
    store.intake_detainee(connection, "d-1", "pi-a", "regular", NOW)
    connection.execute(
        text("INSERT INTO accounts (id, display_name, created_at_ms) VALUES ('acct-1', 'A', 0)")
    )


def _send(message_id: bytes, connection: Connection) -> int:
    """What SendMessage writes for a message: its acceptance entry, the row, the feed."""
    new = store.NewMessage(
        message_id=message_id,
        direction=policy.INBOUND,
        detainee_id="d-1",
        institution_id="pi-a",
        account_id="acct-1",
        sender_key_id=b"k" * 32,
        envelope=b"sealed",
        envelope_digest=b"\x01" * 32,
        privileged=False,
        state=states.ACCEPTED,
        accepted_at_ms=NOW,
    )
    appended = store.log_acceptance(connection, new, "relative:acct-1")
    store.insert_message(connection, new, appended.index)
    store.add_feed(connection, store.institution_audience("pi-a"), message_id)
    return appended.index


def test_a_replayed_message_in_a_batch_is_refused_and_undone_alone(db: Database) -> None:
    db.write(_held_detainee)
    first_index = db.read(translog.size)
    ids = [bytes([n]) * 16 for n in range(6)]
    sends = [*ids[:3], ids[1], *ids[3:]]  # the fourth replays the second
    committer = GroupCommit(db, scope=translog.Deferred)
    outcomes = _queued_behind_a_blocker(committer, [partial(_send, m) for m in sends])
    assert isinstance(outcomes.pop(3), AlreadyExists)
    # The refused job's log entry was undone with it: the others' indices follow on.
    expected = list(range(first_index, first_index + len(ids)))
    assert outcomes == expected
    stored = db.read(
        lambda c: c.execute(
            select(messages.c.message_id, messages.c.log_index).order_by(messages.c.seq)
        ).all()
    )
    assert [tuple(row) for row in stored] == list(zip(ids, expected, strict=True))
    assert db.read(lambda c: c.execute(select(feed.c.message_id)).scalars().all()) == ids
    assert db.read(translog.size) == first_index + len(ids)
