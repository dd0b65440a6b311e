"""The web library as a relative's device, over the browser port, against the real stack.

The TypeScript protocol library runs in Node.js as a relative's device
(clients/web/protocol/interop/relative.ts, built into dist/ by ``make web-test`` or
``make web-build``) and talks to a real gateway over the Connect protocol with
@connectrpc/connect-web, the transport the web app uses; OpenBao, the terminal, the
administrator and the desk are the Python ones. Nothing is mocked: keys made by the
library register, log in and seal; the terminal opens exactly what was sealed; the
library opens exactly what the terminal replied; receipts are proven from the log.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pypdf
import pytest

from sealpost._internal.devservers import gateway_directory_pin
from sealpost._internal.stack import Stack, approve_all, log_events, setup_institutions
from sealpost.clients.attachments import sniff
from sealpost.clients.staff import StaffClient
from sealpost.clients.terminal.client import TerminalClient
from sealpost.clients.terminal.desk import DeliveryDesk
from sealpost.clients.terminal.intake import IntakeLoop, MemoryStateStore
from sealpost.clients.terminal.reply import send_reply
from sealpost.crypto.logentry import LogAction
from sealpost.gateway.auth import SessionToken, TokenKeys, issue_session_token
from sealpost.v1 import log_pb2
from tests.conftest import REPO_ROOT
from tests.integration.test_terminal_desk import png
from tests.integration.test_terminal_intake import FAST

pytestmark = pytest.mark.integration

DRIVER: Final = REPO_ROOT / "clients" / "web" / "protocol" / "dist" / "interop" / "relative.js"
A: Final = "pi-web"
DETAINEE: Final = "d-web-1"
NAME: Final = "فاطمة العمراني"
TEXT: Final = "مرحبا يا أمي — سلام"
REPLY: Final = "شكرا يا ابنتي — tot zondag"
PASSPHRASE: Final = "een lange zin voor de sleutels"


def minimal_pdf(line: str = "Brief voor mama") -> bytes:
    """A real one-page PDF: catalog, page tree, a page with a line of text, a cross-reference."""
    content = b"BT /F1 14 Tf 20 50 Td (%s) Tj ET" % line.encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 240 100] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def node() -> str:
    """The Node.js the driver runs on; fails the test clearly when it cannot run."""
    found = shutil.which("node")
    if found is None:
        pytest.fail("Node.js 20.19 or newer is needed for the web interop test; none on PATH")
    version = subprocess.run(
        [found, "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    major = int(version.lstrip("v").split(".")[0])
    if major < 20:
        pytest.fail(f"the web interop test needs Node.js 20.19 or newer, found {version}")
    if not DRIVER.is_file():
        pytest.fail(
            f"{DRIVER.relative_to(REPO_ROOT)} is missing: build the web library first "
            "(`make web-build`; `make test` and `make test-integration` build it)"
        )
    return found


@pytest.fixture(scope="module", autouse=True)
def _node_and_driver() -> None:
    """Fail before any server starts when Node.js or the built driver is missing."""
    node()


@dataclass
class Run:
    """One run of the driver: its exit code and the JSON line of each step."""

    returncode: int
    lines: list[dict[str, Any]]
    stderr: str

    def step(self, name: str) -> dict[str, Any]:
        """The only line of step ``name``."""
        (line,) = [line for line in self.lines if line["step"] == name]
        return line

    def steps(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["step"] == name]


class Device:
    """The TypeScript device: a folder for its sealed keys and sent records, and its port."""

    def __init__(self, stack: Stack, folder: Path) -> None:
        self.node = node()
        self.folder = folder
        folder.mkdir(mode=0o700, exist_ok=True)
        ca = folder / "gateway-ca.pem"
        ca.write_bytes(stack.gateway.ca_pem)
        # A clean environment: nothing from this one (NODE_OPTIONS,
        # NODE_TLS_REJECT_UNAUTHORIZED) may loosen what the driver checks.
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "NODE_EXTRA_CA_CERTS": str(ca),
            "SEALPOST_WEB_URL": stack.gateway.web_url,
            "SEALPOST_INTEROP_DIR": str(folder),
            "SEALPOST_INTEROP_PASSPHRASE": PASSPHRASE,
            "SEALPOST_DIRECTORY_KEY": gateway_directory_pin(stack.gateway.state_dir).hex(),
        }

    def run(self, *args: str | Path, env: dict[str, str] | None = None) -> Run:
        result = subprocess.run(
            [self.node, str(DRIVER), *map(str, args)],
            env={**self.env, **(env or {})},
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        return Run(result.returncode, lines, result.stderr)

    def ok(self, *args: str | Path, env: dict[str, str] | None = None) -> Run:
        """Run a command that must succeed."""
        run = self.run(*args, env=env)
        assert run.returncode == 0, (args[0], run.lines, run.stderr[-2000:])
        return run


@dataclass
class Enrolled:
    """A detainee at an institution with a terminal, and a TypeScript device in contact."""

    admin: StaffClient
    terminal: TerminalClient
    device: Device
    account_id: str
    key_id: bytes


def enrol(stack: Stack, tmp_path: Path) -> Enrolled:
    """Register the device, log in, ask for the contact; the administrator approves it."""
    admin, terminals = setup_institutions(stack, [(DETAINEE, A, "regular")])
    device = Device(stack, tmp_path / "device")
    registered = device.ok("register", "--name", NAME).step("register")
    # The library checked the record against the pin; its subject is the account (6.4).
    assert registered["subject"] == registered["accountId"]
    assert (device.folder / "device.keys").stat().st_mode & 0o777 == 0o600
    login = device.ok("login").step("login")
    assert login["accountId"] == registered["accountId"]
    now_ms = dt.datetime.now(dt.UTC).timestamp() * 1000
    assert now_ms < login["expiresAtMs"] <= now_ms + 16 * 60 * 1000
    contact = device.ok("contact", "--detainee", DETAINEE, "--relationship", "dochter")
    assert contact.step("contact")["status"] == "REQUESTED"
    assert approve_all(admin, A) == 1
    return Enrolled(
        admin, terminals[A], device, registered["accountId"], bytes.fromhex(registered["keyId"])
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_web_device_and_a_terminal_exchange_text_photos_and_pdfs(
    stack: Stack, tmp_path: Path
) -> None:
    world = enrol(stack, tmp_path)
    photo = tmp_path / "صورة-العائلة.png"
    photo.write_bytes(png())
    letter = tmp_path / "brief.pdf"
    letter.write_bytes(minimal_pdf())
    # Real files, as the desk's sniffing and a PDF reader see them.
    assert (sniff(photo.read_bytes()), sniff(letter.read_bytes())) == (
        "image/png",
        "application/pdf",
    )
    assert pypdf.PdfReader(io.BytesIO(letter.read_bytes())).pages[0].extract_text() == (
        "Brief voor mama"
    )

    sent = world.device.ok(
        "send", "--detainee", DETAINEE, "--text", TEXT, "--attach", photo, "--attach", letter
    )
    accepted, proven, log = sent.step("send"), sent.step("receipt"), sent.step("log")
    message_id = bytes.fromhex(accepted["messageId"])
    assert accepted["parts"] == 3
    # The receipt the library proved is the acceptance the gateway logged, read back here
    # by an auditor over gRPC.
    assert proven["messageId"] == accepted["messageId"]
    assert proven["provenAtSend"] is True  # the send's answer carried its head and proof
    later = sent.step("receipt-later")  # GetReceiptProof, for later checks
    assert later["leafIndex"] == accepted["leafIndex"]
    assert later["treeSize"] >= proven["treeSize"]
    assert proven["leafIndex"] == accepted["leafIndex"]
    assert proven["leafIndex"] < proven["treeSize"] <= log["treeSize"]
    assert log["consistentWith"] == proven["treeSize"]
    event = log_events(stack)[accepted["leafIndex"]]
    assert event.action is LogAction.MESSAGE_ACCEPTED
    assert event.message_id() == accepted["messageId"]
    assert event.extra["envelope_digest"] == accepted["envelopeDigest"]
    assert event.time_ms == accepted["acceptedAtMs"]

    # The terminal takes it in and the desk opens exactly what the library sealed.
    summary = IntakeLoop(
        world.terminal, stack.escrow_for(A), MemoryStateStore(), settings=FAST
    ).run_once()
    assert summary.received == 1
    desk = DeliveryDesk(world.terminal, A)
    opened = desk.open(message_id)
    assert opened.item.sender_name == NAME
    assert opened.text == TEXT
    assert [(p.content_type, p.filename, p.data) for p in opened.attachments] == [
        ("image/png", photo.name, photo.read_bytes()),
        ("application/pdf", letter.name, letter.read_bytes()),
    ]
    assert opened.withheld == ()

    # The detainee replies with a drawing; the library reads it from the browser stream.
    drawing = tmp_path / "tekening.png"
    drawing.write_bytes(png((200, 30, 30)))
    reply = send_reply(
        world.terminal, DETAINEE, world.account_id, REPLY, stack.escrow_for(A), [drawing]
    )
    inbox = world.device.ok("inbox", "--acknowledge")
    (item,) = inbox.steps("reply")
    assert item["messageId"] == reply.message_id.hex()
    assert item["detaineeId"] == DETAINEE
    assert item["text"] == REPLY
    assert [
        (a["contentType"], a["filename"], base64.b64decode(a["data"])) for a in item["attachments"]
    ] == [("image/png", drawing.name, drawing.read_bytes())]
    assert inbox.step("acknowledged")["status"] == "DELIVERED"
    assert inbox.step("inbox")["replies"] == 1
    # Resuming after the reply's cursor gives nothing more.
    again = world.device.ok("inbox", "--after", item["cursor"])
    assert (again.steps("reply"), again.step("inbox")["replies"]) == ([], 0)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_browser_port_refuses_sends_without_a_valid_session(
    stack: Stack, tmp_path: Path
) -> None:
    world = enrol(stack, tmp_path)
    document = json.loads((stack.gateway.state_dir / "gateway-keys.json").read_text())
    expired = issue_session_token(
        TokenKeys(bytes.fromhex(document["token_key"])),
        SessionToken(
            world.account_id,
            world.key_id,
            int(dt.datetime.now(dt.UTC).timestamp() * 1000) - 60_000,
        ),
    )
    run = world.device.ok(
        "refused-send", "--detainee", DETAINEE, env={"SEALPOST_INTEROP_EXPIRED_TOKEN": expired}
    )
    refused = {line["attempt"]: line for line in run.steps("refused")}
    assert set(refused) == {"no token", "forged token", "expired token"}
    assert {line["code"] for line in refused.values()} == {"unauthenticated"}
    assert "expired" in refused["expired token"]["message"]
    # Nothing was accepted: the gateway knows no such message, and the log has none.
    status = run.step("status")
    assert status["code"] == "not_found"
    assert all(e.message_id() != status["messageId"] for e in log_events(stack))

    # Without the gateway's CA, fetch does not trust the port: nothing is sent.
    untrusting = world.device.run("login", env={"NODE_EXTRA_CA_CERTS": ""})
    assert untrusting.returncode == 1
    failure = untrusting.step("error")
    assert failure["error"] == "ConnectError"
    assert "certificate" in failure.get("cause", "")


def flip(data: bytes) -> bytes:
    """``data`` with its first bit changed."""
    return bytes([data[0] ^ 0x01]) + data[1:]


def tampered(receipt: bytes, change: str) -> bytes:
    """The receipt with one thing changed, as a gateway or a disk could change it."""
    message = log_pb2.Receipt.FromString(receipt)
    if change == "inclusion path":
        message.inclusion_proof.path[0] = flip(message.inclusion_proof.path[0])
    elif change == "tree head signature":
        message.tree_head.signature = flip(message.tree_head.signature)
    elif change == "tree head":
        head = log_pb2.TreeHead.FromString(message.tree_head.tree_head)
        head.tree_size += 1
        message.tree_head.tree_head = head.SerializeToString(deterministic=True)
    elif change == "leaf":
        message.entry.leaf = message.entry.leaf[:-1] + bytes([message.entry.leaf[-1] ^ 0x01])
    elif change == "envelope digest":
        message.envelope_digest = flip(message.envelope_digest)
    elif change == "acceptance time":
        message.accepted_at_ms += 1
    else:
        raise AssertionError(change)
    return message.SerializeToString(deterministic=True)


TAMPERINGS: Final[Sequence[tuple[str, str]]] = [
    ("inclusion path", "ProofError"),
    ("tree head signature", "SignatureError"),
    ("tree head", "SignatureError"),
    ("leaf", "ProofError"),
    ("envelope digest", "ProofError"),
    ("acceptance time", "ProofError"),
]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_web_device_refuses_a_receipt_the_log_does_not_prove(
    stack: Stack, tmp_path: Path
) -> None:
    world = enrol(stack, tmp_path)
    world.device.ok("send", "--detainee", DETAINEE, "--text", TEXT)
    assert world.device.ok("receipts").step("receipt-check")["ok"] is True

    records = world.device.folder / "sent.json"
    original = records.read_text()
    document = json.loads(original)
    receipt = base64.b64decode(document["sent"][0]["receipt"])
    assert log_pb2.Receipt.FromString(receipt).inclusion_proof.path  # a path to tamper with
    for change, error in TAMPERINGS:
        document["sent"][0]["receipt"] = base64.b64encode(tampered(receipt, change)).decode()
        records.write_text(json.dumps(document))
        run = world.device.run("receipts")
        check = run.step("receipt-check")
        assert (run.returncode, check["ok"], check["error"]) == (1, False, error), (change, check)
    records.write_text(original)
    assert world.device.ok("receipts").step("receipts") == {
        "step": "receipts",
        "checked": 1,
        "ok": True,
    }
