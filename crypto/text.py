"""The control-character rule every signed or stored text shares.

Leaf strings, key-record names, file names in envelopes and the texts people type all
refuse control characters: Unicode's general category Cc, which is exactly U+0000 to
U+001F and U+007F to U+009F (Unicode's stability policy fixes that set for good). One
compiled pattern answers for a whole string in C, where a category lookup per character
costs a Python call each (docs/performance.md, fourth round).
"""

from __future__ import annotations

import re
from typing import Final

_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f]")


def has_control_character(value: str) -> bool:
    """Whether ``value`` holds a character of Unicode category Cc."""
    return _CONTROL.search(value) is not None
