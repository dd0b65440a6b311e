"""sealpost review and admin in Dutch: help, tables, lines and refusals; JSON stays English."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from typer.testing import CliRunner

from sealpost.clients._cli import table
from sealpost.clients.admin import registry
from sealpost.clients.review import _format, cli, tui
from sealpost.v1 import common_pb2, review_pb2
from tests.programs import sealpost, staff_language


@pytest.fixture
def dutch() -> Iterator[None]:
    """Dutch for the test, English again afterwards."""
    with staff_language("nl"):
        yield


def _item() -> review_pb2.QueueItem:
    accepted = Timestamp()
    accepted.FromMilliseconds(1_772_352_000_000)
    return review_pb2.QueueItem(
        message_id=bytes(range(16)),
        detainee_id="d-1",
        institution_id="pi-vught",
        direction=common_pb2.DIRECTION_INBOUND,
        accepted_at=accepted,
        waited_seconds=3660,
        legal_basis=common_pb2.LEGAL_BASIS_SCREENING_ORDER,
    )


def test_review_help_in_dutch() -> None:
    result = sealpost("--language", "nl", "review", "--help")
    assert result.returncode == 0, result.stderr
    assert "Beoordelaars en goedkeurders: de controlewachtrij" in result.stdout
    assert "verzoeken achteraf" in result.stdout
    assert "langst wachtende eerst" in result.stdout  # the queue command's help


def test_admin_help_in_dutch() -> None:
    result = sealpost("--language", "nl", "admin", "--help")
    assert result.returncode == 0, result.stderr
    assert "Beheerders: inrichtingen, gedetineerden" in result.stdout
    assert "Lasten tot controle (art. 36 Pbw)" in result.stdout


def test_admin_subcommand_help_in_dutch() -> None:
    result = sealpost("--language", "nl", "admin", "detainee", "release", "--help")
    assert result.returncode == 0, result.stderr
    assert "Sluit het postvak van de gedetineerde" in result.stdout
    assert "Niet om bevestiging vragen." in result.stdout


def test_admin_refusals_in_dutch() -> None:
    both = sealpost(
        "--language", "nl", "admin", "retention", "--keep-days", "3", "--retire-below", "2"
    )
    assert both.returncode == 2
    assert "geef --keep-days (minstens 1) of --retire-below op" in both.stderr
    backwards = sealpost(
        "--language", "nl", "admin", "order", "create", "d-1", "--ground", "public-order",
        "--from", "2026-03-05", "--to", "2026-03-01",
    )  # fmt: skip
    assert backwards.returncode == 2
    assert "--to moet na --from liggen" in backwards.stderr


def test_a_refusal_for_scripts_keeps_its_code() -> None:
    result = sealpost(
        "--language", "nl", "admin", "key", "schedule", "--days", "-1", "--json"
    )  # fmt: skip
    assert result.returncode == 2
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "usage"
    assert "een periode is niet negatief" in error["message"]


def test_review_refusal_in_dutch() -> None:
    result = sealpost("--language", "nl", "review", "verdict", "00" * 16, "withhold")
    assert result.returncode == 2
    assert "tegenhouden vereist --reason (order-and-security," in result.stderr


def test_english_without_a_language() -> None:
    result = sealpost("admin", "retention", "--keep-days", "3", "--retire-below", "2")
    assert "give either --keep-days (at least 1) or --retire-below" in result.stderr
    assert _format.queue_headers()[0] == "waited"


@pytest.mark.usefixtures("dutch")
def test_queue_table_in_dutch_and_its_json_in_english() -> None:
    item = _item()
    text = table(_format.queue_headers(), [_format.item_row(item)])
    header, row = text.splitlines()
    assert header.split() == [
        "wachttijd", "bericht-id", "gedetineerde", "inrichting", "richting", "grondslag"
    ]  # fmt: skip
    assert row.split()[0] == "1u"
    assert "inkomend" in row
    assert row.endswith("last tot controle")
    data = _format.item_json(item)
    assert data["direction"] == "inbound"
    assert data["legalBasis"] == "screening_order"


class _Client:
    """Stands in for the gateway: a queue with one message."""

    def queue(self, institution: str, detainee: str) -> list[review_pb2.QueueItem]:
        return [_item()]


@pytest.mark.usefixtures("dutch")
def test_queue_command_prints_the_dutch_table(monkeypatch: pytest.MonkeyPatch) -> None:
    def client(self: Any, *, decrypt: bool) -> _Client:
        return _Client()

    monkeypatch.setattr(cli.ReviewOptions, "review_client", client)
    result = CliRunner().invoke(cli.app, ["queue"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("wachttijd  ")
    assert "last tot controle" in result.output
    as_json = CliRunner().invoke(cli.app, ["queue", "--json"])
    assert json.loads(as_json.output)["items"][0]["legalBasis"] == "screening_order"


@pytest.mark.usefixtures("dutch")
def test_terminal_ui_and_admin_lines_in_dutch() -> None:
    assert tui.queue_columns()[:2] == ("Wachtend", "Gedetineerde")
    released = common_pb2.Detainee(
        detainee_id="d-1",
        institution_id="pi-vught",
        regime="regular",
        status=common_pb2.DETAINEE_STATUS_RELEASED,
    )
    assert registry._detainee_line(released).split() == [
        "d-1", "pi-vught", "regular", "ontslagen", "nog", "geen", "postvaksleutel"
    ]  # fmt: skip
    assert _format.state_words(common_pb2.MESSAGE_STATE_RELEASED) == "vrijgegeven"
    assert _format.waited(90_000) == "1d 01u"
