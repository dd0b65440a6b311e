"""Key-server changes matched to recorded administrative actions (SPEC P14), pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sealpost.clients.audit.changes import ChangeReason, ChangeReconciliation, match_changes
from sealpost.clients.audit.keyserver import Change, DecryptStatus, millis
from sealpost.escrow.auditlog import ChangeKind
from sealpost.gateway import keyevents
from sealpost.gateway.keyevents import RecordedAction

T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)
ROOT = ("", "root")
CAROL = ("3604a92c-e8e0-8dc7-8813-6ce695fe15d6", "userpass-carol")
USER = "auth/userpass/users/dave"
CONFIG = "sealpost-transit/keys/sealpost-escrow/config"


def change(
    at: float,
    kind: ChangeKind = ChangeKind.STAFF_LOGIN,
    path: str = USER,
    who: tuple[str, str] = ROOT,
    status: DecryptStatus = DecryptStatus.OPENED,
    settings: tuple[tuple[str, str], ...] = (),
) -> Change:
    return Change(
        request_id=f"r-{at}-{path}",
        time=T0 + timedelta(seconds=at),
        kind=kind,
        path=path,
        operation="update",
        entity_id=who[0],
        display_name=who[1],
        status=status,
        clear_settings=settings,
        source="audit.log:1",
    )


def recorded(
    index: int,
    started: float,
    finished: float,
    paths: tuple[str, ...] = (USER,),
    kind: str = keyevents.STAFF_CHANGE,
    who: tuple[str, str] = ROOT,
    signed: bool = True,
) -> RecordedAction:
    start = millis(T0 + timedelta(seconds=started))
    end = millis(T0 + timedelta(seconds=finished))
    return RecordedAction(
        log_index=index,
        time_ms=end + 1_000,
        actor="staff:admin",
        kind=kind,
        target="dave",
        paths=frozenset(paths),
        started_ms=start,
        finished_ms=end,
        key_server_entity=who[0],
        key_server_name=who[1],
        signed_at_ms=end + 2_000 if signed else None,
    )


def run(
    changes: list[Change],
    actions: list[RecordedAction],
    *,
    leeway_ms: int = 1_000,
    require_signed: bool = True,
) -> ChangeReconciliation:
    return match_changes(changes, actions, leeway_ms=leeway_ms, require_signed=require_signed)


def reasons(changes: list[Change], actions: list[RecordedAction], **options: Any) -> list[str]:
    outcome = run(changes, actions, **options)
    return [u.reason.value for u in outcome.unmatched]


def test_a_change_inside_a_recorded_action_matches() -> None:
    outcome = run([change(10)], [recorded(4, 9, 11)])
    ((matched, action),) = outcome.matched
    assert (matched.path, action.log_index) == (USER, 4)
    assert outcome.unmatched == ()
    assert outcome.unused_actions == ()


def test_a_change_nobody_recorded_is_a_finding() -> None:
    assert reasons([change(10)], []) == [ChangeReason.NOT_RECORDED.value]
    # Another path: the action does not list it.
    other = change(10, path="auth/userpass/users/eve")
    assert reasons([other], [recorded(4, 9, 11)]) == [ChangeReason.NOT_RECORDED.value]


def test_an_action_covers_only_its_own_kinds_of_change() -> None:
    policy = change(10, ChangeKind.POLICY, "sys/policies/acl/extra")
    staff = recorded(4, 9, 11, paths=("sys/policies/acl/extra",), kind=keyevents.STAFF_CHANGE)
    assert reasons([policy], [staff]) == [ChangeReason.NOT_RECORDED.value]
    bootstrap = recorded(5, 9, 11, paths=("sys/policies/acl/extra",), kind=keyevents.BOOTSTRAP)
    assert reasons([policy], [bootstrap]) == []


def test_the_same_key_server_identity_must_have_acted() -> None:
    by_carol = change(10, who=CAROL)
    assert reasons([by_carol], [recorded(4, 9, 11, who=ROOT)]) == [
        ChangeReason.OTHER_IDENTITY.value
    ]
    assert reasons([by_carol], [recorded(4, 9, 11, who=CAROL)]) == []
    by_dave = change(10, who=("0554d610-8a77-1140-00ce-5e502fd99c2f", "userpass-carol"))
    assert reasons([by_dave], [recorded(4, 9, 11, who=CAROL)]) == [
        ChangeReason.OTHER_IDENTITY.value
    ]
    # Without an entity the display name decides, and an entity never passes for root.
    other_root = change(10, who=("", "token"))
    assert reasons([other_root], [recorded(4, 9, 11)]) == [ChangeReason.OTHER_IDENTITY.value]
    entity_named_root = change(10, who=("some-entity", "root"))
    assert reasons([entity_named_root], [recorded(4, 9, 11)]) == [ChangeReason.OTHER_IDENTITY.value]


@pytest.mark.parametrize(
    ("at", "matched"),
    [(7.999, False), (8.0, True), (9.0, True), (12.0, True), (12.001, False)],
)
def test_the_window_is_start_to_finish_widened_by_the_leeway(at: float, matched: bool) -> None:
    found = reasons([change(at)], [recorded(4, 9, 11)], leeway_ms=1_000)
    assert found == ([] if matched else [ChangeReason.OUTSIDE_WINDOW.value])


def test_with_a_verified_log_the_action_must_be_in_a_signed_head() -> None:
    unsigned = recorded(4, 9, 11, signed=False)
    assert reasons([change(10)], [unsigned]) == [ChangeReason.NOT_SIGNED.value]
    assert reasons([change(10)], [unsigned], require_signed=False) == []


@pytest.mark.parametrize(
    "kind",
    [
        ChangeKind.KEY_EXPORT,
        ChangeKind.KEY_BACKUP,
        ChangeKind.KEY_RESTORE,
        ChangeKind.KEY_IMPORT,
        ChangeKind.KEY_DELETE,
        ChangeKind.RAW_STORAGE,
    ],
)
def test_taking_the_key_out_is_never_covered(kind: ChangeKind) -> None:
    taken = change(10, kind, "sealpost-transit/export/encryption-key/sealpost-escrow")
    everything = recorded(4, 0, 20, paths=(taken.path,), kind=keyevents.BOOTSTRAP)
    outcome = run([taken], [everything])
    (finding,) = outcome.unmatched
    assert finding.reason is ChangeReason.KEY_LEAVES
    assert finding.detail == kind.value


@pytest.mark.parametrize("setting", ["exportable", "allow_plaintext_backup", "deletion_allowed"])
def test_making_the_key_exportable_or_deletable_is_never_covered(setting: str) -> None:
    unsafe = change(10, ChangeKind.KEY_CONFIG, CONFIG, settings=((setting, "true"),))
    schedule = recorded(4, 9, 11, paths=(CONFIG,), kind=keyevents.ROTATION_SCHEDULE)
    outcome = run([unsafe], [schedule])
    (finding,) = outcome.unmatched
    assert (finding.reason, finding.detail) == (ChangeReason.KEY_LEAVES, f"sets {setting}")
    # Turning it off again, or a period change, is an ordinary recorded change.
    safe = change(10, ChangeKind.KEY_CONFIG, CONFIG, settings=((setting, "false"),))
    assert reasons([safe], [schedule]) == []


def test_refused_changes_and_root_tokens_are_information() -> None:
    refused = change(10, status=DecryptStatus.REFUSED)
    root = change(11, ChangeKind.ROOT_TOKEN, "sys/generate-root/attempt", who=("", ""))
    maybe = change(12, status=DecryptStatus.POSSIBLY_OPENED)
    outcome = run([refused, root, maybe], [])
    assert outcome.refused == (refused,)
    assert outcome.noted == (root,)
    assert [u.change for u in outcome.unmatched] == [maybe]


def test_actions_that_matched_nothing_are_listed() -> None:
    used, unused = recorded(4, 9, 11), recorded(5, 50, 51)
    outcome = run([change(10)], [used, unused])
    assert outcome.unused_actions == (unused,)
