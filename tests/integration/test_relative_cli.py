"""``sealpost relative`` through its entry point, against a real gateway and key server.

A relative registers, asks for contact, sends with attachments (seeing the review notice
once), reads a reply, checks status and receipts; refusals are clear one-line errors, and
nothing printed ever names the institution.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sealpost._internal.stack import Stack, approve_all, setup_institutions
from sealpost.clients.relative.keystore import FILE_NAME, Profile
from sealpost.clients.relative.notice import review_notice
from sealpost.crypto.envelope import Part
from sealpost.v1 import log_pb2

pytestmark = pytest.mark.integration

INSTITUTION = "pi-vught-cli"
PASSPHRASE = "een heel geheime zin"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64)
PDF = b"%PDF-1.4\n% brief\n"
NOTICE_MARK = "article 36"


class Relative:
    """Runs ``python -m sealpost relative ...`` for one profile and keeps every output."""

    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.outputs: list[str] = []

    def __call__(
        self, *args: str, passphrase: str = PASSPHRASE, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "SEALPOST_PROFILE": str(self.profile),
            "SEALPOST_PASSPHRASE": passphrase,
            "SEALPOST_LANGUAGE": "en",  # the relative's language, unless --language says
            "PYTHONIOENCODING": "utf-8",
        }
        result = subprocess.run(
            [sys.executable, "-m", "sealpost", "relative", *args],
            capture_output=True,
            encoding="utf-8",
            env=env,
            input=stdin or "",  # never wait on a prompt
            timeout=120,
            check=False,
        )
        self.outputs += [result.stdout, result.stderr]
        return result

    def ok(self, *args: str, stdin: str | None = None) -> str:
        result = self(*args, stdin=stdin)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def json(self, *args: str) -> dict[str, object]:
        data = json.loads(self.ok(*args, "--json"))
        assert isinstance(data, dict)
        return data


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_relative_uses_the_command_line(stack: Stack, tmp_path: Path) -> None:
    admin, terminals = setup_institutions(stack, [("d-cli", INSTITUTION, "regular")])
    terminal = terminals[INSTITUTION]
    ca = tmp_path / "ca.pem"
    ca.write_bytes(stack.gateway.ca_pem)
    relative = Relative(tmp_path / "profile")
    init_args = [
        "init",
        "--name",
        "مريم Jansen",
        "--gateway",
        stack.gateway.address,
        "--ca-file",
        str(ca),
        "--directory-key",
        stack.pin.signing_key.hex(),
        "--unsafe-fast-kdf",
    ]

    registered = relative.json(*init_args)
    account_id = str(registered["accountId"])
    assert stat.S_IMODE((relative.profile / FILE_NAME).stat().st_mode) == 0o600
    again = relative(*init_args)
    assert again.returncode == 1
    assert "already holds a profile" in again.stderr

    assert "no contacts yet" in relative.ok("contacts")
    assert "d-cli: requested" in relative.ok("request-contact", "d-cli", "--relationship", "moeder")
    early = relative("send", "d-cli", "--text", "te vroeg")
    assert early.returncode == 1
    assert early.stderr == (
        "error: your request to write to d-cli waits for the institution's decision: "
        "messages can be sent once it is approved\n"
    )
    assert NOTICE_MARK not in early.stdout  # nothing was sent, so nothing was shown yet

    approve_all(admin, INSTITUTION)
    listed = relative.json("contacts")
    assert listed["contacts"] == [
        {
            "detaineeId": "d-cli",
            "contactId": listed["contacts"][0]["contactId"],  # type: ignore[index]
            "status": "approved",
            "privileged": False,
            "deliverable": True,
            "mailboxKeyId": listed["contacts"][0]["mailboxKeyId"],  # type: ignore[index]
        }
    ]

    # The first message: the notice comes first, in the relative's language, then the
    # verified receipt.
    photo, letter = tmp_path / "foto.jpg", tmp_path / "brief.pdf"
    photo.write_bytes(JPEG)
    letter.write_bytes(PDF)
    text = "مرحبا يا أمي — Hallo mam, tot zondag! 😊"
    first = relative.ok(
        "send",
        "d-cli",
        "--language",
        "nl",
        "--text",
        text,
        "--attach",
        str(photo),
        "-a",
        str(letter),
    )
    assert review_notice("nl") in first
    assert "artikel 36" in first
    assert "advocaten" in first
    assert first.index("artikel 36") < first.index("sent message")
    assert "with 2 attachment(s)" in first
    assert "receipt verified: entry" in first
    first_id = first.split("sent message ")[1].split()[0]

    # The second: no notice any more; JSON for scripts; the text from standard input.
    long_text = "שלום " * 20_000
    second = relative.json("send", "d-cli", "--text", "tweede bericht")
    assert second["notice"] is None
    third = json.loads(relative.ok("send", "d-cli", "--json", "--text-file", "-", stdin=long_text))
    assert third["notice"] is None
    assert third["receipt"]["verified"] is True
    assert NOTICE_MARK not in relative.outputs[-2] + relative.outputs[-1]
    assert json.loads(relative.outputs[-2])["attachments"] == []

    assert relative.ok("status", first_id).strip() == f"{first_id}: pending"

    # The institution delivers, and replies with a photo.
    items = terminal.intake()
    assert len(items) == 3
    terminal.take_in(items, stack.escrow_for(INSTITUTION))
    opened = {d.message_id: terminal.open_delivery(d) for d in terminal.deliveries("d-cli")}
    assert opened[bytes.fromhex(first_id)].parts[0].data.decode() == text
    assert opened[bytes.fromhex(str(third["messageId"]))].parts[0].data.decode() == long_text
    terminal.acknowledge(bytes.fromhex(first_id), "VU-1")
    assert relative.json("status", first_id) == {"messageId": first_id, "status": "delivered"}
    terminal.reply(
        "d-cli",
        account_id,
        "Dank je, lieve mam. شكرا",
        stack.escrow_for(INSTITUTION),
        [Part("image/jpeg", JPEG, "tekening.jpg")],
    )

    inbox = relative.ok("inbox")
    assert "From d-cli" in inbox
    assert "Dank je, lieve mam. شكرا" in inbox
    (saved_folder,) = (relative.profile / "inbox").iterdir()
    assert (saved_folder / "tekening.jpg").read_bytes() == JPEG
    assert (saved_folder / "message.txt").read_text(encoding="utf-8") == "Dank je, lieve mam. شكرا"
    assert relative.ok("inbox").strip() == "no new replies"

    receipts = relative.json("receipts")["receipts"]
    assert isinstance(receipts, list)
    assert len(receipts) == 3
    assert all(r["verified"] is True and r["detaineeId"] == "d-cli" for r in receipts)
    assert NOTICE_MARK in relative.ok("notice")
    assert relative.ok("notice", "--language", "ar") == review_notice("ar") + "\n"
    unknown = relative("notice", "--language", "de")
    assert unknown.returncode == 2
    assert "unknown language 'de'" in unknown.stderr

    # Nothing a relative was shown names where the detainee is held.
    assert not any(INSTITUTION in output for output in relative.outputs)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_command_line_refusals(stack: Stack, tmp_path: Path) -> None:
    admin, _terminals = setup_institutions(stack, [("d-ref", INSTITUTION, "regular")])
    ca = tmp_path / "ca.pem"
    ca.write_bytes(stack.gateway.ca_pem)
    relative = Relative(tmp_path / "profile")
    base = ["init", "--name", "R", "--gateway", stack.gateway.address, "--unsafe-fast-kdf"]

    missing = relative("contacts")
    assert missing.returncode == 2
    assert "sealpost relative init" in missing.stderr
    bad_pin = relative(*base, "--ca-file", str(ca), "--directory-key", "abcd")
    assert bad_pin.returncode == 2
    assert "64 hexadecimal digits" in bad_pin.stderr
    # The option's former name still works, with a warning.
    old_name = relative(*base, "--ca-file", str(ca), "--directory-pin", "abcd")
    assert old_name.returncode == 2
    assert "warning: --directory-pin is deprecated; use --directory-key" in old_name.stderr
    assert "64 hexadecimal digits" in old_name.stderr
    wrong_pin = relative(*base, "--ca-file", str(ca), "--directory-key", "11" * 32)
    assert wrong_pin.returncode == 4
    assert "not the one pinned" in wrong_pin.stderr
    assert not (relative.profile / FILE_NAME).exists()
    no_ca = relative(*base, "--ca-file", str(tmp_path / "nope.pem"), "--directory-key", "11" * 32)
    assert no_ca.returncode == 2
    pin = stack.pin.signing_key.hex()
    weak = relative(*base, "--ca-file", str(ca), "--directory-key", pin, passphrase="kort")
    assert weak.returncode == 2
    assert "at least 8 characters" in weak.stderr
    assert not (relative.profile / FILE_NAME).exists()
    relative.ok(*base, "--ca-file", str(ca), "--directory-key", pin)
    relative.ok("request-contact", "d-ref")
    approve_all(admin, INSTITUTION)

    wrong = relative("contacts", passphrase="not the passphrase")
    assert wrong.returncode == 1
    assert "passphrase is wrong" in wrong.stderr
    assert "Traceback" not in wrong.stderr

    (tmp_path / "notes.txt").write_text("hallo")
    (tmp_path / "fake.jpg").write_bytes(PDF)
    for name, message in (("notes.txt", "only photos"), ("fake.jpg", "does not look like")):
        refused = relative("send", "d-ref", "--text", "x", "--attach", str(tmp_path / name))
        assert refused.returncode == 1
        assert message in refused.stderr
    both = relative("send", "d-ref", "--text", "x", "--text-file", str(tmp_path / "notes.txt"))
    assert both.returncode == 2
    assert relative("status", "not-hex").returncode == 2
    unknown = relative("status", "00" * 16, "--json")
    assert unknown.returncode == 1
    assert json.loads(unknown.stderr)["error"]["code"] == "not_found"

    # A stored receipt whose proof no longer verifies is reported loudly.
    sent = relative.ok("send", "d-ref", "--text", "bewaard")
    assert "receipt verified" in sent
    with Profile.open(relative.profile, PASSPHRASE) as profile:
        (record,) = profile.data.sent
        receipt = log_pb2.Receipt.FromString(record.receipt)
        receipt.entry.leaf = receipt.entry.leaf + b"\x00"
        record.receipt = receipt.SerializeToString()
        profile.record_sent(record)
    checked = relative("receipts")
    assert checked.returncode == 4
    assert "NOT VERIFIED" in checked.stdout
    assert "WARNING" in checked.stderr
    assert not any(INSTITUTION in output for output in relative.outputs)
