"""Group commit (gateway/storage/groupcommit.py) on SQLite and PostgreSQL.

Jobs queued while the writer is busy go into one transaction; each caller gets its
own job's result or refusal, after the commit, and a refused job's changes are
undone alone. The writer wakes the callers' event loop once per batch, not once
per job: every wake-up is a system call and a turn of the loop.
"""

from __future__ import annotations

import asyncio
import threading
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Connection, text

from sealpost.gateway.storage.database import Database
from sealpost.gateway.storage.groupcommit import GroupCommit

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
