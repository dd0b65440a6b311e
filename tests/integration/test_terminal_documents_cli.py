"""``sealpost terminal`` hands a detainee papers in their language: slip, receipt, notice.

Through the entry point, against a real gateway on SQLite and a real OpenBao: the
register (kept in the sealed profile), a slip in Arabic, a reply that waits for a
screener and says so, and the notice of its withholding.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pypdf
import pytest

from sealpost._internal.stack import Stack, approve_all, screening_order
from sealpost.clients._text import isolate
from sealpost.i18n import translator
from sealpost.v1 import admin_pb2, common_pb2
from tests.integration.test_terminal_cli import (
    INSTITUTION,
    Terminal,
    _enroll_args,
    _issue,
    _terminal_token,
)

pytestmark = pytest.mark.integration

NAME = "Youssef El Amrani"


def _text(path: Path) -> str:
    reader = pypdf.PdfReader(io.BytesIO(path.read_bytes()))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_register_slip_receipt_and_notice_from_the_command_line(
    stack: Stack, tmp_path: Path
) -> None:
    admin = stack.staff(["administrator"], ["*"])
    admin.call(
        "admin",
        "CreateInstitution",
        admin_pb2.CreateInstitutionRequest(institution_id=INSTITUTION, name="PI CLI"),
    )
    for detainee in ("d-ar", "d-nl"):
        admin.call(
            "admin",
            "IntakeDetainee",
            admin_pb2.IntakeDetaineeRequest(
                detainee_id=detainee, institution_id=INSTITUTION, regime="regular"
            ),
        )
    _name, staff_token = stack.staff_token(["administrator"], [INSTITUTION])
    _issue(stack, staff_token, tmp_path / "issued")
    terminal = Terminal(tmp_path / "profile", _terminal_token(stack))
    terminal.json(*_enroll_args(stack, tmp_path / "issued"))

    # The register: set at admission, changed later, listed; names never in clear.
    assert terminal.json("detainee", "list") == []
    refused = terminal("detainee", "set", "d-ar", "--language", "ar")
    assert refused.returncode == 1
    assert "give the name" in refused.stderr
    unknown = terminal("detainee", "set", "d-ar", "--name", NAME, "--language", "fr")
    assert unknown.returncode == 1
    assert "choose one of nl, en, ar, tr, pl" in unknown.stderr
    assert terminal.json("detainee", "set", "d-ar", "--name", NAME, "--language", "tr") == {
        "detaineeId": "d-ar",
        "name": NAME,
        "language": "tr",
    }
    terminal.json("detainee", "set", "d-ar", "--language", "ar")
    assert terminal.json("detainee", "list") == [
        {"detaineeId": "d-ar", "name": NAME, "language": "ar"}
    ]
    assert NAME not in (tmp_path / "profile" / "terminal-profile.json").read_text()

    terminal.json_lines("intake", "--once")  # mailboxes
    screening_order(admin, "d-ar")
    relative = stack.relative("Fatima El Amrani")
    relative.request_contact("d-ar")
    relative.request_contact("d-nl")
    approve_all(admin, INSTITUTION)
    to_nl = relative.send_sealed(relative.seal("d-nl", "Hoi")).message_id
    terminal.json_lines("intake", "--once")

    # A detainee not in the register reads Dutch, by id.
    terminal.json("print", to_nl.hex(), "--out", str(tmp_path / "slip-nl.pdf"))
    assert "Bericht voor d-nl" in _text(tmp_path / "slip-nl.pdf")

    # A reply under a screening order waits for a screener, and everyone is told so.
    receipt = tmp_path / "receipt.pdf"
    sent = terminal(
        "reply", "d-ar", "--to", relative.account_id, "--text", "شكرا", "--receipt", str(receipt)
    )
    assert sent.returncode == 0, sent.stderr
    assert "not sent yet: it waits for a screener" in sent.stdout
    assert " sent to " not in sent.stdout
    assert receipt.stat().st_mode & 0o777 == 0o600
    text = _text(receipt)
    assert NAME in text
    assert "d-ar" in text
    assert set("لم يُرسَل بعد".replace(" ", "")) <= set(text)
    reply_id = bytes.fromhex(sent.stdout.split()[1])
    assert list(relative.inbox()) == []

    # A receipt that cannot be written does not hide that the reply has gone.
    nowhere = tmp_path / "no-such-folder" / "receipt.pdf"
    gone = terminal("reply", "d-nl", "--to", relative.account_id, "--text", "Tot zondag")
    assert gone.returncode == 0, gone.stderr
    assert f"sent to {isolate('Fatima El Amrani')}" in gone.stdout
    to = ["--to", relative.account_id]
    lost = terminal("reply", "d-nl", *to, "--text", "Nog eens", "--receipt", str(nowhere))
    assert lost.returncode == 1
    assert f"sent to {isolate('Fatima El Amrani')}, but the receipt could not be" in lost.stderr
    assert [m.text for m in relative.inbox()] == ["Tot zondag", "Nog eens"]

    # The screener withholds it; the terminal lists it and prints the notice.
    assert terminal.json("withheld") == []
    screener = stack.reviewer(["screener"], [INSTITUTION])
    screener.open(reply_id)
    screener.verdict(
        reply_id,
        common_pb2.VERDICT_WITHHOLD,
        common_pb2.WITHHOLD_REASON_PUBLIC_ORDER,
        "een notitie voor het dossier",
    )
    listed = terminal.json("withheld")
    assert [(m["messageId"], m["detaineeId"], m["direction"], m["reason"]) for m in listed] == [
        (reply_id.hex(), "d-ar", "outbound", "public_order")
    ]
    assert listed[0]["counterpartName"] == "Fatima El Amrani"
    assert "notitie" not in json.dumps(listed)
    notice = tmp_path / "notice.pdf"
    printed = terminal.json("print-notice", reply_id.hex(), "--out", str(notice))
    assert printed["reference"].startswith(f"{INSTITUTION}-W")
    text = " ".join(_text(notice).split())
    assert NAME in text
    assert printed["reference"] in text
    assert "beklagcommissie" in text
    words = translator("detainee", "ar")
    assert set(words.gettext("Public order or national security").replace(" ", "")) <= set(text)
    missing = terminal("print-notice", to_nl.hex(), "--out", str(tmp_path / "none.pdf"))
    assert missing.returncode == 1
    assert "no withheld message" in missing.stderr
    assert not (tmp_path / "none.pdf").exists()

    # Taken out of the register (released): back to Dutch, by id.
    assert terminal("detainee", "remove", "d-ar").returncode == 0
    terminal("print-notice", reply_id.hex(), "--out", str(notice))
    assert "Uw antwoord is tegengehouden" in _text(notice)
