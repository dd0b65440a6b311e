"""Files at rest are private: the SQLite database, its -wal and -shm files, and the lock."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sealpost._internal.devservers import GatewayProcess
from sealpost._internal.stack import Stack
from sealpost.gateway.storage.database import private_sqlite_files

pytestmark = pytest.mark.integration
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@SQLITE
def test_the_gateways_database_files_are_owner_only(stack: Stack, database_url: str) -> None:
    stack.relative("Iemand")  # a write: the -wal and -shm files exist now
    database = Path(stack.gateway.database_url.removeprefix("sqlite:///"))
    files = [database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))]
    files.append(database.with_name(database.name + "-writer.lock"))
    for path in files:
        assert path.exists(), path
        assert mode(path) == 0o600, (path, oct(mode(path)))


def test_files_an_older_version_left_readable_are_tightened(tmp_path: Path) -> None:
    database = tmp_path / "sealpost.db"
    gateway = GatewayProcess(tmp_path / "gateway", database_url=f"sqlite:///{database}")
    gateway.start()
    gateway.stop()
    for path in tmp_path.iterdir():
        if path.name.startswith("sealpost.db"):
            os.chmod(path, 0o644)
    private_sqlite_files(database)
    assert mode(database) == 0o600
    for path in tmp_path.iterdir():
        if path.name.startswith("sealpost.db"):
            assert mode(path) == 0o600, path
