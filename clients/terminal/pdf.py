"""What a detainee is handed on paper: delivery slips, reply receipts, withholding notices.

Pure: each ``render_*`` takes one document's facts and returns PDF bytes; the caller
decides where they go. Every word is the detainee's, from the ``detainee`` catalogue
(sealpost/i18n.py) in the language the institution registered for them (Dutch when it
has none), with times as they are in the Netherlands (Europe/Amsterdam) in that
language's way; in Arabic the page reads right to left, labels included (SPEC section 7).

Text is set in Noto Sans with Noto Sans Arabic and Noto Sans CJK as fallbacks, all
shipped as Python packages, and shaped with HarfBuzz (uharfbuzz) so that Arabic letters
join. The document's own words run in its language's direction; a relative's or a
detainee's text runs in the direction of each paragraph's first strong character, so
any script prints. Photos are printed on their own pages; other attachments (PDF
documents) are listed for printing from the saved file.
"""

from __future__ import annotations

import datetime as dt
import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Final

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from sealpost.clients._text import isolate
from sealpost.clients.attachments import shown_name
from sealpost.clients.terminal.errors import DeliveryError
from sealpost.crypto.envelope import Part
from sealpost.i18n import Translator, _, translator
from sealpost.v1 import common_pb2

#: (family name, package, path inside the package). Variable fonts are used at their
#: default instance (Regular): instancing a bold one costs seconds per slip.
_FONTS: Final = (
    ("NotoSans", "fontpkg_noto_sans", "files/NotoSans[wdth,wght].ttf"),
    ("NotoArabic", "fontpkg_noto_sans_arabic", "files/NotoSansArabic[wdth,wght].ttf"),
    ("NotoCJK", "cvttf_NotoSansCJK_Regular", "NotoSansCJKtc-Regular.otf"),
)
_GREY: Final = (90, 90, 90)
_FALLBACKS: Final = ["NotoArabic", "NotoCJK"]
#: Photos the slip prints (decoded by Pillow); other attachments are listed only.
PRINTABLE_IMAGES: Final = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
#: Unicode bidirectional classes of strong right-to-left characters.
_RTL: Final = frozenset({"R", "AL"})
_LINE_MM: Final = 6.0
#: Width of the label column of a document's facts.
_LABEL_MM: Final = 52.0
#: The language of a document for a detainee the institution has not registered.
DEFAULT_LANGUAGE: Final = "nl"


@dataclass(frozen=True)
class WithheldAttachment:
    """An attachment the desk does not hand over: its bytes are not a photo or a PDF."""

    index: int
    name: str
    declared: str
    found: str | None
    size: int

    def note(self) -> str:
        """The line the officer's screen shows for it (the slip says it in the detainee's words)."""
        # The staff language's words for ALLOWED_LIST (a test holds the English to it).
        allowed = _("photos (JPEG, PNG, GIF, WebP, HEIC) and PDF documents")
        return _(
            "attachment {index} ({name}, {size} bytes) was not handed over: it is declared "
            "{declared} but is {found}; only {allowed} are delivered",
            index=self.index,
            name=shown_name(self.name) or _("unnamed"),
            size=self.size,
            declared=repr(self.declared),
            found=self.found or _("an unknown format"),
            allowed=allowed,
        )


@dataclass(frozen=True)
class DeliverySlip:
    """What the printed delivery shows; the text and attachments are plaintext."""

    institution_id: str
    detainee_id: str
    sender_name: str
    sent_at: dt.datetime
    printed_at: dt.datetime
    reference: str
    message_id: str
    privileged: bool
    text: str = field(repr=False)
    attachments: tuple[Part, ...] = ()
    #: Attachments the desk withheld (not a photo or PDF by their bytes).
    withheld: tuple[WithheldAttachment, ...] = ()
    #: The detainee's name as the institution records it ("" when it has none).
    detainee_name: str = ""
    #: The language the detainee reads (i18n.LANGUAGES).
    language: str = DEFAULT_LANGUAGE


@dataclass(frozen=True)
class ReplyReceipt:
    """What the detainee gets back for a reply handed in: what, to whom, when, where it is."""

    institution_id: str
    detainee_id: str
    recipient_name: str
    handed_in_at: dt.datetime
    printed_at: dt.datetime
    reference: str
    message_id: str
    #: The reply's state at the gateway: RELEASED (sent) or QUEUED (waits for a screener).
    state: common_pb2.MessageState.ValueType
    privileged: bool
    text: str = field(repr=False)
    #: The file names of the scanned pages sent with it.
    attachments: tuple[str, ...] = ()
    detainee_name: str = ""
    language: str = DEFAULT_LANGUAGE


