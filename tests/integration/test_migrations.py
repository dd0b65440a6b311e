"""Migrations: from empty and from every earlier revision to head, SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from sealpost.gateway.storage import database
from sealpost.gateway.storage.schema import metadata

pytestmark = pytest.mark.integration


def _revisions() -> list[str]:
    script = ScriptDirectory.from_config(database.alembic_config_for_scripts())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def _schema_diff(url: str) -> list[object]:
    engine = database.create_database_engine(url)
    try:
        with engine.connect() as connection:
            diff: list[object] = compare_metadata(MigrationContext.configure(connection), metadata)
            return diff
    finally:
        engine.dispose()


def test_upgrade_from_empty_matches_the_schema(database_url: str) -> None:
    engine = database.create_database_engine(database_url)
    try:
        assert database.current_revision(engine) is None
        database.migrate(engine)
        assert database.current_revision(engine) == database.head_revision()
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert tables >= {t.name for t in metadata.sorted_tables}
    assert _schema_diff(database_url) == []


@pytest.mark.parametrize("start", _revisions())
def test_upgrade_from_each_revision_to_head(database_url: str, start: str) -> None:
    engine = database.create_database_engine(database_url)
    try:
        database.migrate(engine, start)
        assert database.current_revision(engine) == start
        database.migrate(engine)
        assert database.current_revision(engine) == database.head_revision()
        database.migrate(engine)  # a second upgrade is a no-op
    finally:
        engine.dispose()
    assert _schema_diff(database_url) == []


def test_sqlite_runs_wal_with_full_sync(tmp_path: Path) -> None:
    engine = database.create_database_engine(f"sqlite:///{tmp_path}/x.db")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql://x/y", "unsupported database 'mysql'"),
        ("sqlite://", "SQLite needs a file path"),
        ("::nonsense::", "cannot parse"),
    ],
)
def test_bad_database_urls_are_refused(url: str, fragment: str) -> None:
    from sealpost.gateway.errors import ConfigError  # noqa: PLC0415

    with pytest.raises(ConfigError) as info:
        database.create_database_engine(url)
    assert fragment in info.value.explain()
