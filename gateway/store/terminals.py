"""Institution terminals and their certificates."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import Connection, bindparam, insert, select, update

from sealpost.gateway.errors import FailedPrecondition
from sealpost.gateway.storage.direct import Direct
from sealpost.gateway.storage.schema import terminals
from sealpost.gateway.store._common import columns, first, found, rows


class TerminalRow(NamedTuple):
    """An institution terminal's client certificate, registered by an administrator."""

    id: str
    institution_id: str
    #: Hex SHA-256 of the certificate's DER encoding (gateway/pki.py).
    fingerprint: str
    #: The certificate, PEM.
    certificate: str
    issued_at_ms: int
    expires_at_ms: int
    revoked_at_ms: int | None


_TERMINAL = columns(TerminalRow, terminals)
_Q_TERMINAL_BY_FINGERPRINT = Direct(
    select(*_TERMINAL).where(terminals.c.fingerprint == bindparam("p_fingerprint")), TerminalRow
)


def terminal_by_fingerprint(connection: Connection, fingerprint: str) -> TerminalRow | None:
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


def terminal(connection: Connection, terminal_id: str) -> TerminalRow:
    """A terminal; NotFound if absent."""
    query = select(*_TERMINAL).where(terminals.c.id == terminal_id)
    return found(first(connection, query, TerminalRow), "no such terminal")


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
) -> list[TerminalRow]:
    """Terminals, optionally within institutions."""
    query = select(*_TERMINAL).order_by(terminals.c.issued_at_ms)
    if institution_ids is not None:
        query = query.where(terminals.c.institution_id.in_(institution_ids))
    return rows(connection, query, TerminalRow)
