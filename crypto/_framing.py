"""Length-prefixed framing and domain-separated SHA-256 (docs/protocol.md, "Notation").

Every digest, signed message and associated-data string in Sealpost is
``LP(domain) || item || item ...``: byte strings enter as ``LP(x) = U64(len(x)) || x``
and integers as ``U64(n)``, big-endian, so no two different inputs frame to the same bytes.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from typing import Final

from sealpost.crypto.errors import FormatError

_U64: Final = struct.Struct(">Q")
U64_BYTES: Final = _U64.size

#: One framed item: bytes are length-prefixed, integers are fixed 8-byte big-endian.
Item = bytes | int


def u64(value: int) -> bytes:
    """``U64(n)``: 8 bytes, big-endian, unsigned."""
    return _U64.pack(value)


def lp(data: bytes) -> bytes:
    """``LP(x)``: the length of ``x`` as U64, then ``x``."""
    return _U64.pack(len(data)) + data


def _chunks(domain: bytes, items: Iterable[Item]) -> Iterable[bytes]:
    yield _U64.pack(len(domain))
    yield domain
    for item in items:
        if isinstance(item, bool):  # a bool is an int in Python; never a protocol value
            raise TypeError("framed items are bytes or int, not bool")
        if isinstance(item, int):
            yield _U64.pack(item)
        else:
            yield _U64.pack(len(item))
            yield item


def framed(domain: bytes, *items: Item) -> bytes:
    """``LP(domain) || items...`` as one byte string (for associated data and small inputs)."""
    return b"".join(_chunks(domain, items))


def framed_sha256(domain: bytes, items: Iterable[Item]) -> bytes:
    """SHA-256 of ``framed(domain, *items)``, streamed so that large parts are never copied."""
    hasher = hashlib.sha256()
    for chunk in _chunks(domain, items):
        hasher.update(chunk)
    return hasher.digest()


def unframe(data: bytes, domain: bytes, count: int) -> list[bytes]:
    """Split ``framed(domain, b1, ..., b_count)`` back into byte items; FormatError otherwise."""
    items: list[bytes] = []
    offset = 0
    for _ in range(count + 1):
        if len(data) - offset < U64_BYTES:
            raise FormatError("framed data is truncated")
        (size,) = _U64.unpack_from(data, offset)
        offset += U64_BYTES
        if size > len(data) - offset:
            raise FormatError("framed data is truncated")
        items.append(data[offset : offset + size])
        offset += size
    if offset != len(data):
        raise FormatError("framed data has trailing bytes")
    if items[0] != domain:
        raise FormatError("framed data has the wrong domain")
    return items[1:]
