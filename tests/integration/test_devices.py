"""A relative's devices: link a second one with a one-time code, list them, revoke a lost one.

Against the real gateway on each database: a reply is sealed to every device of the
account, a revoked device can no longer sign in, and a code works once, for its own
account only.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from sqlalchemy import Connection

from sealpost._internal.stack import Stack, approve_all, setup_institutions
from sealpost.clients._grpc import ClientError
from sealpost.clients.relative.sdk import RelativeClient
from sealpost.gateway import store
from sealpost.gateway.storage.database import Database

INSTITUTION = "pi-devices"


def second_device(stack: Stack, code: str, name: str = "Telefoon") -> RelativeClient:
    client = RelativeClient(stack.endpoint, stack.pin)
    client.register(name, link_code=code)
    client.login()
    return client


def test_a_linked_device_joins_the_account_and_reads_replies_too(stack: Stack) -> None:
    admin, terminals = setup_institutions(stack, [("d-dev", INSTITUTION, "regular")])
    laptop = stack.relative("Laptop")
    laptop.request_contact("d-dev")
    approve_all(admin, INSTITUTION)
    phone = second_device(stack, laptop.link_device())
    try:
        assert phone.account_id == laptop.account_id
        listed = laptop.devices()
        assert [(d.id, revoked) for d, revoked in listed] == [
            (laptop.key_id, False),
            (phone.key_id, False),
        ]
        terminals[INSTITUTION].reply(
            "d-dev", laptop.account_id, "Voor allebei", stack.escrow_for(INSTITUTION)
        )
        assert [m.text for m in laptop.inbox()] == ["Voor allebei"]
        assert [m.text for m in phone.inbox()] == ["Voor allebei"]
    finally:
        phone.close()


def test_a_revoked_device_can_no_longer_sign_in_and_gets_no_replies(stack: Stack) -> None:
    admin, terminals = setup_institutions(stack, [("d-lost", INSTITUTION + "-b", "regular")])
    lost = stack.relative("Oude telefoon")
    lost.request_contact("d-lost")
    approve_all(admin, INSTITUTION + "-b")
    kept = second_device(stack, lost.link_device(), "Nieuwe telefoon")
    try:
        kept.revoke_device(lost.key_id)
        assert {d.id: r for d, r in kept.devices()} == {lost.key_id: True, kept.key_id: False}
        with pytest.raises(ClientError) as refused:
            lost.login()
        assert refused.value.code in (
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.PERMISSION_DENIED,
        )
        (contact,) = terminals[INSTITUTION + "-b"].contacts("d-lost")
        assert len(contact.device_keys) == 1  # replies are sealed to the kept device only
        with pytest.raises(ClientError) as again:
            kept.revoke_device(lost.key_id)
        assert again.value.code == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        kept.close()


def test_a_code_works_once_and_only_for_its_own_account(stack: Stack) -> None:
    owner = stack.relative("Eigenaar")
    stranger = stack.relative("Vreemde")
    code = owner.link_device()
    first = second_device(stack, code)
    first.close()
    for typed in (code, "AAAA-AAAA-AAAA-AAAA", "not a code"):
        with pytest.raises(ClientError) as refused:
            second_device(stack, typed)
        assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED
    # Signed in to one account, a code of another is refused as well.
    with pytest.raises(ClientError) as refused:
        stranger.register("Nog een", link_code=owner.link_device())
    assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_a_relative_revokes_no_one_elses_device(stack: Stack) -> None:
    owner = stack.relative("Eigenaar")
    stranger = stack.relative("Vreemde")
    with pytest.raises(ClientError) as refused:
        stranger.revoke_device(owner.key_id)
    assert refused.value.code == grpc.StatusCode.NOT_FOUND
    assert [r for _d, r in owner.devices()] == [False]


def test_codes_expire_and_an_account_holds_a_few(db: Database) -> None:
    now = 1_800_000_000_000
    account_id = db.write(lambda c: store.create_account(c, "Tester", now))
    codes = [bytes([i]) * 32 for i in range(5)]

    def add(digest: bytes, expires: int) -> Callable[[Connection], None]:
        return lambda c: store.add_device_link(c, digest, account_id, expires, now, 3)

    def take(digest: bytes, at: int) -> Callable[[Connection], str | None]:
        return lambda c: store.take_device_link(c, digest, at)

    for i, digest in enumerate(codes):
        db.write(add(digest, now + 600_000 + i))
    taken = [db.write(take(d, now)) for d in codes]
    assert taken == [None, None, account_id, account_id, account_id]  # the newest three
    assert db.write(take(codes[4], now)) is None  # used
    db.write(add(codes[0], now + 1000))
    assert db.write(take(codes[0], now + 1000)) is None  # expired
