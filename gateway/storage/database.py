"""Database engines and schema migrations.

SQLite is the embedded default and runs in WAL mode with ``synchronous=FULL``
so that an acknowledged write survives a crash or power loss; PostgreSQL runs
with synchronous commit. The schema is managed only by Alembic migrations
(gateway/storage/migrations), never by ``create_all``.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, OperationalError
from sqlalchemy.pool import NullPool

from sealpost.gateway.errors import ConfigError, Unavailable
from sealpost.gateway.storage.direct import execute_sql
from sealpost.gateway.storage.schema import gateway_state

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"

#: How long a SQLite writer waits for another to finish before failing.
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000
#: A pooled PostgreSQL connection idle for longer than this is checked before use.
PING_AFTER_IDLE_S: Final = 1.0
_IDLE_SINCE: Final = "sealpost.idle_since"

#: Beside a SQLite database: the lock file writers of several processes queue on.
WRITER_LOCK_SUFFIX = "-writer.lock"

#: libpq settings of PostgreSQL connections where the URL gives none (docs/operations.md,
#: section 9). A primary whose machine drops off the network sends no reset: without
#: these, a connection waiting on it (and with it the one group-commit writer) would hang
#: for the kernel's TCP timeout, about 15 minutes on Linux, long after a standby took
#: over. With them a dead server is given up within about half a minute, the request
#: fails as UNAVAILABLE, and the next connection goes to whichever host is the primary.
PG_CONNECTION_DEFAULTS: Final = {
    "connect_timeout": "10",  # seconds, per host tried
    "keepalives": "1",
    "keepalives_idle": "10",  # seconds of silence before the first probe
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",  # milliseconds sent data may stay unacknowledged
}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # Take the write lock at BEGIN: two writers can then never deadlock on upgrade,
    # and read-then-write sequences (the log's size, then its next leaf) are serialised.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _note_idle(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info[_IDLE_SINCE] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Check a pooled PostgreSQL connection that sat idle before handing it out.

    A connection used less than ``PING_AFTER_IDLE_S`` ago is handed out as it is: a
    check on every checkout (SQLAlchemy's ``pool_pre_ping``) cost every read and every
    batch of writes a round trip, three per send. If the server went away meanwhile,
    the first statement fails, and the failure replaces every pooled connection
    (SQLAlchemy does so for its statements, ``direct._on_driver`` for the driver's), so
    one failed request, not one per pooled connection, tells the gateway that the
    server restarted.
    """
    idle_since = record.info.get(_IDLE_SINCE)
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
        return  # new, or used a moment ago
    try:
        # Outside a transaction, so that the connection stays idle (a read engine's
        # AUTOCOMMIT can only be set on an idle connection).
        dbapi_connection.autocommit = True
        try:
            dbapi_connection.execute("SELECT 1")
        finally:
            dbapi_connection.autocommit = False
    except Exception as exc:  # the pool discards this connection and connects anew
        raise DisconnectionError("an idle database connection was lost") from exc


