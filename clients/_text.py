"""Names from the public shown in staff programs, so that they cannot rearrange a line.

A display name or relationship comes from a member of the public. The gateway refuses
the characters that reorder text (docs/gateway.md, "Names"), but a name in a
right-to-left script still takes part in the bidirectional algorithm of the line it is
printed in. Wrapped in FIRST STRONG ISOLATE ... POP DIRECTIONAL ISOLATE (Unicode UAX #9,
section 2.7) it is laid out on its own and the text around it keeps its order.
"""

from __future__ import annotations

from typing import Final

FSI: Final = "\u2068"
PDI: Final = "\u2069"


def isolate(name: str) -> str:
    """``name`` as a directional isolate, for a line of text a person reads."""
    return f"{FSI}{name}{PDI}"
