"""The printed delivery slip: one PDF per message, in any script (SPEC section 7).

Pure: takes a DeliverySlip and returns PDF bytes; the caller decides where they go.
Text is set in Noto Sans with Noto Sans Arabic and Noto Sans CJK as fallbacks, all
shipped as Python packages, and shaped with HarfBuzz (uharfbuzz) so that Arabic letters
join and right-to-left paragraphs read right to left. Photos are printed on their own
pages; other attachments (PDF documents) are listed for printing from the saved file.
"""

from __future__ import annotations

import datetime as dt
import io
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Final

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from sealpost.clients.terminal.errors import DeliveryError
from sealpost.crypto.envelope import Part

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
    #: Notes on attachments the desk withheld (not a photo or PDF by their bytes).
    withheld: tuple[str, ...] = ()


def format_time(when: dt.datetime) -> str:
    """The date and time as printed: local time with its UTC offset."""
    return when.astimezone().strftime("%Y-%m-%d %H:%M %z")


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


class _Slip(FPDF):
    """The PDF document with a footer naming the delivery reference on every page."""

    reference = ""

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("NotoSans", size=8)
        self.cell(
            0,
            10,
            f"Delivery reference {self.reference}  -  page {self.page_no()}/{{nb}}",
            align="C",
        )


def _document(reference: str) -> _Slip:
    pdf = _Slip(format="A4")
    pdf.reference = reference
    for family, package, name in _FONTS:
        pdf.add_font(family, "", font_path(package, name))
    pdf.set_fallback_fonts(_FALLBACKS)
    pdf.set_text_shaping(True)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.set_margins(20, 20, 20)
    pdf.alias_nb_pages()
    pdf.set_title(f"Sealpost delivery {reference}")
    pdf.set_creator("Sealpost institution terminal")
    pdf.add_page()
    return pdf


def _paragraphs(pdf: FPDF, text: str, size: float = 11) -> None:
    pdf.set_font("NotoSans", size=size)
    for paragraph in printable_text(text).split("\n"):
        if not paragraph.strip():
            pdf.ln(_LINE_MM)
            continue
        pdf.multi_cell(
            0,
            _LINE_MM,
            paragraph,
            align="R" if is_right_to_left(paragraph) else "L",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )


def _field(pdf: FPDF, label: str, value: str) -> None:
    pdf.set_font("NotoSans", size=10)
    pdf.set_text_color(*_GREY)
    pdf.cell(45, _LINE_MM, label)
    pdf.set_text_color(0, 0, 0)
    pdf.multi_cell(0, _LINE_MM, printable_text(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _size(data: bytes) -> str:
    return f"{len(data) / 1024:.0f} KiB" if len(data) >= 1024 else f"{len(data)} bytes"


def render_slip(slip: DeliverySlip) -> bytes:
    """The delivery slip as PDF bytes: who, when, reference, the message, its attachments."""
    pdf = _document(slip.reference)
    pdf.set_font("NotoSans", size=16)
    pdf.cell(0, 10, "Message for detainee " + slip.detainee_id, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    _field(pdf, "From", slip.sender_name)
    if slip.privileged:
        _field(pdf, "Correspondence", "Privileged (verified lawyer or similar): not screened")
    _field(pdf, "Sent", format_time(slip.sent_at))
    _field(pdf, "Printed", format_time(slip.printed_at))
    _field(pdf, "Institution", slip.institution_id)
    _field(pdf, "Delivery reference", slip.reference)
    _field(pdf, "Message id", slip.message_id)
    pdf.ln(3)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(5)
    _paragraphs(pdf, slip.text)
    if slip.attachments:
        pdf.ln(4)
        pdf.set_font("NotoSans", size=12)
        pdf.cell(0, _LINE_MM, "Attachments", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        for index, part in enumerate(slip.attachments, start=1):
            name = part.filename or f"attachment {index}"
            kind = part.content_type.split(";", 1)[0].strip().lower()
            where = (
                "printed on the following pages"
                if kind in PRINTABLE_IMAGES
                else "print it from the saved file"
            )
            _paragraphs(pdf, f"{index}. {name} ({kind}, {_size(part.data)}): {where}", 10)
    if slip.withheld:
        pdf.ln(4)
        pdf.set_font("NotoSans", size=12)
        pdf.cell(0, _LINE_MM, "Not handed over", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        for note in slip.withheld:
            _paragraphs(pdf, note[0].upper() + note[1:] + ".", 10)
    for index, part in enumerate(slip.attachments, start=1):
        kind = part.content_type.split(";", 1)[0].strip().lower()
        if kind in PRINTABLE_IMAGES:
            _image_page(pdf, index, part)
    return bytes(pdf.output())


def _image_page(pdf: FPDF, index: int, part: Part) -> None:
    pdf.add_page()
    pdf.set_font("NotoSans", size=12)
    pdf.cell(
        0,
        _LINE_MM,
        f"Attachment {index}: {printable_text(part.filename) or 'photo'}",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
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
        _paragraphs(pdf, "This image could not be printed; give the saved file instead.", 10)
