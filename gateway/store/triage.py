"""Triage: sealed summaries on queued messages, and sealed watch lists (docs/review.md, "Triage").

The gateway stores both as ciphertexts it cannot open. It never learns which message
has a finding: every summary has the same size, and every queued message gets one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import Connection, insert, select, update

from sealpost.gateway import states
from sealpost.gateway.storage.schema import messages, watch_lists
from sealpost.gateway.store._common import columns, first, rows


class WatchListRow(NamedTuple):
    """A watch list as stored: sealed, with its version and who changed it last."""

    institution_id: str
    #: Empty for the institution's own list.
    detainee_id: str
    sealed: str
    version: int
    updated_by: str
    updated_at_ms: int
    #: The ADMIN_ACTION log entry of the last change.
    log_index: int


_WATCH_LIST = columns(WatchListRow, watch_lists)


def seal_triage(connection: Connection, message_id: bytes, sealed: str) -> bool:
    """Store a queued message's sealed summary; False if it is not queued or already sealed."""
    result = connection.execute(
        update(messages)
        .where(
            messages.c.message_id == message_id,
            messages.c.state == states.QUEUED,
            messages.c.triage_seal.is_(None),
        )
        .values(triage_seal=sealed)
    )
    return result.rowcount == 1


def watch_list(
    connection: Connection, institution_id: str, detainee_id: str
) -> WatchListRow | None:
    """One list: the institution's (``detainee_id`` empty) or a detainee's there."""
    return first(
        connection,
        select(*_WATCH_LIST).where(
            watch_lists.c.institution_id == institution_id,
            watch_lists.c.detainee_id == detainee_id,
        ),
        WatchListRow,
    )


def watch_lists_of(
    connection: Connection, institution_id: str, detainee_ids: Sequence[str] | None = None
) -> list[WatchListRow]:
    """An institution's list and its detainees' (only ``detainee_ids`` and its own, if given)."""
    query = select(*_WATCH_LIST).where(watch_lists.c.institution_id == institution_id)
    if detainee_ids is not None:
        query = query.where(watch_lists.c.detainee_id.in_(["", *detainee_ids]))
    return rows(connection, query.order_by(watch_lists.c.detainee_id), WatchListRow)


def put_watch_list(connection: Connection, row: WatchListRow) -> None:
    """Store a list's new version (the caller checked the version it replaces)."""
    values = row._asdict()
    if row.version == 1:
        connection.execute(insert(watch_lists).values(**values))
        return
    connection.execute(
        update(watch_lists)
        .where(
            watch_lists.c.institution_id == row.institution_id,
            watch_lists.c.detainee_id == row.detainee_id,
            watch_lists.c.version == row.version - 1,
        )
        .values(**values)
    )
