"""Staff members' roles and institutions as last recorded."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import Connection, insert, select, update

from sealpost.gateway.storage.schema import staff_members
from sealpost.gateway.store._common import columns, first


class StaffMemberRow(NamedTuple):
    """A staff member's roles and institutions as an identity token last showed them."""

    name: str
    #: The key-server identity (entity id) the token names.
    subject: str
    #: Sorted, comma-separated (gateway/guard.py ``staff_fact``).
    roles: str
    institutions: str
    recorded_at_ms: int
    #: The ADMIN_ACTION log entry that recorded them.
    log_index: int


_STAFF_MEMBER = columns(StaffMemberRow, staff_members)


def staff_member(connection: Connection, name: str) -> StaffMemberRow | None:
    """A staff member's roles and institutions as last recorded, if ever."""
    query = select(*_STAFF_MEMBER).where(staff_members.c.name == name)
    return first(connection, query, StaffMemberRow)


def record_staff(
    connection: Connection,
    name: str,
    subject: str,
    roles: str,
    institutions: str,
    now_ms: int,
    log_index: int,
) -> None:
    """Store a staff member's roles and institutions (recorded in the log by the caller)."""
    values = {
        "subject": subject,
        "roles": roles,
        "institutions": institutions,
        "recorded_at_ms": now_ms,
        "log_index": log_index,
    }
    changed = connection.execute(
        update(staff_members).where(staff_members.c.name == name).values(**values)
    )
    if changed.rowcount == 0:
        connection.execute(insert(staff_members).values(name=name, **values))
