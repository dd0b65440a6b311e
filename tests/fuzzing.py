"""Hypothesis strategies for hostile input: protobuf messages from their descriptors, and
mutations of valid bytes (bit flips, truncation, extension, unknown fields, wrong wire types,
deep nesting).

Example counts are modest and the runs derandomized so that CI is repeatable. Set
``SEALPOST_FUZZ_EXAMPLES`` to run every fuzz test with that many examples instead, and
``SEALPOST_FUZZ_RANDOM=1`` to draw new examples on each run (docs/gateway.md, "Hostile input").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Final

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES_VARIABLE: Final = "SEALPOST_FUZZ_EXAMPLES"
RANDOM_VARIABLE: Final = "SEALPOST_FUZZ_RANDOM"


def fuzz_settings(default_examples: int) -> settings:
    """Settings for one fuzz test: ``default_examples`` unless the environment asks for more."""
    override = os.environ.get(EXAMPLES_VARIABLE, "")
    examples = int(override) if override.isdigit() and int(override) > 0 else default_examples
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=os.environ.get(RANDOM_VARIABLE, "") != "1",
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- Protobuf wire format (https://protobuf.dev/programming-guides/encoding/) ---

VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5
#: Field numbers no Sealpost message uses (and below the reserved 19000-19999 range).
UNKNOWN_FIELDS: Final = st.integers(min_value=1000, max_value=18_999)


def varint(value: int) -> bytes:
    """Base-128 varint of a non-negative integer (negative ones as their 64-bit complement)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    """A field key."""
    return varint(number << 3 | wire_type)


def field_bytes(number: int, wire_type: int, payload: bytes = b"") -> bytes:
    """One field of ``wire_type`` whose value is built from ``payload``."""
    if wire_type == VARINT:
        return tag(number, VARINT) + varint(int.from_bytes(payload[:9] or b"\x01", "big"))
    if wire_type == I64:
        return tag(number, I64) + payload[:8].ljust(8, b"\0")
    if wire_type == I32:
        return tag(number, I32) + payload[:4].ljust(4, b"\0")
    if wire_type == SGROUP:
        return tag(number, SGROUP) + tag(number, EGROUP)
    return tag(number, LEN) + varint(len(payload)) + payload


def nested_groups(number: int, depth: int) -> bytes:
    """``depth`` start-groups then their end-groups: recursion without any length prefix."""
    return tag(number, SGROUP) * depth + tag(number, EGROUP) * depth


def nested_messages(number: int, depth: int) -> bytes:
    """``depth`` length-delimited fields inside each other."""
    inner = b""
    for _ in range(depth):
        inner = tag(number, LEN) + varint(len(inner)) + inner
    return inner


_WIRE_TYPE_OF: Final = {
    FieldDescriptor.TYPE_DOUBLE: I64,
    FieldDescriptor.TYPE_FIXED64: I64,
    FieldDescriptor.TYPE_SFIXED64: I64,
    FieldDescriptor.TYPE_FLOAT: I32,
    FieldDescriptor.TYPE_FIXED32: I32,
    FieldDescriptor.TYPE_SFIXED32: I32,
    FieldDescriptor.TYPE_STRING: LEN,
    FieldDescriptor.TYPE_BYTES: LEN,
    FieldDescriptor.TYPE_MESSAGE: LEN,
}


def wire_type_of(field: FieldDescriptor) -> int:
    """The wire type a field is normally encoded with."""
    return _WIRE_TYPE_OF.get(field.type, VARINT)


# --- Byte mutations ---


