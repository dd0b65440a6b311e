"""Snapshots older than the retention period are found; a missing folder is not a pass."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sealpost.clients.admin.backups import too_old
from tests.programs import sealpost


def test_snapshots_older_than_the_cutoff_are_named(tmp_path: Path) -> None:
    now = int(time.time())
    old, new = tmp_path / "raft-2026-10-01.snap", tmp_path / "raft-2026-12-01.snap"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    os.utime(old, (now - 40 * 86_400, now - 40 * 86_400))
    (tmp_path / "older-folder").mkdir()
    assert too_old([tmp_path], now - 30 * 86_400) == [old]
    assert too_old([tmp_path], now - 50 * 86_400) == []
    with pytest.raises(FileNotFoundError):
        too_old([tmp_path / "missing"], now)


def test_retention_refuses_while_an_old_snapshot_exists(tmp_path: Path) -> None:
    old = tmp_path / "raft.snap"
    old.write_bytes(b"x")
    past = time.time() - 40 * 86_400
    os.utime(old, (past, past))
    done = sealpost(
        "admin", "retention", "--keep-days", "30", "--snapshots", str(tmp_path), "--yes",
        "--key-server", "http://127.0.0.1:9", "--language", "en",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "raft.snap" in done.stderr
    assert "destroy these key-server snapshots first" in done.stderr
    refused = sealpost(
        "admin", "retention", "--retire-below", "3", "--snapshots", str(tmp_path), "--yes",
        "--language", "en",
    )  # fmt: skip
    assert refused.returncode == 2
    assert "--keep-days" in refused.stderr


def test_a_snapshot_folder_that_is_not_there_is_a_usage_error(tmp_path: Path) -> None:
    done = sealpost(
        "admin", "retention", "--keep-days", "30", "--snapshots", str(tmp_path / "nope"),
        "--language", "en",
    )  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
