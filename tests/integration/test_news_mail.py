"""E-mail notices of news, through a real SMTP server (aiosmtpd) from a real gateway.

A relative who left an address is told "there is news" when a reply can be read and
when their own message was delivered; the notice names no one and nothing. Removing
the address stops the notices and keeps nothing of it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiosmtpd.controller import Controller

from sealpost._internal.devservers import OpenBaoDevServer, free_port
from sealpost._internal.stack import Stack, approve_all, running_stack, setup_institutions
from sealpost.clients._grpc import ClientError
from sealpost.escrow.bootstrap import BootstrapResult

INSTITUTION = "pi-mail"
DETAINEE = "d-mail"


class Inbox:
    """What the SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 20) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return list(self.messages)


@contextlib.contextmanager
def mail_stack(
    work: Path, openbao: OpenBaoDevServer, keyserver: BootstrapResult, *, quiet_seconds: int
) -> Iterator[tuple[Stack, Inbox]]:
    """A gateway telling news through a real SMTP server on loopback."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    env = {
        "SEALPOST_SMTP_RELAY": f"127.0.0.1:{port}",
        "SEALPOST_SMTP_STARTTLS": "false",
        "SEALPOST_SMTP_FROM": "Sealpost <no-reply@post.example.nl>",
        "SEALPOST_NEWS_INTERVAL_SECONDS": "0.2",
        "SEALPOST_NEWS_QUIET_SECONDS": str(quiet_seconds),
    }
    try:
        database = f"sqlite:///{work / 'mail.db'}"
        with running_stack(work / "gateway", openbao, keyserver, database, env) as stack:
            yield stack, inbox
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def mail(
    tmp_path_factory: pytest.TempPathFactory, openbao: OpenBaoDevServer, keyserver: BootstrapResult
) -> Iterator[tuple[Stack, Inbox]]:
    with mail_stack(
        tmp_path_factory.mktemp("mail"), openbao, keyserver, quiet_seconds=0
    ) as running:
        yield running


def test_news_is_told_without_content_and_stops_when_the_address_is_removed(
    mail: tuple[Stack, Inbox],
) -> None:
    stack, inbox = mail
    admin, terminals = setup_institutions(stack, [(DETAINEE, INSTITUTION, "regular")])
    terminal = terminals[INSTITUTION]
    relative = stack.relative("Fatima El Amrani")
    relative.request_contact(DETAINEE)
    approve_all(admin, INSTITUTION)
    relative.set_notifications("Fatima@Example.NL", "ar")
    assert relative.notifications() == ("Fatima@example.nl", "ar")

    terminal.reply(DETAINEE, relative.account_id, "Geheim antwoord", stack.escrow_for(INSTITUTION))
    (first,) = inbox.wait_for(1)
    assert first["To"] == "Fatima@example.nl"
    assert first["From"] == "Sealpost <no-reply@post.example.nl>"
    assert first["Content-Language"] == "ar"
    body = first.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "Sealpost" in body
    for secret in (DETAINEE, INSTITUTION, "Geheim", "Fatima", relative.account_id):
        assert secret not in body
        assert secret not in str(first["Subject"])

    # Their own message delivered is news too.
    receipt = relative.send(DETAINEE, "Hoe gaat het?")
    terminal.take_in(terminal.intake(), stack.escrow_for(INSTITUTION))
    terminal.acknowledge(receipt.message_id, "ZW-1")
    assert len(inbox.wait_for(2)) == 2

    relative.set_notifications("")
    assert relative.notifications() == ("", "")
    terminal.reply(DETAINEE, relative.account_id, "Nog een", stack.escrow_for(INSTITUTION))
    time.sleep(2)
    assert len(inbox.messages) == 2


@pytest.mark.parametrize(
    ("email", "language"), [("not an address", "nl"), ("a@b", "nl"), ("x@example.nl", "de")]
)
def test_an_address_or_language_that_cannot_be_used_is_refused(
    mail: tuple[Stack, Inbox], email: str, language: str
) -> None:
    stack, _inbox = mail
    relative = stack.relative("Tester")
    with pytest.raises(ClientError) as refused:
        relative.set_notifications(email, language)
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_news_is_told_once_within_the_quiet_period(
    tmp_path: Path, openbao: OpenBaoDevServer, keyserver: BootstrapResult
) -> None:
    with mail_stack(tmp_path, openbao, keyserver, quiet_seconds=3600) as (stack, inbox):
        admin, terminals = setup_institutions(stack, [("d-quiet", "pi-quiet", "regular")])
        relative = stack.relative("Stil")
        relative.request_contact("d-quiet")
        approve_all(admin, "pi-quiet")
        relative.set_notifications("stil@example.nl")

        def reply(text: str) -> None:
            terminals["pi-quiet"].reply(
                "d-quiet", relative.account_id, text, stack.escrow_for("pi-quiet")
            )

        reply("een")
        assert len(inbox.wait_for(1)) == 1
        # News after the first notice waits out the quiet period.
        reply("twee")
        reply("drie")
        time.sleep(2)
        assert len(inbox.messages) == 1
