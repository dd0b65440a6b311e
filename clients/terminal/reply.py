"""Detainee replies: text and scanned pages, sealed to the relative, escrowed at creation.

SPEC section 3, step 7: the terminal seals the reply to every registered device of the
contact with the detainee's mailbox key, escrows its data key with the key server
before it leaves (unless the contact is a verified privileged correspondent), and sends
it. The same screening rules then apply as to inbound mail.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sealpost.clients.relative import attachments as _attachments
from sealpost.clients.relative.errors import AttachmentError as RelativeAttachmentError
from sealpost.clients.terminal.client import Escrow, TerminalClient
from sealpost.clients.terminal.errors import AttachmentError, ReplyError
from sealpost.crypto.envelope import Part
from sealpost.v1 import log_pb2


def scanned_page(path: Path) -> Part:
    """A scanned page (a photo or a PDF) as an attachment; AttachmentError if unusable."""
    try:
        return _attachments.attachment_from_file(path)
    except RelativeAttachmentError as exc:
        raise AttachmentError(exc.explain()) from exc


def send_reply(
    client: TerminalClient,
    detainee_id: str,
    account_id: str,
    text: str,
    escrow: Escrow,
    attach: Sequence[Path] = (),
) -> log_pb2.Receipt:
    """Compose and send a reply from ``detainee_id`` to the contact ``account_id``."""
    parts = [scanned_page(path) for path in attach]
    if not text.strip() and not parts:
        raise ReplyError("nothing to send: write some text or attach a scanned page")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ReplyError("the text is not valid Unicode (it holds a lone surrogate)") from exc
    return client.reply(detainee_id, account_id, text, escrow, attachments=parts)