def _flip(data: bytes, position: int) -> bytes:
    if not data:
        return b"\x01"
    position %= len(data) * 8
    out = bytearray(data)
    out[position // 8] ^= 1 << (position % 8)
    return bytes(out)


def _swap(data: bytes, a: int, b: int, size: int) -> bytes:
    if len(data) < 2:
        return data
    a, b = sorted((a % len(data), b % len(data)))
    size = max(1, min(size, b - a, len(data) - b))
    return (
        data[:a] + data[b : b + size] + data[a + size : b] + data[a : a + size] + data[b + size :]
    )


@st.composite
def mutated(  # noqa: PLR0911 - one return per kind of mutation
    draw: st.DrawFn, data: bytes, field_numbers: Sequence[int] = ()
) -> bytes:
    """``data`` changed once: bit flip, truncation, extension, swapped runs, an unknown field,
    a known field with the wrong wire type, or deep nesting."""
    numbers = list(field_numbers) or [1]
    kind = draw(
        st.sampled_from(
            [
                "flip",
                "flips",
                "truncate",
                "extend",
                "swap",
                "unknown",
                "wrong-wire-type",
                "duplicate",
                "nest",
            ]
        ),
        label="mutation",
    )
    position = draw(st.integers(min_value=0, max_value=max(0, len(data) * 8 - 1)))
    if kind == "flip":
        return _flip(data, position)
    if kind == "flips":
        for extra in draw(st.lists(st.integers(min_value=0), min_size=2, max_size=8)):
            data = _flip(data, extra)
        return data
    if kind == "truncate":
        return data[: position // 8]
    if kind == "extend":
        return data + draw(st.binary(min_size=1, max_size=64))
    if kind == "swap":
        a, b = draw(st.integers(min_value=0)), draw(st.integers(min_value=0))
        return _swap(data, a, b, draw(st.integers(min_value=1, max_value=64)))
    if kind == "unknown":
        wire = draw(st.sampled_from([VARINT, I64, LEN, SGROUP, I32]))
        return data + field_bytes(draw(UNKNOWN_FIELDS), wire, draw(st.binary(max_size=32)))
    if kind == "wrong-wire-type":
        number = draw(st.sampled_from(numbers))
        wire = draw(st.sampled_from([VARINT, I64, LEN, SGROUP, I32]))
        return data + field_bytes(number, wire, draw(st.binary(max_size=32)))
    if kind == "duplicate":
        return data + data
    depth = draw(st.sampled_from([50, 101, 200, 5000]))
    number = draw(st.sampled_from(numbers))
    nest = draw(st.sampled_from([nested_groups, nested_messages]))
    return data + nest(number, depth)


# --- Messages drawn from their descriptors ---

_INT_RANGES: Final = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}

#: Text meant to trip validators: controls, bidi overrides, long runs, numbers, SQL and paths.
HOSTILE_TEXT: Final = (
    "",
    " ",
    "\x00",
    "a\nb",
    "\u202e",
    "x" * 65,
    "é" * 201,
    "-1",
    "0",
    "18446744073709551616",
    "9" * 30,
    "' OR 1=1 --",
    "../../etc/passwd",
    "*",
    "🙂",
)


def _integers(field: FieldDescriptor) -> st.SearchStrategy[int]:
    low, high = _INT_RANGES[field.type]
    edges = sorted({low, high, 0, 1, -1 if low < 0 else 2, high // 2 + 1, 2**31 - 1})
    return st.one_of(
        st.sampled_from([e for e in edges if low <= e <= high]),
        st.integers(min_value=low, max_value=high),
        st.integers(min_value=0, max_value=1100),
    )


@st.composite
def message(
    draw: st.DrawFn,
    descriptor: Descriptor,
    *,
    texts: Sequence[str] = (),
    blobs: Sequence[bytes] = (),
    depth: int = 3,
) -> Message:
    """A message of ``descriptor`` with random fields: extreme numbers, unknown enum values,
    hostile text, ids from ``texts`` and ``blobs`` (so that lookups sometimes find something)."""
    cls: Callable[[], Message] = message_factory.GetMessageClass(descriptor)
    result = cls()
    for field in descriptor.fields:
        if not draw(st.booleans()):
            continue
        if field.message_type is not None and depth <= 0:
            continue
        repeated = field.is_repeated
        count = draw(st.sampled_from([1, 1, 2, 3, 0, 120])) if repeated else 1
        values = [_value(draw, field, texts, blobs, depth) for _ in range(min(count, 3))]
        if repeated and count > len(values) and values:
            values = (values * count)[:count]
        target: Any = getattr(result, field.name)
        for value in values:
            if field.message_type is not None:
                (target.add() if repeated else target).CopyFrom(value)
            elif repeated:
                target.append(value)
            else:
                setattr(result, field.name, value)
    return result


def _value(  # noqa: PLR0911 - one return per kind of field
    draw: st.DrawFn,
    field: FieldDescriptor,
    texts: Sequence[str],
    blobs: Sequence[bytes],
    depth: int,
) -> Any:
    if field.message_type is not None:
        return draw(message(field.message_type, texts=texts, blobs=blobs, depth=depth - 1))
    if field.type == FieldDescriptor.TYPE_BOOL:
        return draw(st.booleans())
    if field.type == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        known = [v.number for v in field.enum_type.values]
        return draw(st.sampled_from([*known, -1, 99, 2**31 - 1]))
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return draw(st.floats(allow_nan=True, width=32))
    if field.type == FieldDescriptor.TYPE_STRING:
        words = [st.text(max_size=40), st.sampled_from(HOSTILE_TEXT)]
        if texts:
            words.append(st.sampled_from(list(texts)))
        return draw(st.one_of(*words))
    if field.type == FieldDescriptor.TYPE_BYTES:
        pools = [
            st.binary(max_size=40),
            st.binary(min_size=16, max_size=16),
            st.binary(min_size=32, max_size=32),
        ]
        if blobs:
            pools.append(st.sampled_from(list(blobs)))
        return draw(st.one_of(*pools))
    return draw(_integers(field))
