"""A name cannot reorder the text around it: the gateway refuses spoofing characters."""

from __future__ import annotations

import unicodedata

import grpc
import pytest

from sealpost._internal.stack import Stack, approve_all, setup_institutions
from sealpost.clients._grpc import ClientError
from sealpost.clients.relative.sdk import RelativeClient

pytestmark = pytest.mark.integration

A = "pi-noord"
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE
def test_spoofing_names_and_relationships_are_refused(stack: Stack, database_url: str) -> None:
    spoofer = RelativeClient(stack.endpoint, stack.pin)
    with pytest.raises(ClientError) as refused:
        spoofer.register("Advocaat \u202eredeV ed\u202c")
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "text-direction" in refused.value.message
    spoofer.close()

    admin, terminals = setup_institutions(stack, [("d-1", A, "regular")])
    relative = stack.relative("Samira")
    with pytest.raises(ClientError) as relationship:
        relative.request_contact("d-1", "zus\u2067 (advocaat)")
    assert relationship.value.code == grpc.StatusCode.INVALID_ARGUMENT

    # The SDK sends names in normal form C; what the institution sees is that form.
    zoe = RelativeClient(stack.endpoint, stack.pin)
    zoe.register(unicodedata.normalize("NFD", "Zoë"))
    zoe.login()
    zoe.request_contact("d-1")
    approve_all(admin, A)
    (contact,) = terminals[A].contacts("d-1")[-1:]
    assert contact.display_name == "Zoë"
    zoe.close()
