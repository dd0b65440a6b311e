"""The scripted day with the gateway's metrics port on: what it counts matches the database.

The whole day runs against real OpenBao and a real gateway process; afterwards, with the
servers still up, ``/metrics`` is scraped and compared with the SQLite database the
gateway wrote, and searched for anything about a person or a message.
"""

from __future__ import annotations

import sqlite3
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sealpost._internal.exposition import samples
from sealpost._internal.stack import Stack
from sealpost.clients.scripted_day import NORTH, SOUTH, play_day
from sealpost.gateway.states import QUEUED
from sealpost.gateway.states import name as state_name
from sealpost.gateway.webapp import BUILT_APP

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
#: What the day's people wrote (tests/integration/test_demo.py looks for the same).
TEXTS = ("het pakket komt dinsdag", "Vertrouwelijk", "foto van de kleine", "bel je oma")


def scrape(url: str) -> tuple[str, Samples]:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - our own loopback URL
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    found = {(n, frozenset(labels.items())): value for n, labels, value in samples(text)}
    return text, found


def get(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


class Database:
    """The gateway's SQLite database, read beside the running gateway (WAL)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def figures(self) -> dict[str, Any]:
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True) as db:
            states = dict(db.execute("SELECT state, count(*) FROM messages GROUP BY state"))
            queued = dict(
                db.execute(
                    "SELECT institution_id, count(*) FROM messages WHERE state = ? "
                    "GROUP BY institution_id",
                    (QUEUED,),
                )
            )
            (log_size,) = db.execute(
                "SELECT value FROM gateway_state WHERE name = 'log_size'"
            ).fetchone()
            (head_size,) = db.execute("SELECT max(tree_size) FROM tree_heads").fetchone()
            institutions = [row[0] for row in db.execute("SELECT id FROM institutions")]
        return {
            "messages": {state_name(s).lower(): n for s, n in states.items()},
            "queued": {i: queued.get(i, 0) for i in institutions},
            "log_size": log_size,
            "head_size": head_size,
        }

    def secrets(self) -> list[str]:
        """What must never be in a scrape: ids of messages and people, names."""
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True) as db:
            found = [bytes(row[0]).hex() for row in db.execute("SELECT message_id FROM messages")]
            for query in (
                "SELECT id FROM accounts",
                "SELECT display_name FROM accounts",
                "SELECT id FROM detainees",
                "SELECT account_id FROM contacts",
            ):
                found += [str(row[0]) for row in db.execute(query)]
        return found


def shown(found: Samples) -> dict[str, Any]:
    messages = {
        dict(labels)["state"]: value
        for (metric, labels), value in found.items()
        if metric == "sealpost_messages"
    }
    queued = {
        dict(labels)["institution"]: value
        for (metric, labels), value in found.items()
        if metric == "sealpost_screening_queue_messages"
    }
    return {
        "messages": {state: count for state, count in messages.items() if count},
        "queued": queued,
        "log_size": get(found, "sealpost_log_size"),
        "head_size": get(found, "sealpost_log_signed_size"),
    }


@dataclass
class Scraped:
    """What the check after the day found, servers still up."""

    shown: dict[str, Any] = field(default_factory=dict)
    expected: dict[str, Any] = field(default_factory=dict)
    found: Samples = field(default_factory=dict)
    text: str = ""
    secrets: list[str] = field(default_factory=list)
    elsewhere: int = 0


def test_the_day_is_measured_and_the_scrape_names_no_one(tmp_path: Path) -> None:
    scraped = Scraped()

    def inspect(stack: Stack, out: Path) -> None:
        url = stack.gateway.metrics_url
        database = Database(out / "sealpost.db")
        # The database's figures are read every few seconds: wait for a read after the day.
        deadline = time.monotonic() + 30
        while True:
            scraped.expected = database.figures()
            scraped.text, scraped.found = scrape(url)
            scraped.shown = shown(scraped.found)
            if scraped.shown == scraped.expected or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        scraped.secrets = database.secrets()
        try:
            urllib.request.urlopen(url.removesuffix("/metrics") + "/", timeout=10)  # noqa: S310
        except urllib.error.HTTPError as exc:
            scraped.elsewhere = exc.code

    assert play_day(tmp_path / "day", then=inspect, gateway_env={"SEALPOST_METRICS_PORT": "0"})

    assert scraped.shown == scraped.expected
    assert scraped.expected["messages"]["delivered"] >= 1
    assert scraped.expected["queued"][NORTH] == 1  # the late message
    assert scraped.expected["queued"][SOUTH] == 0
    found = scraped.found

    send = "sealpost.v1.RelativeService/SendMessage"
    calls = "sealpost_gateway_requests_total"
    sent = get(found, calls, transport="grpc", method=send, code="OK")
    assert sent is not None
    assert sent >= 5
    # The EBI's refusal and the screener's try at privileged mail, with their codes.
    assert get(found, calls, transport="grpc", method=send, code="FAILED_PRECONDITION") == 1
    grant = "sealpost.v1.ReviewService/GrantAccess"
    assert get(found, calls, transport="grpc", method=grant, code="PERMISSION_DENIED") == 1
    granted = get(found, calls, transport="grpc", method=grant, code="OK")
    assert granted is not None
    assert granted >= 1
    intake = "sealpost.v1.TerminalService/StreamIntake"
    assert (get(found, calls, transport="grpc", method=intake, code="OK") or 0) >= 3
    assert (
        get(found, "sealpost_gateway_request_duration_seconds_count", transport="grpc", method=send)
        == sent + 1
    )
    assert get(found, "sealpost_gateway_streams_open", transport="grpc", method=intake) == 0
    if (BUILT_APP / "index.html").is_file():  # Youssef's visit, over the browser port
        assert get(found, calls, transport="connect", method=send, code="OK") == 1

    age = get(found, "sealpost_screening_queue_oldest_age_seconds", institution=NORTH)
    assert age is not None
    assert 0 < age < 600
    assert get(found, "sealpost_screening_queue_oldest_age_seconds", institution=SOUTH) == 0
    head_age = get(found, "sealpost_log_newest_head_age_seconds")
    assert head_age is not None
    assert 0 <= head_age < 120
    assert get(found, "sealpost_database_up") == 1
    assert get(found, "sealpost_key_server_state", state="ready") == 1
    assert get(found, "sealpost_key_server_state", state="sealed") == 0
    assert get(found, "sealpost_metrics_refresh_failures_total") == 0
    assert scraped.elsewhere == 404

    assert len(scraped.secrets) > 10
    for secret in [*scraped.secrets, *TEXTS]:
        assert secret not in scraped.text, secret
