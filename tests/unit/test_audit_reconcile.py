"""Reconciliation of key-server decrypts with transparency-log grants (SPEC P6), pure."""

from __future__ import annotations

import base64
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sealpost.clients.audit.reconcile import (
    DecryptStatus,
    Grant,
    KeyServerLog,
    Reason,
    decrypts_from_events,
    grant_from_event,
    millis,
    reconcile,
    with_signing_times,
)
from sealpost.crypto.logentry import LogAction, LogEvent, decode_event, encode_event
from sealpost.escrow.auditlog import parse_audit_lines

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


def run(log: KeyServerLog, found: list[Grant], **options: Any) -> Any:
    return reconcile(log.decrypts, found, period=log.period, **options)


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


def test_logs_merge_in_time_order() -> None:
    first, second = server_log(lines(5, [M2])), server_log(lines(1, [M1]))
    merged = first.merged(second)
    assert [d.message_id for d in merged.decrypts] == [M1, M2]
    assert merged.period == (T0 + timedelta(seconds=1), T0 + timedelta(seconds=5))
    assert KeyServerLog((), None).merged(KeyServerLog((), None)).period is None


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
    assert outcome.notes == ("the key server's audit log holds no escrow entries",)
    assert [g.log_index for g in outcome.outside_period] == [1]
