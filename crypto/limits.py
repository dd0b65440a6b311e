"""Envelope limits in one place (docs/protocol.md, "Limits").

Every size, count and clock bound an envelope must respect; exceeding one raises
``LimitError`` naming the limit. Defaults admit several photos or PDFs of a few MB each.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

KIB: Final = 1024
MIB: Final = 1024 * KIB
_MINUTE_MS: Final = 60 * 1000
_DAY_MS: Final = 24 * 60 * _MINUTE_MS

# Bytes a serialised Envelope adds around its parts, per item (docs/protocol.md, "Limits").
_PART_FRAMING: Final = 16 + 6  # AEAD tag, tag byte, length varint of up to 5 bytes
_SEALED_KEY_FRAMING: Final = 118  # SealedKey with 32-byte id and 80-byte sealed DEK, framed
_FIXED_FRAMING: Final = 2 + 6 + 66  # version, header tag and length, 64-byte signature framed


@dataclass(frozen=True)
class Limits:
    """Bounds on one envelope; the gateway, terminal, SDK and review tool share the defaults."""

    #: Parts per message (the text and its attachments).
    max_parts: int = 20
    #: Encrypted plaintext bytes of one part: 8-byte name length, file name and content.
    max_part_bytes: int = 16 * MIB
    #: Those bytes for all parts together.
    max_total_bytes: int = 25 * MIB
    #: Recipient keys, not counting the sender's own copy.
    max_recipients: int = 16
    #: UTF-8 bytes of a part's content type.
    max_content_type_bytes: int = 255
    #: UTF-8 bytes of a part's file name (encrypted with the part; checked on seal and open).
    max_filename_bytes: int = 255
    #: Bytes of the serialised header.
    max_header_bytes: int = 64 * KIB
    #: How far created_at may lie after the reference time (sender's clock running fast).
    max_clock_skew_ms: int = 5 * _MINUTE_MS
    #: How far created_at may lie before the reference time.
    max_age_ms: int = 7 * _DAY_MS

    def __post_init__(self) -> None:
        """Refuse nonsensical configurations at construction, not at first use."""
        for spec in fields(self):
            value = getattr(self, spec.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"Limits.{spec.name} must be a non-negative int")
        if min(self.max_parts, self.max_recipients, self.max_content_type_bytes) < 1:
            raise ValueError("Limits allow no parts, recipients or content types")
        if self.max_part_bytes > self.max_total_bytes:
            raise ValueError("Limits.max_part_bytes exceeds max_total_bytes")
        if self.max_total_bytes >= 2**32:
            raise ValueError("Limits.max_total_bytes must stay below 4 GiB")

    @property
    def max_envelope_bytes(self) -> int:
        """The largest serialised Envelope the other limits allow; checked before parsing."""
        return (
            self.max_total_bytes
            + self.max_parts * _PART_FRAMING
            + self.max_header_bytes
            + (self.max_recipients + 1) * _SEALED_KEY_FRAMING
            + _FIXED_FRAMING
        )


#: The limits every component uses unless configured otherwise.
DEFAULT_LIMITS: Final = Limits()
