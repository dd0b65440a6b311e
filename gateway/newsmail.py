"""E-mail notices of news for relatives who asked for them: no content, no sender, no place.

A relative may leave an e-mail address (RelativeService SetNotifications) to be told
"there is news in Sealpost" when a reply can be read or a message of theirs was
delivered or not (``policy.NEWS_STATES``). The notice says nothing else: not who wrote,
not which institution, not what happened. At most one notice per account in a quiet
period, so the timing of notices says little about the timing of events. Sent through
the configured SMTP relay; nothing is sent when none is configured.

The texts come from ``gateway/catalogue/<language>.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import smtplib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from functools import cache
from pathlib import Path
from typing import Final

from sqlalchemy import Connection

from sealpost._internal.logs import get_logger
from sealpost.gateway import policy, store
from sealpost.gateway.storage.database import Database

_log = get_logger("sealpost.gateway.newsmail")

CATALOGUE: Final = Path(__file__).resolve().parent / "catalogue"
#: The languages notices are written in; the first is the default.
LANGUAGES: Final = ("nl", "en", "ar", "tr", "pl")
#: The keys every catalogue holds for notices.
KEYS: Final = ("news.subject", "news.body")


@cache
def texts(language: str) -> Mapping[str, str]:
    """The catalogue of ``language`` (the default language for any other)."""
    if language not in LANGUAGES:
        language = LANGUAGES[0]
    document: dict[str, str] = json.loads((CATALOGUE / f"{language}.json").read_text("utf-8"))
    return document


def notice(language: str, sender: str, recipient: str) -> EmailMessage:
    """The notice in ``language``: the same few words for any news, for anyone."""
    words = texts(language)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = words["news.subject"]
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or None)
    message.set_content(words["news.body"] + "\n")
    # After the content: set_content replaces every Content- header.
    message["Content-Language"] = language if language in LANGUAGES else LANGUAGES[0]
    return message


@dataclass(frozen=True)
class Relay:
    """Where notices go out: an SMTP relay, with STARTTLS unless told otherwise."""

    host: str
    port: int
    sender: str
    starttls: bool = True
    timeout_s: float = 30.0

    def send(self, message: EmailMessage) -> None:
        """Hand one message to the relay (blocking; run in a thread)."""
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            smtp.send_message(message)


def _claim(row: store.NewsRow, now_ms: int) -> Callable[[Connection], bool]:
    return lambda connection: store.claim_news(connection, row, now_ms)


def _release(row: store.NewsRow) -> Callable[[Connection], None]:
    return lambda connection: store.release_news(connection, row)


class NewsMailer:
    """Tells relatives with an address that there is news, every ``interval_s`` at most."""

    def __init__(
        self,
        db: Database,
        relay: Relay,
        clock: Callable[[], int],
        *,
        interval_s: float,
        quiet_s: float,
    ) -> None:
        self.db = db
        self.relay = relay
        self.clock = clock
        self.interval_s = interval_s
        self.quiet_ms = int(quiet_s * 1000)
        self._task: asyncio.Task[None] | None = None

    async def tell_once(self) -> int:
        """Send the notices due now; returns how many went out."""
        now = self.clock()
        quiet_since = now - self.quiet_ms
        due = await self.db.aread(
            lambda c: store.accounts_with_news(c, policy.NEWS_STATES, quiet_since)
        )
        sent = 0
        for row in due:
            if not await self.db.awrite(_claim(row, now)):
                continue  # another gateway process tells this one
            message = notice(row.address.language, self.relay.sender, row.address.email)
            try:
                await asyncio.to_thread(self.relay.send, message)
            except (OSError, smtplib.SMTPException) as exc:
                # Tried again next round; the address is never logged.
                _log.warning("newsmail.not_sent", error_type=type(exc).__name__)
                await self.db.awrite(_release(row))
                continue
            sent += 1
        if sent:
            _log.info("newsmail.sent", count=sent)
        return sent

    async def _run(self) -> None:
        while True:
            try:
                await self.tell_once()
            except Exception as exc:  # the gateway goes on; the next round tries again
                _log.error("newsmail.failed", error_type=type(exc).__name__)
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        """Start telling in the background, in the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop telling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
