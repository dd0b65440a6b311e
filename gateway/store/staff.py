"""Staff members' roles and institutions as last recorded."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from sealpost.gateway.storage.schema import staff_members


def staff_member(connection: Connection, name: str) -> Row[Any] | None:
    """A staff member's roles and institutions as last recorded, if ever."""
    return connection.execute(select(staff_members).where(staff_members.c.name == name)).first()


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
