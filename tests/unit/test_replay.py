"""The state replay: what the log's events recompute, and the rules a forged log breaks.

Each rule test starts from a lawful history (which replays without a finding) and adds
or changes one event, as an operator holding the log key could: the replay must name
that entry. Table comparison is tested on recomputed rows against altered stored rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from sealpost.clients.audit.replay import (
    FindingKind,
    Replay,
    StateFinding,
    compare_table,
    replay,
)
from sealpost.crypto.logentry import LogAction, LogEvent
from sealpost.gateway import states
from sealpost.v1 import common_pb2

A = LogAction
NOW = 1_790_000_000_000
HOUR = 3_600_000
MSG = "ab" * 16
OTHER = "cd" * 16
DEVICE = "11" * 32
MAILBOX = "22" * 32
LAWYER_DEVICE = "33" * 32


@dataclass
class History:
    """A log under construction: events in order, each a little later than the last."""

    events: list[LogEvent] = field(default_factory=list)
    time: int = NOW

    def add(
        self, action: LogAction, actor: str, subjects: list[tuple[str, str]], **extra: str
    ) -> int:
        self.time += 1000
        self.events.append(
            LogEvent(action=action, actor=actor, time_ms=self.time, subjects=subjects, extra=extra)
        )
        return len(self.events) - 1

    def indexed(self) -> Iterator[tuple[int, LogEvent]]:
        return iter(enumerate(self.events))

    def replay(self) -> Replay:
        return replay(self.indexed())

    # ----------------------------------------------------------------- a lawful start

    def setup(self, *, order: bool = False, regime: str = "regular") -> History:
        """Regimes, an institution with a terminal, a detainee, staff, a relative in contact."""
        self.add(A.REGIME_POLICY_CHANGED, "gateway", [("regime", "regular")],
                 policy="REGIME_POLICY_SCREEN_ON_ORDER")  # fmt: skip
        self.add(A.REGIME_POLICY_CHANGED, "gateway", [("regime", "ebi")],
                 policy="REGIME_POLICY_BLOCKED")  # fmt: skip
        self.staff("admin", "administrator", "*")
        self.add(A.INSTITUTION_CREATED, "staff:admin", [("institution", "pi-a")])
        self.add(A.TERMINAL_CERTIFICATE_ISSUED, "staff:admin",
                 [("terminal", "t-1"), ("institution", "pi-a")],
                 fingerprint="f" * 64, expires_at_ms=str(NOW + 90 * 24 * HOUR))  # fmt: skip
        self.add(A.DETAINEE_INTAKE, "staff:admin",
                 [("detainee", "d-1"), ("institution", "pi-a")], regime=regime)  # fmt: skip
        self.add(A.KEY_RECORD_PUBLISHED, "terminal:t-1",
                 [("detainee", "d-1"), ("key", MAILBOX)], purpose="mailbox")  # fmt: skip
        self.add(A.KEY_RECORD_PUBLISHED, "relative:acct-1",
                 [("account", "acct-1"), ("key", DEVICE)], purpose="relative_device")  # fmt: skip
        self.add(A.CONTACT_APPROVED, "staff:admin",
                 [("contact", "ct-1"), ("detainee", "d-1"), ("account", "acct-1")])  # fmt: skip
        if order:
            self.add(A.SCREENING_ORDER_CREATED, "staff:admin",
                     [("detainee", "d-1"), ("order", "so-1")],
                     legal_ground="LEGAL_GROUND_CRIME_PREVENTION", direction="DIRECTION_BOTH",
                     starts_at_ms=str(NOW - HOUR), ends_at_ms=str(NOW + 24 * HOUR))  # fmt: skip
        self.staff("jansen", "screener", "pi-a")
        self.staff("visser", "approver", "pi-a")
        return self

    def staff(self, name: str, roles: str, institutions: str) -> None:
        entity = f"ent-{name}"
        self.add(A.ADMIN_ACTION, f"staff:{name}", [("staff", name)], operation="staff_roles",
                 roles=roles, institutions=institutions, key_server_entity=entity)  # fmt: skip

    def send(self, message: str = MSG, *, privileged: bool = False, account: str = "acct-1",
             key: str = DEVICE) -> int:  # fmt: skip
        return self.add(
            A.MESSAGE_ACCEPTED,
            f"relative:{account}",
            [("message", message), ("detainee", "d-1"), ("account", account)],
            envelope_digest="ee" * 32,
            direction="inbound",
            privileged="true" if privileged else "false",
            sender_key=key,
        )

    def escrow(self, message: str = MSG, *, then: LogAction = A.MESSAGE_QUEUED) -> None:
        subjects = [("message", message), ("detainee", "d-1")]
        self.add(A.MESSAGE_ESCROWED, "terminal:t-1", subjects, escrow_digest="aa" * 32)
        self.add(then, "terminal:t-1", subjects)

    def grant(self, message: str = MSG, who: str = "jansen",
              basis: str = "LEGAL_BASIS_SCREENING_ORDER", **extra: str) -> int:  # fmt: skip
        return self.add(A.REVIEW_GRANTED, f"staff:{who}",
                        [("message", message), ("grant", f"gr-{len(self.events)}"),
                         ("detainee", "d-1")],
                        legal_basis=basis, key_server_entity=f"ent-{who}", **extra)  # fmt: skip

    def verdict(self, message: str = MSG, who: str = "jansen", *, release: bool = True) -> int:
        subjects = [("message", message), ("detainee", "d-1")]
        name = "VERDICT_RELEASE" if release else "VERDICT_WITHHOLD"
        self.add(A.VERDICT_RECORDED, f"staff:{who}", subjects, verdict=name)
        return self.add(A.MESSAGE_RELEASED if release else A.MESSAGE_WITHHELD,
                        f"staff:{who}", subjects)  # fmt: skip


def rules(state: Replay) -> list[StateFinding]:
    return [f for f in state.findings if f.kind is FindingKind.RULE_BROKEN]


def only_rule_at(state: Replay, index: int) -> StateFinding:
    found = rules(state)
    assert [f.index for f in found] == [index], [f.line() for f in found]
    return found[0]


# --------------------------------------------------------------------------- lawful histories


def test_a_lawful_screened_day_replays_without_findings() -> None:
    log = History().setup(order=True)
    log.send()
    log.escrow()
    log.grant()
    release = log.verdict()
    log.add(A.MESSAGE_DELIVERED, "terminal:t-1", [("message", MSG), ("detainee", "d-1")],
            delivery_reference="pi-a-1")  # fmt: skip
    state = log.replay()
    assert rules(state) == []
    row = state.tables["messages"][MSG]
    assert row.values["state"] == states.DELIVERED
    assert row.values["verdict"] == common_pb2.VERDICT_RELEASE
    assert row.values["verdict_by"] == "staff:jansen"
    assert row.values["release_log_index"] == release
    assert row.values["delivery_reference"] == "pi-a-1"
    assert row.values["institution_id"] == "pi-a"
    assert state.tables["grants"]
    assert state.tables["staff_members"]["jansen"].values["roles"] == "screener"


def test_privileged_mail_is_released_without_escrow() -> None:
    log = History().setup(order=True)
    log.add(A.CORRESPONDENT_VERIFIED, "staff:admin", [("account", "acct-1")], kind="lawyer")
    log.send(privileged=True)
    log.add(A.MESSAGE_RELEASED, "terminal:t-1", [("message", MSG), ("detainee", "d-1")],
            basis="privileged")  # fmt: skip
    state = log.replay()
    assert rules(state) == []
    assert state.tables["messages"][MSG].values["privileged"] is True


def test_a_release_without_escrow_that_claims_no_privileged_basis_is_found() -> None:
    """Only a release logged on the privileged basis may skip escrow, even for a lawyer."""
    log = History().setup(order=True)
    log.add(A.CORRESPONDENT_VERIFIED, "staff:admin", [("account", "acct-1")], kind="lawyer")
    log.send(privileged=True)
    released = log.add(A.MESSAGE_RELEASED, "terminal:t-1",
                       [("message", MSG), ("detainee", "d-1")])  # fmt: skip
    finding = only_rule_at(log.replay(), released)
    assert finding.detail == "released without escrow on no privileged basis"


def test_a_transfer_moves_open_messages_and_a_handover_copies_the_mailbox_keys() -> None:
    log = History().setup()
    log.add(A.INSTITUTION_CREATED, "staff:admin", [("institution", "pi-b")])
    log.add(A.TERMINAL_CERTIFICATE_ISSUED, "staff:admin",
            [("terminal", "t-2"), ("institution", "pi-b")],
            fingerprint="e" * 64, expires_at_ms=str(NOW + HOUR))  # fmt: skip
    log.send()
    moves = [("detainee", "d-1"), ("institution", "pi-a"), ("institution_to", "pi-b")]
    log.add(A.DETAINEE_TRANSFERRED, "staff:admin", moves)
    log.add(A.ADMIN_ACTION, "terminal:t-1", [("detainee", "d-1"), ("institution", "pi-b")],
            operation="mailbox_handover", keys="1")  # fmt: skip
    log.escrow(then=A.MESSAGE_RELEASED)
    state = log.replay()
    # The escrow by pi-a's terminal after the move is a finding: pi-b holds the message now.
    assert {f.detail for f in rules(state)} == {"terminal:t-1 acted for pi-b, not its institution"}
    assert state.tables["messages"][MSG].values["institution_id"] == "pi-b"
    assert (
        state.tables["detainees"]["d-1"].values["status"] == common_pb2.DETAINEE_STATUS_TRANSFERRED
    )
    assert set(state.tables["mailbox_keys"]) == {f"{MAILBOX}/pi-a", f"{MAILBOX}/pi-b"}
    (handover,) = state.tables["handovers"].values()
    assert handover.values["completed_at_ms"] is not None


# --------------------------------------------------------------------------- forged histories


def test_release_from_the_queue_without_a_verdict_is_found() -> None:
    log = History().setup(order=True)
    log.send()
    log.escrow()
    forged = log.add(A.MESSAGE_RELEASED, "staff:jansen", [("message", MSG), ("detainee", "d-1")])
    found = rules(log.replay())
    assert {f.index for f in found} == {forged}
    assert any("without a matching verdict" in f.detail for f in found)
    assert any("never granted" in f.detail for f in found)


def test_a_verdict_by_a_screener_without_a_grant_is_found() -> None:
    log = History().setup(order=True)
    log.send()
    log.escrow()
    log.grant(who="jansen")
    log.staff("bakker", "screener", "pi-a")
    release = log.verdict(who="bakker")
    finding = only_rule_at(log.replay(), release)
    assert "staff:bakker decided on a message they were never granted" in finding.detail


def test_a_release_against_the_verdict_or_by_another_screener_is_found() -> None:
    log = History().setup(order=True)
    log.send()
    log.escrow()
    log.grant()
    subjects = [("message", MSG), ("detainee", "d-1")]
    log.add(A.VERDICT_RECORDED, "staff:jansen", subjects, verdict="VERDICT_WITHHOLD")
    flipped = log.add(A.MESSAGE_RELEASED, "staff:jansen", subjects)
    finding = only_rule_at(log.replay(), flipped)
    assert "without a matching verdict" in finding.detail

    log = History().setup(order=True)
    log.send()
    log.escrow()
    log.grant()
    log.grant(who="bakker")
    log.staff("bakker", "screener", "pi-a")
    log.add(A.VERDICT_RECORDED, "staff:jansen", subjects, verdict="VERDICT_RELEASE")
    other = log.add(A.MESSAGE_RELEASED, "staff:bakker", subjects)
    assert other in {f.index for f in rules(log.replay())}


def _withheld() -> History:
    """A message a screener withheld, lawfully."""
    log = History().setup(order=True)
    log.send()
    log.escrow()
    log.grant()
    log.verdict(release=False)
    return log


COMPLAINT = "BC 2026/1234"
SUBJECTS = [("message", MSG), ("detainee", "d-1")]


def test_a_release_after_a_complaint_replays_without_findings() -> None:
    log = _withheld()
    release = log.add(A.MESSAGE_RELEASED, "staff:jansen", SUBJECTS, complaint_reference=COMPLAINT)
    log.add(A.MESSAGE_DELIVERED, "terminal:t-1", SUBJECTS, delivery_reference="pi-a-2")
    state = log.replay()
    assert rules(state) == []
    row = state.tables["messages"][MSG]
    assert row.values["state"] == states.DELIVERED
    assert row.values["release_log_index"] == release
    assert row.values["verdict"] == common_pb2.VERDICT_WITHHOLD


def test_a_withheld_message_released_without_a_complaint_reference_is_found() -> None:
    log = _withheld()
    release = log.add(A.MESSAGE_RELEASED, "staff:jansen", SUBJECTS)
    finding = only_rule_at(log.replay(), release)
    assert "without a complaint reference" in finding.detail


def test_a_release_after_a_complaint_by_a_non_screener_is_found() -> None:
    log = _withheld()
    release = log.add(A.MESSAGE_RELEASED, "staff:visser", SUBJECTS, complaint_reference=COMPLAINT)
    finding = only_rule_at(log.replay(), release)
    assert "without the screener role" in finding.detail
    log = _withheld()
    release = log.add(A.MESSAGE_RELEASED, "terminal:t-1", SUBJECTS, complaint_reference=COMPLAINT)
    assert release in {f.index for f in rules(log.replay())}


def test_a_release_after_a_complaint_to_a_closed_mailbox_is_found() -> None:
    log = _withheld()
    log.add(A.DETAINEE_RELEASED, "staff:admin", [("detainee", "d-1")])
    release = log.add(A.MESSAGE_RELEASED, "staff:jansen", SUBJECTS, complaint_reference=COMPLAINT)
    finding = only_rule_at(log.replay(), release)
    assert "mailbox is closed" in finding.detail


def test_a_complaint_does_not_release_a_message_from_the_screening_queue() -> None:
    log = History().setup(order=True)
    log.send()
    log.escrow()
    release = log.add(A.MESSAGE_RELEASED, "staff:jansen", SUBJECTS, complaint_reference=COMPLAINT)
    found = rules(log.replay())
    assert {f.index for f in found} == {release}
    assert any("without a matching verdict" in f.detail for f in found)


def test_what_a_withholding_told_follows_the_regime_at_that_moment() -> None:
    log = History().setup(order=True)
    log.add(A.REGIME_POLICY_CHANGED, "staff:admin", [("regime", "regular")],
            policy="REGIME_POLICY_SCREEN_ON_ORDER", tell_relatives_reason="true")  # fmt: skip
    log.send()
    log.send(OTHER)
    log.escrow()
    log.escrow(OTHER)
    log.grant()
    log.grant(OTHER)
    log.verdict(release=False)
    log.add(A.REGIME_POLICY_CHANGED, "staff:admin", [("regime", "regular")],
            policy="REGIME_POLICY_SCREEN_ON_ORDER", tell_relatives_reason="false")  # fmt: skip
    log.verdict(OTHER, release=False)
    state = log.replay()
    assert rules(state) == []
    assert state.tables["messages"][MSG].values["withhold_reason_told"] is True
    assert state.tables["messages"][OTHER].values["withhold_reason_told"] is False
    assert state.tables["regimes"]["regular"].values["tell_relatives_reason"] is False


def test_a_regime_setting_the_log_cannot_read_is_found() -> None:
    log = History().setup()
    bad = log.add(A.REGIME_POLICY_CHANGED, "staff:admin", [("regime", "regular")],
                  policy="REGIME_POLICY_SCREEN_ON_ORDER", tell_relatives_reason="yes")  # fmt: skip
    finding = only_rule_at(log.replay(), bad)
    assert "tell_relatives_reason" in finding.detail


def test_routing_past_a_screening_order_is_found() -> None:
    log = History().setup(order=True)
    log.send()
    log.escrow(then=A.MESSAGE_RELEASED)
    finding = only_rule_at(log.replay(), len(log.events) - 1)
    assert "policy says QUEUED" in finding.detail


def test_escrow_of_privileged_mail_is_found() -> None:
    log = History().setup()
    log.add(A.CORRESPONDENT_VERIFIED, "staff:admin", [("account", "acct-1")], kind="lawyer")
    log.send(privileged=True)
    escrowed = log.add(A.MESSAGE_ESCROWED, "terminal:t-1", [("message", MSG), ("detainee", "d-1")],
                       escrow_digest="aa" * 32)  # fmt: skip
    found = rules(log.replay())
    assert escrowed in {f.index for f in found}
    assert any(f.detail == "privileged mail was escrowed" for f in found)


def test_a_grant_for_privileged_mail_is_found() -> None:
    log = History().setup(order=True)
    log.add(A.CORRESPONDENT_VERIFIED, "staff:admin", [("account", "acct-1")], kind="lawyer")
    log.send(privileged=True)
    grant = log.grant()
    finding = only_rule_at(log.replay(), grant)
    assert "privileged correspondence cannot be reviewed" in finding.detail


def test_a_grant_without_a_legal_basis_is_found() -> None:
    log = History().setup(order=False)
    log.send()
    log.escrow(then=A.MESSAGE_RELEASED)
    grant = log.grant()
    finding = only_rule_at(log.replay(), grant)
    assert "no legal basis" in finding.detail


def test_a_forbidden_transition_is_found() -> None:
    log = History().setup(order=True)
    log.send()
    log.escrow()
    skipped = log.add(A.MESSAGE_DELIVERED, "terminal:t-1", [("message", MSG), ("detainee", "d-1")],
                      delivery_reference="x")  # fmt: skip
    finding = only_rule_at(log.replay(), skipped)
    assert "cannot go from QUEUED to DELIVERED" in finding.detail


def test_own_retrospective_approval_is_found() -> None:
    log = History().setup()
    log.staff("jansen", "approver,screener", "pi-a")
    log.add(A.RETROSPECTIVE_REQUESTED, "staff:jansen",
            [("retrospective_request", "rr-1"), ("detainee", "d-1")],
            case_reference="OM 1", direction="DIRECTION_BOTH",
            period_start_ms=str(NOW - HOUR), period_end_ms=str(NOW + HOUR))  # fmt: skip
    own = log.add(A.RETROSPECTIVE_APPROVED, "staff:jansen",
                  [("retrospective_request", "rr-1"), ("detainee", "d-1")],
                  valid_until_ms=str(NOW + 24 * HOUR))  # fmt: skip
    finding = only_rule_at(log.replay(), own)
    assert "four eyes" in finding.detail


def test_a_retrospective_grant_needs_an_approval_by_someone_else() -> None:
    log = History().setup()
    log.send()
    log.escrow(then=A.MESSAGE_RELEASED)
    log.add(A.RETROSPECTIVE_REQUESTED, "staff:jansen",
            [("retrospective_request", "rr-1"), ("detainee", "d-1")],
            case_reference="OM 1", direction="DIRECTION_BOTH",
            period_start_ms=str(NOW - HOUR), period_end_ms=str(NOW + 24 * HOUR))  # fmt: skip
    early = log.grant(basis="LEGAL_BASIS_RETROSPECTIVE_REQUEST", retrospective_request="rr-1")
    log.add(A.RETROSPECTIVE_APPROVED, "staff:visser",
            [("retrospective_request", "rr-1"), ("detainee", "d-1")],
            valid_until_ms=str(NOW + 24 * HOUR))  # fmt: skip
    log.grant(basis="LEGAL_BASIS_RETROSPECTIVE_REQUEST", retrospective_request="rr-1")
    finding = only_rule_at(log.replay(), early)
    assert "does not cover this message now" in finding.detail


def test_staff_actions_need_the_role_and_the_institution() -> None:
    log = History().setup(order=True)
    log.send()
    log.escrow()
    by_approver = log.grant(who="visser")
    log.staff("elders", "screener", "pi-z")
    elsewhere = log.grant(who="elders")
    unrecorded = log.grant(who="nobody")
    found = rules(log.replay())
    by_index = {f.index: f.detail for f in found}
    assert set(by_index) == {by_approver, elsewhere, unrecorded}
    assert "without the screener role" in by_index[by_approver]
    assert "outside their institutions" in by_index[elsewhere]
    assert "no roles recorded" in by_index[unrecorded]


def test_acceptance_must_follow_an_approved_contact_and_a_published_key() -> None:
    log = History().setup()
    stranger = log.send(OTHER, account="acct-9", key="99" * 32)
    found = [f.detail for f in rules(log.replay()) if f.index == stranger]
    assert any("not approved" in d for d in found)
    assert any("not published for the sender" in d for d in found)


def test_a_privileged_flag_that_does_not_follow_the_correspondents_is_found() -> None:
    log = History().setup()
    claimed = log.send(privileged=True)
    finding = only_rule_at(log.replay(), claimed)
    assert "is not a verified correspondent" in finding.detail


def test_an_acceptance_in_a_blocked_regime_is_found() -> None:
    log = History().setup(regime="ebi")
    blocked = log.send()
    finding = only_rule_at(log.replay(), blocked)
    assert "not available" in finding.detail


def test_a_relative_revokes_only_a_device_of_their_own() -> None:
    log = History().setup()
    log.add(A.KEY_RECORD_PUBLISHED, "relative:acct-2",
            [("account", "acct-2"), ("key", LAWYER_DEVICE)], purpose="relative_device")  # fmt: skip
    own = log.add(A.KEY_REVOKED, "relative:acct-2", [("key", LAWYER_DEVICE)])
    others = log.add(A.KEY_REVOKED, "relative:acct-2", [("key", DEVICE)])
    mailbox = log.add(A.KEY_REVOKED, "relative:acct-1", [("key", MAILBOX)])
    found = {f.index: f.detail for f in rules(log.replay())}
    assert own not in found
    assert set(found) == {others, mailbox}
    assert all("not a device of their own" in d for d in found.values())


def test_a_revoked_terminal_cannot_act() -> None:
    log = History().setup()
    log.send()
    log.add(A.TERMINAL_CERTIFICATE_REVOKED, "staff:admin",
            [("terminal", "t-1"), ("institution", "pi-a")])  # fmt: skip
    log.escrow(then=A.MESSAGE_RELEASED)
    found = rules(log.replay())
    assert found
    assert all("not an issued, unrevoked terminal" in f.detail for f in found)


# --------------------------------------------------------------------------- comparison


def _compare(table: str, stored: dict[str, dict[str, object]]) -> list[StateFinding]:
    log = History().setup(order=True)
    log.send()
    log.escrow()
    state = log.replay()
    return list(compare_table(table, state.tables.get(table, {}), stored.items()))


def _stored_message(**changes: object) -> dict[str, dict[str, object]]:
    log = History().setup(order=True)
    log.send()
    log.escrow()
    row = dict(log.replay().tables["messages"][MSG].values)
    row["sender_key_id"] = bytes.fromhex(str(row["sender_key_id"]))
    row["envelope_digest"] = bytes.fromhex(str(row["envelope_digest"]))
    row.update(changes)
    return {MSG: row}


def test_stored_rows_equal_to_the_replay_give_no_finding() -> None:
    assert _compare("messages", _stored_message()) == []


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("state", states.RELEASED),
        ("privileged", True),
        ("institution_id", "pi-z"),
        ("escrow_digest", "bb" * 32),
        ("sender_key_id", bytes(32)),
        ("release_log_index", 3),
    ],
)
def test_an_edited_column_names_the_table_row_column_and_entry(column: str, value: object) -> None:
    (finding,) = _compare("messages", _stored_message(**{column: value}))
    assert finding.kind is FindingKind.COLUMN_DIFFERS
    assert (finding.table, finding.row, finding.column) == ("messages", MSG, column)
    assert finding.index is not None


def test_a_deleted_row_and_a_forged_row_are_found() -> None:
    (missing,) = _compare("messages", {})
    assert missing.kind is FindingKind.ROW_MISSING
    assert missing.row == MSG
    forged = _compare("messages", {**_stored_message(), OTHER: {"state": states.RELEASED}})
    assert [(f.kind, f.row) for f in forged] == [(FindingKind.ROW_UNLOGGED, OTHER)]


def test_a_pending_contact_needs_no_log_entry_but_an_approved_one_does() -> None:
    pending: dict[str, object] = {"status": common_pb2.CONTACT_STATUS_REQUESTED}
    approved: dict[str, object] = {"status": common_pb2.CONTACT_STATUS_APPROVED}
    stored: dict[str, dict[str, object]] = {
        "ct-1": {**approved, "account_id": "acct-1", "detainee_id": "d-1"}
    }
    assert _compare("contacts", {**stored, "ct-2": pending}) == []
    (forged,) = _compare("contacts", {**stored, "ct-3": approved})
    assert (forged.kind, forged.row) == (FindingKind.ROW_UNLOGGED, "ct-3")


# --------------------------------------------------------------------------- escrow audit


def _escrowed_day(count: int) -> tuple[History, list[str]]:
    log = History().setup()
    ids = [f"{n:02x}" * 16 for n in range(1, count + 1)]
    for message in ids:
        log.send(message)
        log.escrow(message, then=A.MESSAGE_RELEASED)
    log.staff("kok", "escrow-auditor", "*")
    return log, ids


def _escrow_grant(log: History, message: str, size: int, count: int) -> int:
    return log.add(A.REVIEW_GRANTED, "staff:kok",
                   [("message", message), ("grant", f"ga-{len(log.events)}"), ("detainee", "d-1")],
                   legal_basis="LEGAL_BASIS_ESCROW_AUDIT", key_server_entity="ent-kok",
                   sample_tree_size=str(size), sample_size=str(count))  # fmt: skip


def test_an_escrow_audit_grant_must_be_for_a_message_the_head_drew() -> None:
    from sealpost.crypto.sample import escrow_audit_sample  # noqa: PLC0415

    log, ids = _escrowed_day(6)
    size, root = len(log.events), bytes(range(32))
    (drawn,) = escrow_audit_sample(root, size, len(ids), 1)
    lawful = _escrow_grant(log, ids[drawn], size, 1)
    chosen = _escrow_grant(log, ids[(drawn + 1) % len(ids)], size, 1)
    state = replay(log.indexed(), {size: root})
    finding = only_rule_at(state, chosen)
    assert "did not draw" in finding.detail
    assert lawful not in {f.index for f in rules(state)}
    assert state.tables["messages"][ids[0]].values["escrow_log_index"] is not None


def test_an_escrow_audit_grant_needs_a_stored_head_and_the_role() -> None:
    log, ids = _escrowed_day(2)
    size = len(log.events)
    no_head = _escrow_grant(log, ids[0], size, 2)
    assert "without a stored signed head" in only_rule_at(log.replay(), no_head).detail
    log.staff("kok", "auditor", "*")
    wrong_role = _escrow_grant(log, ids[0], size, 2)
    found = {f.index: f.detail for f in rules(replay(log.indexed(), {size: bytes(32)}))}
    assert "without the escrow-auditor role" in found[wrong_role]
