"""Every decrypt is in the real key server's audit log, naming the message and the person (P6)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sealpost._internal.devservers import OpenBaoDevServer
from sealpost.escrow.auditlog import (
    AuditEntryType,
    AuditOperation,
    AuditOutcome,
    EscrowAuditEvent,
    read_audit_log,
)
from sealpost.escrow.blob import EscrowedKey, ciphertext_key_version
from sealpost.escrow.bootstrap import BootstrapSettings, KeyServerBootstrap
from sealpost.escrow.client import EscrowClient, KeyServerConfig
from sealpost.escrow.errors import InvalidRequestError, PermissionDeniedError
from sealpost.escrow.identity import StaffRole, StaffSession, login_staff

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"


@dataclass
class Kit:
    server: OpenBaoDevServer
    config: KeyServerConfig
    settings: BootstrapSettings
    terminal_token: str
    screener: StaffSession


@pytest.fixture(scope="module")
def kit(openbao: OpenBaoDevServer) -> Iterator[Kit]:
    settings = BootstrapSettings(prefix=f"aud{secrets.token_hex(4)}")
    config = KeyServerConfig(openbao.address)
    admin = KeyServerBootstrap(config, openbao.root_token, settings)
    admin.run()
    name = f"screener-{settings.prefix}"
    admin.create_staff_user(name, PASSWORD, [StaffRole.SCREENER], ["pi-a"])
    terminal = admin.create_terminal_token("pi-a")
    yield Kit(openbao, config, settings, terminal.token, login_staff(config, name, PASSWORD))
    admin.close()


def events(kit: Kit, path: Path | None = None) -> list[EscrowAuditEvent]:
    return list(read_audit_log(path or kit.server.audit_log, key=kit.settings.escrow_key))


def for_message(all_events: list[EscrowAuditEvent], mid: bytes) -> list[EscrowAuditEvent]:
    return [e for e in all_events if mid in e.message_ids]


def escrow(kit: Kit, count: int) -> list[tuple[bytes, bytes, str]]:
    items = [(secrets.token_bytes(16), secrets.token_bytes(32)) for _ in range(count)]
    with EscrowClient(kit.config, kit.terminal_token, key=kit.settings.escrow_key) as terminal:
        escrowed = terminal.escrow_batch(items)
    return [(mid, dek, e.ciphertext) for (mid, dek), e in zip(items, escrowed, strict=True)]


def test_every_screener_decrypt_names_message_and_person(kit: Kit) -> None:
    items = escrow(kit, 3)
    with EscrowClient(kit.config, kit.screener.token, key=kit.settings.escrow_key) as screener:
        for mid, dek, ciphertext in items:
            assert screener.decrypt(mid, ciphertext) == dek
    log = events(kit)
    for mid, _dek, _ct in items:
        decrypts = [e for e in for_message(log, mid) if e.operation is AuditOperation.DECRYPT]
        assert [e.entry_type for e in decrypts] == [AuditEntryType.REQUEST, AuditEntryType.RESPONSE]
        assert decrypts[0].request_id == decrypts[1].request_id
        for event in decrypts:
            assert event.message_ids == (mid,)
            assert event.entity_id == kit.screener.entity_id
            assert event.display_name == f"userpass-{kit.screener.username}"
            assert f"{kit.settings.prefix}-screener" in event.policies
        assert decrypts[1].outcome is AuditOutcome.SUCCEEDED


def test_encrypt_is_logged_with_the_terminal_and_its_institution(kit: Kit) -> None:
    [(mid, _dek, _ct)] = escrow(kit, 1)
    encrypts = [e for e in for_message(events(kit), mid) if e.operation is AuditOperation.ENCRYPT]
    assert len(encrypts) == 2
    assert all(e.institution_id == "pi-a" for e in encrypts)
    assert all(e.display_name == "token-terminal-pi-a" for e in encrypts)
    assert encrypts[1].outcome is AuditOutcome.SUCCEEDED


def test_batch_decrypt_lists_every_message(kit: Kit) -> None:
    items = escrow(kit, 5)
    blobs = [EscrowedKey(mid, ct, ciphertext_key_version(ct)) for mid, _dek, ct in items]
    with EscrowClient(kit.config, kit.screener.token, key=kit.settings.escrow_key) as screener:
        assert [o.dek for o in screener.decrypt_batch(blobs)] == [dek for _m, dek, _c in items]
    batch = [
        e
        for e in events(kit)
        if e.operation is AuditOperation.DECRYPT and e.batch and items[0][0] in e.message_ids
    ]
    assert len(batch) == 2
    assert batch[0].message_ids == tuple(mid for mid, _d, _c in items)
    assert batch[1].outcome is AuditOutcome.SUCCEEDED


def test_refused_decrypts_are_logged_as_refused(kit: Kit) -> None:
    [(mid, _dek, ct)] = escrow(kit, 1)
    with (
        EscrowClient(kit.config, kit.terminal_token, key=kit.settings.escrow_key) as terminal,
        pytest.raises(PermissionDeniedError),
    ):
        terminal.decrypt(mid, ct)
    wrong = secrets.token_bytes(16)
    with (
        EscrowClient(kit.config, kit.screener.token, key=kit.settings.escrow_key) as screener,
        pytest.raises(InvalidRequestError),
    ):
        screener.decrypt(wrong, ct)
    log = events(kit)
    denied = [
        e
        for e in for_message(log, mid)
        if e.operation is AuditOperation.DECRYPT and e.entry_type is AuditEntryType.RESPONSE
    ]
    assert len(denied) == 1
    assert denied[0].outcome is AuditOutcome.REFUSED
    assert denied[0].display_name == "token-terminal-pi-a"
    assert "permission denied" in (denied[0].error or "")
    wrong_context = [e for e in for_message(log, wrong) if e.entry_type is AuditEntryType.RESPONSE]
    assert [e.outcome for e in wrong_context] == [AuditOutcome.REFUSED]
    assert wrong_context[0].entity_id == kit.screener.entity_id


def test_second_audit_device_has_the_same_escrow_events(kit: Kit) -> None:
    [(mid, dek, ct)] = escrow(kit, 1)
    with EscrowClient(kit.config, kit.screener.token, key=kit.settings.escrow_key) as screener:
        assert screener.decrypt(mid, ct) == dek
    mirror = Path(f"{kit.server.audit_log}.mirror")
    main = [(e.request_id, e.entry_type, e.message_ids) for e in for_message(events(kit), mid)]
    copy = [
        (e.request_id, e.entry_type, e.message_ids) for e in for_message(events(kit, mirror), mid)
    ]
    assert len(main) == 4
    assert main == copy


def test_no_data_key_or_token_appears_in_the_audit_log(kit: Kit) -> None:
    items = escrow(kit, 2)
    with EscrowClient(kit.config, kit.screener.token, key=kit.settings.escrow_key) as screener:
        for mid, _dek, ct in items:
            screener.decrypt(mid, ct)
    text = kit.server.audit_log.read_text()
    for _mid, dek, ct in items:
        assert base64.b64encode(dek).decode() not in text
        assert ct not in text
    assert kit.terminal_token not in text
    assert kit.screener.token not in text
