"""Names from the public cannot spoof: no text-direction or invisible characters, NFC only."""

from __future__ import annotations

import unicodedata

import pytest

from sealpost.clients._text import FSI, PDI, isolate
from sealpost.gateway.errors import InvalidArgument
from sealpost.gateway.services.common import name

SPOOFS = [
    # embeddings and overrides
    "Fatima\u202e", "\u202aFatima", "Fati\u202bma", "Fati\u202cma", "Fati\u202dma",
    "Fatima\u2066", "\u2067Fatima", "Fati\u2068ma", "Fati\u2069ma",  # isolates
    "Fatima\u200e", "Fatima\u200f", "\u061cFatima",  # marks
    "Fati\u200bma", "Fatima\ufeff", "Fatima\U000e0041",  # zero-width space, BOM, a tag
]  # fmt: skip


@pytest.mark.parametrize("spoof", SPOOFS)
def test_text_direction_and_invisible_characters_are_refused(spoof: str) -> None:
    with pytest.raises(InvalidArgument, match="invisible or text-direction"):
        name(spoof, "display_name")


@pytest.mark.parametrize(
    "real",
    [
        "Fatima",
        "فاطمة الزهراء",
        "Ελένη",
        "Zoë",
        "Łucja Wąs",
        "Şule",
        "نرگس\u200cخانم",  # noqa: RUF001 - Persian, with the ZWNJ it needs
        "👩\u200d👧",
    ],
)
def test_names_of_any_script_pass(real: str) -> None:
    assert name(real, "display_name") == real


def test_a_name_must_be_in_normal_form_c() -> None:
    decomposed = unicodedata.normalize("NFD", "Zoë")
    assert decomposed != "Zoë"
    with pytest.raises(InvalidArgument, match="normal form C"):
        name(decomposed, "display_name")
    assert name(unicodedata.normalize("NFC", decomposed), "display_name") == "Zoë"


def test_staff_programs_show_a_name_as_an_isolate() -> None:
    arabic = "\u0641\u0627\u0637\u0645\u0629"
    shown = isolate(arabic)
    assert shown == f"{FSI}{arabic}{PDI}"
    assert shown.startswith("\u2068")
    assert shown.endswith("\u2069")
