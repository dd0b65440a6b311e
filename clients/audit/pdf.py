"""The audit report as a PDF a person can read (fpdf2), from the same blocks as the Markdown.

Fonts, in order: the one given; Noto Sans from its Python package (a project
dependency) with Noto Sans Arabic and, when the text needs it, Noto Sans CJK as
fallbacks, shaped with HarfBuzz when uharfbuzz is installed; DejaVu Sans from
the system; else the built-in Helvetica, with characters outside Latin-1
written as ``<U+XXXX>`` so that nothing is dropped silently.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Final

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from sealpost.clients.audit.document import Block, Bullets, Heading, Paragraph
from sealpost.i18n import _, staff

#: (package, file) of the Noto fonts the project installs.
_NOTO: Final = ("fontpkg_noto_sans", "files/NotoSans[wdth,wght].ttf")
_NOTO_FALLBACKS: Final = (
    ("fontpkg_noto_sans_arabic", "files/NotoSansArabic[wdth,wght].ttf", None),
    # 16 MB and a second to load: only when the text has CJK characters.
    ("cvttf_NotoSansCJK_Regular", "NotoSansCJKtc-Regular.otf", (0x2E80, 0xFFEF)),
)
#: System Unicode fonts tried when the Noto package is absent (Debian and Red Hat places).
SYSTEM_FONTS: Final = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/TTF/DejaVuSans.ttf"),
)


@dataclass(frozen=True)
class Fonts:
    """The main font file (None: built-in Helvetica) and fallback font files."""

    main: Path | None
    fallbacks: tuple[Path, ...] = ()


def _packaged(package: str, name: str) -> Path | None:
    try:
        path = Path(str(resources.files(package).joinpath(name)))
    except (ModuleNotFoundError, TypeError):
        return None
    return path if path.is_file() else None


def _texts(blocks: Sequence[Block]) -> Iterator[str]:
    for block in blocks:
        if isinstance(block, Heading | Paragraph):
            yield block.text
        elif isinstance(block, Bullets):
            yield from block.items
        else:
            yield from block.header
            for row in block.rows:
                yield from row


def find_fonts(blocks: Sequence[Block], given: Path | None = None) -> Fonts:
    """The fonts to embed for ``blocks`` (module docstring gives the order)."""
    if given is not None:
        if not given.is_file():
            raise FileNotFoundError(f"no font file at {given}")
        return Fonts(given)
    noto = _packaged(*_NOTO)
    if noto is not None:
        used = {ord(ch) for text in _texts(blocks) for ch in text}
        fallbacks = [
            path
            for package, name, needed in _NOTO_FALLBACKS
            if needed is None or any(needed[0] <= c <= needed[1] for c in used)
            if (path := _packaged(package, name)) is not None
        ]
        return Fonts(noto, tuple(fallbacks))
    return Fonts(next((path for path in SYSTEM_FONTS if path.is_file()), None))


class _Pdf(FPDF):
    """A4 pages with the report's title in the footer."""

    def __init__(self, footer: str, fonts: Fonts) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self._footer_text = footer
        self.unicode = fonts.main is not None
        if fonts.main is not None:
            # One weight only: headings stand out by size (variable fonts are used at
            # their default instance).
            self.add_font("Body", "", str(fonts.main))
            self.add_font("Body", "B", str(fonts.main))
            names = []
            for number, path in enumerate(fonts.fallbacks):
                self.add_font(f"Fallback{number}", "", str(path))
                self.add_font(f"Fallback{number}", "B", str(path))
                names.append(f"Fallback{number}")
            if names:
                self.set_fallback_fonts(names)
            if importlib.util.find_spec("uharfbuzz") is not None:
                self.set_text_shaping(use_shaping_engine=True)
            self.family_name = "Body"
        else:
            self.family_name = "Helvetica"
        self.set_auto_page_break(auto=True, margin=18)
        self.set_margins(18, 18, 18)

    def text_of(self, text: str) -> str:
        """``text`` as this font can show it."""
        if self.unicode:
            return text
        return "".join(ch if ord(ch) < 256 else f"<U+{ord(ch):04X}>" for ch in text)

    def footer(self) -> None:
        """Report title and page number on every page."""
        self.set_y(-12)
        self.set_font(self.family_name, "", 8)
        footer = _("{title} - page {page}", title=self._footer_text, page=self.page_no())
        self.cell(0, 6, self.text_of(footer), align="C")


def to_pdf(
    blocks: Sequence[Block],
    path: Path,
    *,
    title: str,
    created: datetime,
    font: Path | None = None,
) -> None:
    """Write the blocks as an A4 PDF at ``path`` (creation date fixed for reproducibility)."""
    pdf = _Pdf(title, find_fonts(blocks, font))
    pdf.set_title(pdf.text_of(title))
    pdf.set_author("Sealpost audit")
    pdf.set_creator("sealpost audit report")
    pdf.set_creation_date(created)
    pdf.set_lang(staff().language)  # the document's language, for screen readers
    pdf.add_page()
    family = pdf.family_name
    sizes = {1: 16, 2: 13, 3: 11}
    for block in blocks:
        if isinstance(block, Heading):
            pdf.ln(3 if block.level > 1 else 0)
            pdf.set_font(family, "B", sizes.get(block.level, 11))
            pdf.multi_cell(
                0, 7, pdf.text_of(block.text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
            )
            pdf.ln(1)
        elif isinstance(block, Paragraph):
            pdf.set_font(family, "", 10)
            pdf.multi_cell(
                0, 5, pdf.text_of(block.text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
            )
            pdf.ln(2)
        elif isinstance(block, Bullets):
            pdf.set_font(family, "", 10)
            bullet = "\u2022" if pdf.unicode else "-"
            margin = pdf.l_margin
            for item in block.items:
                pdf.set_x(margin)
                pdf.cell(5, 5, bullet)
                pdf.set_left_margin(margin + 5)  # wrapped lines stay indented
                pdf.multi_cell(
                    0, 5, pdf.text_of(item), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
                )
                pdf.set_left_margin(margin)
            pdf.ln(2)
        else:
            pdf.set_font(family, "", 9)
            with pdf.table(
                col_widths=block.widths or tuple(1 for _ in block.header),
                line_height=5,
                text_align="LEFT",
                first_row_as_headings=True,
            ) as table:
                for row in (block.header, *block.rows):
                    cells = table.row()
                    for value in row:
                        cells.cell(pdf.text_of(value))
            pdf.ln(3)
    path.write_bytes(bytes(pdf.output()))
