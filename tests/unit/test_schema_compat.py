"""Upgrades while the old version serves: which code runs on which schema.

Each migration says whether it only expands the schema (``contract = False``); the
schema records the oldest code that still runs on it, and a gateway accepts a newer
schema only down to that. Expand-only migrations must really only add.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import select

from sealpost.gateway.storage import database
from sealpost.gateway.storage.schema import gateway_state

SCRIPTS = ScriptDirectory.from_config(database.alembic_config_for_scripts())
_SHRINKS = ("drop_column", "drop_table", "alter_column", "rename_table", "drop_constraint")


@pytest.mark.parametrize(
    ("current", "head", "oldest", "runs"),
    [
        ("0008_verdict_time", "0008_verdict_time", 6, True),  # its own schema
        ("0009_later", "0008_verdict_time", 6, True),  # a newer expand: rollback works
        ("0009_later", "0008_verdict_time", 9, False),  # a newer contract: it does not
        ("0011_later", "0005_notification_addresses", 6, False),  # too old for it
        ("0007_triage", "0008_verdict_time", 6, False),  # older: migrate first
        (None, "0008_verdict_time", None, False),  # empty
        ("0009_later", "0008_verdict_time", None, False),  # no record: refuse
    ],
)
def test_which_code_runs_on_which_schema(
    current: str | None, head: str, oldest: int | None, runs: bool
) -> None:
    assert database.schema_accepts(current, head, oldest) is runs


def test_the_oldest_code_is_the_newest_contract() -> None:
    assert database.compatible_from("0008_verdict_time") == "0006_withhold_reason_told"
    assert database.compatible_from("0006_withhold_reason_told") == "0006_withhold_reason_told"
    assert database.compatible_from("0005_notification_addresses") == (
        "0005_notification_addresses"
    )


def test_expand_only_migrations_only_add() -> None:
    for script in SCRIPTS.walk_revisions():
        if getattr(script.module, "contract", True):
            continue
        source = inspect.getsource(script.module.upgrade)
        assert not [s for s in _SHRINKS if s in source], script.revision
        assert "nullable=False" not in source or "create_table" in source, script.revision


def test_migrate_records_the_oldest_code(tmp_path: Path) -> None:
    engine = database.create_database_engine(f"sqlite:///{tmp_path / 's.db'}")
    try:
        database.migrate(engine)
        with engine.connect() as connection:
            oldest = connection.execute(
                select(gateway_state.c.value).where(
                    gateway_state.c.name == database.SCHEMA_COMPATIBLE_FROM
                )
            ).scalar()
        assert oldest == database.revision_number(
            database.compatible_from(database.head_revision())
        )
    finally:
        engine.dispose()
