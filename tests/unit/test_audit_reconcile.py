"""Reconciliation of key-server decrypts with transparency-log grants (SPEC P6, P14), pure."""

from __future__ import annotations

import base64
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sealpost.clients.audit.keyserver import Device, read_devices
from sealpost.clients.audit.reconcile import (
    GRANT_VALIDITY_MS,
    DecryptStatus,
    Grant,
    KeyServerLog,
    LogFacts,
    Reason,
    Timeline,
    approvals_from_events,
    decrypts_from_events,
    grant_from_event,
    millis,
    privileged_messages,
    reconcile,
    timelines_from_events,
    with_signing_times,
)
from sealpost.crypto.logentry import LogAction, LogEvent, decode_event, encode_event
from sealpost.escrow.auditlog import parse_audit_entries, parse_audit_lines

T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)
CAROL = "3604a92c-e8e0-8dc7-8813-6ce695fe15d6"
DAVE = "0554d610-8a77-1140-00ce-5e502fd99c2f"
M1, M2, M3 = bytes(range(16)), bytes(range(16, 32)), bytes(range(32, 48))
HMAC = "hmac-sha256:1451f2a5ef3095da57861cf5f7fc8c040a14e5988da2326cd3b3e32523742298"
DECRYPT = "sealpost-transit/decrypt/sealpost-escrow"
ENCRYPT = "sealpost-transit/encrypt/sealpost-escrow"
_ids = itertools.count()


