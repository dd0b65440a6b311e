"""Which institution a call's target belongs to, for the authorisation table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, bindparam, select

from sealpost.gateway.storage.direct import Direct
from sealpost.gateway.storage.schema import (
    contacts,
    detainees,
    handovers,
    messages,
    retrospective_requests,
    screening_orders,
    terminals,
)

_Q_INSTITUTION_OF_DETAINEE = Direct(
    select(detainees.c.institution_id).where(detainees.c.id == bindparam("p_id"))
)
_Q_INSTITUTION_OF_MESSAGE = Direct(
    select(messages.c.institution_id).where(messages.c.message_id == bindparam("p_id"))
)


class Scopes:
    """authz.ScopeResolver over the database (one read transaction)."""

    def __init__(self, connection: Connection) -> None:
        """Look up through ``connection``."""
        self._c = connection

    def _one(self, query: Select[Any]) -> str | None:
        value = self._c.execute(query).scalar_one_or_none()
        return None if value is None else str(value)

    def institution_of_detainee(self, detainee_id: str) -> str | None:
        """The detainee's current institution."""
        value = _Q_INSTITUTION_OF_DETAINEE.scalar(self._c, {"p_id": detainee_id})
        return None if value is None else str(value)

    def institution_of_message(self, message_id: bytes) -> str | None:
        """The institution that currently holds the message's detainee side."""
        value = _Q_INSTITUTION_OF_MESSAGE.scalar(self._c, {"p_id": message_id})
        return None if value is None else str(value)

    def institution_of_contact(self, contact_id: str) -> str | None:
        """The institution of the contact's detainee."""
        return self._one(
            select(detainees.c.institution_id)
            .join(contacts, contacts.c.detainee_id == detainees.c.id)
            .where(contacts.c.id == contact_id)
        )

    def institution_of_order(self, order_id: str) -> str | None:
        """The institution of the order's detainee."""
        return self._one(
            select(detainees.c.institution_id)
            .join(screening_orders, screening_orders.c.detainee_id == detainees.c.id)
            .where(screening_orders.c.id == order_id)
        )

    def institution_of_terminal(self, terminal_id: str) -> str | None:
        """The terminal's institution."""
        return self._one(select(terminals.c.institution_id).where(terminals.c.id == terminal_id))

    def institution_of_retrospective(self, request_id: str) -> str | None:
        """The institution a retrospective request was filed at."""
        return self._one(
            select(retrospective_requests.c.institution_id).where(
                retrospective_requests.c.id == request_id
            )
        )

    def handover_sources(self, detainee_id: str) -> frozenset[str]:
        """Institutions that still owe a handover of this detainee's mailbox keys."""
        rows = self._c.execute(
            select(handovers.c.from_institution_id).where(
                handovers.c.detainee_id == detainee_id, handovers.c.completed_at_ms.is_(None)
            )
        ).scalars()
        return frozenset(rows)
