"""Retention of rows: settled messages deleted on a schedule, the log kept and still verified.

A gateway with a retention period of a few seconds (``SEALPOST_RETENTION_DAYS`` takes
fractions) deletes a delivered message's row, its feed entry and its grant, and logs the
deletion (``row_retention``: the cutoff and the count, no ids, no content). A message
still on its way stays. The log keeps every leaf, so the relative's receipt of the
deleted message still proves inclusion; the auditor's replay drops the same messages
and `sealpost audit verify` passes. A hand-deleted row of a message that was not
settled is a finding.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from sealpost._internal.devservers import OpenBaoDevServer
from sealpost._internal.stack import (
    Stack,
    approve_all,
    log_events,
    running_stack,
    setup_institutions,
)
from sealpost.clients.terminal.desk import DeliveryDesk
from sealpost.crypto.logentry import ROW_RETENTION_OPERATION, LogAction
from sealpost.escrow.bootstrap import BootstrapResult
from sealpost.gateway.storage import schema
from sealpost.gateway.storage.database import create_database_engine
from tests.integration.test_state_follows_log import log_key, verify

pytestmark = pytest.mark.integration

A = "pi-bewaar"
#: About 3.5 seconds, checked every half second.
RETENTION = {"SEALPOST_RETENTION_DAYS": "0.00004", "SEALPOST_RETENTION_INTERVAL_SECONDS": "0.5"}


@pytest.fixture
def short_memory(
    tmp_path: Path, openbao: OpenBaoDevServer, keyserver: BootstrapResult, database_url: str
) -> Iterator[Stack]:
    """A stack whose gateway deletes settled messages after a few seconds."""
    with running_stack(
        tmp_path / "gateway", openbao, keyserver, database_url, extra_env=RETENTION
    ) as stack:
        yield stack


def _ids(database_url: str, table: object) -> set[bytes]:
    engine = create_database_engine(database_url)
    try:
        with engine.connect() as connection:
            return {bytes(m) for m in connection.execute(select(table.c.message_id)).scalars()}  # type: ignore[attr-defined]
    finally:
        engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_settled_messages_are_deleted_and_the_log_still_verifies(
    short_memory: Stack, database_url: str
) -> None:
    stack = short_memory
    admin, terminals = setup_institutions(stack, [("d-bewaar", A, "regular")])
    north = terminals[A]
    relative = stack.relative("Noor")
    relative.request_contact("d-bewaar")
    approve_all(admin, A)
    delivered = relative.send("d-bewaar", "Tot zondag!")
    waiting = relative.send("d-bewaar", "En nog iets.")
    states = north.take_in(north.intake(), stack.escrow_for(A))
    assert set(states) == {delivered.message_id, waiting.message_id}
    north.acknowledge(delivered.message_id, f"{A}-1")  # settled; the other stays released

    deadline = time.monotonic() + 30
    while delivered.message_id in _ids(database_url, schema.messages):
        assert time.monotonic() < deadline, "the retention round never deleted the message"
        time.sleep(0.5)
    assert waiting.message_id in _ids(database_url, schema.messages)
    assert delivered.message_id not in _ids(database_url, schema.feed)
    assert [i.message_id for i in DeliveryDesk(north, A).pending()] == [waiting.message_id]

    (retained,) = [
        e
        for e in log_events(stack)
        if e.action is LogAction.ADMIN_ACTION
        and e.extra.get("operation") == ROW_RETENTION_OPERATION
    ]
    assert retained.actor == "gateway"
    assert set(retained.extra) == {"operation", "before_ms", "messages"}
    assert retained.extra["messages"] == "1"

    # The log kept its leaves: the acceptance the relative's receipt proves is still there,
    # at the index the receipt names (audit verify below recomputes every head over them).
    accepted = [
        i
        for i, e in enumerate(log_events(stack))
        if e.action is LogAction.MESSAGE_ACCEPTED and e.message_id() == delivered.message_id.hex()
    ]
    assert accepted == [delivered.leaf_index]

    code, state = verify(database_url, log_key(stack))
    assert (code, state["findings"]) == (0, [])

    # A message that was not settled may not go: deleting it by hand is a finding.
    engine = create_database_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            delete(schema.feed).where(schema.feed.c.message_id == waiting.message_id)
        )
        connection.execute(
            delete(schema.messages).where(schema.messages.c.message_id == waiting.message_id)
        )
    engine.dispose()
    code, state = verify(database_url, log_key(stack))
    assert code != 0
    assert any(waiting.message_id.hex() in str(f) for f in state["findings"])
