"""The delivery desk: released messages per detainee, shown or printed, then acknowledged.

This is the one place the terminal decrypts message bodies (SPEC section 3, step 6).
Plaintext exists in this process's memory while a message is shown or printed, in the
PDF the officer asked for, and in attachment files only when the officer asks for them
to be saved; docs/terminal.md tabulates where and for how long.

The desk also tells detainees on paper of what a screener withheld (SPEC section 3,
step 5): the gateway lists who, when and why, never content. Every paper is in the
language the detainee register (register.py) records for the detainee, with their name.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sealpost.clients.attachments import attachment_type, base_type, safe_filename, sniff
from sealpost.clients.terminal.client import ObserveHead, TerminalClient, UnprovenRelease
from sealpost.clients.terminal.errors import DeliveryError, NotWithheldError, UnprovenReleaseError
from sealpost.clients.terminal.pdf import (
    DeliverySlip,
    WithheldAttachment,
    WithholdingNotice,
    render_slip,
    render_withholding_notice,
)
from sealpost.clients.terminal.register import DetaineeRegister
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto.envelope import Part
from sealpost.crypto.errors import CryptoError
from sealpost.i18n import TIME_ZONE, _
from sealpost.v1 import common_pb2, terminal_pb2

#: Characters of the message id in a delivery reference.
REFERENCE_ID_CHARS = 8
TEXT = "text/plain"


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def delivery_reference(institution_id: str, message_id: bytes, when: dt.datetime) -> str:
    """The institution's reference for a delivery: "<institution>-<yyyymmdd>-<short id>".

    Derived from the message, so printing the same message again on the same day (in the
    Netherlands) gives the same reference (acknowledging twice changes nothing).
    """
    day = when.astimezone(TIME_ZONE).strftime("%Y%m%d")
    return f"{institution_id}-{day}-{message_id.hex()[:REFERENCE_ID_CHARS]}"


def notice_reference(institution_id: str, message_id: bytes, withheld_at: dt.datetime) -> str:
    """The reference of a withholding notice: "<institution>-W<yyyymmdd>-<short id>".

    Derived from the message and the day it was withheld, so every copy of the notice
    carries the reference a complaint names.
    """
    day = withheld_at.astimezone(TIME_ZONE).strftime("%Y%m%d")
    return f"{institution_id}-W{day}-{message_id.hex()[:REFERENCE_ID_CHARS]}"


@dataclass(frozen=True)
class DeliveryItem:
    """One released message as the desk lists it: who, when, how big; no content."""

    message_id: bytes
    detainee_id: str
    sender_name: str
    sent_at: dt.datetime
    privileged: bool
    attachments: int
    size: int

    def to_json(self) -> dict[str, object]:
        """The listing as a JSON object."""
        return {
            "messageId": self.message_id.hex(),
            "detaineeId": self.detainee_id,
            "senderName": self.sender_name,
            "sentAt": self.sent_at.isoformat(),
            "privileged": self.privileged,
            "attachments": self.attachments,
            "size": self.size,
        }


#: The reason categories by name, for listings (the WithholdReason enum without its prefix).
REASON_NAMES: dict[int, str] = {
    common_pb2.WITHHOLD_REASON_ORDER_AND_SECURITY: "order_and_security",
    common_pb2.WITHHOLD_REASON_PUBLIC_ORDER: "public_order",
    common_pb2.WITHHOLD_REASON_CRIME_PREVENTION: "crime_prevention",
    common_pb2.WITHHOLD_REASON_VICTIM_PROTECTION: "victim_protection",
}


@dataclass(frozen=True)
class WithheldItem:
    """A message a screener withheld, to or from a detainee held here: who, when, why."""

    message_id: bytes
    detainee_id: str
    #: True for a message to the detainee, False for the detainee's reply.
    inbound: bool
    counterpart_name: str
    accepted_at: dt.datetime
    withheld_at: dt.datetime
    reason: common_pb2.WithholdReason.ValueType

    @property
    def reason_name(self) -> str:
        """The reason category's name ("crime_prevention", ...)."""
        return REASON_NAMES.get(self.reason, "unspecified")

    def to_json(self) -> dict[str, object]:
        """The listing as a JSON object."""
        return {
            "messageId": self.message_id.hex(),
            "detaineeId": self.detainee_id,
            "direction": "inbound" if self.inbound else "outbound",
            "counterpartName": self.counterpart_name,
            "acceptedAt": self.accepted_at.isoformat(),
            "withheldAt": self.withheld_at.isoformat(),
            "reason": self.reason_name,
        }