def _private_file(path: Path) -> None:
    """Create ``path`` owner-only if it is not there; take group and others' rights away."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)


def private_sqlite_files(database: Path) -> None:
    """The database file, its -wal and -shm files and the writer lock: owner-only.

    SQLite creates its -wal and -shm files with the database file's permissions, so
    creating that file 0600 first keeps the envelopes, escrow blobs and the log out of
    other local users' reach; files an older version left readable are tightened.
    """
    if not database.parent.is_dir():
        return  # SQLite reports the missing folder itself
    _private_file(database)
    for name in (f"{database.name}-wal", f"{database.name}-shm"):
        companion = database.with_name(name)
        if companion.exists() and companion.stat().st_mode & 0o077:
            companion.chmod(0o600)
    _private_file(database.with_name(database.name + WRITER_LOCK_SUFFIX))


def create_database_engine(url: str, *, pool_size: int = 10, writer: bool = True) -> Engine:
    """An engine for ``url`` (sqlite:///path or postgresql+psycopg://...), durable settings on.

    For SQLite a ``writer`` engine takes the write lock at BEGIN; a reader engine
    emits no BEGIN of its own: ``Database.read`` begins a deferred transaction on the
    driver, so reads proceed alongside a writer (WAL).
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError([f"database URL: cannot parse {url!r}"]) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ConfigError(["database URL: SQLite needs a file path, not memory"])
        if writer:
            private_sqlite_files(Path(parsed.database))
        engine = create_engine(
            parsed,
            poolclass=NullPool if pool_size == 0 else None,
            connect_args={"check_same_thread": False, "isolation_level": None},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        if writer:
            event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        settings = {k: v for k, v in PG_CONNECTION_DEFAULTS.items() if k not in parsed.query}
        engine = create_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={**settings, "options": "-c synchronous_commit=on"},
        )
        event.listen(engine, "checkin", _note_idle)
        event.listen(engine, "checkout", _ping_if_idle)
        return engine
    raise ConfigError([f"database URL: unsupported database {backend!r} (sqlite or postgresql)"])


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration bound to ``engine``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


#: The ``gateway_state`` row naming the oldest code that still runs on the schema: the
#: number of the newest "contract" migration applied (docs/operations.md, "Upgrades").
SCHEMA_COMPATIBLE_FROM: Final = "schema_compatible_from"


def revision_number(revision: str) -> int:
    """A revision's order: its id starts with four digits (``0007_triage`` is 7)."""
    return int(revision.split("_", 1)[0])


def compatible_from(revision: str) -> str:
    """The oldest revision whose code still runs on the schema at ``revision``.

    Migrations are expand-only unless they say otherwise: a module with ``contract =
    False`` only adds (tables, nullable columns), so code written for the revision before
    it runs on the schema after it. Any other migration (dropping, renaming, tightening)
    makes itself the oldest code that runs.
    """
    scripts = ScriptDirectory.from_config(alembic_config_for_scripts())
    for script in scripts.walk_revisions("base", revision):
        if getattr(script.module, "contract", True):
            return str(script.revision)
    raise AssertionError("the first migration is a contract")  # pragma: no cover


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` (default: the newest); record who can still run."""
    command.upgrade(alembic_config(engine), revision)
    target = head_revision() if revision == "head" else revision
    oldest = revision_number(compatible_from(target))
    with engine.begin() as connection:
        updated = connection.execute(
            update(gateway_state)
            .where(gateway_state.c.name == SCHEMA_COMPATIBLE_FROM)
            .values(value=oldest)
        ).rowcount
        if not updated:
            connection.execute(
                insert(gateway_state).values(name=SCHEMA_COMPATIBLE_FROM, value=oldest)
            )


def schema_accepts(current: str | None, head: str, oldest_code: int | None) -> bool:
    """Whether code at ``head`` runs on a schema at ``current`` (see ``compatible_from``).

    The same revision; or a newer one this code does not know, whose migrations since
    the oldest contract leave code at ``head`` working (a rollback after an upgrade, or an
    old replica during a rolling upgrade).
    """
    if current == head:
        return True
    if current is None or oldest_code is None:
        return False
    try:
        ScriptDirectory.from_config(alembic_config_for_scripts()).get_revision(current)
    except Exception:
        return revision_number(current) > revision_number(head) >= oldest_code
    return False  # a revision this code knows, and not its head: an older schema


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, or None when empty."""
    with engine.connect() as connection:
        revision: str | None = MigrationContext.configure(connection).get_current_revision()
        return revision


def head_revision() -> str:
    """The newest schema revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config_for_scripts()).get_current_head()
    assert head is not None
    return head


def alembic_config_for_scripts() -> Config:
    """An Alembic configuration for reading the migration scripts only."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


T = TypeVar("T")


class Database:
    """The gateway's database: transactions for writes and for reads, run off the event loop."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        """Engines for ``url``; SQLite gets a separate, deferred-begin reader engine."""
        self.url = url
        self.writer = create_database_engine(url, pool_size=pool_size)
        if self.writer.dialect.name == "sqlite":
            self.reader = create_database_engine(url, pool_size=pool_size, writer=False)
            # Batches of writes begin their transaction on the driver (``begin_write``).
            self._driver_writer = create_database_engine(url, pool_size=pool_size, writer=False)
        else:
            # The same pool; reads in autocommit (see ``read``).
            self.reader = self.writer.execution_options(isolation_level="AUTOCOMMIT")
            self._driver_writer = self.writer
        self.inline_reads = self.writer.dialect.name == "sqlite"
        self._lock_path: Path | None = None
        if self.inline_reads:
            database = make_url(url).database
            assert database is not None  # create_database_engine refuses memory databases
            self._lock_path = Path(database).with_name(Path(database).name + WRITER_LOCK_SUFFIX)
        # On SQLite each thread keeps a reader and a writer connection (see ``read``).
        self._local = threading.local()
        self._kept: list[Connection] = []
        self._kept_lock = threading.Lock()

    @property
    def dialect(self) -> str:
        """The SQL dialect: ``sqlite`` or ``postgresql``."""
        return self.writer.dialect.name

    def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one write transaction; commit if it returns, roll back if it raises."""
        try:
            with self.begin_write() as connection:
                return fn(connection)
        except OperationalError as exc:
            raise Unavailable("the database is unavailable; try again") from exc

    @contextmanager
    def begin_write(self) -> Iterator[Connection]:
        """A write transaction, committed when the block ends (rolled back if it raises).

        On SQLite, writers of several processes (gateway workers) queue on a lock file
        first: SQLite's own busy handler retries a locked database by sleeping (1, 2,
        5 ... 100 ms), so a writer would often sleep while the lock is already free,
        where a waiter on the lock file is woken the moment it is released. The
        transaction is then begun (``BEGIN IMMEDIATE``, taking the write lock at once)
        and ended on the driver, on a connection the thread keeps, as reads are.
        """
        if self._lock_path is None:
            with self.writer.begin() as connection:
                yield connection
            return
        with self._lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with self._driver_transaction("writer", "BEGIN IMMEDIATE") as connection:
                    yield connection
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` to read.

        On SQLite ``fn`` runs in one (deferred) transaction, so all its statements see
        one snapshot. Each thread keeps its reader connection (the event loop's thread
        makes most reads): taking one from the pool and giving it back, which rolls
        back, costs more than a small read.

        On PostgreSQL each statement sees what was committed when it began, as it did
        inside a READ COMMITTED transaction, and runs in autocommit: a BEGIN and a
        COMMIT would cost two more round trips and change nothing a read can see.
        """
        try:
            if not self.inline_reads:
                with self.reader.begin() as connection:
                    return fn(connection)
            with self._driver_transaction("reader", "BEGIN") as connection:
                return fn(connection)
        except OperationalError as exc:
            raise Unavailable("the database is unavailable; try again") from exc

    @contextmanager
    def _driver_transaction(self, role: str, begin: str) -> Iterator[Connection]:
        """A transaction on this thread's ``role`` connection, begun and ended on the driver.

        SQLAlchemy's transaction machinery (its pool, events and BEGIN listener) costs
        more than the lookups of most reads. The engines of these connections emit no
        BEGIN of their own: a statement run through SQLAlchemy inside the block begins
        SQLAlchemy's transaction without a word to the database, and ending that ends
        the driver's transaction. A database error drops the connection.
        """
        connection = self._thread_connection(role)
        try:
            execute_sql(connection, begin)
            try:
                yield connection
            except BaseException:
                self._end(connection, commit=False)
                raise
            self._end(connection, commit=True)
        except OperationalError:
            self._drop_thread_connection(role)
            raise

    @staticmethod
    def _end(connection: Connection, *, commit: bool) -> None:
        if connection.in_transaction():
            if commit:
                connection.commit()
            else:
                connection.rollback()
        else:
            execute_sql(connection, "COMMIT" if commit else "ROLLBACK")

    def _thread_connection(self, role: str) -> Connection:
        connection: Connection | None = getattr(self._local, role, None)
        if connection is None or connection.closed or connection.invalidated:
            engine = self.reader if role == "reader" else self._driver_writer
            connection = engine.connect()
            setattr(self._local, role, connection)
            with self._kept_lock:
                self._kept.append(connection)
        return connection

    def _drop_thread_connection(self, role: str) -> None:
        connection: Connection | None = getattr(self._local, role, None)
        setattr(self._local, role, None)
        if connection is not None:
            with self._kept_lock:
                if connection in self._kept:
                    self._kept.remove(connection)
            connection.invalidate()

    async def awrite(self, fn: Callable[[Connection], T]) -> T:
        """``write`` in a worker thread."""
        return await asyncio.to_thread(self.write, fn)

    async def aread(self, fn: Callable[[Connection], T]) -> T:
        """``read`` off the event loop, except on SQLite.

        SQLite reads are local and, in WAL mode, never wait for a writer: running
        them inline costs microseconds, while a thread hop costs far more and
        contends for the GIL. PostgreSQL reads cross a socket and go to a thread.
        """
        if self.inline_reads:
            return self.read(fn)
        return await asyncio.to_thread(self.read, fn)

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            with self.reader.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except OperationalError:
            return False
        return True

    def check_schema(self) -> None:
        """ConfigError unless this code runs on the schema (its own, or a newer expand)."""
        current = current_revision(self.writer)
        oldest = None
        if current is not None and current != head_revision():
            with self.writer.connect() as connection:
                oldest = connection.execute(
                    select(gateway_state.c.value).where(
                        gateway_state.c.name == SCHEMA_COMPATIBLE_FROM
                    )
                ).scalar()
        if not schema_accepts(current, head_revision(), oldest):
            raise ConfigError(
                [
                    f"the database schema is at {current or 'nothing'}, this gateway needs "
                    f"{head_revision()}: run `sealpost gateway migrate`"
                ]
            )

    def dispose(self) -> None:
        """Close every pooled connection (and the kept reader connections)."""
        with self._kept_lock:
            kept, self._kept = self._kept, []
        for connection in kept:
            connection.invalidate()
        self.writer.dispose()  # on PostgreSQL, the reader's pool too
        if self.inline_reads:
            self.reader.dispose()
            self._driver_writer.dispose()
