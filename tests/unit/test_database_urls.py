"""What the gateway and the auditor hand libpq for a PostgreSQL URL.

A cluster with a standby is reached through one URL that lists every node
(docs/operations.md, section 9). The gateway adds TCP timeouts where the URL sets none,
so that a primary gone from the network is given up in seconds, not the kernel's
quarter of an hour; the URL's own values win. The auditor's sessions are read-only by
design, which libpq's ``target_session_attrs=read-write`` would refuse on every server:
it asks for the primary instead.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, event

from sealpost.clients.audit.database import open_readonly
from sealpost.gateway.storage.database import PG_CONNECTION_DEFAULTS, create_database_engine

CLUSTER = (
    "postgresql+psycopg://sealpost:secret@/sealpost"
    "?host=10.0.0.1:5432&host=10.0.0.2:5433&target_session_attrs=read-write"
)


class _Captured(Exception):
    pass


def connect_parameters(engine: Engine) -> dict[str, Any]:
    """The keyword arguments the driver would get, captured before any connection is made."""
    seen: dict[str, Any] = {}

    def capture(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        seen.update(cparams)
        raise _Captured

    event.listen(engine, "do_connect", capture)
    with pytest.raises(_Captured):
        engine.connect()
    engine.dispose()
    return seen


def test_the_gateway_lists_every_host_and_adds_tcp_timeouts() -> None:
    parameters = connect_parameters(create_database_engine(CLUSTER))
    assert parameters["host"] == "10.0.0.1,10.0.0.2"
    assert parameters["port"] == "5432,5433"
    assert parameters["target_session_attrs"] == "read-write"
    assert parameters["options"] == "-c synchronous_commit=on"
    for name, value in PG_CONNECTION_DEFAULTS.items():
        assert parameters[name] == value
    assert int(parameters["tcp_user_timeout"]) <= 60_000
    assert int(parameters["keepalives_idle"]) + 5 * int(parameters["keepalives_count"]) <= 60


def test_the_urls_own_timeouts_win() -> None:
    engine = create_database_engine(f"{CLUSTER}&connect_timeout=3&tcp_user_timeout=9000")
    parameters = connect_parameters(engine)
    assert (parameters["connect_timeout"], parameters["tcp_user_timeout"]) == ("3", "9000")
    assert parameters["keepalives_idle"] == PG_CONNECTION_DEFAULTS["keepalives_idle"]


def test_sqlite_gets_no_libpq_settings(tmp_path: Any) -> None:
    parameters = connect_parameters(create_database_engine(f"sqlite:///{tmp_path / 'x.db'}"))
    assert not set(PG_CONNECTION_DEFAULTS) & set(parameters)


def test_the_auditor_asks_for_the_primary_where_the_url_says_read_write() -> None:
    parameters = connect_parameters(open_readonly(CLUSTER))
    assert parameters["target_session_attrs"] == "primary"
    assert parameters["host"] == "10.0.0.1,10.0.0.2"
    assert parameters["options"] == "-c default_transaction_read_only=on"


@pytest.mark.parametrize("attrs", ["any", "standby", "prefer-standby", "primary"])
def test_the_auditor_keeps_any_other_target(attrs: str) -> None:
    url = CLUSTER.replace("read-write", attrs)
    assert connect_parameters(open_readonly(url))["target_session_attrs"] == attrs


def test_the_auditor_adds_no_target_to_a_single_server() -> None:
    parameters = connect_parameters(open_readonly("postgresql+psycopg://a@10.0.0.1:5432/sealpost"))
    assert "target_session_attrs" not in parameters
