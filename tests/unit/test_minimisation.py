"""Data minimisation (SPEC P11): no relative-facing response can carry where a detainee is held.

Walks every response type of RelativeService, recursively, and fails on any
field whose name could carry an institution, unit, regime or fellow detainee.
"""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from sealpost.v1 import relative_pb2

FORBIDDEN = ("institution", "unit", "regime", "wing", "cell", "fellow", "location", "terminal")


def _fields(descriptor: Descriptor, path: str, seen: set[str]) -> list[str]:
    if descriptor.full_name in seen:
        return []
    seen.add(descriptor.full_name)
    out = []
    for field in descriptor.fields:
        name = f"{path}.{field.name}"
        out.append(name)
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
            out += _fields(field.message_type, name, seen)
    return out


def _responses() -> list[Descriptor]:
    service = relative_pb2.DESCRIPTOR.services_by_name["RelativeService"]
    return [method.output_type for method in service.methods]


def test_every_relative_response_is_walked() -> None:
    names = {d.name for d in _responses()}
    assert "SendMessageResponse" in names
    assert "StreamInboxResponse" in names
    assert len(names) == len(relative_pb2.DESCRIPTOR.services_by_name["RelativeService"].methods)


def test_no_relative_response_can_name_a_place() -> None:
    offending = []
    for response in _responses():
        for field in _fields(response, response.name, set()):
            leaf = field.rsplit(".", 1)[1]
            if any(word in leaf for word in FORBIDDEN):
                offending.append(field)
    assert offending == []


def test_the_walk_would_catch_a_leak() -> None:
    # The same walk over the terminal's Detainee finds its institution_id: the test can fail.
    from sealpost.v1 import common_pb2  # noqa: PLC0415

    fields = _fields(common_pb2.Detainee.DESCRIPTOR, "Detainee", set())
    assert "Detainee.institution_id" in fields
