"""Names from the public shown in staff programs, so that they cannot rearrange a line.

A display name or relationship comes from a member of the public. The gateway refuses
the characters that reorder text (docs/gateway.md, "Names"), but a name in a
right-to-left script still takes part in the bidirectional algorithm of the line it is
printed in. Wrapped in FIRST STRONG ISOLATE ... POP DIRECTIONAL ISOLATE (Unicode UAX #9,
section 2.7) it is laid out on its own and the text around it keeps its order.
"""

from __future__ import annotations

import re
from typing import Any, Final

FSI: Final = "\u2068"
PDI: Final = "\u2069"


def isolate(name: str) -> str:
    """``name`` as a directional isolate, for a line of text a person reads."""
    return f"{FSI}{name}{PDI}"


def enum_prefix(enum_name: str) -> str:
    """MESSAGE_STATE_ for MessageState: every value's prefix (buf's enum naming rule)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum_name).upper() + "_"


def short_enum(name: str, prefix: str) -> str:
    """MESSAGE_STATE_RELEASED without its prefix, in lower case: "released"."""
    return name.removeprefix(prefix).lower()


def enum_word(enum: Any, value: int) -> str:
    """An enum value as every program's JSON shows it ("screening_order"), else its number."""
    try:
        name = str(enum.Name(value))
    except ValueError:
        return str(value)
    return short_enum(name, enum_prefix(enum.DESCRIPTOR.name))
