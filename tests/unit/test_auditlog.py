"""The audit-log parser on lines shaped like OpenBao 2.7's file audit device writes them."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sealpost.escrow.auditlog import (
    AuditEntryType,
    AuditOperation,
    AuditOutcome,
    ChangeKind,
    KeyServerChange,
    classify,
    parse_audit_entries,
    parse_audit_lines,
    read_audit_entries,
    read_audit_log,
)
from sealpost.escrow.client import EscrowKeyRef
from sealpost.escrow.errors import AuditLogError

MID_A = bytes(range(16))
MID_B = bytes(range(16, 32))
HMAC = "hmac-sha256:1451f2a5ef3095da57861cf5f7fc8c040a14e5988da2326cd3b3e32523742298"
PATH = "sealpost-transit/decrypt/sealpost-escrow"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def entry(
    kind: str = "request",
    path: str = PATH,
    data: dict[str, Any] | None = None,
    **extra: Any,
) -> str:
    obj: dict[str, Any] = {
        "time": "2026-11-23T19:00:00.105288123Z",
        "type": kind,
        "auth": {
            "client_token": HMAC,
            "display_name": "userpass-carol",
            "policies": ["sealpost-screener", "sealpost-staff"],
            "entity_id": "3604a92c-e8e0-8dc7-8813-6ce695fe15d6",
            "metadata": {"username": "carol"},
        },
        "request": {
            "id": "abab9b68-7736-4527-5e2e-50b1d126c72c",
            "operation": "update",
            "mount_point": "sealpost-transit/",
            "path": path,
            "data": {"ciphertext": HMAC, "context": b64(MID_A)} if data is None else data,
            "remote_address": "127.0.0.1",
        },
    }
    obj.update(extra)
    return json.dumps(obj)


def only(lines: list[str]) -> Any:
    events = list(parse_audit_lines(lines))
    assert len(events) == 1
    return events[0]


def test_single_decrypt_request_names_person_and_message() -> None:
    event = only([entry()])
    assert event.operation is AuditOperation.DECRYPT
    assert event.entry_type is AuditEntryType.REQUEST
    assert event.outcome is AuditOutcome.REQUESTED
    assert event.message_ids == (MID_A,)
    assert event.contexts == (b64(MID_A),)
    assert event.entity_id == "3604a92c-e8e0-8dc7-8813-6ce695fe15d6"
    assert event.display_name == "userpass-carol"
    assert event.policies == ("sealpost-screener", "sealpost-staff")
    assert event.request_id == "abab9b68-7736-4527-5e2e-50b1d126c72c"
    assert event.time == datetime(2026, 11, 23, 19, 0, 0, 105288, tzinfo=UTC)
    assert not event.batch
    assert event.remote_address == "127.0.0.1"
    assert event.line_number == 1


def test_successful_response() -> None:
    event = only([entry("response", response={"data": {"plaintext": HMAC}})])
    assert event.outcome is AuditOutcome.SUCCEEDED
    assert event.error is None


def test_refused_response_carries_the_error() -> None:
    line = entry("response", error="1 error occurred:\n\t* permission denied\n\n")
    event = only([line])
    assert event.outcome is AuditOutcome.REFUSED
    assert event.error == "1 error occurred: permission denied"


def test_batch_forms_list_every_message() -> None:
    data = {"batch_input": [{"ciphertext": HMAC, "context": b64(m)} for m in (MID_A, MID_B)]}
    event = only([entry(data=data)])
    assert event.batch
    assert event.message_ids == (MID_A, MID_B)


def test_batch_refused_in_part_is_partial() -> None:
    data = {"batch_input": [{"ciphertext": HMAC, "context": b64(m)} for m in (MID_A, MID_B)]}
    response = {"data": {"http_raw_body": HMAC, "http_status_code": 400}}
    event = only([entry("response", data=data, response=response)])
    assert event.outcome is AuditOutcome.PARTIAL
    assert event.error == "HTTP 400"


def test_encrypt_by_terminal_names_its_institution() -> None:
    auth = {
        "display_name": "token-terminal-pi-a",
        "policies": ["sealpost-terminal"],
        "metadata": {"institution_id": "pi-a"},
    }
    data = {"batch_input": [{"plaintext": HMAC, "context": b64(MID_B)}]}
    path = "sealpost-transit/encrypt/sealpost-escrow"
    event = only([entry(path=path, data=data, auth=auth)])
    assert event.operation is AuditOperation.ENCRYPT
    assert event.institution_id == "pi-a"
    assert event.entity_id == ""
    assert event.message_ids == (MID_B,)


@pytest.mark.parametrize("context", [HMAC, "not base64!", "", None])
def test_context_not_in_clear_gives_none(context: object) -> None:
    data = {"ciphertext": HMAC} if context is None else {"ciphertext": HMAC, "context": context}
    event = only([entry(data=data)])
    assert event.message_ids == (None,)


def test_unrelated_and_blank_lines_are_skipped_with_true_line_numbers() -> None:
    lines = [
        json.dumps(
            {
                "time": "2026-11-23T18:50:46Z",
                "type": "request",
                "request": {"id": "x", "path": "sys/audit/test"},
            }
        ),
        "",
        entry(path="sealpost-transit/decrypt/other-key"),
        entry(path="other-transit/decrypt/sealpost-escrow"),
        entry(path="sys/health"),
        "   ",
        entry(),
    ]
    events = list(parse_audit_lines(lines))
    assert [e.line_number for e in events] == [7]


def test_other_key_reference() -> None:
    key = EscrowKeyRef("t1", "k")
    lines = [entry(), entry(path="t1/decrypt/k")]
    assert [e.line_number for e in parse_audit_lines(lines, key=key)] == [2]


@pytest.mark.parametrize("bad", ["{not json", "[1, 2]", '"text"', "\x00"])
def test_malformed_line_is_reported_with_its_number(bad: str) -> None:
    with pytest.raises(AuditLogError, match="line 3") as info:
        list(parse_audit_lines([entry(), "", bad, entry()]))
    assert info.value.line_number == 3


def test_invalid_utf8_is_malformed() -> None:
    with pytest.raises(AuditLogError, match="line 1"):
        list(parse_audit_lines([b"\xff\xfe{}"]))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"time": "yesterday"}, "time"),
        ({"time": None}, "time"),
        ({"type": "other"}, "neither request nor response"),
    ],
)
def test_escrow_entry_missing_essentials_is_refused(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(AuditLogError, match=message):
        list(parse_audit_lines([entry(**extra)]))


def test_escrow_entry_without_request_id_is_refused() -> None:
    obj = json.loads(entry())
    del obj["request"]["id"]
    with pytest.raises(AuditLogError, match="request id"):
        list(parse_audit_lines([json.dumps(obj)]))


def test_time_without_fraction_and_with_nanoseconds() -> None:
    for raw, micro in (("2026-11-23T19:00:00Z", 0), ("2026-11-23T19:00:00.1Z", 100000)):
        assert only([entry(time=raw)]).time.microsecond == micro


def test_reads_a_file(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text("\n".join([entry(), entry("response")]) + "\n")
    events = list(read_audit_log(log))
    assert [e.entry_type for e in events] == [AuditEntryType.REQUEST, AuditEntryType.RESPONSE]


# --------------------------------------------------------------------------- changes (P14)

KEY = EscrowKeyRef()
M, K = KEY.mount, KEY.name


@pytest.mark.parametrize(
    ("path", "operation", "kind"),
    [
        (f"{M}/keys/{K}", "update", ChangeKind.KEY_CREATE),
        (f"{M}/keys/{K}", "create", ChangeKind.KEY_CREATE),
        (f"{M}/keys/{K}", "delete", ChangeKind.KEY_DELETE),
        (f"{M}/keys/{K}", "read", None),
        (f"{M}/keys/{K}/config", "update", ChangeKind.KEY_CONFIG),
        (f"{M}/keys/{K}/rotate", "update", ChangeKind.KEY_ROTATE),
        (f"{M}/keys/{K}/trim", "update", ChangeKind.KEY_TRIM),
        (f"{M}/keys/{K}/import_version", "update", ChangeKind.KEY_IMPORT),
        (f"{M}/keys/{K}/something-new", "update", ChangeKind.KEY_CONFIG),
        (f"{M}/keys/other-key/config", "update", None),
        (f"{M}/export/encryption-key/{K}", "read", ChangeKind.KEY_EXPORT),
        (f"{M}/export/encryption-key/{K}/1", "read", ChangeKind.KEY_EXPORT),
        (f"{M}/byok-export/wrapper/{K}", "read", ChangeKind.KEY_EXPORT),
        (f"{M}/export/encryption-key/other-key", "read", None),
        (f"{M}/backup/{K}", "read", ChangeKind.KEY_BACKUP),
        (f"{M}/restore", "update", ChangeKind.KEY_RESTORE),
        (f"{M}/restore/anything", "update", ChangeKind.KEY_RESTORE),
        (f"{M}/cache-config", "update", ChangeKind.MOUNT),
        (f"{M}/encrypt/{K}", "update", None),
        (f"{M}/rewrap/{K}", "update", None),
        (f"sys/mounts/{M}", "update", ChangeKind.MOUNT),
        (f"sys/mounts/{M}", "delete", ChangeKind.MOUNT),
        (f"sys/mounts/{M}/tune", "update", ChangeKind.MOUNT),
        (f"sys/mounts/{M}/tune", "read", None),
        ("sys/mounts/secret", "update", None),
        ("sys/remount", "update", ChangeKind.MOUNT),
        ("sys/policies/acl/anything", "update", ChangeKind.POLICY),
        ("sys/policies/acl/anything", "delete", ChangeKind.POLICY),
        ("sys/policies/acl/anything", "read", None),
        ("sys/policy/legacy", "update", ChangeKind.POLICY),
        ("sys/auth/userpass", "update", ChangeKind.AUTH_METHOD),
        ("sys/auth/userpass/tune", "update", ChangeKind.AUTH_METHOD),
        ("sys/audit/extra", "update", ChangeKind.AUDIT_DEVICE),
        ("sys/config/auditing/request-headers/x", "update", ChangeKind.AUDIT_DEVICE),
        ("sys/generate-root/attempt", "update", ChangeKind.ROOT_TOKEN),
        ("sys/raw/logical/abc", "read", ChangeKind.RAW_STORAGE),
        ("auth/token/roles/sealpost-terminal", "create", ChangeKind.TOKEN_ROLE),
        ("auth/token/create/sealpost-terminal", "update", ChangeKind.TOKEN_CREATE),
        ("auth/token/create", "update", None),
        ("auth/token/revoke-accessor", "update", ChangeKind.TOKEN_REVOKE),
        ("auth/token/revoke", "update", ChangeKind.TOKEN_REVOKE),
        ("auth/token/revoke-self", "update", None),
        ("auth/token/renew-self", "update", None),
        ("auth/userpass/login/carol", "update", None),
        ("auth/userpass/users/carol", "create", ChangeKind.STAFF_LOGIN),
        ("auth/userpass/users/carol/password", "update", ChangeKind.STAFF_LOGIN),
        ("auth/approle/role/x/secret-id", "update", ChangeKind.AUTH_METHOD),
        ("identity/entity/name/carol", "update", ChangeKind.IDENTITY),
        ("identity/entity-alias", "update", ChangeKind.IDENTITY),
        ("identity/group/name/g", "update", ChangeKind.IDENTITY),
        ("identity/lookup/entity", "update", None),
        ("identity/oidc/role/sealpost-staff", "create", ChangeKind.IDENTITY_TOKENS),
        ("identity/oidc/key/sealpost-staff/rotate", "update", ChangeKind.IDENTITY_TOKENS),
        ("identity/oidc/config", "update", ChangeKind.IDENTITY_TOKENS),
        ("identity/oidc/token/sealpost-staff", "read", None),
        ("identity/oidc/introspect", "update", None),
        ("secret/data/x", "update", None),
        ("", "update", None),
    ],
)
def test_every_change_around_the_escrow_key_is_classified(
    path: str, operation: str, kind: ChangeKind | None
) -> None:
    assert classify(path, operation, KEY) is kind


def test_a_key_made_exportable_is_read_with_its_clear_settings() -> None:
    line = entry(
        path=f"{M}/keys/{K}/config",
        data={"exportable": True, "allow_plaintext_backup": True, "auto_rotate_period": HMAC},
    )
    (change,) = parse_audit_entries([line])
    assert isinstance(change, KeyServerChange)
    assert change.kind is ChangeKind.KEY_CONFIG
    assert change.path == f"{M}/keys/{K}/config"
    assert change.operation == "update"
    assert change.entity_id == "3604a92c-e8e0-8dc7-8813-6ce695fe15d6"
    assert change.parameters == ("allow_plaintext_backup", "auto_rotate_period", "exportable")
    assert change.clear_settings == (("allow_plaintext_backup", "true"), ("exportable", "true"))
    assert change.setting("exportable") == "true"
    assert change.setting("auto_rotate_period") is None
    assert change.outcome is AuditOutcome.REQUESTED
    refused = entry("response", path=f"{M}/keys/{K}/config", data={}, error="permission denied")
    (answer,) = parse_audit_entries([refused])
    assert answer.outcome is AuditOutcome.REFUSED


def test_changes_come_with_escrow_events_in_order_and_only_from_parse_audit_entries() -> None:
    lines = [
        entry(),
        entry(path="sys/policies/acl/extra", data={"policy": HMAC}),
        entry(path="auth/userpass/login/carol", data={"password": HMAC}),
    ]
    events = list(parse_audit_entries(lines))
    assert [type(e).__name__ for e in events] == ["EscrowAuditEvent", "KeyServerChange"]
    assert [e.line_number for e in events] == [1, 2]
    assert len(list(parse_audit_lines(lines))) == 1


def test_the_audit_devices_own_test_entry_is_not_a_change() -> None:
    test_entry = json.dumps(
        {
            "time": "2026-11-23T19:00:00Z",
            "type": "request",
            "request": {"id": "x", "operation": "update", "path": "sys/audit/test"},
        }
    )
    assert list(parse_audit_entries([test_entry])) == []
    with_token = entry(path="sys/audit/test", data={})
    (change,) = parse_audit_entries([with_token])
    assert isinstance(change, KeyServerChange)
    assert change.kind is ChangeKind.AUDIT_DEVICE


def test_a_change_entry_that_cannot_be_read_is_refused() -> None:
    request = {"path": "sys/policies/acl/extra", "operation": "update"}
    line = json.dumps({"time": "2026-11-23T19:00:00Z", "type": "request", "request": request})
    with pytest.raises(AuditLogError, match="line 1: key-server change entry without a request"):
        list(parse_audit_entries([line]))


def test_reads_entries_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_text(entry(path=f"{M}/backup/{K}", data={}) + "\n")
    (change,) = read_audit_entries(path)
    assert isinstance(change, KeyServerChange)
    assert change.kind is ChangeKind.KEY_BACKUP
