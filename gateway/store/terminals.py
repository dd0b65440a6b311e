"""Institution terminals and their certificates."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select, update

from sealpost.gateway.errors import FailedPrecondition, NotFound
from sealpost.gateway.storage.direct import Direct, Record
from sealpost.gateway.storage.schema import terminals

_Q_TERMINAL_BY_FINGERPRINT = Direct(
    select(terminals).where(terminals.c.fingerprint == bindparam("p_fingerprint"))
)


def terminal_by_fingerprint(connection: Connection, fingerprint: str) -> Record | None:
    """A registered terminal by its certificate fingerprint."""
    return _Q_TERMINAL_BY_FINGERPRINT.first(connection, {"p_fingerprint": fingerprint})


def add_terminal(
    connection: Connection,
    terminal_id: str,
    institution_id: str,
    fingerprint: str,
    certificate: str,
    now_ms: int,
    expires_ms: int,
) -> None:
    """Register a terminal's certificate."""
    connection.execute(
        insert(terminals).values(
            id=terminal_id,
            institution_id=institution_id,
            fingerprint=fingerprint,
            certificate=certificate,
            issued_at_ms=now_ms,
            expires_at_ms=expires_ms,
        )
    )


def terminal(connection: Connection, terminal_id: str) -> Row[Any]:
    """A terminal; NotFound if absent."""
    row = connection.execute(select(terminals).where(terminals.c.id == terminal_id)).first()
    if row is None:
        raise NotFound("no such terminal")
    return row


def revoke_terminal(connection: Connection, terminal_id: str, now_ms: int) -> None:
    """Revoke a terminal's certificate: its next call is refused."""
    result = connection.execute(
        update(terminals)
        .where(terminals.c.id == terminal_id, terminals.c.revoked_at_ms.is_(None))
        .values(revoked_at_ms=now_ms)
    )
    if result.rowcount != 1:
        raise FailedPrecondition("the terminal is revoked already")


def list_terminals(
    connection: Connection, institution_ids: frozenset[str] | None
) -> list[Row[Any]]:
    """Terminals, optionally within institutions."""
    query = select(terminals).order_by(terminals.c.issued_at_ms)
    if institution_ids is not None:
        query = query.where(terminals.c.institution_id.in_(institution_ids))
    return list(connection.execute(query))
