"""A delivery acknowledgement re-checks, inside its transaction, whose message it is.

Authorisation looks the message's institution up before the handler runs; the handler
locks the row and checks again, so a message that changed hands in between (a
transfer) is not recorded by the institution that no longer holds it. Through the API
the first check always answers first, so this calls the handler's step directly.
"""

from __future__ import annotations

import pytest

from sealpost.gateway import states, store
from sealpost.gateway.errors import PermissionDenied
from sealpost.gateway.principals import terminal
from sealpost.gateway.services.terminal import _acknowledge
from sealpost.gateway.storage.database import Database
from tests.integration.test_direct_statements import MESSAGE_ID, NOW, populate

pytestmark = pytest.mark.integration


def test_only_the_institution_holding_the_message_records_its_delivery(db: Database) -> None:
    db.write(populate)  # one released inbound message at pi-a
    elsewhere = terminal("pi-b:desk", "pi-b")
    with pytest.raises(PermissionDenied):
        db.write(lambda c: _acknowledge(c, MESSAGE_ID, "B-1", elsewhere, NOW))
    assert db.read(lambda c: store.message(c, MESSAGE_ID)).state == states.RELEASED

    here = terminal("pi-a:desk", "pi-a")
    state = db.write(lambda c: _acknowledge(c, MESSAGE_ID, "A-1", here, NOW))
    assert state == states.DELIVERED
    assert db.read(lambda c: store.message(c, MESSAGE_ID)).delivery_reference == "A-1"
