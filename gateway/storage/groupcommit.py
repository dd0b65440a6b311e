"""Group commit: many small write transactions become one, with one fsync.

Every acknowledged send must be durable (SQLite ``synchronous=FULL``,
PostgreSQL synchronous commit), and a durable commit costs an fsync. Sending
each message in its own transaction makes the fsync the bottleneck and, on
SQLite, makes concurrent writers queue on the file lock. A single writer
thread instead takes whatever jobs are waiting, runs them in one
transaction, commits once, and then answers every caller, waking each caller's
event loop once for the whole batch. Nobody is answered before the commit, so an
acknowledgement still means "on disk".

One job's refusal must undo that job alone. A batch first runs its jobs one after
the other with nothing between them; if a job raises, the whole transaction is
rolled back and the batch runs again, each job in its own SAVEPOINT, so that the
refused job is undone alone and the others commit. Refusals are rare, and on
PostgreSQL a savepoint and its release are two round trips per job, as many as a
send's own lookups. So a job may run twice: it must act only through its
connection and its result (no changes to memory that outlives it, no calls
elsewhere), which is also what lets a failed commit undo everything it did.

Work that is cheaper done once per batch than once per job (the transparency log's
appends) joins in through a ``BatchScope``: opened on the batch's connection (anew
for a batch run again), told before each job's savepoint and after a rolled-back
one, and flushed before commit.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from sealpost._internal.logs import get_logger
from sealpost.gateway.errors import Unavailable
from sealpost.gateway.storage.database import Database
from sealpost.gateway.storage.direct import savepoint

T = TypeVar("T")

#: Most jobs in one transaction; bounds the time a batch holds the write lock.
MAX_BATCH: Final = 256

_log = get_logger("sealpost.gateway.groupcommit")


class BatchScope(Protocol):
    """Per-batch work on the batch's connection (gateway/translog.py ``Deferred``)."""

    def mark(self) -> object:
        """A point to go back to, taken before a job's savepoint begins."""
        ...

    def rewind(self, mark: Any) -> None:
        """The job's savepoint was rolled back: undo what it did since ``mark``."""
        ...

    def flush(self) -> None:
        """Write what was deferred, in the batch's transaction, before it commits."""
        ...

    def close(self) -> None:
        """The batch is over (committed or not)."""
        ...


@dataclass
class _Job:
    run: Callable[[Connection], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


_Outcome = tuple[_Job, Any, BaseException | None]


def _resolve(outcomes: list[_Outcome]) -> None:
    """Answer each job's caller (on its event loop's thread)."""
    for job, result, error in outcomes:
        if job.future.done():
            continue
        if error is None:
            job.future.set_result(result)
        else:
            job.future.set_exception(error)


def _answer(outcomes: list[_Outcome]) -> None:
    """Hand the outcomes to their event loops: one wake-up per loop, not one per job."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, answers in by_loop.items():
        loop.call_soon_threadsafe(_resolve, answers)


class _Redo(Exception):
    """A job raised with no savepoint of its own: undo the batch and run it with savepoints."""


def _run_alone(connection: Connection, job: _Job) -> Any:
    """The job's result; any error of its own becomes ``_Redo`` (OperationalError propagates)."""
    try:
        return job.run(connection)
    except OperationalError:
        raise  # the database is gone: the whole batch fails
    except Exception as exc:  # a refusal or a constraint: the transaction must go
        raise _Redo from exc


def _run_in_savepoint(connection: Connection, job: _Job) -> tuple[Any, BaseException | None]:
    """The job's result, or its error with its changes undone; OperationalError propagates."""
    try:
        with savepoint(connection):
            return job.run(connection), None
    except OperationalError:
        raise  # the database is gone: the whole batch fails
    except Exception as exc:  # a job's own refusal or a constraint, undone by its savepoint
        return None, exc


class GroupCommit:
    """A writer thread that commits queued jobs in batches."""

    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = MAX_BATCH,
        scope: Callable[[Connection], BatchScope] | None = None,
    ) -> None:
        """Start the writer thread for ``db``; ``scope`` opens per-batch work on a connection."""
        self._db = db
        self._max_batch = max_batch
        self._scope = scope
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="group-commit", daemon=True)
        self._thread.start()

    async def run(self, job: Callable[[Connection], T]) -> T:
        """Run ``job`` in the next batch; returns its result after the batch committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(job, future, loop))
        return await future

    def close(self) -> None:
        """Finish the queued jobs and stop the writer thread."""
        self._queue.put(None)
        self._thread.join(30)

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Job]) -> None:
        try:
            try:
                outcomes = self._attempt(batch, savepoints=False)
            except _Redo:
                outcomes = self._attempt(batch, savepoints=True)
        except Exception as exc:
            _log.warning("groupcommit.failed", error_type=type(exc).__name__, count=len(batch))
            failure = Unavailable("the database is unavailable; try again")
            failure.__cause__ = exc
            _answer([(job, None, failure) for job in batch])
            return
        _answer(outcomes)

    def _attempt(self, batch: list[_Job], *, savepoints: bool) -> list[_Outcome]:
        """Run the batch in one transaction and commit it; ``_Redo`` if a job raised alone."""
        outcomes: list[_Outcome] = []
        with self._db.begin_write() as connection:
            scope = self._scope(connection) if self._scope is not None else None
            try:
                for job in batch:
                    if not savepoints:
                        result, error = _run_alone(connection, job), None
                    else:
                        mark = scope.mark() if scope is not None else None
                        result, error = _run_in_savepoint(connection, job)
                        if error is not None and scope is not None:
                            scope.rewind(mark)
                    outcomes.append((job, result, error))
                if scope is not None:
                    scope.flush()
            finally:
                if scope is not None:
                    scope.close()
        return outcomes
