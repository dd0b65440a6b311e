"""Recorded key-server actions as log leaves (gateway/keyevents.py, SPEC P14), pure."""

from __future__ import annotations

import pytest

from sealpost.crypto.logentry import LogAction, LogEvent, decode_event, encode_event
from sealpost.gateway import keyevents
from sealpost.gateway.keyevents import KeyEventError

NOW = 1_790_000_000_000
PATHS = ["auth/userpass/users/carol", "identity/entity/name/carol", "identity/entity-alias"]


def leaf(action: LogAction, extra: dict[str, str]) -> LogEvent:
    event = LogEvent(action=action, actor="staff:admin", time_ms=NOW, extra=extra)
    return decode_event(encode_event(event))


def extra(kind: str = keyevents.STAFF_CHANGE, **overrides: object) -> dict[str, str]:
    arguments: dict[str, object] = {
        "target": "carol",
        "paths": PATHS,
        "started_ms": NOW - 2_000,
        "finished_ms": NOW - 1_000,
        "key_server_entity": "",
        "key_server_name": "root",
    }
    arguments.update(overrides)
    return keyevents.leaf_extra(kind, **arguments)  # type: ignore[arg-type]


def test_a_staff_change_becomes_an_admin_action_and_back() -> None:
    fields = extra()
    assert fields["operation"] == "key_server"
    assert fields["kind"] == "staff_change"
    assert fields["paths"] == ",".join(sorted(PATHS))
    action = keyevents.action_from_event(7, leaf(LogAction.ADMIN_ACTION, fields))
    assert action is not None
    assert (action.log_index, action.kind, action.target) == (7, "staff_change", "carol")
    assert action.paths == frozenset(PATHS)
    assert (action.started_ms, action.finished_ms) == (NOW - 2_000, NOW - 1_000)
    assert (action.key_server_entity, action.key_server_name) == ("", "root")
    assert action.actor == "staff:admin"


@pytest.mark.parametrize(
    ("kind", "action"),
    [
        (keyevents.ROTATION, LogAction.ESCROW_KEY_ROTATED),
        (keyevents.RETENTION, LogAction.RETENTION_APPLIED),
    ],
)
def test_rotation_and_retention_keep_their_own_actions(kind: str, action: LogAction) -> None:
    fields = extra(kind, paths=["sealpost-transit/keys/sealpost-escrow/rotate"])
    assert "operation" not in fields
    assert "kind" not in fields
    found = keyevents.action_from_event(3, leaf(action, {**fields, "key_version": "2"}))
    assert found is not None
    assert found.kind == kind


def test_leaves_without_the_fields_record_no_action() -> None:
    # A rotation recorded by an older tool names no path: it matches nothing.
    old = leaf(LogAction.ESCROW_KEY_ROTATED, {"key_version": "2", "note": ""})
    assert keyevents.action_from_event(1, old) is None
    other = leaf(LogAction.ADMIN_ACTION, {"kind": "mailbox_handover"})
    assert keyevents.action_from_event(1, other) is None
    unknown = leaf(LogAction.ADMIN_ACTION, {**extra(), "kind": "something_else"})
    assert keyevents.action_from_event(1, unknown) is None
    broken = leaf(LogAction.ADMIN_ACTION, {**extra(), "started_ms": "soon"})
    assert keyevents.action_from_event(1, broken) is None
    grant = leaf(LogAction.REVIEW_GRANTED, {"key_server_entity": "x"})
    assert keyevents.action_from_event(1, grant) is None


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        ([], "name the key-server paths"),
        (["/v1/sys/policies/acl/x"], "not a key-server API path"),
        (["v1/sys/policies/acl/x"], "not a key-server API path"),
        (["sys/policies/acl/a,b"], "not a key-server API path"),
        (["sys/policies/acl/x\n"], "not a key-server API path"),
        (["sys//x"], "not a key-server API path"),
        ([f"sys/policies/acl/{n:0>60}" for n in range(5)], "record the action in parts"),
    ],
)
def test_paths_that_do_not_fit_are_refused(paths: list[str], message: str) -> None:
    with pytest.raises(KeyEventError, match=message):
        keyevents.check_paths(paths)


def test_paths_are_joined_sorted_and_once() -> None:
    assert keyevents.check_paths(["b/x", "a/y", "b/x"]) == "a/y,b/x"


@pytest.mark.parametrize(
    ("started", "finished", "message"),
    [
        (NOW, NOW - 1, "finished before it started"),
        (NOW - 3_600_001 - 10, NOW - 10, "at most an hour"),
        (NOW, NOW + 60_001, "in the future"),
        (NOW - 7 * 86_400_000 - 10, NOW - 7 * 86_400_000 - 1, "within 7 days"),
    ],
)
def test_implausible_windows_are_refused(started: int, finished: int, message: str) -> None:
    with pytest.raises(KeyEventError, match=message):
        keyevents.check_times(started, finished, NOW)


def test_plausible_windows_pass() -> None:
    keyevents.check_times(NOW - 3_600_000, NOW, NOW)
    keyevents.check_times(NOW, NOW + 60_000, NOW)
    keyevents.check_times(NOW - 7 * 86_400_000, NOW - 7 * 86_400_000, NOW)


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(KeyEventError, match="unknown"):
        extra("export_key")
