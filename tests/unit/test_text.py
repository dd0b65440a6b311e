"""The control-character rule: the same set as Unicode's category Cc, every code point."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from sealpost.crypto.text import has_control_character


def test_the_pattern_is_category_cc_for_every_code_point() -> None:
    differ = [
        f"U+{cp:04X}"
        for cp in range(sys.maxunicode + 1)
        if has_control_character(chr(cp)) != (unicodedata.category(chr(cp)) == "Cc")
    ]
    assert differ == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Fatima El Amrani", False),
        ("", False),
        ("ijs\u200d\u2028\u00a0", False),  # a joiner, a line separator, a no-break space
        ("a\x00", True),
        ("tab\there", True),
        ("\x7f", True),
        ("next line \x85 inside", True),
        ("\x9f", True),
    ],
)
def test_examples(value: str, expected: bool) -> None:
    assert has_control_character(value) is expected