@dataclass(frozen=True)
class WithholdingNotice:
    """The detainee is told that a message to them, or their reply, was withheld, and why."""

    institution_id: str
    detainee_id: str
    #: True for a message to the detainee, False for the detainee's reply.
    inbound: bool
    #: The relative: the sender of a message, the addressee of a reply.
    counterpart_name: str
    accepted_at: dt.datetime
    withheld_at: dt.datetime
    printed_at: dt.datetime
    reason: common_pb2.WithholdReason.ValueType
    reference: str
    message_id: str
    detainee_name: str = ""
    language: str = DEFAULT_LANGUAGE


def font_path(package: str, name: str) -> Path:
    """Where an installed font package keeps its file; DeliveryError if it is missing."""
    try:
        path = Path(str(resources.files(package).joinpath(name)))
    except ModuleNotFoundError as exc:
        raise DeliveryError(f"the font package {package} is not installed") from exc
    if not path.is_file():
        raise DeliveryError(f"the font file {name} is missing from {package}")
    return path


def printable_text(text: str) -> str:
    """Text without control characters (line breaks kept, tabs as spaces)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    return "".join(c for c in text if c == "\n" or unicodedata.category(c) != "Cc")


def is_right_to_left(paragraph: str) -> bool:
    """True when the paragraph's first strong character is right-to-left (Unicode UAX #9 P2)."""
    for char in paragraph:
        kind = unicodedata.bidirectional(char)
        if kind in _RTL:
            return True
        if kind == "L":
            return False
    return False


def shown_detainee(detainee_id: str, name: str) -> str:
    """The detainee as documents name them: the recorded name beside the id, or the id."""
    return f"{name} ({detainee_id})" if name else detainee_id


def _size(words: Translator, data: bytes) -> str:
    if len(data) >= 1024:
        return words.gettext("{size} KiB", size=round(len(data) / 1024))
    return words.ngettext("{count} byte", "{count} bytes", len(data))


def _set_font(pdf: FPDF, size: float) -> None:
    """Noto Sans at ``size``, set again on the page even when it seems set already.

    fpdf2 does not note that a fallback font (Arabic, CJK) was the last one used on the
    page, and would set the next text in it (wrong glyphs, or none): choosing another
    family first makes it set Noto Sans again before the next text.
    """
    pdf.set_font(_FALLBACKS[0], size=size)
    pdf.set_font("NotoSans", size=size)


class _Page(FPDF):
    """An A4 page whose footer names the document's reference and the page."""

    footer_text = ""
    direction = "ltr"

    def footer(self) -> None:
        self.set_y(-15)
        _set_font(self, 8)
        self.set_text_shaping(True, direction=self.direction)
        self.cell(0, 10, self.footer_text.replace("{page}", str(self.page_no())), align="C")


