"""Key-server actions as the tools note them, and their receipts (escrow/actions.py), pure."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sealpost.clients.admin.record import requests
from sealpost.escrow.actions import (
    RECEIPT_FORMAT,
    ActionJournal,
    ActionKind,
    KeyServerAction,
    KeyServerIdentity,
    dump_receipt,
    load_receipt,
)
from sealpost.escrow.errors import ActionReceiptError, ActionReceiptVersionError
from sealpost.v1 import admin_pb2

ROOT = KeyServerIdentity("", "root")


def action(paths: tuple[str, ...], kind: ActionKind = ActionKind.BOOTSTRAP) -> KeyServerAction:
    return KeyServerAction(kind, "sealpost", paths, 1_000, 2_000, ROOT)


def journal(times: list[int]) -> ActionJournal:
    clock = iter(times)
    noted = ActionJournal(conn=None, clock=lambda: next(clock))  # type: ignore[arg-type]
    noted._identity = ROOT  # looked up once at the key server; here given
    return noted


def test_a_journal_notes_each_path_once_and_only_inside_an_action() -> None:
    noted = journal([10, 20])
    noted.wrote("/v1/sys/policies/acl/outside")
    with noted.action(ActionKind.STAFF_CHANGE, "carol"):
        noted.wrote("/v1/auth/userpass/users/carol")
        noted.wrote("/v1/identity/entity/name/carol")
        noted.wrote("/v1/auth/userpass/users/carol")
    (made,) = noted.take()
    assert made.paths == ("auth/userpass/users/carol", "identity/entity/name/carol")
    assert (made.started_ms, made.finished_ms, made.identity) == (10, 20, ROOT)
    assert (made.kind, made.target) == (ActionKind.STAFF_CHANGE, "carol")
    assert noted.take() == []


def test_a_failed_action_is_kept_and_one_without_writes_is_not() -> None:
    noted = journal([1, 2, 3, 4])

    def interrupted() -> None:
        with noted.action(ActionKind.BOOTSTRAP, "sealpost"):
            noted.wrote("sys/mounts/sealpost-transit")
            raise RuntimeError("the key server went away")

    with pytest.raises(RuntimeError):
        interrupted()
    with noted.action(ActionKind.BOOTSTRAP, "sealpost"):
        pass
    assert [a.paths for a in noted.take()] == [("sys/mounts/sealpost-transit",)]


def test_a_key_version_is_asked_for_at_the_end() -> None:
    noted = journal([1, 2])
    with noted.action(ActionKind.ROTATION, "k", key_version=lambda: 7):
        noted.wrote("t/keys/k/rotate")
    assert noted.take()[0].key_version == 7


def test_paths_are_grouped_to_fit_one_log_value_each() -> None:
    paths = tuple(f"sys/policies/acl/{n:0>90}" for n in range(5))  # 107 bytes each
    groups = action(paths).path_groups()
    assert [len(g) for g in groups] == [2, 2, 1]
    assert all(len(",".join(g).encode()) <= 256 for g in groups)
    assert [p for g in groups for p in g] == list(paths)
    assert action(()).path_groups() == []


def test_each_group_becomes_one_record_request() -> None:
    paths = tuple(f"sys/policies/acl/{n:0>90}" for n in range(3))
    made = requests(action(paths))
    assert len(made) == 2
    first = made[0]
    assert first.kind == admin_pb2.KEY_EVENT_KIND_BOOTSTRAP
    assert (first.target, first.key_server_name, first.key_server_entity) == (
        "sealpost",
        "root",
        "",
    )
    assert (first.started_at.ToMilliseconds(), first.finished_at.ToMilliseconds()) == (1000, 2000)
    assert list(first.paths) == list(paths[:2])


def test_receipts_round_trip() -> None:
    actions = [action(("a/b",)), action(("c/d", "e/f"), ActionKind.STAFF_CHANGE)]
    assert load_receipt(dump_receipt(actions)) == actions


def _receipt(**change: Any) -> bytes:
    document = json.loads(dump_receipt([action(("a/b",))]))
    document.update(change)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"{not json", ActionReceiptError, "not JSON"),
        (_receipt(format="something-else"), ActionReceiptError, RECEIPT_FORMAT),
        (_receipt(version=0), ActionReceiptVersionError, "not accepted"),
        (_receipt(version=2), ActionReceiptVersionError, "upgrade"),
        (_receipt(actions={}), ActionReceiptError, "no list of actions"),
        (_receipt(actions=[{"kind": "export"}]), ActionReceiptError, "unknown action kind"),
        (_receipt(actions=[{"kind": "bootstrap"}]), ActionReceiptError, "missing"),
    ],
)
def test_bad_receipts_are_refused(data: bytes, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        load_receipt(data)
