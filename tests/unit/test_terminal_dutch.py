"""``sealpost terminal`` in Dutch: the help, the desk's tables, the intake's lines and notices.

In-process tests switch the staff language to Dutch and back to English afterwards; help
texts are built when the command modules load, so the help runs ``sealpost --language nl``
as a process of its own, the way an operator does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from sealpost.clients.attachments import ALLOWED_LIST
from sealpost.clients.terminal.cli import delivery_table, withheld_table
from sealpost.clients.terminal.desk import DeliveryItem, WithheldItem
from sealpost.clients.terminal.errors import RegisterError, TerminalRevokedError
from sealpost.clients.terminal.intake import BatchReport, IntakeSummary
from sealpost.clients.terminal.pdf import WithheldAttachment
from sealpost.clients.terminal.register import DetaineeRegister
from sealpost.v1 import common_pb2
from tests.programs import sealpost, staff_language
from tests.unit.test_terminal_intake_loop import FakeEscrow, FakeGateway, _loop

SENT = datetime(2026, 7, 14, 6, 45, tzinfo=UTC)


@pytest.fixture
def dutch() -> Iterator[None]:
    """Dutch for the test, English again afterwards."""
    with staff_language("nl"):
        yield


def items() -> list[DeliveryItem]:
    return [
        DeliveryItem(bytes(range(16)), "d-1", "Oma Jansen", SENT, False, 2, 900),
        DeliveryItem(bytes(16), "d-1234", "Mr. A. Advocaat", SENT, True, 0, 100),
    ]


def test_the_deliveries_table_in_dutch(dutch: None) -> None:
    lines = delivery_table(items()).splitlines()
    assert lines[0].split() == [
        "bericht-id",
        "gedetineerde",
        "verstuurd",
        "afzender",
        "bijlagen",
        "vertrouwelijk",
    ]
    assert lines[2].endswith("ja")  # the lawyer's mail is privileged
    # The columns line up: each starts where its header starts.
    at = lines[0].index("gedetineerde")
    assert lines[1][at:].startswith("d-1 ")
    assert lines[2][at:].startswith("d-1234")


def test_the_deliveries_table_in_english() -> None:
    lines = delivery_table(items()).splitlines()
    assert lines[0].split() == [
        "message",
        "id",
        "detainee",
        "sent",
        "sender",
        "attachments",
        "privileged",
    ]
    assert lines[1].startswith(bytes(range(16)).hex() + "  d-1 ")
    assert lines[2].endswith("yes")


def test_the_withheld_table_names_the_reason_in_dutch(dutch: None) -> None:
    withheld = WithheldItem(
        bytes(16),
        "d-1",
        inbound=False,
        counterpart_name="Fatima",
        accepted_at=SENT,
        withheld_at=SENT,
        reason=common_pb2.WITHHOLD_REASON_CRIME_PREVENTION,
    )
    header, row = withheld_table([withheld]).splitlines()
    assert header.split() == [
        "bericht-id",
        "gedetineerde",
        "tegengehouden",
        "richting",
        "naaste",
        "reden",
    ]
    assert row.endswith("antwoord  \u2068Fatima\u2069  voorkomen van strafbare feiten")


def test_the_intake_summary_in_dutch(dutch: None) -> None:
    summary = IntakeSummary(
        batches=1,
        submitted=3,
        escrowed=2,
        privileged=1,
        released=2,
        queued=1,
        waiting_for_key_server=4,
        witnessed_size=12,
        heads_cosigned=1,
    )
    assert summary.line() == (
        "inname: 3 ingenomen (2 met sleutel in bewaring, 1 vertrouwelijk) in 1 partij; "
        "2 vrijgegeven, 1 in de controlewachtrij; 0 ongeldig; wachten nog: 4 op de "
        "sleutelserver, 0 op een postbussleutel; getuige van het log tot grootte 12 "
        "(1 boomkop medeondertekend)"
    )
    report = BatchReport(received=5, submitted=4, escrowed=3, privileged=1, released=4)
    report.waiting_for_key_server = 1
    assert report.line() == (
        "partij: 5 ontvangen, 4 ingenomen (3 met sleutel in bewaring, 1 vertrouwelijk), "
        "4 vrijgegeven, 0 in de controlewachtrij, 1 wacht op de sleutelserver; 0.00 s"
    )


def test_the_intake_summary_in_english_counts_batches_right() -> None:
    line = IntakeSummary(batches=1, submitted=1, escrowed=1).line()
    assert line.startswith("intake: 1 taken in (1 escrowed, 0 privileged) in 1 batch; ")
    assert "in 2 batches" in IntakeSummary(batches=2).line()


def test_the_fail_closed_notice_in_dutch(dutch: None) -> None:
    gateway = FakeGateway()
    gateway.add(2)
    loop, _client, _store, reporter = _loop(gateway, FakeEscrow(failures=1_000))
    loop.run_once(max_wait=0.1)
    notices = [text for kind, text in reporter.notices if kind == "key-server"]
    assert notices
    assert "niet-vertrouwelijke berichten wachten (veilig dicht)" in notices[0]
    assert "vertrouwelijke post gaat wel door; nieuwe poging over" in notices[0]


def test_explanations_in_dutch(dutch: None) -> None:
    assert (
        TerminalRevokedError()
        .explain()
        .startswith("de gateway weigert het certificaat van deze terminal")
    )
    with pytest.raises(RegisterError, match="staat nog niet in het register: geef de naam op"):
        DetaineeRegister().set("d-9", language="nl")
    with pytest.raises(RegisterError, match=r"^de naam is leeg$"):
        DetaineeRegister().set("d-9", name="  ")


def test_the_withheld_attachment_note_names_what_is_allowed() -> None:
    note = WithheldAttachment(2, "report.exe", "image/png", None, 10).note()
    assert note.endswith(f"only {ALLOWED_LIST} are delivered")
    assert "an unknown format" in note


def test_terminal_help_in_dutch() -> None:
    done = sealpost("--language", "nl", "terminal", "--help")
    assert done.returncode == 0, done.stderr
    words = " ".join(done.stdout.split())
    assert "Terminals van inrichtingen: berichten innemen" in words
    assert "Vrijgegeven berichten die wachten op uitreiking" in words
    assert "Het register van de inrichting met haar gedetineerden" in words
    reply = sealpost("--language", "nl", "terminal", "reply", "--help")
    assert reply.returncode == 0, reply.stderr
    assert "De gedetineerde die schrijft." in " ".join(reply.stdout.split())
    english = sealpost("--language", "en", "terminal", "--help")
    assert "Released messages waiting for delivery" in " ".join(english.stdout.split())