def _withheld_item(message: terminal_pb2.WithheldMessage) -> WithheldItem:
    return WithheldItem(
        message_id=message.message_id,
        detainee_id=message.detainee_id,
        inbound=message.direction != common_pb2.DIRECTION_OUTBOUND,
        counterpart_name=message.counterpart_display_name,
        accepted_at=_utc(message.accepted_at.ToMilliseconds()),
        withheld_at=_utc(message.withheld_at.ToMilliseconds()),
        reason=message.reason,
    )


@dataclass(frozen=True)
class OpenedDelivery:
    """A released message, decrypted for the detainee.

    ``attachments`` are the parts whose bytes are an allowed type, each with that type;
    ``withheld`` are the others, which are never saved or printed.
    """

    item: DeliveryItem
    text: str = field(repr=False)
    attachments: tuple[Part, ...] = ()
    withheld: tuple[WithheldAttachment, ...] = ()


@dataclass(frozen=True)
class PrintedDelivery:
    """What printing did: the reference on the slip, where it went, the message's new state."""

    message_id: bytes
    reference: str
    path: Path | None
    state: int


def _item(delivery: terminal_pb2.Delivery) -> DeliveryItem:
    try:
        header = crypto_envelope.parse_header(delivery.envelope.header)
        parts, size = len(header.parts), sum(p.size for p in header.parts)
    except CryptoError:
        parts, size = 0, 0
    return DeliveryItem(
        message_id=delivery.message_id,
        detainee_id=delivery.detainee_id,
        sender_name=delivery.sender_display_name,
        sent_at=_utc(delivery.accepted_at.ToMilliseconds()),
        privileged=delivery.privileged,
        attachments=max(0, parts - 1),
        size=size,
    )


def check_attachments(
    parts: list[Part],
) -> tuple[tuple[Part, ...], tuple[WithheldAttachment, ...]]:
    """The parts whose bytes are a photo or a PDF (typed by what they are), and the rest.

    The relatives' clients check the same before sending, but a modified client can
    declare anything: the desk looks at the bytes itself and hands over nothing else.
    """
    kept: list[Part] = []
    withheld: list[WithheldAttachment] = []
    for index, part in enumerate(parts, start=1):
        found = attachment_type(part.data)
        if found is None:
            declared = base_type(part.content_type)
            withheld.append(
                WithheldAttachment(index, part.filename, declared, sniff(part.data), len(part.data))
            )
        else:
            kept.append(Part(found, part.data, filename=part.filename))
    return tuple(kept), tuple(withheld)


