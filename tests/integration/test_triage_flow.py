"""Triage on the real stack: the terminal seals summaries, the screener's queue is ranked.

Against a real gateway (SQLite and PostgreSQL) and a real OpenBao, with the detectors
and Tesseract: a detainee under a screening order receives a message with a phone
number, a photo of a note with an IBAN, a name under a contact ban written in Arabic
script, and an innocent letter; a privileged letter from a lawyer and a message to a
detainee without a legal basis for review come in beside them. The terminal triages at
intake and hands in one sealed summary per queued message; the gateway cannot read it
and it holds no text of the message. ``sealpost review queue`` puts the three planted
messages first, the innocent one last; ``sealpost review open`` highlights the spans;
the innocent one is released and delivered unchanged. Privileged mail and the message
without a legal basis never reach the detectors, and the gateway refuses a summary for
them. The watch list's change is in the log with its digest only, and ``sealpost audit
verify`` finds the tables as the log says.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import grpc
import pytest
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select, update

from sealpost._internal.stack import (
    Stack,
    approve_all,
    log_events,
    screening_order,
    setup_institutions,
)
from sealpost.clients._grpc import ClientError
from sealpost.clients.review import triage as review_triage
from sealpost.clients.terminal.desk import DeliveryDesk
from sealpost.clients.terminal.intake import IntakeLoop, IntakeSettings, MemoryStateStore
from sealpost.clients.terminal.triage import IntakeTriage
from sealpost.clients.triage import Report, WatchList, triage
from sealpost.clients.triage.sealed import SUMMARY_BYTES, Summary, summary_context
from sealpost.crypto.envelope import Part
from sealpost.crypto.logentry import WATCH_LIST_OPERATION, LogAction, watch_list_digest
from sealpost.gateway.storage import schema
from sealpost.gateway.storage.database import create_database_engine
from sealpost.v1 import admin_pb2, common_pb2
from tests.integration.test_state_follows_log import log_key, verify
from tests.programs import as_staff
from tests.unit.test_triage_attachments import FONT, needs_tesseract

pytestmark = pytest.mark.integration

A = "pi-triage"
PHONE = "Bel Karim op 06-12345678 voor het pakket."
ARABIC = "قال محمد العمراني إنه سيزورك الأسبوع المقبل"
INNOCENT = "Lieve papa, de kinderen maken het goed en we denken aan je."
IBAN = "NL91 ABNA 0417 1643 00"
LAWYER = "Vertrouwelijk: de zitting is verplaatst, bel 06-87654321."
FREE = "Tot zondag! Mijn nummer is 06-11223344."
BANNED = "Mohammed El Amrani"


def _photo(lines: Sequence[str]) -> bytes:
    font = ImageFont.truetype(str(FONT), 44)
    image = Image.new("RGB", (1500, 140 + 90 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((60, 60 + 90 * i), line, fill="black", font=font)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _lawyer(stack: Stack, admin: object, detainee: str) -> object:
    lawyer = stack.relative("Advocaat")
    lawyer.request_contact(detainee)
    approve_all(admin, A)  # type: ignore[arg-type]
    admin.call(  # type: ignore[attr-defined]
        "admin",
        "VerifyCorrespondent",
        admin_pb2.VerifyCorrespondentRequest(
            account_id=lawyer.account_id, kind="lawyer", evidence_reference="NOvA 7"
        ),
    )
    return lawyer


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_triage_ranks_the_planted_messages_first_and_never_sees_what_it_may_not(
    stack: Stack, database_url: str, tmp_path: Path
) -> None:
    needs_tesseract()
    admin, terminals = setup_institutions(
        stack, [("d-order", A, "regular"), ("d-free", A, "regular")]
    )
    north = terminals[A]
    screening_order(admin, "d-order", common_pb2.DIRECTION_INBOUND)
    lawyer = _lawyer(stack, admin, "d-order")
    relative = stack.relative("Samira")
    relative.request_contact("d-order")
    relative.request_contact("d-free")
    approve_all(admin, A)

    # A screener keeps the detainee's watch list: the name under a contact ban.
    list_file = tmp_path / "d-order.txt"
    list_file.write_text(f"# zaak 2026/123\ncontact-ban: {BANNED}\n", encoding="utf-8")
    listed = as_staff(stack, ["screener"], [A], "review", "watchlist", "set", str(list_file),
                      "--institution", A, "--detainee", "d-order", "--json")  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["version"] == 1
    shown = as_staff(stack, ["screener"], [A], "review", "watchlist", "show",
                     "--institution", A, "--json")  # fmt: skip
    assert json.loads(shown.stdout)["lists"][0]["entries"] == [
        {"kind": "contact-ban", "text": BANNED}
    ]
    # Another institution's screener may not read or change it.
    elsewhere = as_staff(stack, ["screener"], ["pi-elders"], "review", "watchlist", "show",
                         "--institution", A)  # fmt: skip
    assert elsewhere.returncode == 1, elsewhere.stderr
    _name, session, _token = stack.staff_login(["screener"], [A])
    # Nor ask for a detainee's lists without naming the institution (the one holding them).
    with pytest.raises(ClientError) as outside:
        stack.reviewer(["screener"], ["pi-elders"]).watch_lists("", "d-order")
    assert outside.value.code == grpc.StatusCode.PERMISSION_DENIED
    screener = stack.reviewer(["screener"], [A])
    sealer = stack.sealer(session.token)

    # Oldest first: the innocent letter waits longest.
    innocent = relative.send("d-order", INNOCENT)
    phone = relative.send("d-order", PHONE)
    photo = relative.send(
        "d-order",
        "Kijk eens naar dit briefje.",
        [Part("image/png", _photo(["Stort het op", IBAN, "voor vrijdag"]), "briefje.png")],
    )
    arabic = relative.send("d-order", ARABIC)
    privileged = lawyer.send("d-order", LAWYER)  # type: ignore[attr-defined]
    free = relative.send("d-free", FREE)

    # The terminal takes in with triage; what reaches the detectors is recorded.
    seen: list[str] = []

    def detectors(parts: Sequence[Part], lists: Sequence[WatchList]) -> Report:
        seen.append(parts[0].data.decode("utf-8"))
        assert [lst.name for lst in lists] == ["d-order"]
        return triage(parts, lists)

    step = IntakeTriage(north, stack.terminal_sealer(A), run=detectors)
    summary = IntakeLoop(
        north,
        stack.escrow_for(A),
        MemoryStateStore(),
        settings=IntakeSettings(batch_size=200),
        triage=step,
    ).run_once(max_wait=30)
    assert summary.queued == 4
    assert summary.triaged == 4
    assert sorted(seen) == sorted([INNOCENT, PHONE, "Kijk eens naar dit briefje.", ARABIC])
    assert not any(LAWYER in text or FREE in text for text in seen)

    # The gateway refuses a summary for privileged mail and for a message released at once.
    for message in (privileged, free):
        with pytest.raises(ClientError) as refused:
            north.seal_triage([(message.message_id, "vault:v1:" + "A" * 960)])
        assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION

    # Every queued message has a sealed summary of one size; none holds the message's text.
    engine = create_database_engine(database_url)
    with engine.connect() as connection:
        stored = dict(
            connection.execute(
                select(schema.messages.c.message_id, schema.messages.c.triage_seal)
            ).all()
        )
    engine.dispose()
    queued_ids = [m.message_id for m in (innocent, phone, photo, arabic)]
    assert {stored[m] is not None for m in queued_ids} == {True}
    assert stored[privileged.message_id] is None
    assert stored[free.message_id] is None
    assert len({len(stored[m]) for m in queued_ids}) == 1
    for message_id in queued_ids:
        (plain,) = sealer.open([(summary_context(message_id), stored[message_id])])
        assert plain is not None
        assert len(plain) == SUMMARY_BYTES
        for text in ("06-12345678", "NL91", "محمد", "kinderen", BANNED):
            assert text.encode() not in plain
    # A summary made for one message does not open as another's.
    assert sealer.open([(summary_context(phone.message_id), stored[arabic.message_id])]) == [None]

    # The screener's queue: the three planted messages first, the innocent letter last.
    shown = as_staff(stack, ["screener"], [A], "review", "queue", "--json")
    assert shown.returncode == 0, shown.stderr
    items = json.loads(shown.stdout)["items"]
    order = [bytes.fromhex(i["messageId"]) for i in items]
    assert set(order[:3]) == {phone.message_id, photo.message_id, arabic.message_id}
    assert order[3] == innocent.message_id
    found = {bytes.fromhex(i["messageId"]): i["triage"] for i in items}
    assert found[phone.message_id]["signals"] == {"phone": 1}
    assert found[photo.message_id]["signals"].get("bank-account") == 1
    assert found[arabic.message_id]["signals"] == {"watch-list": 1}
    assert found[arabic.message_id]["language"] == "ar"
    assert found[innocent.message_id]["signals"] == {}
    by_age = as_staff(stack, ["screener"], [A], "review", "queue", "--by-age", "--json")
    assert [bytes.fromhex(i["messageId"]) for i in json.loads(by_age.stdout)["items"]] == (
        queued_ids
    )

    # `review open` marks the spans, with the watch lists of the detainee's institution.
    opened_cli = as_staff(
        stack, ["screener"], [A], "review", "open", arabic.message_id.hex(), "--json"
    )
    assert opened_cli.returncode == 0, opened_cli.stderr
    marked = json.loads(opened_cli.stdout)["triage"]["signals"]
    assert [m["text"] for m in marked if m["detector"] == "watch-list"] == ["محمد العمراني"]
    shown = as_staff(stack, ["screener"], [A], "review", "open", phone.message_id.hex())
    assert "⟦06-12345678⟧" in shown.stdout

    # Opened under a grant, the spans are found in the plaintext, in the photo by OCR.
    lists = review_triage.lists_for(screener, sealer, A, "d-order")
    spans = {
        m.message_id: review_triage.report_for(screener.open(m.message_id), lists)
        for m in (phone, photo, arabic)
    }
    assert [s.text for s in spans[phone.message_id].signals if s.detector == "phone"] == [
        "06-12345678"
    ]
    assert [
        (s.source, s.text.replace(" ", ""))
        for s in spans[photo.message_id].signals
        if s.detector == "bank-account"
    ] == [("ocr", IBAN.replace(" ", ""))]
    assert [s.text for s in spans[arabic.message_id].signals if s.detector == "watch-list"] == [
        "محمد العمراني"
    ]

    # The innocent letter is released and delivered exactly as sent.
    opened = screener.open(innocent.message_id)
    assert Summary.of(review_triage.report_for(opened, lists)).counts == ()
    screener.verdict(innocent.message_id, common_pb2.VERDICT_RELEASE)
    delivered = DeliveryDesk(north, A).open(innocent.message_id)
    assert delivered.text == INNOCENT
    assert delivered.attachments == ()

    # The time to a decision: one verdict at A, three messages still waiting.
    times = as_staff(stack, ["screener"], [A], "review", "decisions", "--json")
    assert times.returncode == 0, times.stderr
    (row,) = json.loads(times.stdout)["institutions"]
    assert (row["institutionId"], row["verdicts"], row["undecided"]) == (A, 1, 3)
    (screened,) = json.loads(times.stdout)["screeners"]
    assert screened["verdicts"] == 1

    # The list's change is logged with its digest, never its names.
    (change,) = [
        e
        for e in log_events(stack)
        if e.action is LogAction.ADMIN_ACTION and e.extra.get("operation") == WATCH_LIST_OPERATION
    ]
    (record,) = screener.watch_lists(A, "d-order")
    assert change.extra["sealed_digest"] == watch_list_digest(record.sealed).hex()
    assert dict(change.subjects) == {"institution": A, "detainee": "d-order"}
    assert BANNED not in repr(change)
    assert "Amrani" not in record.sealed

    code, state = verify(database_url, log_key(stack))
    assert (code, state["findings"]) == (0, [])

    # A list swapped in the database is a finding: its digest no longer matches the log.
    engine = create_database_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            update(schema.watch_lists)
            .where(schema.watch_lists.c.detainee_id == "d-order")
            .values(sealed=record.sealed[:-4] + "AAA=")
        )
    engine.dispose()
    code, state = verify(database_url, log_key(stack))
    assert code != 0
    assert any("watch_lists" in json.dumps(f) for f in state["findings"])
