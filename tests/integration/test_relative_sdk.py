"""The relative SDK with a profile on disk, against a real gateway and key server.

Register, connect, send in any script with photos and PDFs, verify receipts from the
transparency log, read replies without loss, renew sessions; and refuse a gateway whose
directory or receipts do not check out.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import grpc
import pytest

from sealpost._internal.stack import Stack, approve_all, setup_institutions
from sealpost.clients._grpc import ClientError
from sealpost.clients.relative import (
    KDF_INTERACTIVE,
    ContactStatus,
    DeliveryStatus,
    DirectoryMismatchError,
    ReceiptError,
    RelativeClient,
    connect,
    register,
    review_notice,
)
from sealpost.clients.relative.keystore import FILE_NAME, Profile
from sealpost.crypto.envelope import Part
from sealpost.crypto.keyrecords import DirectoryPin
from sealpost.v1 import log_pb2
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

INSTITUTION = "pi-zeewolde"
PASSPHRASE = "lange zin met spaties en 🌷"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64)
PDF = b"%PDF-1.7\n% test\n"


def _register(stack: Stack, folder: Path, notices: list[str]) -> RelativeClient:
    return register(
        folder,
        PASSPHRASE,
        endpoint=stack.endpoint,
        pin=stack.pin,
        display_name="Fatima El Amrani",
        kdf=KDF_INTERACTIVE,
        show_notice=notices.append,
    )


def test_profile_send_receipts_inbox_across_runs(stack: Stack, tmp_path: Path) -> None:
    admin, terminals = setup_institutions(stack, [("d-1", INSTITUTION, "regular")])
    terminal = terminals[INSTITUTION]
    folder = tmp_path / "profile"
    notices: list[str] = []

    with _register(stack, folder, notices) as client:
        account_id = client.account_id
        requested = client.request_contact("d-1", "dochter")
        assert requested.state is ContactStatus.REQUESTED
        assert requested.mailbox is None
    assert stat.S_IMODE((folder / FILE_NAME).stat().st_mode) == 0o600
    approve_all(admin, INSTITUTION)

    # Any script, right-to-left included, and no character limit short of the size limit.
    text = "مرحبا يا أبي — שלום — 你好 — Hallo papa!\n" + "\u0628" * 300_000
    photo = tmp_path / "foto.jpg"
    photo.write_bytes(JPEG)
    with connect(folder, PASSPHRASE, show_notice=notices.append, language="tr") as client:
        assert client.account_id == account_id
        contact = client.contact("d-1")
        assert contact.state is ContactStatus.APPROVED
        assert contact.mailbox is not None
        assert contact.mailbox.subject == "d-1"
        receipt = client.send(contact, text, [photo, Part("application/pdf", PDF, "brief.pdf")])
        assert notices == [review_notice("tr")]  # shown once, before the first message
        assert receipt.tree_size > receipt.leaf_index
        assert DeliveryStatus.of(client.status(receipt.message_id)) is DeliveryStatus.PENDING
        second = client.send("d-1", "tweede bericht")
        assert notices == [review_notice("tr")]

    # The terminal opens exactly what was sent.
    items = terminal.intake()
    assert [i.message_id for i in items] == [receipt.message_id, second.message_id]
    terminal.take_in(items, stack.escrow_for(INSTITUTION))
    delivered = {d.message_id: terminal.open_delivery(d) for d in terminal.deliveries("d-1")}
    opened = delivered[receipt.message_id]
    assert opened.parts[0].data.decode() == text
    assert [(p.content_type, p.filename, p.data) for p in opened.parts[1:]] == [
        ("image/jpeg", "foto.jpg", JPEG),
        ("application/pdf", "brief.pdf", PDF),
    ]
    terminal.acknowledge(receipt.message_id, "ZW-1")

    terminal.reply(
        "d-1",
        account_id,
        "Dank je! شكرا",
        stack.escrow_for(INSTITUTION),
        [Part("image/png", b"\x89PNG\r\n\x1a\nplaatje", "tekening.png")],
    )
    terminal.reply("d-1", account_id, "Nog iets", stack.escrow_for(INSTITUTION))

    with connect(folder, PASSPHRASE, show_notice=notices.append) as client:
        assert client.status(receipt.message_id) == DeliveryStatus.DELIVERED
        # Only the first reply is read in this run.
        first = next(iter(client.inbox()))
        assert first.text == "Dank je! شكرا"
        assert [(p.filename, p.content_type) for p in first.attachments] == [
            ("tekening.png", "image/png")
        ]
        client.acknowledge(first)
        # The receipts kept in the profile verify again.
        checks = client.check_receipts()
        assert [c.record.message_id for c in checks] == [receipt.message_id, second.message_id]
        assert all(c.receipt is not None and c.error is None for c in checks)
        assert {c.record.detainee_id for c in checks} == {"d-1"}

    # The next run resumes after the acknowledged reply: nothing lost, nothing twice.
    with connect(folder, PASSPHRASE, show_notice=notices.append) as client:
        assert [m.text for m in client.inbox()] == ["Nog iets"]
        assert next(client.inbox(after_cursor="")).text == "Dank je! شكرا"
        stored = client.sent()
        assert all(r.verified_at_ms for r in stored)
        assert log_pb2.Receipt.FromString(stored[0].receipt).HasField("inclusion_proof")
    assert notices == [review_notice("tr")]


def test_sessions_are_renewed_transparently(stack: Stack, tmp_path: Path) -> None:
    setup_institutions(stack, [("d-2", INSTITUTION, "regular")])
    with _register(stack, tmp_path / "profile", []) as client:
        client.request_contact("d-2")
        # A token the gateway rejects (as an expired one is): one fresh sign-in, then on.
        client.token = "sp1.AAAA.BBBB"
        assert [c.detainee_id for c in client.contacts()] == ["d-2"]
        assert client.token != "sp1.AAAA.BBBB"
        # A token about to run out is renewed before the call.
        before = client.token
        client.token_expires_ms = 1
        client.contacts()
        assert client.token != before
        assert client.token_expires_ms > 1
        # A device that cannot sign in any more gets the gateway's answer, not a loop.
        client.key_id = b"\x00" * 32
        client.token = "sp1.AAAA.BBBB"
        with pytest.raises(ClientError) as refused:
            client.contacts()
        assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_a_gateway_that_lies_about_the_receipt_is_refused_loudly(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, _terminals = setup_institutions(stack, [("d-3", INSTITUTION, "regular")])
    folder = tmp_path / "profile"
    with _register(stack, folder, []) as client:
        client.request_contact("d-3")
        approve_all(admin, INSTITUTION)
        honest = client._call

        def lying(method: str, request: Any, reply_type: Any) -> Any:
            reply = honest(method, request, reply_type)
            # The send's answer carries its proof; GetReceiptProof gives it again later.
            proven = method in ("SendMessage", "GetReceiptProof")
            if proven and reply.receipt.HasField("inclusion_proof"):
                path = list(reply.receipt.inclusion_proof.path)
                if path:
                    path[0] = bytes(32)
                else:  # a one-leaf tree has no path: claim another root instead
                    path = [bytes(32)]
                del reply.receipt.inclusion_proof.path[:]
                reply.receipt.inclusion_proof.path.extend(path)
            return reply

        monkeypatch.setattr(client, "_call", lying)
        with pytest.raises(ReceiptError) as lied:
            client.send("d-3", "is dit gelogd?")
        assert "WARNING" in lied.value.explain()
        (record,) = client.sent()  # the message was accepted: it is kept, unverified
        assert record.message_id == lied.value.message_id
        assert record.verified_at_ms is None
        assert record.problem
        monkeypatch.setattr(client, "_call", honest)
        # Asking again gets an honest proof; the record is then verified.
        (check,) = client.check_receipts()
        assert check.error is None
    with Profile.open(folder, PASSPHRASE) as profile:
        (record,) = profile.data.sent
        assert record.verified_at_ms is not None
        assert record.problem == ""


def test_a_gateway_with_another_directory_key_is_refused(stack: Stack, tmp_path: Path) -> None:
    wrong_pin = DirectoryPin(
        bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    )
    with pytest.raises(DirectoryMismatchError, match="pinned"):
        register(
            tmp_path / "profile",
            PASSPHRASE,
            endpoint=stack.endpoint,
            pin=wrong_pin,
            display_name="x",
            kdf=KDF_INTERACTIVE,
        )
    assert not (tmp_path / "profile" / FILE_NAME).exists()


def test_unapproved_and_refused_sends_keep_nothing(stack: Stack, tmp_path: Path) -> None:
    setup_institutions(stack, [("d-4", INSTITUTION, "ebi")])
    with _register(stack, tmp_path / "profile", []) as client:
        client.request_contact("d-4")
        with pytest.raises(ClientError) as unapproved:
            client.send("d-4", "hallo")
        assert unapproved.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert "waits for the institution's decision" in unapproved.value.message
        assert client.sent() == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_documented_example_runs(stack: Stack, tmp_path: Path) -> None:
    """docs/relatives.md's Python blocks, run in order against this stack."""
    document = (REPO_ROOT / "docs" / "relatives.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", document, re.DOTALL)
    assert len(blocks) == 3
    admin, terminals = setup_institutions(stack, [("d-1001", INSTITUTION, "regular")])
    ca = tmp_path / "ca.pem"
    ca.write_bytes(stack.gateway.ca_pem)
    env = {
        "SEALPOST_GATEWAY": stack.gateway.address,
        "SEALPOST_CA_FILE": str(ca),
        "SEALPOST_DIRECTORY_KEY": stack.pin.signing_key.hex(),
        "SEALPOST_PROFILE": str(tmp_path / "profile"),
        "SEALPOST_PASSPHRASE": PASSPHRASE,
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONIOENCODING": "utf-8",
    }
    (tmp_path / "photo.jpg").write_bytes(JPEG)

    def run_block(index: int) -> str:
        result = subprocess.run(
            [sys.executable, "-c", blocks[index]],
            cwd=tmp_path,
            env={**os.environ, **env},
            capture_output=True,
            encoding="utf-8",
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    first = run_block(0)
    assert "d-1001 requested" in first
    account_id = re.search(r"account (\S+)", first)
    assert account_id is not None
    approve_all(admin, INSTITUTION)
    second = run_block(1)
    assert "article 36" in second  # the notice, before the first message
    assert "status: pending" in second
    assert re.search(r"sent [0-9a-f]{32}, logged as entry \d+", second)
    terminal = terminals[INSTITUTION]
    terminal.take_in(terminal.intake(), stack.escrow_for(INSTITUTION))
    terminal.reply(
        "d-1001",
        account_id.group(1),
        "Tot zondag!",
        stack.escrow_for(INSTITUTION),
        [Part("application/pdf", PDF, "bezoekrooster.pdf")],
    )
    third = run_block(2)
    assert "d-1001: Tot zondag!" in third
    assert (tmp_path / "replies" / "bezoekrooster.pdf").read_bytes() == PDF
    assert run_block(2) == ""  # read once, then the profile has moved past it


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_send_answer_carries_its_proof_so_one_call_proves_it(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, _terminals = setup_institutions(stack, [("d-5", INSTITUTION, "regular")])
    with _register(stack, tmp_path / "profile", []) as client:
        client.request_contact("d-5")
        approve_all(admin, INSTITUTION)
        honest = client._call
        calls: list[str] = []
        answers: list[Any] = []

        def counted(method: str, request: Any, reply_type: Any) -> Any:
            calls.append(method)
            reply = honest(method, request, reply_type)
            answers.append(reply)
            return reply

        monkeypatch.setattr(client, "_call", counted)
        for text in ("een", "twee", "drie"):
            calls.clear()
            answers.clear()
            verified = client.send("d-5", text)
            # No second round trip: the head signed in the send's batch comes with it.
            assert calls.count("SendMessage") == 1
            assert "GetReceiptProof" not in calls
            receipt = answers[calls.index("SendMessage")].receipt
            head = log_pb2.TreeHead.FromString(receipt.tree_head.tree_head)
            assert receipt.inclusion_proof.leaf_index == receipt.entry.index
            assert receipt.inclusion_proof.tree_size == head.tree_size > receipt.entry.index
            assert verified.message_id == receipt.message_id
        (record, *_) = client.sent()
        assert record.verified_at_ms is not None


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_sends_in_one_batch_each_carry_their_own_proof(stack: Stack) -> None:
    """The batch signs one head and fills every send's answer with its inclusion proof."""
    admin, _terminals = setup_institutions(stack, [("d-batch", INSTITUTION, "regular")])
    senders = [stack.relative(f"Sender {i}") for i in range(6)]
    for sender in senders:
        sender.request_contact("d-batch")
    approve_all(admin, INSTITUTION)
    sealed = [sender.seal("d-batch", f"bericht {i}") for i, sender in enumerate(senders)]
    barrier = threading.Barrier(len(senders))
    answers: list[log_pb2.Receipt] = [log_pb2.Receipt()] * len(senders)

    def send(i: int) -> None:
        barrier.wait(30)
        answers[i] = senders[i].send_sealed(sealed[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(senders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(a.HasField("tree_head") and a.HasField("inclusion_proof") for a in answers)
    assert len({a.entry.index for a in answers}) == len(senders)
    for sender, answer in zip(senders, answers, strict=True):
        assert answer.inclusion_proof.leaf_index == answer.entry.index
        verified = sender._verify_and_record(
            answer, answer.message_id, answer.envelope_digest, answer.entry
        )
        assert verified.tree_size == answer.inclusion_proof.tree_size
