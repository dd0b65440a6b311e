"""Requests with a NUL in any text field are refused before a handler sees them.

The gateway parses every request itself (gateway/interceptors.py) and walks its text
fields at any depth, map keys and values included. A request type that holds no text
at any depth (a send is bytes only) is not walked at all; that shortcut must not hide
a string nested deep in a message, in a map, or in a type that contains itself.
"""

from __future__ import annotations

import pytest
from google.protobuf import struct_pb2
from google.protobuf.message import Message

from sealpost.gateway.calls import _holds_text
from sealpost.gateway.calls import check_request as _refuse_nul
from sealpost.gateway.errors import InvalidArgument
from sealpost.v1 import envelope_pb2, relative_pb2, terminal_pb2


@pytest.mark.parametrize(
    ("message_type", "holds"),
    [
        (relative_pb2.SendMessageRequest, False),  # an envelope: bytes and numbers only
        (envelope_pb2.Envelope, False),
        (terminal_pb2.SubmitEscrowRequest, True),  # submissions[].escrow.ciphertext
        (terminal_pb2.ListDeliveriesRequest, True),
        (struct_pb2.Value, True),  # Value -> Struct -> map<string, Value>: a cycle
        (struct_pb2.ListValue, True),  # ListValue -> Value -> string_value
    ],
)
def test_which_request_types_hold_text(message_type: type[Message], holds: bool) -> None:
    assert _holds_text(message_type.DESCRIPTOR) is holds


def test_the_answer_for_a_cycle_does_not_depend_on_the_order_asked() -> None:
    for message_type in (struct_pb2.ListValue, struct_pb2.Struct, struct_pb2.Value):
        assert _holds_text(message_type.DESCRIPTOR)


def _nested_escrow(ciphertext: str) -> terminal_pb2.SubmitEscrowRequest:
    request = terminal_pb2.SubmitEscrowRequest()
    submission = request.submissions.add(message_id=b"\0" * 16)  # NUL in bytes is fine
    submission.escrow.ciphertext = ciphertext
    return request


def test_a_nul_deep_in_a_message_is_refused() -> None:
    _refuse_nul(_nested_escrow("vault:v1:abc"))
    with pytest.raises(InvalidArgument, match="ciphertext contains a NUL"):
        _refuse_nul(_nested_escrow("vault:v1:a\0bc"))


def test_a_nul_in_a_map_key_or_value_is_refused() -> None:
    value = struct_pb2.Value()
    value.struct_value.fields["ok"].string_value = "fine"
    _refuse_nul(value)
    value.struct_value.fields["k\0"].string_value = "fine"
    with pytest.raises(InvalidArgument, match="NUL"):
        _refuse_nul(value)
    deep = struct_pb2.Value()
    deep.list_value.values.add().struct_value.fields["k"].string_value = "v\0"
    with pytest.raises(InvalidArgument, match="NUL"):
        _refuse_nul(deep)


def test_a_request_without_text_passes_whatever_its_bytes() -> None:
    envelope = envelope_pb2.Envelope(version=1, header=b"\0" * 8, signature=b"\0" * 64)
    _refuse_nul(relative_pb2.SendMessageRequest(envelope=envelope))
