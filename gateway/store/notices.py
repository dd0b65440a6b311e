"""The e-mail addresses relatives are told at when there is news, and what is news."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update

from sealpost.gateway.storage.schema import messages, notification_addresses
from sealpost.gateway.store._common import columns, first


class NotificationRow(NamedTuple):
    """Where and in which language a relative is told that there is news, and when."""

    account_id: str
    email: str
    language: str
    #: News older than this has been told (or predates the address).
    notified_at_ms: int
    #: When the last notice went out, if one did.
    last_sent_at_ms: int | None


class NewsRow(NamedTuple):
    """An account with news not yet told, up to ``newest_ms``."""

    address: NotificationRow
    newest_ms: int


_NOTIFICATION = columns(NotificationRow, notification_addresses)


def set_notification_address(
    connection: Connection, account_id: str, email: str, language: str, now_ms: int
) -> None:
    """Keep ``email`` for ``account_id``'s notices; news before now is not told."""
    remove_notification_address(connection, account_id)
    connection.execute(
        insert(notification_addresses).values(
            account_id=account_id,
            email=email,
            language=language,
            created_at_ms=now_ms,
            notified_at_ms=now_ms,
        )
    )


def remove_notification_address(connection: Connection, account_id: str) -> None:
    """Forget the account's address (nothing is kept of it)."""
    connection.execute(
        delete(notification_addresses).where(notification_addresses.c.account_id == account_id)
    )


def notification_address(connection: Connection, account_id: str) -> NotificationRow | None:
    """The account's address and language, or None."""
    query = select(*_NOTIFICATION).where(notification_addresses.c.account_id == account_id)
    return first(connection, query, NotificationRow)


def accounts_with_news(
    connection: Connection, news_states: Mapping[int, frozenset[int]], quiet_since_ms: int
) -> list[NewsRow]:
    """Accounts with an address and news not yet told, sent no notice after ``quiet_since_ms``.

    News is a message of the account reaching one of ``news_states`` (by direction)
    after the account was last told.
    """
    is_news = or_(
        *(
            and_(messages.c.direction == direction, messages.c.state.in_(sorted(states)))
            for direction, states in news_states.items()
        )
    )
    query = (
        select(*_NOTIFICATION, func.max(messages.c.state_changed_at_ms))
        .join(messages, messages.c.account_id == notification_addresses.c.account_id)
        .where(
            messages.c.state_changed_at_ms > notification_addresses.c.notified_at_ms,
            or_(
                notification_addresses.c.last_sent_at_ms.is_(None),
                notification_addresses.c.last_sent_at_ms <= quiet_since_ms,
            ),
            is_news,
        )
        .group_by(*_NOTIFICATION)
    )
    width = len(_NOTIFICATION)
    return [
        NewsRow(NotificationRow._make(values[:width]), int(values[width]))
        for values in connection.execute(query)
    ]


def claim_news(connection: Connection, news: NewsRow, now_ms: int) -> bool:
    """Take the telling of ``news``: True for the one caller that takes it.

    Several gateway processes may find the same news; only one claims it, so a notice
    goes out at most once.
    """
    claimed = connection.execute(
        update(notification_addresses)
        .where(
            notification_addresses.c.account_id == news.address.account_id,
            notification_addresses.c.notified_at_ms == news.address.notified_at_ms,
        )
        .values(notified_at_ms=news.newest_ms, last_sent_at_ms=now_ms)
    )
    return claimed.rowcount == 1


def release_news(connection: Connection, news: NewsRow) -> None:
    """Give a claimed telling back (the notice could not be sent): it is tried again."""
    connection.execute(
        update(notification_addresses)
        .where(
            notification_addresses.c.account_id == news.address.account_id,
            notification_addresses.c.notified_at_ms == news.newest_ms,
        )
        .values(
            notified_at_ms=news.address.notified_at_ms,
            last_sent_at_ms=news.address.last_sent_at_ms,
        )
    )
