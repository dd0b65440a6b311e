"""Detainee replies: text and scanned pages, sealed to the relative, escrowed at creation.

SPEC section 3, step 7: the terminal seals the reply to every registered device of the
contact with the detainee's mailbox key, escrows its data key with the key server
before it leaves (unless the contact is a verified privileged correspondent), and sends
it. The same screening rules then apply as to inbound mail: the gateway answers whether
the reply went on to the contact or waits for a screener, and the receipt the detainee
gets says which (in their language, pdf.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sealpost.clients.relative import attachments as _attachments
from sealpost.clients.relative.errors import AttachmentError as RelativeAttachmentError
from sealpost.clients.terminal.client import TEXT_PLAIN, Escrow, SentReply, TerminalClient
from sealpost.clients.terminal.desk import REFERENCE_ID_CHARS
from sealpost.clients.terminal.errors import AttachmentError, ReplyError
from sealpost.clients.terminal.pdf import ReplyReceipt, render_reply_receipt
from sealpost.clients.terminal.register import DetaineeRegister
from sealpost.crypto.envelope import Part
from sealpost.i18n import TIME_ZONE, _
from sealpost.v1 import common_pb2, log_pb2

if TYPE_CHECKING:
    from sealpost.clients.terminal.triage import IntakeTriage


def scanned_page(path: Path) -> Part:
    """A scanned page (a photo or a PDF) as an attachment; AttachmentError if unusable."""
    try:
        return _attachments.attachment_from_file(path)
    except RelativeAttachmentError as exc:
        raise AttachmentError(exc.explain()) from exc


@dataclass(frozen=True)
class HandedInReply:
    """A reply the gateway took: where it is now, and what the detainee handed in."""

    detainee_id: str
    sent: SentReply
    text: str = field(repr=False)
    attachments: tuple[str, ...] = ()

    @property
    def message_id(self) -> bytes:
        """The reply's message id."""
        return self.sent.receipt.message_id

    @property
    def accepted_at(self) -> dt.datetime:
        """When the gateway accepted it."""
        return dt.datetime.fromtimestamp(self.sent.receipt.accepted_at_ms / 1000, tz=dt.UTC)

    @property
    def waits_for_screening(self) -> bool:
        """True when a screener has to release it before it goes to the contact."""
        return self.sent.state == common_pb2.MESSAGE_STATE_QUEUED

    @property
    def status(self) -> str:
        """Where the reply is, for scripts: "sent", "awaiting_screening" or "handed_in"."""
        if self.sent.state == common_pb2.MESSAGE_STATE_RELEASED:
            return "sent"
        if self.waits_for_screening:
            return "awaiting_screening"
        return "handed_in"


def hand_in_reply(
    client: TerminalClient,
    detainee_id: str,
    account_id: str,
    text: str,
    escrow: Escrow,
    attach: Sequence[Path] = (),
    triage: IntakeTriage | None = None,
) -> HandedInReply:
    """Compose and send a reply from ``detainee_id`` to the contact ``account_id``.

    With ``triage``, a reply the gateway queued for a screener gets its sealed summary.
    """
    parts = [scanned_page(path) for path in attach]
    if not text.strip() and not parts:
        raise ReplyError(_("nothing to send: write some text or attach a scanned page"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ReplyError(_("the text is not valid Unicode (it holds a lone surrogate)")) from exc
    sent = client.send_reply(detainee_id, account_id, text, escrow, attachments=parts)
    if triage is not None and sent.state == common_pb2.MESSAGE_STATE_QUEUED:
        triage.reply(
            sent.receipt.message_id,
            detainee_id,
            [Part(TEXT_PLAIN, text.encode("utf-8")), *parts],
        )
    return HandedInReply(detainee_id, sent, text, tuple(p.filename for p in parts))


def send_reply(
    client: TerminalClient,
    detainee_id: str,
    account_id: str,
    text: str,
    escrow: Escrow,
    attach: Sequence[Path] = (),
) -> log_pb2.Receipt:
    """As ``hand_in_reply``; the gateway's receipt only."""
    return hand_in_reply(client, detainee_id, account_id, text, escrow, attach).sent.receipt


def reply_reference(institution_id: str, message_id: bytes, accepted_at: dt.datetime) -> str:
    """The reference of a reply: "<institution>-R<yyyymmdd>-<short id>"."""
    day = accepted_at.astimezone(TIME_ZONE).strftime("%Y%m%d")
    return f"{institution_id}-R{day}-{message_id.hex()[:REFERENCE_ID_CHARS]}"


def reply_receipt(
    reply: HandedInReply,
    institution_id: str,
    register: DetaineeRegister,
    printed_at: dt.datetime,
) -> bytes:
    """The receipt the detainee keeps, as PDF, in the language the register records."""
    detainee = register.lookup(reply.detainee_id)
    return render_reply_receipt(
        ReplyReceipt(
            institution_id=institution_id,
            detainee_id=reply.detainee_id,
            recipient_name=reply.sent.contact.display_name,
            handed_in_at=reply.accepted_at,
            printed_at=printed_at,
            reference=reply_reference(institution_id, reply.message_id, reply.accepted_at),
            message_id=reply.message_id.hex(),
            state=reply.sent.state,
            privileged=reply.sent.contact.privileged,
            text=reply.text,
            attachments=reply.attachments,
            detainee_name=detainee.name,
            language=detainee.language,
        )
    )