class DeliveryDesk:
    """List, show, print and acknowledge released messages of one institution."""

    def __init__(
        self,
        client: TerminalClient,
        institution_id: str,
        *,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        observe: ObserveHead | None = None,
        register: DetaineeRegister | None = None,
    ) -> None:
        """Deliver through ``client``; ``institution_id`` goes into the references.

        ``observe`` is the terminal's witness: every head that proves a release must then
        also be of the one history this terminal has witnessed. ``register`` gives each
        detainee's name and language for what they are handed (Dutch, the id alone, for
        a detainee it does not hold).
        """
        self.client = client
        self.institution_id = institution_id
        self.register = register if register is not None else DetaineeRegister()
        self._now = now
        self._observe = observe
        #: Messages the gateway listed as released without a valid proof, at the last look.
        self.unproven: list[UnprovenRelease] = []

    def pending(self, detainee_id: str = "") -> list[DeliveryItem]:
        """Released messages waiting for delivery (for one detainee, or all held here).

        Only messages whose release the transparency log proves; the others are kept in
        ``unproven``, to be reported, and are never opened here.
        """
        listing = self.client.list_deliveries(detainee_id, self._observe)
        self.unproven = listing.unproven
        return [_item(d) for d in listing.proven]

    def find(self, message_id: bytes) -> terminal_pb2.Delivery:
        """The released message with this id; DeliveryError if there is none here.

        UnprovenReleaseError when the gateway lists it as released but its release is not
        proven in the transparency log.
        """
        listing = self.client.list_deliveries(observe=self._observe)
        self.unproven = listing.unproven
        for delivery in listing.proven:
            if delivery.message_id == message_id:
                return delivery
        for refused in listing.unproven:
            if refused.message_id == message_id:
                raise UnprovenReleaseError(refused)
        raise DeliveryError(
            _(
                "no released message {message} here (not released yet, delivered already, or "
                "not for a detainee held at this institution)",
                message=message_id.hex(),
            )
        )

    def open(self, message_id: bytes) -> OpenedDelivery:
        """Verify and decrypt a released message."""
        delivery = self.find(message_id)
        try:
            opened = self.client.open_delivery(delivery)
        except CryptoError as exc:
            raise DeliveryError(
                _(
                    "message {message} does not open: {why}",
                    message=message_id.hex(),
                    why=exc.explain(),
                )
            ) from exc
        texts = [p for p in opened.parts if base_type(p.content_type) == TEXT]
        text = texts[0].data.decode("utf-8", errors="replace") if texts else ""
        rest = [p for p in opened.parts if not texts or p is not texts[0]]
        kept, withheld = check_attachments(rest)
        return OpenedDelivery(_item(delivery), text, kept, withheld)

    def save_attachments(self, opened: OpenedDelivery, folder: Path) -> list[Path]:
        """Write the attachments into ``folder`` (mode 0600, safe names, never overwriting)."""
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        saved = []
        for index, part in enumerate(opened.attachments, start=1):
            name = safe_filename(part.filename, index, part.content_type)
            path = _unused(folder / name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(part.data)
            saved.append(path)
        return saved

    def slip(self, opened: OpenedDelivery) -> tuple[str, bytes]:
        """The delivery reference and the PDF slip for an opened message."""
        printed_at = self._now()
        reference = delivery_reference(self.institution_id, opened.item.message_id, printed_at)
        detainee = self.register.lookup(opened.item.detainee_id)
        slip = DeliverySlip(
            institution_id=self.institution_id,
            detainee_id=opened.item.detainee_id,
            sender_name=opened.item.sender_name,
            sent_at=opened.item.sent_at,
            printed_at=printed_at,
            reference=reference,
            message_id=opened.item.message_id.hex(),
            privileged=opened.item.privileged,
            text=opened.text,
            attachments=opened.attachments,
            withheld=opened.withheld,
            detainee_name=detainee.name,
            language=detainee.language,
        )
        return reference, render_slip(slip)

    def print_pdf(
        self, message_id: bytes, out: Path | None, *, write: Callable[[bytes], None] | None = None
    ) -> PrintedDelivery:
        """Print a released message to ``out`` (or hand the bytes to ``write``), then acknowledge.

        The acknowledgement carries the reference printed on the slip; it is sent only
        after the PDF was written completely.
        """
        opened = self.open(message_id)
        reference, pdf = self.slip(opened)
        deliver_pdf(pdf, out, write)
        del pdf, opened
        state = self.client.acknowledge(message_id, reference)
        return PrintedDelivery(message_id, reference, out, state)

    def withheld(self, detainee_id: str = "") -> list[WithheldItem]:
        """Messages a screener withheld, to and from detainees held here (no content)."""
        return [_withheld_item(m) for m in self.client.withheld(detainee_id)]

    def notice(self, message_id: bytes) -> tuple[str, bytes]:
        """The reference and the PDF of the withholding notice for one withheld message.

        NotWithheldError when no message with this id was withheld for a detainee held here.
        """
        found = [item for item in self.withheld() if item.message_id == message_id]
        if not found:
            raise NotWithheldError(
                _(
                    "no withheld message {message} here (not withheld, or not to or from a "
                    "detainee held at this institution)",
                    message=message_id.hex(),
                )
            )
        (item,) = found
        detainee = self.register.lookup(item.detainee_id)
        reference = notice_reference(self.institution_id, item.message_id, item.withheld_at)
        notice = WithholdingNotice(
            institution_id=self.institution_id,
            detainee_id=item.detainee_id,
            inbound=item.inbound,
            counterpart_name=item.counterpart_name,
            accepted_at=item.accepted_at,
            withheld_at=item.withheld_at,
            printed_at=self._now(),
            reason=item.reason,
            reference=reference,
            message_id=item.message_id.hex(),
            detainee_name=detainee.name,
            language=detainee.language,
        )
        return reference, render_withholding_notice(notice)

    def print_notice(
        self, message_id: bytes, out: Path | None, *, write: Callable[[bytes], None] | None = None
    ) -> str:
        """Print the withholding notice to ``out`` (or hand it to ``write``); its reference."""
        reference, pdf = self.notice(message_id)
        deliver_pdf(pdf, out, write)
        return reference


def deliver_pdf(pdf: bytes, out: Path | None, write: Callable[[bytes], None] | None) -> None:
    """Write a document to ``out`` (only the officer can read it) or hand it to ``write``."""
    if out is not None:
        _write_private(out, pdf)
    elif write is not None:
        write(pdf)
    else:
        raise DeliveryError(_("say where the PDF goes"))


def _unused(path: Path) -> Path:
    candidate, counter = path, 1
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{counter}{path.suffix}")
        counter += 1
    return candidate


def _write_private(path: Path, data: bytes) -> None:
    """Write a file only the officer's account can read; replace it atomically."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
