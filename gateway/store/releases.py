"""Where the log last recorded a release of the web app (gateway/webapp.py)."""

from __future__ import annotations

from typing import Final

from sqlalchemy import Connection, insert, select, update

from sealpost.gateway.storage.schema import gateway_state

#: The name, in gateway_state, of the log index of the newest web app release.
_WEB_APP_RELEASE: Final = "web_app_release"


def web_app_release_index(connection: Connection) -> int | None:
    """The log index of the newest recorded release of the web app, or None."""
    value = connection.execute(
        select(gateway_state.c.value).where(gateway_state.c.name == _WEB_APP_RELEASE)
    ).scalar_one_or_none()
    return None if value is None else int(value)


def set_web_app_release_index(connection: Connection, index: int) -> None:
    """Remember ``index`` as the log index of the newest release of the web app."""
    found = connection.execute(
        update(gateway_state).where(gateway_state.c.name == _WEB_APP_RELEASE).values(value=index)
    )
    if found.rowcount == 0:
        connection.execute(insert(gateway_state).values(name=_WEB_APP_RELEASE, value=index))