def stamp(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lines(
    at: float,
    messages: list[bytes | None],
    *,
    entity: str = CAROL,
    name: str = "userpass-carol",
    outcome: str = "ok",
    path: str = DECRYPT,
    respond: bool = True,
) -> list[str]:
    """A request entry and (unless ``respond`` is off) its response, as OpenBao writes them."""
    request_id = f"req-{next(_ids)}"
    contexts = [base64.b64encode(m).decode() if m else HMAC for m in messages]
    data: dict[str, Any] = (
        {"batch_input": [{"ciphertext": HMAC, "context": c} for c in contexts]}
        if len(contexts) > 1
        else {"ciphertext": HMAC, "context": contexts[0]}
    )

    def entry(kind: str, **extra: Any) -> str:
        return json.dumps(
            {
                "time": stamp(at),
                "type": kind,
                "auth": {"display_name": name, "entity_id": entity, "policies": ["x"]},
                "request": {"id": request_id, "path": path, "data": data},
                **extra,
            }
        )

    out = [entry("request")]
    if respond:
        if outcome == "ok":
            out.append(entry("response", response={"data": {"plaintext": HMAC}}))
        elif outcome == "partial":
            out.append(entry("response", response={"data": {"http_status_code": 400}}))
        else:
            out.append(entry("response", error="1 error occurred:\n\t* permission denied\n\n"))
    return out


def server_log(*groups: list[str]) -> KeyServerLog:
    return decrypts_from_events(parse_audit_lines([x for g in groups for x in g]), "audit.log")


def grant_leaf(
    index: int,
    at: float,
    message: bytes,
    *,
    entity: str = CAROL,
    officer: str = "carol",
    retrospective: str = "",
) -> tuple[int, LogEvent]:
    """A REVIEW_GRANTED leaf as the gateway writes it, through the canonical encoding."""
    extra = {"legal_basis": "LEGAL_BASIS_SCREENING_ORDER", "key_server_entity": entity}
    if retrospective:
        extra["retrospective_request"] = retrospective
    event = LogEvent(
        action=LogAction.REVIEW_GRANTED,
        actor=f"staff:{officer}",
        time_ms=millis(T0 + timedelta(seconds=at)),
        subjects=[("message", message.hex()), ("grant", f"gr-{index}"), ("detainee", "d-1")],
        extra=extra,
    )
    return index, decode_event(encode_event(event))


def grants(*leaves: tuple[int, LogEvent]) -> list[Grant]:
    out = [grant_from_event(i, e) for i, e in leaves]
    assert all(g is not None for g in out)
    return [g for g in out if g is not None]


def queued_long_ago(found: list[Grant]) -> dict[bytes, Timeline]:
    """Every granted message entered the screening queue an hour before T0 and is still there."""
    at = millis(T0) - 3_600_000
    return {g.message_id: Timeline(((at, -1, LogAction.MESSAGE_QUEUED),)) for g in found}


def run(log: KeyServerLog, found: list[Grant], **options: Any) -> Any:
    facts = LogFacts(grants=found, timelines=queued_long_ago(found))
    return reconcile(log, facts, **options)


# --------------------------------------------------------------------------- parsing


def test_grant_events_become_grants() -> None:
    (grant,) = grants(grant_leaf(7, 1, M1, retrospective="rr-1"))
    assert grant.message_id == M1
    assert (grant.grant_id, grant.detainee_id, grant.entity) == ("gr-7", "d-1", CAROL)
    assert (grant.officer, grant.log_index, grant.retrospective_request) == ("carol", 7, "rr-1")
    assert grant.legal_basis == "LEGAL_BASIS_SCREENING_ORDER"
    other = LogEvent(action=LogAction.VERDICT_RECORDED, actor="staff:c", time_ms=1)
    assert grant_from_event(1, other) is None


def test_requests_and_responses_pair_up_per_message() -> None:
    log = server_log(
        lines(1, [M1]), lines(2, [M2, M3], outcome="partial"), lines(3, [M1], respond=False)
    )
    assert [(d.message_id, d.status) for d in log.decrypts] == [
        (M1, DecryptStatus.OPENED),
        (M2, DecryptStatus.POSSIBLY_OPENED),
        (M3, DecryptStatus.POSSIBLY_OPENED),
        (M1, DecryptStatus.POSSIBLY_OPENED),
    ]
    assert log.decrypts[0].time == T0 + timedelta(seconds=1)
    assert log.decrypts[0].source == "audit.log:1"
    assert log.decrypts[0].who == f"userpass-carol ({CAROL})"
    assert log.decrypts[3].error == "no response entry was logged"
    assert log.period == (T0 + timedelta(seconds=1), T0 + timedelta(seconds=3))


def test_encrypts_count_for_the_period_but_are_not_decrypts() -> None:
    log = server_log(lines(0, [M1], path=ENCRYPT, entity=""), lines(10, [M1]))
    assert len(log.decrypts) == 1
    assert log.period == (T0, T0 + timedelta(seconds=10))


def test_rotated_files_of_one_device_read_as_one_in_time_order() -> None:
    newer, older = lines(5, [M2]), lines(1, [M1])
    log = read_devices(
        [
            Device(
                "a",
                [("a.log", parse_audit_lines(newer)), ("a.log.1", parse_audit_lines(older))],
            )
        ]
    )
    assert [d.message_id for d in log.decrypts] == [M1, M2]
    assert log.period == (T0 + timedelta(seconds=1), T0 + timedelta(seconds=5))
    assert log.devices is not None
    assert not log.devices.compared
    assert read_devices([]).period is None


# --------------------------------------------------------------------------- matching


def test_a_decrypt_after_its_grant_matches() -> None:
    outcome = run(server_log(lines(10, [M1])), grants(grant_leaf(3, 9, M1)))
    ((decrypt, grant),) = outcome.matched
    assert (decrypt.message_id, grant.log_index) == (M1, 3)
    assert outcome.unmatched == ()
    assert outcome.unused_grants == ()
    assert outcome.clean()


def test_a_decrypt_without_any_grant_is_flagged() -> None:
    outcome = run(server_log(lines(10, [M1]), lines(11, [M2])), grants(grant_leaf(3, 9, M1)))
    (unmatched,) = outcome.unmatched
    assert (unmatched.decrypt.message_id, unmatched.reason) == (M2, Reason.NO_GRANT)
    assert not outcome.clean()
    assert not outcome.clean(allow_unused=True)


def test_a_grant_to_someone_else_does_not_cover_the_decrypt() -> None:
    outcome = run(
        server_log(lines(10, [M1], entity=DAVE, name="userpass-dave")),
        grants(grant_leaf(3, 9, M1, entity=CAROL, officer="carol")),
    )
    (unmatched,) = outcome.unmatched
    assert unmatched.reason is Reason.OTHER_IDENTITY
    assert unmatched.detail == f"granted to carol ({CAROL})"
    # Carol's grant was never used by Carol.
    assert [g.log_index for g in outcome.unused_grants] == [3]


def test_a_grant_logged_after_the_decrypt_does_not_count() -> None:
    outcome = run(server_log(lines(10, [M1])), grants(grant_leaf(3, 30, M1)))
    (unmatched,) = outcome.unmatched
    assert unmatched.reason is Reason.GRANT_LATER
    assert "first grant at 2026-11-23T09:00:30" in unmatched.detail


@pytest.mark.parametrize(("leeway_ms", "matched"), [(0, False), (1_999, False), (2_000, True)])
def test_clock_leeway_is_configurable(leeway_ms: int, matched: bool) -> None:
    outcome = run(server_log(lines(10, [M1])), grants(grant_leaf(3, 12, M1)), leeway_ms=leeway_ms)
    assert bool(outcome.matched) is matched
    assert bool(outcome.unmatched) is not matched


def test_negative_leeway_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        run(server_log(lines(1, [M1])), [], leeway_ms=-1)


def test_with_a_verified_log_the_grant_must_be_in_a_signed_head_first() -> None:
    log = server_log(lines(10, [M1]), lines(20, [M2]), lines(30, [M3]))
    found = grants(grant_leaf(0, 5, M1), grant_leaf(1, 15, M2), grant_leaf(2, 25, M3))
    at = millis(T0)
    # Head of size 1 at t=6 s covers leaf 0; size 3 at t=40 s covers leaves 1 and 2 too late.
    signed = with_signing_times(found, [(1, at + 6_000), (3, at + 40_000)])
    assert [g.signed_at_ms for g in signed] == [at + 6_000, at + 40_000, at + 40_000]
    outcome = run(log, signed, require_signed=True)
    assert [d.message_id for d, _ in outcome.matched] == [M1]
    assert [(u.decrypt.message_id, u.reason) for u in outcome.unmatched] == [
        (M2, Reason.NOT_SIGNED),
        (M3, Reason.NOT_SIGNED),
    ]
    uncovered = with_signing_times(found, [(1, at + 6_000)])
    assert uncovered[2].signed_at_ms is None
    assert run(log, found).clean()  # without the rule the same grants suffice


def test_unreadable_contexts_and_decrypts_without_identity_are_flagged() -> None:
    outcome = run(
        server_log(lines(10, [None]), lines(11, [M1], entity="", name="token-terminal-pi-a")),
        grants(grant_leaf(3, 1, M1)),
    )
    assert [u.reason for u in outcome.unmatched] == [
        Reason.UNREADABLE_CONTEXT,
        Reason.NO_IDENTITY,
    ]
    assert outcome.unmatched[1].detail == "token-terminal-pi-a"


def test_partial_batches_count_as_opened() -> None:
    outcome = run(server_log(lines(10, [M1, M2], outcome="partial")), grants(grant_leaf(3, 9, M1)))
    assert [d.message_id for d, _ in outcome.matched] == [M1]
    assert [u.decrypt.message_id for u in outcome.unmatched] == [M2]
    assert outcome.unmatched[0].decrypt.status is DecryptStatus.POSSIBLY_OPENED


def test_refused_decrypts_are_informational_and_use_no_grant() -> None:
    outcome = run(
        server_log(lines(10, [M1], outcome="refused"), lines(11, [M2], outcome="refused")),
        grants(grant_leaf(3, 9, M1)),
    )
    assert outcome.unmatched == ()
    assert [d.message_id for d in outcome.refused] == [M1, M2]
    assert outcome.refused[0].error == "1 error occurred: permission denied"
    assert [g.log_index for g in outcome.unused_grants] == [3]
    assert not outcome.clean()
    assert outcome.clean(allow_unused=True)


def test_grants_outside_the_audit_logs_period_are_not_called_unused() -> None:
    log = server_log(lines(100, [M1]), lines(200, [M2]))
    found = grants(
        grant_leaf(1, 99, M1),  # used
        grant_leaf(2, 150, M3),  # inside the period, never used
        grant_leaf(3, 10, M3),  # before the audit log begins
        grant_leaf(4, 500, M3),  # after it ends
        grant_leaf(5, 199, M2),  # used
    )
    outcome = run(log, found)
    assert [g.log_index for g in outcome.unused_grants] == [2]
    assert [g.log_index for g in outcome.outside_period] == [3, 4]
    assert outcome.unmatched == ()


def test_the_latest_timely_grant_is_the_match_and_each_use_counts() -> None:
    log = server_log(lines(10, [M1]), lines(50, [M1]))
    outcome = run(log, grants(grant_leaf(1, 5, M1), grant_leaf(2, 40, M1), grant_leaf(3, 90, M1)))
    assert [g.log_index for _, g in outcome.matched] == [1, 2]
    assert [g.log_index for g in outcome.unused_grants] == []
    assert [g.log_index for g in outcome.outside_period] == [3]


def test_an_empty_audit_log_is_noted() -> None:
    outcome = run(server_log(), grants(grant_leaf(1, 5, M1)))
    assert outcome.period is None
    assert outcome.notes[0] == "the key server's audit log holds no escrow entries"
    assert [g.log_index for g in outcome.outside_period] == [1]


# --------------------------------------------------------------------------- bounded grants (P14)


def timeline(*events: tuple[float, LogAction]) -> Timeline:
    """A message's MESSAGE_* events at T0 + seconds, in log order."""
    return Timeline(
        tuple(
            (millis(T0 + timedelta(seconds=at)), index, action)
            for index, (at, action) in enumerate(events)
        )
    )


def run_with(
    log: KeyServerLog,
    found: list[Grant],
    timelines: dict[bytes, Timeline],
    approvals: dict[str, int] | None = None,
    **options: Any,
) -> Any:
    facts = LogFacts(grants=found, timelines=timelines, approvals=approvals or {})
    return reconcile(log, facts, **options)


@pytest.mark.parametrize(
    ("after_s", "matched"), [(0, True), (900 + 5, True), (900 + 5.001, False), (3 * 86400, False)]
)
def test_a_grant_covers_decrypts_for_fifteen_minutes(after_s: float, matched: bool) -> None:
    assert GRANT_VALIDITY_MS == 15 * 60 * 1000
    outcome = run(server_log(lines(10 + after_s, [M1])), grants(grant_leaf(3, 10, M1)))
    assert bool(outcome.matched) is matched
    if not matched:
        (late,) = outcome.unmatched
        assert late.reason is Reason.GRANT_EXPIRED
        assert late.detail == "granted at 2026-11-23T09:00:10+00:00, valid 15 min"
    assert outcome.grant_validity_ms == GRANT_VALIDITY_MS


def test_the_bound_is_a_parameter_of_the_pure_check() -> None:
    log = server_log(lines(13, [M1]))
    found = grants(grant_leaf(3, 10, M1))
    assert run(log, found, grant_validity_ms=2_000, leeway_ms=500).unmatched[0].reason is (
        Reason.GRANT_EXPIRED
    )
    assert run(log, found, grant_validity_ms=3_000, leeway_ms=0).matched


def test_decrypts_after_the_message_left_the_queue_are_not_covered() -> None:
    # Queued at 5 s, granted at 9 s, opened at 10 s, released at 20 s, delivered at 30 s;
    # the screener decrypts again at 40 s, 60 s and 90 s: the old grant covers none.
    states = {
        M1: timeline(
            (5, LogAction.MESSAGE_QUEUED),
            (20, LogAction.MESSAGE_RELEASED),
            (30, LogAction.MESSAGE_DELIVERED),
        )
    }
    log = server_log(lines(10, [M1]), lines(40, [M1]), lines(60, [M1]), lines(90, [M1]))
    outcome = run_with(log, grants(grant_leaf(3, 9, M1)), states)
    assert [d.time_ms for d, _ in outcome.matched] == [millis(T0 + timedelta(seconds=10))]
    assert [u.reason for u in outcome.unmatched] == [Reason.LEFT_QUEUE] * 3
    assert outcome.unmatched[0].detail == "released at 2026-11-23T09:00:20+00:00"


@pytest.mark.parametrize(
    ("leaving", "word"),
    [
        (LogAction.MESSAGE_WITHHELD, "withheld"),
        (LogAction.MESSAGE_REJECTED, "rejected"),
        (LogAction.MESSAGE_DELIVERED, "delivered"),
    ],
)
def test_every_way_out_of_the_queue_ends_the_basis(leaving: LogAction, word: str) -> None:
    states = {M1: timeline((5, LogAction.MESSAGE_QUEUED), (20, leaving))}
    outcome = run_with(server_log(lines(26, [M1])), grants(grant_leaf(3, 9, M1)), states)
    (late,) = outcome.unmatched
    assert (late.reason, late.detail.split()[0]) == (Reason.LEFT_QUEUE, word)
    within_leeway = run_with(server_log(lines(25, [M1])), grants(grant_leaf(3, 9, M1)), states)
    assert within_leeway.matched


def test_a_queue_basis_needs_the_message_in_the_queue() -> None:
    log = server_log(lines(10, [M1]))
    never_queued = run_with(log, grants(grant_leaf(3, 9, M1)), {})
    assert [u.reason for u in never_queued.unmatched] == [Reason.NOT_QUEUED]
    assert never_queued.unmatched[0].detail == "LEGAL_BASIS_SCREENING_ORDER"
    queued_later = {M1: timeline((30, LogAction.MESSAGE_QUEUED))}
    assert [
        u.reason for u in run_with(log, grants(grant_leaf(3, 9, M1)), queued_later).unmatched
    ] == [Reason.NOT_QUEUED]


def test_a_retrospective_grant_holds_until_its_approval_expires() -> None:
    found = grants(grant_leaf(3, 9, M1, retrospective="rr-1"))
    until = millis(T0 + timedelta(seconds=100))
    delivered = {M1: timeline((1, LogAction.MESSAGE_QUEUED), (2, LogAction.MESSAGE_DELIVERED))}
    inside = run_with(server_log(lines(10, [M1])), found, delivered, {"rr-1": until})
    assert inside.matched  # the message left the queue long ago: irrelevant for this basis
    after = run_with(
        server_log(lines(106, [M1])), found, delivered, {"rr-1": until}, grant_validity_ms=10**9
    )
    assert [(u.reason, u.detail) for u in after.unmatched] == [
        (Reason.APPROVAL_EXPIRED, "valid until 2026-11-23T09:01:40+00:00")
    ]
    missing = run_with(server_log(lines(10, [M1])), found, delivered, {})
    assert [(u.reason, u.detail) for u in missing.unmatched] == [(Reason.NO_APPROVAL, "rr-1")]


def test_the_latest_grant_that_covers_wins_over_an_older_expired_one() -> None:
    states = {M1: timeline((0, LogAction.MESSAGE_QUEUED))}
    found = grants(grant_leaf(1, 1, M1), grant_leaf(2, 2000, M1))
    outcome = run_with(server_log(lines(10, [M1]), lines(2010, [M1])), found, states)
    assert [g.log_index for _, g in outcome.matched] == [1, 2]


def test_timelines_and_approvals_come_from_log_events() -> None:
    def leaf(index: int, action: LogAction, **extra: str) -> tuple[int, LogEvent]:
        subjects = (
            [("message", M1.hex())]
            if action.name.startswith("MESSAGE")
            else [
                ("retrospective_request", "rr-1"),
                ("detainee", "d-1"),
            ]
        )
        event = LogEvent(
            action=action, actor="x", time_ms=index * 1000, subjects=subjects, extra=extra
        )
        return index, event

    events = [
        leaf(1, LogAction.MESSAGE_QUEUED),
        leaf(2, LogAction.RETROSPECTIVE_APPROVED, valid_until_ms="5000"),
        leaf(3, LogAction.MESSAGE_RELEASED),
        leaf(4, LogAction.MESSAGE_DELIVERED),
        leaf(5, LogAction.RETROSPECTIVE_APPROVED, valid_until_ms="9000"),
    ]
    found = timelines_from_events(events, {M1})
    assert found[M1].queued_at() == (1000, 1)
    assert found[M1].left_queue() == (3000, LogAction.MESSAGE_RELEASED)
    assert timelines_from_events(events, {M2}) == {}
    assert approvals_from_events(events) == {"rr-1": 9000}


# --------------------------------------------------------------------------- privileged escrows


def accepted(message: bytes, privileged: str | None) -> LogEvent:
    extra = {"envelope_digest": "ab" * 32}
    if privileged is not None:
        extra["privileged"] = privileged
    return LogEvent(
        action=LogAction.MESSAGE_ACCEPTED,
        actor="account:a",
        time_ms=1,
        subjects=[("message", message.hex())],
        extra=extra,
    )


def test_privilege_comes_from_the_acceptance_leaf_when_it_says_so() -> None:
    leaves = [accepted(M1, "true"), accepted(M2, "false"), accepted(M3, None)]
    # The table says M2 and M3 are privileged: the leaf overrules it for M2, not for M3.
    assert privileged_messages(leaves, {M2, M3}) == {M1, M3}
    assert privileged_messages([], {M2}) == {M2}


def test_an_escrow_of_a_privileged_message_is_a_finding() -> None:
    log = read_devices(
        [
            Device(
                "a",
                [
                    (
                        "a.log",
                        parse_audit_entries(
                            lines(1, [M1], path=ENCRYPT, entity="", name="token-terminal-pi-a")
                            + lines(2, [M2, M3], path=ENCRYPT, entity="")
                            + lines(3, [M3], path=ENCRYPT, entity="", outcome="refused")
                        ),
                    )
                ],
            )
        ],
        watch={M1, M3},
    )
    facts = LogFacts(grants=[], timelines={}, privileged={M1, M3})
    outcome = reconcile(log, facts)
    assert [(e.message_id, e.display_name) for e in outcome.privileged_escrows] == [
        (M1, "token-terminal-pi-a"),
        (M3, "userpass-carol"),
    ]
    assert not outcome.clean(allow_unused=True)
    # Ids that are not watched are not kept at all (the log streams through).
    unwatched = read_devices(
        [Device("a", [("a.log", parse_audit_entries(lines(1, [M1], path=ENCRYPT)))])]
    )
    assert unwatched.watched_escrows == ()


# --------------------------------------------------------------------------- two audit devices


def two_devices(a: list[str], b: list[str]) -> KeyServerLog:
    return read_devices(
        [
            Device("primary", [("a.log", parse_audit_entries(a))]),
            Device("mirror", [("b.log", parse_audit_entries(b))]),
        ],
        leeway_ms=1_000,
    )


def test_devices_that_agree_count_each_request_once() -> None:
    entries = lines(5, [M1]) + lines(10, [M2], path=ENCRYPT) + lines(20, [M3])
    log = two_devices(entries, entries)
    assert [d.message_id for d in log.decrypts] == [M1, M3]
    assert log.devices is not None
    assert log.devices.compared
    assert log.devices.findings == ()
    outcome = reconcile(log, LogFacts(grants=[], timelines={}))
    assert outcome.devices is not None
    assert not any("compared" in n for n in outcome.notes)


def test_an_entry_missing_from_one_device_is_a_finding() -> None:
    first, removed, last = lines(5, [M1]), lines(10, [M2]), lines(20, [M3])
    log = two_devices(first + removed + last, first + last)
    # Escrows only, so that the devices are all there is to find.
    encrypts = [lines(at, [m], path=ENCRYPT, entity="") for at, m in ((5, M1), (10, M2), (20, M3))]
    escrow_only = two_devices(encrypts[0] + encrypts[1] + encrypts[2], encrypts[0] + encrypts[2])
    facts = LogFacts(grants=[], timelines={})
    assert not reconcile(escrow_only, facts).clean()
    assert reconcile(two_devices(encrypts[0], encrypts[0]), facts).clean()
    assert log.devices is not None
    findings = log.devices.findings
    assert [(f.entry_type.value, f.missing_from, f.present_in, f.kind) for f in findings] == [
        ("request", ("mirror",), ("primary",), "missing"),
        ("response", ("mirror",), ("primary",), "missing"),
    ]
    assert findings[0].what == f"decrypt of {M2.hex()} by userpass-carol"
    assert [d.message_id for d in log.decrypts] == [M1, M2, M3]
    outcome = reconcile(log, LogFacts(grants=[], timelines={}))
    assert not outcome.clean(allow_unused=True)


def test_entries_outside_a_devices_copy_are_information() -> None:
    early, late = lines(5, [M1]), lines(500, [M2])
    log = two_devices(early + late, early)  # the mirror's copy ends earlier
    assert log.devices is not None
    assert log.devices.findings == ()
    assert log.devices.uncovered == 2
    notes = reconcile(log, LogFacts(grants=[], timelines={})).notes
    assert any("fall outside another device's copy" in n for n in notes)


def test_devices_describing_one_request_differently_is_a_finding() -> None:
    mine = lines(5, [M1])
    other_message = [
        line.replace(base64.b64encode(M1).decode(), base64.b64encode(M2).decode()) for line in mine
    ]
    log = two_devices(mine, other_message)
    assert log.devices is not None
    assert [f.kind for f in log.devices.findings] == ["differs", "differs"]


def test_one_device_is_read_and_noted_as_not_compared() -> None:
    outcome = reconcile(server_log(lines(1, [M1])), LogFacts(grants=[], timelines={}))
    assert outcome.devices is None
    assert any("one audit device only" in n for n in outcome.notes)