class _Document:
    """One document in one language: its words laid out in the language's direction."""

    def __init__(self, words: Translator, title: str, reference: str) -> None:
        self.words = words
        self.rtl = words.right_to_left
        self.align = "R" if self.rtl else "L"
        pdf = _Page(format="A4")
        pdf.direction = "rtl" if self.rtl else "ltr"
        pdf.footer_text = words.gettext(
            "{reference} · page {page} of {pages}",
            reference=reference,
            page="{page}",
            pages="{nb}",
        )
        for family, package, name in _FONTS:
            pdf.add_font(family, "", font_path(package, name))
        pdf.set_fallback_fonts(_FALLBACKS)
        pdf.set_auto_page_break(auto=True, margin=20)
        pdf.set_margins(20, 20, 20)
        pdf.alias_nb_pages()
        pdf.set_title(title)
        pdf.set_lang(words.language)
        pdf.set_creator("Sealpost institution terminal")
        self.pdf = pdf
        self.page()

    def page(self) -> None:
        """A new page."""
        self.pdf.add_page()

    def iso(self, value: object) -> str:
        """A value put into a sentence, isolated (UAX #9 FSI ... PDI) in a right-to-left one.

        So a file name, a type or a Latin name keeps its own order and does not pull the
        words around it out of theirs.
        """
        return isolate(str(value)) if self.rtl else str(value)

    def _own(self) -> None:
        """Set the document's own words in its language's direction."""
        self.pdf.set_text_shaping(True, direction=self.pdf.direction)

    def heading(self, text: str, size: float = 16) -> None:
        """A heading across the page."""
        self._own()
        _set_font(self.pdf, size)
        self.pdf.multi_cell(
            0,
            size * 0.55,
            printable_text(text),
            align=self.align,
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        self.pdf.ln(2)

    def fact(self, label: str, value: str) -> None:
        """A label and its value side by side: the label first in reading order."""
        pdf = self.pdf
        self._own()
        _set_font(pdf, 10)
        width = pdf.w - pdf.l_margin - pdf.r_margin
        top = pdf.get_y()
        label_x = pdf.l_margin + width - _LABEL_MM if self.rtl else pdf.l_margin
        value_x = pdf.l_margin if self.rtl else pdf.l_margin + _LABEL_MM
        pdf.set_xy(label_x, top)
        pdf.set_text_color(*_GREY)
        pdf.multi_cell(_LABEL_MM - 3, _LINE_MM, label, align=self.align, new_y=YPos.NEXT)
        below_label = pdf.get_y()
        pdf.set_xy(value_x, top)
        pdf.set_text_color(0, 0, 0)
        _set_font(pdf, 10)
        pdf.multi_cell(
            width - _LABEL_MM, _LINE_MM, printable_text(value), align=self.align, new_y=YPos.NEXT
        )
        pdf.set_y(max(below_label, pdf.get_y()))

    def note(self, text: str, size: float = 9) -> None:
        """A line of the document's own words in grey."""
        self.pdf.set_text_color(*_GREY)
        self.words_paragraphs(text, size)
        self.pdf.set_text_color(0, 0, 0)

    def rule(self) -> None:
        """A line across the page."""
        pdf = self.pdf
        pdf.ln(3)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
        pdf.ln(5)

    def words_paragraphs(self, text: str, size: float = 11) -> None:
        """The document's own sentences, in its language's direction."""
        self._own()
        for paragraph in text.split("\n"):
            _set_font(self.pdf, size)
            self.pdf.multi_cell(
                0, _LINE_MM, paragraph, align=self.align, new_x=XPos.LMARGIN, new_y=YPos.NEXT
            )

    def their_text(self, text: str, size: float = 11) -> None:
        """A person's own text: each paragraph runs in the direction of its script."""
        pdf = self.pdf
        pdf.set_text_shaping(True, direction=None)
        for paragraph in printable_text(text).split("\n"):
            if not paragraph.strip():
                pdf.ln(_LINE_MM)
                continue
            _set_font(pdf, size)
            pdf.multi_cell(
                0,
                _LINE_MM,
                paragraph,
                align="R" if is_right_to_left(paragraph) else "L",
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )

    def section(self, title: str) -> None:
        """A section's title."""
        self.pdf.ln(4)
        self.words_paragraphs(title, 12)

    def output(self) -> bytes:
        """The finished PDF."""
        return bytes(self.pdf.output())


def _times_note(document: _Document) -> None:
    document.note(document.words.gettext("All times are Dutch local time."))


def render_slip(slip: DeliverySlip) -> bytes:
    """The delivery slip as PDF bytes: who, when, reference, the message, its attachments."""
    words = translator("detainee", slip.language)
    detainee = shown_detainee(slip.detainee_id, slip.detainee_name)
    document = _Document(
        words, words.gettext("Message for {detainee}", detainee=detainee), slip.reference
    )
    document.heading(words.gettext("Message for {detainee}", detainee=document.iso(detainee)))
    document.fact(words.gettext("From"), slip.sender_name)
    if slip.privileged:
        document.fact(
            words.gettext("Correspondence"),
            words.gettext("Privileged (a verified lawyer or similar): not screened"),
        )
    document.fact(words.gettext("Sent"), words.datetime(slip.sent_at))
    document.fact(words.gettext("Printed"), words.datetime(slip.printed_at))
    document.fact(words.gettext("Institution"), slip.institution_id)
    document.fact(words.gettext("Delivery reference"), slip.reference)
    document.fact(words.gettext("Message id"), slip.message_id)
    _times_note(document)
    document.rule()
    document.their_text(slip.text)
    if slip.attachments:
        document.section(words.gettext("Attachments"))
        for index, part in enumerate(slip.attachments, start=1):
            kind = part.content_type.split(";", 1)[0].strip().lower()
            values = {
                "index": index,
                "name": document.iso(
                    shown_name(part.filename) or words.gettext("attachment {index}", index=index)
                ),
                "kind": document.iso(kind),
                "size": document.iso(_size(words, part.data)),
            }
            line = (
                words.gettext("{index}. {name} ({kind}, {size}): printed on the following pages")
                if kind in PRINTABLE_IMAGES
                else words.gettext(
                    "{index}. {name} ({kind}, {size}): printed separately from the saved file"
                )
            )
            document.words_paragraphs(line.format(**values), 10)
    if slip.withheld:
        document.section(words.gettext("Not handed over"))
        for withheld in slip.withheld:
            # Words inside another call's arguments are not extracted: each is said apart.
            name = shown_name(withheld.name) or words.gettext("unnamed")
            size = words.ngettext("{count} byte", "{count} bytes", withheld.size)
            found = withheld.found or words.gettext("an unknown format")
            document.words_paragraphs(
                words.gettext(
                    "Attachment {index} ({name}, {size}) was not handed over: it is declared "
                    "{declared} but is {found}. Only photos and PDF documents are delivered.",
                    index=withheld.index,
                    name=document.iso(name),
                    size=document.iso(size),
                    declared=document.iso(withheld.declared),
                    found=document.iso(found),
                ),
                10,
            )
    for index, part in enumerate(slip.attachments, start=1):
        kind = part.content_type.split(";", 1)[0].strip().lower()
        if kind in PRINTABLE_IMAGES:
            _image_page(document, index, part)
    return document.output()


def _image_page(document: _Document, index: int, part: Part) -> None:
    words, pdf = document.words, document.pdf
    document.page()
    name = shown_name(part.filename) or words.gettext("photo")
    document.words_paragraphs(
        words.gettext("Attachment {index}: {name}", index=index, name=document.iso(name)), 12
    )
    width = pdf.w - pdf.l_margin - pdf.r_margin
    height = pdf.h - pdf.get_y() - 25
    try:
        pdf.image(
            io.BytesIO(part.data),
            x=pdf.l_margin,
            w=width,
            h=height,
            keep_aspect_ratio=True,
        )
    except Exception:  # any decoder failure: say so on paper, print the rest
        document.words_paragraphs(
            words.gettext("This photo could not be printed. Ask staff for the saved file."), 10
        )


def render_reply_receipt(receipt: ReplyReceipt) -> bytes:
    """The receipt for a reply: what was sent, to whom, when, and whether it has gone."""
    words = translator("detainee", receipt.language)
    title = words.gettext("Receipt for your reply")
    document = _Document(words, title, receipt.reference)
    document.heading(title)
    document.fact(words.gettext("From"), shown_detainee(receipt.detainee_id, receipt.detainee_name))
    document.fact(words.gettext("To"), receipt.recipient_name)
    document.fact(words.gettext("Handed in"), words.datetime(receipt.handed_in_at))
    document.fact(words.gettext("Status"), _reply_status(document, receipt))
    if receipt.privileged:
        document.fact(
            words.gettext("Correspondence"),
            words.gettext("Privileged (a verified lawyer or similar): not screened"),
        )
    document.fact(words.gettext("Printed"), words.datetime(receipt.printed_at))
    document.fact(words.gettext("Institution"), receipt.institution_id)
    document.fact(words.gettext("Reference"), receipt.reference)
    document.fact(words.gettext("Message id"), receipt.message_id)
    _times_note(document)
    document.rule()
    document.section(words.gettext("Your reply"))
    document.their_text(receipt.text)
    if receipt.attachments:
        document.section(words.gettext("Attachments"))
        for index, filename in enumerate(receipt.attachments, start=1):
            name = shown_name(filename) or words.gettext("attachment {index}", index=index)
            document.words_paragraphs(
                words.gettext("{index}. {name}", index=index, name=document.iso(name)), 10
            )
    return document.output()


def _reply_status(document: _Document, receipt: ReplyReceipt) -> str:
    """Where the reply is, as the gateway said: never "sent" for one that waits."""
    words = document.words
    if receipt.state == common_pb2.MESSAGE_STATE_RELEASED:
        return words.gettext("Sent to {name}.", name=document.iso(receipt.recipient_name))
    if receipt.state == common_pb2.MESSAGE_STATE_QUEUED:
        return words.gettext(
            "Not sent yet: your correspondence is screened, and a screener checks this reply "
            "before it goes. If it is withheld, you receive a written notice."
        )
    return words.gettext("Handed in; it has not been sent.")


def _reason(words: Translator, reason: common_pb2.WithholdReason.ValueType) -> str:
    """The ground of article 36 of the Penitentiaire beginselenwet the screener chose."""
    reasons = {
        common_pb2.WITHHOLD_REASON_ORDER_AND_SECURITY: words.gettext(
            "Order or security in the institution"
        ),
        common_pb2.WITHHOLD_REASON_PUBLIC_ORDER: words.gettext("Public order or national security"),
        common_pb2.WITHHOLD_REASON_CRIME_PREVENTION: words.gettext(
            "Preventing or detecting criminal offences"
        ),
        common_pb2.WITHHOLD_REASON_VICTIM_PROTECTION: words.gettext(
            "Protecting victims of crimes, or others involved in them"
        ),
    }
    return reasons.get(reason, words.gettext("No reason was recorded"))


def render_withholding_notice(notice: WithholdingNotice) -> bytes:
    """The withholding notice: which message, from or to whom, when, why, how to complain."""
    words = translator("detainee", notice.language)
    title = (
        words.gettext("A message to you was withheld")
        if notice.inbound
        else words.gettext("Your reply was withheld")
    )
    document = _Document(words, title, notice.reference)
    document.heading(title)
    detainee = shown_detainee(notice.detainee_id, notice.detainee_name)
    if notice.inbound:
        document.fact(words.gettext("For"), detainee)
        document.fact(words.gettext("From"), notice.counterpart_name)
        document.fact(words.gettext("Sent"), words.datetime(notice.accepted_at))
    else:
        document.fact(words.gettext("From"), detainee)
        document.fact(words.gettext("To"), notice.counterpart_name)
        document.fact(words.gettext("Handed in"), words.datetime(notice.accepted_at))
    document.fact(words.gettext("Withheld"), words.datetime(notice.withheld_at))
    document.fact(words.gettext("Reason"), _reason(words, notice.reason))
    document.fact(words.gettext("Printed"), words.datetime(notice.printed_at))
    document.fact(words.gettext("Institution"), notice.institution_id)
    document.fact(words.gettext("Reference"), notice.reference)
    document.fact(words.gettext("Message id"), notice.message_id)
    _times_note(document)
    document.rule()
    what = (
        words.gettext(
            "A screener of this institution checked this message and decided not to hand it "
            "to you. You do not receive its content. {name} is told only that it was not "
            "delivered.",
            name=document.iso(notice.counterpart_name),
        )
        if notice.inbound
        else words.gettext(
            "A screener of this institution checked your reply and decided not to send it. "
            "{name} does not receive it and is told only that it was not delivered.",
            name=document.iso(notice.counterpart_name),
        )
    )
    document.words_paragraphs(what)
    document.pdf.ln(2)
    document.words_paragraphs(
        words.gettext(
            "The reason is one of the grounds in article 36 of the Penitentiary Principles "
            "Act (Penitentiaire beginselenwet) for which an institution may withhold mail."
        )
    )
    document.section(words.gettext("How to complain"))
    for paragraph in _complaint(words, document.iso(notice.reference)):
        document.words_paragraphs(paragraph)
        document.pdf.ln(2)
    return document.output()


def _complaint(words: Translator, reference: str) -> Sequence[str]:
    """The beklag procedure of the Penitentiaire beginselenwet (articles 60 and 61)."""
    return (
        words.gettext(
            "You can complain about this decision (beklag) to the complaints committee "
            "(beklagcommissie) of this institution's supervisory committee (Commissie van "
            "Toezicht), under article 60 of the Penitentiary Principles Act."
        ),
        words.gettext(
            "Hand in a written complaint (klaagschrift) no later than seven days after the day "
            "you received this notice. Say which decision you complain about, giving the "
            "reference {reference}, and why.",
            reference=reference,
        ),
        words.gettext(
            "Staff give you a complaint form and tell you where to hand it in. The monthly "
            "commissioner (maandcommissaris) of the supervisory committee can first try to "
            "settle the matter with you."
        ),
    )
