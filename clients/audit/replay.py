"""Recompute, from the transparency log alone, every table that decides access or delivery.

SPEC P12: the state follows the log. ``replay`` walks decoded log events in index order
and rebuilds what the gateway's tables must hold (messages and their states, detainees'
placements and regimes, contacts, privileged correspondents, screening orders, grants,
retrospective requests, terminals, key records, mailbox keys, staff roles), checking on
the way the rules the log itself must obey: only transitions the state machine allows,
routing after escrow as policy decides, no release from the screening queue without a
verdict by a screener who held a grant, no escrow or grant for privileged mail, four
eyes on retrospective access, every staff action by a member holding the role.
``compare`` then holds the database's rows against the recomputed ones.

Pure code: events and rows in, findings out. The rules are the gateway's own
(gateway/states.py, gateway/policy.py, gateway/authz.py), called, not copied.
docs/audit.md lists what is recomputed and what each finding means.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sealpost.clients._text import enum_word
from sealpost.crypto.errors import CryptoError
from sealpost.crypto.logentry import (
    COMPLAINT_REFERENCE_FIELD,
    ENVELOPE_DIGEST_FIELD,
    ESCROW_DIGEST_FIELD,
    ROW_RETENTION_OPERATION,
    TELL_RELATIVES_REASON_FIELD,
    WATCH_LIST_OPERATION,
    LogAction,
    LogEvent,
)
from sealpost.crypto.sample import escrow_audit_sample
from sealpost.gateway import authz, policy, states
from sealpost.gateway.errors import FailedPrecondition, PermissionDenied
from sealpost.gateway.principals import ALL_INSTITUTIONS, STAFF_ROLES, Role
from sealpost.v1 import common_pb2, keys_pb2

#: The legal basis of an escrow audit's grants, and the RPC that makes them.
ESCROW_AUDIT_BASIS: Final = "LEGAL_BASIS_ESCROW_AUDIT"
ESCROW_AUDIT_METHOD: Final = "/sealpost.v1.AuditService/GrantEscrowAudit"
#: The RPC that releases a withheld message after a complaint (a MESSAGE_RELEASED entry
#: with a complaint reference).
COMPLAINT_RELEASE_METHOD: Final = "/sealpost.v1.ReviewService/ReleaseWithheld"
#: Extra fields of an escrow-audit grant: the size of the head that drew the sample, and
#: how many messages it drew.
SAMPLE_TREE_SIZE_FIELD: Final = "sample_tree_size"
SAMPLE_SIZE_FIELD: Final = "sample_size"
#: The RPC that changes a triage watch list (an ADMIN_ACTION entry, WATCH_LIST_OPERATION).
WATCH_LIST_METHOD: Final = "/sealpost.v1.ReviewService/SetWatchList"
#: The ADMIN_ACTION operation by which the gateway records a staff member's roles.
STAFF_ROLES_OPERATION: Final = "staff_roles"
#: The ADMIN_ACTION operation of a completed mailbox handover (older leaves say ``kind``).
HANDOVER_OPERATION: Final = "mailbox_handover"
GATEWAY_ACTOR: Final = "gateway"
#: A relative's actor in the log is this and their account id.
RELATIVE_ACTOR: Final = "relative:"

_A = LogAction
_REV = "/sealpost.v1.ReviewService/"
_ADM = "/sealpost.v1.AdminService/"
#: The RPC whose handler writes each staff event: its rule in gateway/authz.py says which
#: roles may have made it, and whether national scope was needed.
ACTION_METHODS: Final[dict[LogAction, str]] = {
    _A.REVIEW_GRANTED: _REV + "GrantAccess",
    _A.VERDICT_RECORDED: _REV + "RecordVerdict",
    _A.MESSAGE_RELEASED: _REV + "RecordVerdict",
    _A.MESSAGE_WITHHELD: _REV + "RecordVerdict",
    _A.RETROSPECTIVE_REQUESTED: _REV + "FileRetrospectiveRequest",
    _A.RETROSPECTIVE_APPROVED: _REV + "DecideRetrospectiveRequest",
    _A.RETROSPECTIVE_REJECTED: _REV + "DecideRetrospectiveRequest",
    _A.INSTITUTION_CREATED: _ADM + "CreateInstitution",
    _A.DETAINEE_INTAKE: _ADM + "IntakeDetainee",
    _A.DETAINEE_TRANSFERRED: _ADM + "TransferDetainee",
    _A.DETAINEE_RELEASED: _ADM + "ReleaseDetainee",
    _A.MESSAGE_REJECTED: _ADM + "ReleaseDetainee",
    _A.DETAINEE_REGIME_CHANGED: _ADM + "SetDetaineeRegime",
    _A.SCREENING_ORDER_CREATED: _ADM + "CreateScreeningOrder",
    _A.SCREENING_ORDER_ENDED: _ADM + "EndScreeningOrder",
    _A.CONTACT_APPROVED: _ADM + "DecideContact",
    _A.CONTACT_REJECTED: _ADM + "DecideContact",
    _A.CONTACT_REVOKED: _ADM + "DecideContact",
    _A.CORRESPONDENT_VERIFIED: _ADM + "VerifyCorrespondent",
    _A.CORRESPONDENT_REVOKED: _ADM + "RevokeCorrespondent",
    _A.TERMINAL_CERTIFICATE_ISSUED: _ADM + "IssueTerminalCertificate",
    _A.TERMINAL_CERTIFICATE_REVOKED: _ADM + "RevokeTerminal",
    _A.KEY_REVOKED: _ADM + "RevokeKey",
    _A.ESCROW_KEY_ROTATED: _ADM + "RecordKeyEvent",
    _A.RETENTION_APPLIED: _ADM + "RecordKeyEvent",
    _A.ADMIN_ACTION: _ADM + "RecordKeyEvent",
    _A.REGIME_POLICY_CHANGED: _ADM + "SetRegime",
}

#: Message events and the state each moves a message to.
_MESSAGE_TARGETS: Final[dict[LogAction, states.State]] = {
    _A.MESSAGE_ESCROWED: states.ESCROWED,
    _A.MESSAGE_QUEUED: states.QUEUED,
    _A.MESSAGE_RELEASED: states.RELEASED,
    _A.MESSAGE_WITHHELD: states.WITHHELD,
    _A.MESSAGE_DELIVERED: states.DELIVERED,
    _A.MESSAGE_REJECTED: states.REJECTED,
}
_CONTACT_STATUS: Final[dict[LogAction, int]] = {
    _A.CONTACT_APPROVED: common_pb2.CONTACT_STATUS_APPROVED,
    _A.CONTACT_REJECTED: common_pb2.CONTACT_STATUS_REJECTED,
    _A.CONTACT_REVOKED: common_pb2.CONTACT_STATUS_REVOKED,
}
_CONTACT_FROM: Final[dict[int, int]] = {
    common_pb2.CONTACT_STATUS_APPROVED: common_pb2.CONTACT_STATUS_REQUESTED,
    common_pb2.CONTACT_STATUS_REJECTED: common_pb2.CONTACT_STATUS_REQUESTED,
    common_pb2.CONTACT_STATUS_REVOKED: common_pb2.CONTACT_STATUS_APPROVED,
}
#: Message states in which a transfer moves a message to the new institution.
_MOVES_WITH_TRANSFER: Final = frozenset(
    {states.ACCEPTED, states.ESCROWED, states.QUEUED, states.RELEASED}
)
_DIRECTIONS: Final = {"inbound": policy.INBOUND, "outbound": policy.OUTBOUND}


class FindingKind(enum.StrEnum):
    """What kind of difference between the log and the state a finding is."""

    #: The log says the row exists; the database does not have it (deleted).
    ROW_MISSING = "row-missing"
    #: The database has a row no log entry accounts for (forged).
    ROW_UNLOGGED = "row-unlogged"
    #: A column differs from what the log says (edited).
    COLUMN_DIFFERS = "column-differs"
    #: The log itself records something its rules forbid.
    RULE_BROKEN = "rule-broken"


@dataclass(frozen=True)
class StateFinding:
    """One difference: which table and row, what the database and the log say, which entry."""

    kind: FindingKind
    detail: str
    table: str = ""
    row: str = ""
    column: str = ""
    database: str = ""
    log: str = ""
    #: The log entry that contradicts the row (or breaks a rule); None when no entry does.
    index: int | None = None

    def line(self) -> str:
        """One human-readable line."""
        where = f"{self.table} {self.row}".strip()
        entry = f" (log entry {self.index})" if self.index is not None else ""
        if self.kind is FindingKind.COLUMN_DIFFERS:
            return (
                f"{where}: {self.column} is {self.database} in the database, "
                f"{self.log} in the log{entry}"
            )
        return f"{where + ': ' if where else ''}{self.detail}{entry}"

    def to_json(self) -> dict[str, Any]:
        """The finding as a JSON object."""
        return {
            "kind": self.kind.value,
            "table": self.table,
            "row": self.row,
            "column": self.column,
            "database": self.database,
            "log": self.log,
            "index": self.index,
            "detail": self.detail,
        }


# --------------------------------------------------------------------------- recomputed rows


@dataclass
class Row:
    """A recomputed row: its columns, and the log entry that last set them."""

    values: dict[str, object]
    index: int


@dataclass
class _Detainee:
    institution: str
    regime: str
    status: int


@dataclass
class _Message:
    message_id: bytes
    direction: int
    detainee: str
    account: str
    institution: str
    privileged: bool
    state: states.State
    accepted_at_ms: int
    #: Staff actors that were granted access, and the verdict waiting for its state event.
    granted: set[str] = field(default_factory=set)
    verdict: tuple[str, int] | None = None


@dataclass
class _Order:
    detainee: str
    window: policy.OrderWindow
    order_id: str


@dataclass
class _Retrospective:
    detainee: str
    institution: str
    requested_by: str
    window: policy.RetrospectiveWindow


@dataclass
class _Staff:
    roles: frozenset[Role]
    institutions: frozenset[str]

    def covers(self, institution: str) -> bool:
        return ALL_INSTITUTIONS in self.institutions or institution in self.institutions


@dataclass
class Replay:
    """The state recomputed from the log so far, and the rules it found broken."""

    tables: dict[str, dict[str, Row]] = field(default_factory=dict)
    findings: list[StateFinding] = field(default_factory=list)
    _detainees: dict[str, _Detainee] = field(default_factory=dict)
    _regimes: dict[str, int] = field(default_factory=dict)
    #: Regimes that tell relatives the reason category of a withholding.
    _telling: set[str] = field(default_factory=set)
    _messages: dict[str, _Message] = field(default_factory=dict)
    _orders: dict[str, list[_Order]] = field(default_factory=dict)
    _orders_by_id: dict[str, _Order] = field(default_factory=dict)
    _retrospectives: dict[str, _Retrospective] = field(default_factory=dict)
    _contacts: dict[tuple[str, str], int] = field(default_factory=dict)
    _correspondents: set[str] = field(default_factory=set)
    _terminals: dict[str, tuple[str, bool]] = field(default_factory=dict)
    _keys: dict[str, tuple[int, str, bool]] = field(default_factory=dict)
    _staff: dict[str, _Staff] = field(default_factory=dict)
    #: Mailbox keys each institution holds, per detainee.
    _held: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    #: (entry index, message) of every MESSAGE_ESCROWED, in log order: escrow audits draw
    #: their sample from it.
    _escrowed: list[tuple[int, str]] = field(default_factory=list)
    _escrow_digests: dict[str, str] = field(default_factory=dict)
    #: The root of each stored signed head by its size (the log check verifies the heads).
    head_roots: Mapping[int, bytes] = field(default_factory=dict)
    events: int = 0

    # ----------------------------------------------------------------- bookkeeping

    def _table(self, name: str) -> dict[str, Row]:
        return self.tables.setdefault(name, {})

    def _set(self, table: str, key: str, index: int, **values: object) -> None:
        row = self._table(table).get(key)
        if row is None:
            self._table(table)[key] = Row(dict(values), index)
        else:
            row.values.update(values)
            row.index = index

    def _rule(self, index: int, detail: str, *, table: str = "", row: str = "") -> None:
        self.findings.append(
            StateFinding(FindingKind.RULE_BROKEN, detail, table=table, row=row, index=index)
        )

    def message_institution(self, message_id: str) -> str | None:
        """The institution a message (hex id) belongs to as the log stands so far."""
        message = self._messages.get(message_id)
        return None if message is None else message.institution

    # ----------------------------------------------------------------- the walk

    def add(self, index: int, event: LogEvent) -> None:
        """Apply one event (in index order)."""
        self.events += 1
        handler = _HANDLERS.get(event.action)
        subjects = _subjects(event)
        if event.actor.startswith("staff:") and event.action in ACTION_METHODS:
            self._check_staff(index, event, subjects)
        if handler is not None:
            handler(self, index, event, subjects)

    def _institutions_touched(self, event: LogEvent, subjects: Mapping[str, str]) -> set[str]:
        retro = self._retrospectives.get(subjects.get("retrospective_request", ""))
        if retro is not None:
            return {retro.institution}  # the institution the request was filed at
        touched = {v for k, v in event.subjects if k in ("institution", "institution_to")}
        detainee = self._detainees.get(subjects.get("detainee", ""))
        if detainee is not None:
            touched.add(detainee.institution)
        message = self._messages.get(subjects.get("message", ""))
        if message is not None:
            touched.add(message.institution)
        terminal = self._terminals.get(subjects.get("terminal", ""))
        if terminal is not None:
            touched.add(terminal[0])
        return touched

    def _check_staff(self, index: int, event: LogEvent, subjects: Mapping[str, str]) -> None:
        name = event.actor.removeprefix("staff:")
        if event.action is _A.ADMIN_ACTION and event.extra.get("operation") == (
            STAFF_ROLES_OPERATION
        ):
            return
        method = ACTION_METHODS[event.action]
        if event.extra.get("legal_basis") == ESCROW_AUDIT_BASIS:
            method = ESCROW_AUDIT_METHOD
        if event.action is _A.MESSAGE_RELEASED and COMPLAINT_REFERENCE_FIELD in event.extra:
            method = COMPLAINT_RELEASE_METHOD
        if event.action is _A.ADMIN_ACTION and event.extra.get("operation") == (
            WATCH_LIST_OPERATION
        ):
            method = WATCH_LIST_METHOD
        rule = authz.RULES[method]
        needed = rule.roles & STAFF_ROLES
        member = self._staff.get(name)
        if member is None:
            self._rule(index, f"{event.actor} acted with no roles recorded in the log")
            return
        if not member.roles & needed:
            wanted = " or ".join(sorted(role.value for role in needed))
            self._rule(
                index, f"{event.actor} recorded {event.action.name} without the {wanted} role"
            )
        if rule.target is authz.Target.NATIONAL:
            if ALL_INSTITUTIONS not in member.institutions:
                self._rule(
                    index, f"{event.actor} recorded {event.action.name} without national scope"
                )
            return
        for institution in sorted(self._institutions_touched(event, subjects)):
            if not member.covers(institution):
                self._rule(
                    index,
                    f"{event.actor} recorded {event.action.name} for {institution}, "
                    "outside their institutions",
                )

    def _terminal_of(self, actor: str) -> str | None:
        """The institution of a terminal actor that is issued and not revoked."""
        terminal = self._terminals.get(actor.removeprefix("terminal:"))
        if not actor.startswith("terminal:") or terminal is None or terminal[1]:
            return None
        return terminal[0]

    def _check_terminal(self, index: int, event: LogEvent, institution: str) -> None:
        held_by = self._terminal_of(event.actor)
        if held_by is None:
            self._rule(index, f"{event.actor} is not an issued, unrevoked terminal")
        elif held_by != institution:
            self._rule(index, f"{event.actor} acted for {institution}, not its institution")

    # ----------------------------------------------------------------- institutions, regimes

    def _institution_created(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        self._set("institutions", s["institution"], index)

    def _regime(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        value = _enum(common_pb2.RegimePolicy, event.extra.get("policy", ""))
        if value is None:
            self._rule(index, "a regime change names no known policy")
            return
        self._regimes[s["regime"]] = value
        tell = event.extra.get(TELL_RELATIVES_REASON_FIELD, "false")
        if tell not in ("true", "false"):
            self._rule(index, f"a regime change says {TELL_RELATIVES_REASON_FIELD}={tell!r}")
        if tell == "true":
            self._telling.add(s["regime"])
        else:
            self._telling.discard(s["regime"])
        self._set("regimes", s["regime"], index, policy=value, tell_relatives_reason=tell == "true")

    # ----------------------------------------------------------------- detainees

    def _set_detainee(self, index: int, detainee_id: str) -> None:
        d = self._detainees[detainee_id]
        self._set(
            "detainees",
            detainee_id,
            index,
            institution_id=d.institution,
            regime=d.regime,
            status=d.status,
        )

    def _intake(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        regime = event.extra.get("regime", "regular")
        self._detainees[s["detainee"]] = _Detainee(s["institution"], regime, policy.HELD)
        self._set_detainee(index, s["detainee"])

    def _transfer(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        detainee = self._detainees.get(s["detainee"])
        target = s.get("institution_to", "")
        if detainee is None or not target:
            self._rule(index, "a transfer of an unknown detainee, or to no institution")
            return
        source = detainee.institution
        detainee.institution = target
        detainee.status = policy.TRANSFERRED
        if "regime" in event.extra:
            detainee.regime = event.extra["regime"]
        self._set_detainee(index, s["detainee"])
        for message in self._messages.values():
            if message.detainee == s["detainee"] and message.state in _MOVES_WITH_TRANSFER:
                message.institution = target
                self._set("messages", message.message_id.hex(), index, institution_id=target)
        key = f"{s['detainee']}/{source}/{target}/{event.time_ms}"
        self._set("handovers", key, index, completed_at_ms=None)

    def _released_detainee(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        detainee = self._detainees.get(s["detainee"])
        if detainee is None:
            self._rule(index, "a release of an unknown detainee")
            return
        detainee.status = policy.RELEASED_DETAINEE
        self._set_detainee(index, s["detainee"])

    def _regime_changed(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        detainee = self._detainees.get(s["detainee"])
        if detainee is None:
            self._rule(index, "a regime change of an unknown detainee")
            return
        detainee.regime = event.extra.get("regime", "")
        self._set_detainee(index, s["detainee"])

    # ----------------------------------------------------------------- orders

    def _order_created(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        ground = _enum(common_pb2.LegalGround, event.extra.get("legal_ground", ""))
        direction = _enum(common_pb2.Direction, event.extra.get("direction", ""))
        starts = _int(event.extra.get("starts_at_ms"))
        ends = _int(event.extra.get("ends_at_ms"))
        if None in (ground, direction, starts, ends):
            self._rule(index, "a screening order without its ground, direction or period")
            return
        assert direction is not None
        assert starts is not None
        assert ends is not None
        order = _Order(s["detainee"], policy.OrderWindow(direction, starts, ends), s["order"])
        self._orders.setdefault(s["detainee"], []).append(order)
        self._orders_by_id[s["order"]] = order
        self._set(
            "screening_orders",
            s["order"],
            index,
            detainee_id=s["detainee"],
            legal_ground=ground,
            direction=direction,
            starts_at_ms=starts,
            ends_at_ms=ends,
            ordered_by=event.actor,
            created_at_ms=event.time_ms,
            ended_early_at_ms=None,
        )

    def _order_ended(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        order = self._orders_by_id.get(s["order"])
        if order is None:
            self._rule(index, "an unknown screening order ended", table="screening_orders")
            return
        w = order.window
        order.window = policy.OrderWindow(w.direction, w.starts_at_ms, w.ends_at_ms, event.time_ms)
        self._set("screening_orders", s["order"], index, ended_early_at_ms=event.time_ms)

    def _order_windows(self, detainee_id: str) -> list[policy.OrderWindow]:
        return [order.window for order in self._orders.get(detainee_id, [])]

    # ----------------------------------------------------------------- contacts, correspondents

    def _contact(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        status = _CONTACT_STATUS[event.action]
        pair = (s.get("account", ""), s.get("detainee", ""))
        previous = self._contacts.get(pair, common_pb2.CONTACT_STATUS_REQUESTED)
        if previous != _CONTACT_FROM[status]:
            self._rule(index, f"{event.action.name} of a contact that was not in the right state")
        self._contacts[pair] = status
        self._set(
            "contacts",
            s.get("contact", ""),
            index,
            account_id=pair[0],
            detainee_id=pair[1],
            status=status,
            decided_by=event.actor,
            decided_at_ms=event.time_ms,
        )

    def _correspondent_verified(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        self._correspondents.add(s["account"])
        self._set(
            "correspondents",
            s["account"],
            index,
            kind=event.extra.get("kind", ""),
            verified_by=event.actor,
            verified_at_ms=event.time_ms,
            revoked_at_ms=None,
            revoked_by=None,
        )

    def _correspondent_revoked(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        if s["account"] not in self._correspondents:
            self._rule(index, "a revocation of a correspondent who is not verified")
        self._correspondents.discard(s["account"])
        self._set(
            "correspondents",
            s["account"],
            index,
            revoked_at_ms=event.time_ms,
            revoked_by=event.actor,
        )

    # ----------------------------------------------------------------- terminals and keys

    def _terminal_issued(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        self._terminals[s["terminal"]] = (s["institution"], False)
        self._set(
            "terminals",
            s["terminal"],
            index,
            institution_id=s["institution"],
            fingerprint=event.extra.get("fingerprint", ""),
            issued_at_ms=event.time_ms,
            expires_at_ms=_int(event.extra.get("expires_at_ms")),
            revoked_at_ms=None,
        )

    def _terminal_revoked(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        known = self._terminals.get(s["terminal"])
        if known is None:
            self._rule(index, "a revocation of an unknown terminal")
            return
        self._terminals[s["terminal"]] = (known[0], True)
        self._set("terminals", s["terminal"], index, revoked_at_ms=event.time_ms)

    def _key_published(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        purpose = _enum(
            keys_pb2.KeyPurpose, "KEY_PURPOSE_" + event.extra.get("purpose", "").upper()
        )
        owner = [(k, v) for k, v in event.subjects if k != "key"]
        if purpose is None or len(owner) != 1 or "key" not in s:
            self._rule(index, "a key publication without its purpose, key or owner")
            return
        kind, subject = owner[0]
        key = s["key"]
        self._keys[key] = (purpose, subject, False)
        self._set("key_records", key, index, purpose=purpose, subject=subject, revoked_at_ms=None)
        succession = event.extra.get("succession")
        if purpose == keys_pb2.KEY_PURPOSE_DIRECTORY and succession:
            self._set(
                "directory_successions",
                succession,
                index,
                previous_key_id=event.extra.get("succeeds", ""),
                next_key_id=key,
            )
        if kind == "account":
            self._set("accounts", subject, index)
        if purpose == keys_pb2.KEY_PURPOSE_MAILBOX:
            institution = self._terminal_of(event.actor)
            if institution is None:
                self._rule(index, f"a mailbox key published by {event.actor}, not a terminal")
                return
            self._hold(index, key, institution, subject)

    def _hold(self, index: int, key: str, institution: str, detainee_id: str) -> None:
        self._held.setdefault((institution, detainee_id), set()).add(key)
        self._set("mailbox_keys", f"{key}/{institution}", index, detainee_id=detainee_id)

    def _key_revoked(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        known = self._keys.get(s["key"])
        if known is None:
            self._rule(index, "a revocation of a key never published")
            return
        if event.actor.startswith(RELATIVE_ACTOR) and known[:2] != (
            keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE,
            event.actor.removeprefix(RELATIVE_ACTOR),
        ):
            self._rule(index, "a relative revoked a key that is not a device of their own")
        self._keys[s["key"]] = (known[0], known[1], True)
        self._set("key_records", s["key"], index, revoked_at_ms=event.time_ms)

    def _usable_key(self, key: str, purpose: int, subject: str) -> bool:
        known = self._keys.get(key)
        return known is not None and known[:2] == (purpose, subject) and not known[2]

    # ----------------------------------------------------------------- administrative records

    def _admin_action(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        operation = event.extra.get("operation") or event.extra.get("kind", "")
        if operation == STAFF_ROLES_OPERATION:
            self._staff_roles(index, event, s)
        elif operation == HANDOVER_OPERATION:
            self._handover(index, event, s)
        elif operation == WATCH_LIST_OPERATION:
            self._watch_list(index, event, s)
        elif operation == ROW_RETENTION_OPERATION:
            self._row_retention(index, event)

    def _row_retention(self, index: int, event: LogEvent) -> None:
        """The gateway deleted settled messages accepted before a cutoff: drop them too."""
        if event.actor != GATEWAY_ACTOR:
            self._rule(index, f"rows deleted for retention by {event.actor}, not the gateway")
            return
        before = _int(event.extra.get("before_ms"))
        if before is None:
            self._rule(index, "a retention without its cutoff")
            return
        gone = {
            key
            for key, m in self._messages.items()
            if m.accepted_at_ms < before and m.state in states.SETTLED
        }
        for key in gone:
            del self._messages[key]
            self._table("messages").pop(key, None)
        grants = self._table("grants")
        for grant_id in [g for g, row in grants.items() if row.values["message_id"] in gone]:
            del grants[grant_id]
        if _int(event.extra.get("messages")) != len(gone):
            self._rule(
                index,
                f"a retention says it deleted {event.extra.get('messages')} messages; "
                f"the log has {len(gone)} settled before its cutoff",
            )

    def _watch_list(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        institution, detainee = s.get("institution", ""), s.get("detainee", "")
        key = f"{institution}/{detainee}"
        before = self._table("watch_lists").get(key)
        version = _int(event.extra.get("version"))
        expected = 1 if before is None else int(str(before.values["version"])) + 1
        if version != expected:
            self._rule(index, f"watch list {key} changed to version {version}, not {expected}")
        self._set(
            "watch_lists",
            key,
            index,
            version=version,
            sealed_digest=event.extra.get("sealed_digest", ""),
            updated_by=event.actor,
            updated_at_ms=event.time_ms,
            log_index=index,
        )

    def _staff_roles(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        name = s.get("staff", "")
        roles: set[Role] = set()
        for value in filter(None, event.extra.get("roles", "").split(",")):
            try:
                roles.add(Role(value))
            except ValueError:
                self._rule(index, f"staff roles name an unknown role {value!r}")
        institutions = frozenset(filter(None, event.extra.get("institutions", "").split(",")))
        self._staff[name] = _Staff(frozenset(roles), institutions)
        self._set(
            "staff_members",
            name,
            index,
            subject=event.extra.get("key_server_entity", ""),
            roles=event.extra.get("roles", ""),
            institutions=event.extra.get("institutions", ""),
            recorded_at_ms=event.time_ms,
            log_index=index,
        )

    def _handover(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        source = self._terminal_of(event.actor)
        detainee = s.get("detainee", "")
        target = s.get("institution", "")
        if source is None:
            self._rule(index, f"a mailbox handover by {event.actor}, not a terminal")
            return
        for key in sorted(self._held.get((source, detainee), set())):
            self._hold(index, key, target, detainee)
        for key, row in self._table("handovers").items():
            d, from_, _to, _at = key.split("/", 3)
            if d == detainee and from_ == source and row.values["completed_at_ms"] is None:
                row.values["completed_at_ms"] = event.time_ms
                row.index = index

    # ----------------------------------------------------------------- messages

    def _accepted(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        message_id = s.get("message", "")
        direction = _DIRECTIONS.get(event.extra.get("direction", ""))
        detainee = self._detainees.get(s.get("detainee", ""))
        account = s.get("account", "")
        if not account and event.actor.startswith("relative:"):
            account = event.actor.removeprefix("relative:")
        privileged = event.extra.get("privileged")
        if direction is None or detainee is None or privileged not in ("true", "false"):
            self._rule(
                index,
                "an acceptance without direction, privilege or a known detainee",
                table="messages",
                row=message_id,
            )
            return
        if message_id in self._messages:
            self._rule(index, "a message accepted twice", table="messages", row=message_id)
            return
        message = _Message(
            message_id=bytes.fromhex(message_id),
            direction=direction,
            detainee=s["detainee"],
            account=account,
            institution=detainee.institution,
            privileged=privileged == "true",
            state=states.ACCEPTED,
            accepted_at_ms=event.time_ms,
        )
        self._messages[message_id] = message
        self._check_acceptance(index, event, message, detainee)
        self._set(
            "messages",
            message_id,
            index,
            direction=direction,
            detainee_id=message.detainee,
            institution_id=message.institution,
            account_id=account,
            sender_key_id=event.extra.get("sender_key", ""),
            envelope_digest=event.extra.get(ENVELOPE_DIGEST_FIELD, ""),
            privileged=message.privileged,
            state=states.ACCEPTED,
            accepted_at_ms=event.time_ms,
            state_changed_at_ms=event.time_ms,
            queued_at_ms=None,
            escrow_digest=None,
            verdict=None,
            withhold_reason=None,
            verdict_by=None,
            delivered_at_ms=None,
            delivery_reference=None,
            log_index=index,
            release_log_index=None,
            escrow_log_index=None,
            withhold_reason_told=None,
        )

    def _check_acceptance(
        self, index: int, event: LogEvent, message: _Message, detainee: _Detainee
    ) -> None:
        row = message.message_id.hex()
        try:
            policy.check_send(
                detainee_status=detainee.status,
                regime_policy=self._regimes.get(detainee.regime, policy.BLOCKED),
                contact_status=self._contacts.get((message.account, message.detainee)),
                privileged=message.privileged,
            )
        except FailedPrecondition as exc:
            self._rule(index, f"accepted although {exc}", table="messages", row=row)
        if message.privileged != (message.account in self._correspondents):
            self._rule(
                index,
                "privileged is recorded "
                f"{'true' if message.privileged else 'false'}, but the account "
                f"{'is not' if message.privileged else 'is'} a verified correspondent",
                table="messages",
                row=row,
            )
        sender = event.extra.get("sender_key", "")
        if message.direction == policy.INBOUND:
            if event.actor != f"relative:{message.account}":
                self._rule(index, "accepted from another account", table="messages", row=row)
            usable = self._usable_key(sender, keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE, message.account)
        else:
            self._check_terminal(index, event, message.institution)
            usable = self._usable_key(sender, keys_pb2.KEY_PURPOSE_MAILBOX, message.detainee)
        if not usable:
            self._rule(
                index, "signed by a key not published for the sender", table="messages", row=row
            )

    def _message_event(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        key = s.get("message", "")
        message = self._messages.get(key)
        if message is None:
            self._rule(index, f"{event.action.name} of an unknown message", row=key)
            return
        target = _MESSAGE_TARGETS[event.action]
        try:
            if message.state == states.WITHHELD:
                states.release_after_complaint(message.state, privileged=message.privileged)
            states.transition(message.state, target, privileged=message.privileged)
        except FailedPrecondition as exc:
            self._rule(index, str(exc), table="messages", row=key)
        previous = message.state
        self._check_actor(index, event, message, target, previous)
        message.state = target
        values: dict[str, object] = {"state": target, "state_changed_at_ms": event.time_ms}
        if target == states.ESCROWED:
            values["escrow_digest"] = event.extra.get(ESCROW_DIGEST_FIELD, "")
            values["escrow_log_index"] = index
            self._escrowed.append((index, key))
            self._escrow_digests[key] = event.extra.get(ESCROW_DIGEST_FIELD, "")
        elif target == states.QUEUED:
            values["queued_at_ms"] = event.time_ms
        elif target == states.WITHHELD:
            # What the relative is told follows the detainee's regime at the withholding.
            detainee = self._detainees.get(message.detainee)
            values["withhold_reason_told"] = (
                detainee is not None and detainee.regime in self._telling
            )
        elif target == states.RELEASED:
            values["release_log_index"] = index
        elif target == states.DELIVERED:
            values["delivered_at_ms"] = event.time_ms
            values["delivery_reference"] = event.extra.get("delivery_reference")
        if target in (states.RELEASED, states.WITHHELD) and previous == states.QUEUED:
            self._take_verdict(index, event, message, target)
        self._set("messages", key, index, **values)

    def _check_actor(
        self,
        index: int,
        event: LogEvent,
        message: _Message,
        target: states.State,
        previous: states.State,
    ) -> None:
        """Who may move a message to ``target``, and by what rule."""
        row = message.message_id.hex()
        if target == states.ESCROWED or (
            target in (states.QUEUED, states.RELEASED) and previous == states.ESCROWED
        ):
            self._check_terminal(index, event, message.institution)
            outcome = policy.intake_outcome(
                privileged=message.privileged,
                regime_policy=self._regime_policy(message.detainee),
                direction=message.direction,
                accepted_at_ms=message.accepted_at_ms,
                orders=self._order_windows(message.detainee),
            )
            if target == states.ESCROWED:
                if not outcome.escrowed:
                    self._rule(index, "privileged mail was escrowed", table="messages", row=row)
            elif outcome.state != target:
                self._rule(
                    index,
                    f"routed to {states.name(target)} after escrow, where policy says "
                    f"{states.name(outcome.state)}",
                    table="messages",
                    row=row,
                )
        elif target == states.RELEASED and previous == states.ACCEPTED:
            self._check_terminal(index, event, message.institution)
            if event.extra.get("basis") != "privileged":
                self._rule(index, "released without escrow on no privileged basis", row=row)
        elif previous == states.WITHHELD:
            self._check_complaint_release(index, event, message)
        elif target == states.DELIVERED:
            if message.direction == policy.INBOUND:
                self._check_terminal(index, event, message.institution)
            elif event.actor != f"relative:{message.account}":
                self._rule(index, "a reply acknowledged by another account", row=row)
        elif target == states.REJECTED and event.actor.startswith("terminal:"):
            self._check_terminal(index, event, message.institution)
        elif not event.actor.startswith("staff:"):
            # Verdicts and a detainee's release are staff actions (checked by role);
            # nobody else moves a message on.
            self._rule(index, f"{event.actor} may not move a message to {states.name(target)}")

    def _check_complaint_release(self, index: int, event: LogEvent, message: _Message) -> None:
        """A withheld message is released by a screener, naming the complaint decision."""
        row = message.message_id.hex()
        if not event.actor.startswith("staff:"):
            self._rule(index, f"{event.actor} may not release a withheld message", row=row)
        if not event.extra.get(COMPLAINT_REFERENCE_FIELD, "").strip():
            self._rule(
                index,
                "a withheld message was released without a complaint reference",
                table="messages",
                row=row,
            )
        detainee = self._detainees.get(message.detainee)
        try:
            policy.check_complaint_release(
                detainee_status=detainee.status if detainee else policy.RELEASED_DETAINEE,
                detainee_institution=detainee.institution if detainee else "",
                message_institution=message.institution,
            )
        except FailedPrecondition as exc:
            self._rule(index, f"released after a complaint although {exc}", row=row)

    def _take_verdict(
        self, index: int, event: LogEvent, message: _Message, target: states.State
    ) -> None:
        """Leaving the screening queue needs a verdict, by a screener who held a grant."""
        row = message.message_id.hex()
        verdict = message.verdict
        message.verdict = None
        wanted = (
            common_pb2.VERDICT_RELEASE if target == states.RELEASED else common_pb2.VERDICT_WITHHOLD
        )
        if verdict is None or verdict[0] != event.actor or verdict[1] != wanted:
            self._rule(
                index,
                f"left the screening queue as {states.name(target)} without a matching verdict "
                "by the same screener",
                table="messages",
                row=row,
            )
        if event.actor not in message.granted:
            self._rule(
                index,
                f"{event.actor} decided on a message they were never granted",
                table="messages",
                row=row,
            )

    def _verdict(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        key = s.get("message", "")
        message = self._messages.get(key)
        verdict = _enum(common_pb2.Verdict, event.extra.get("verdict", ""))
        if message is None or verdict is None:
            self._rule(index, "a verdict on an unknown message, or without a verdict", row=key)
            return
        if message.state != states.QUEUED:
            self._rule(index, "a verdict on a message not in the screening queue", row=key)
        message.verdict = (event.actor, verdict)
        reason = _enum(common_pb2.WithholdReason, event.extra.get("reason", ""))
        self._set(
            "messages",
            key,
            index,
            verdict=verdict,
            withhold_reason=reason,
            verdict_by=event.actor,
        )

    def _regime_policy(self, detainee_id: str) -> int:
        detainee = self._detainees.get(detainee_id)
        return policy.BLOCKED if detainee is None else self._regimes.get(detainee.regime, 0)

    # ----------------------------------------------------------------- review

    def _granted(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        key = s.get("message", "")
        message = self._messages.get(key)
        grant_id = s.get("grant", "")
        basis = _enum(common_pb2.LegalBasis, event.extra.get("legal_basis", ""))
        if message is None or basis is None:
            self._rule(index, "a grant for an unknown message, or on no legal basis", row=key)
            return
        if basis == common_pb2.LEGAL_BASIS_ESCROW_AUDIT:
            self._check_sample(index, event, key, grant_id)
        else:
            self._check_review_basis(index, event, message, basis, grant_id)
        message.granted.add(event.actor)
        self._set(
            "grants",
            grant_id,
            index,
            message_id=key,
            staff=event.actor,
            legal_basis=basis,
            retrospective_request_id=event.extra.get("retrospective_request") or None,
            granted_at_ms=event.time_ms,
            log_index=index,
        )

    def _check_sample(self, index: int, event: LogEvent, key: str, grant_id: str) -> None:
        """An escrow-audit grant is lawful only for a message the named head drew."""
        size = _int(event.extra.get(SAMPLE_TREE_SIZE_FIELD))
        count = _int(event.extra.get(SAMPLE_SIZE_FIELD))
        root = None if size is None else self.head_roots.get(size)
        if size is None or count is None or root is None:
            self._rule(
                index,
                "an escrow-audit grant without a stored signed head to draw its sample",
                table="grants",
                row=grant_id,
            )
            return
        drawn = [entry for entry in self._escrowed if entry[0] < size]
        try:
            positions = escrow_audit_sample(root, size, len(drawn), count)
        except CryptoError as exc:
            self._rule(index, f"an escrow-audit sample that cannot be drawn: {exc}", row=grant_id)
            return
        if key not in {drawn[p][1] for p in positions}:
            self._rule(
                index,
                f"escrow-audit grant for a message the head of size {size} did not draw",
                table="grants",
                row=grant_id,
            )

    def _check_review_basis(
        self, index: int, event: LogEvent, message: _Message, basis: int, grant_id: str
    ) -> None:
        """A screener's grant: the legal basis the log supports at this entry."""
        key = message.message_id.hex()
        retro_id = event.extra.get("retrospective_request") or None
        retrospective = None
        if retro_id is not None:
            retro = self._retrospectives.get(retro_id)
            if retro is None or retro.detainee != message.detainee:
                self._rule(
                    index, "a grant under a retrospective request that does not fit", row=key
                )
            else:
                retrospective = retro.window
                if retro.requested_by != event.actor:
                    self._rule(index, "a retrospective request used by another officer", row=key)
        try:
            lawful = policy.review_basis(
                privileged=message.privileged,
                state=message.state,
                regime_policy=self._regime_policy(message.detainee),
                direction=message.direction,
                accepted_at_ms=message.accepted_at_ms,
                now_ms=event.time_ms,
                orders=self._order_windows(message.detainee),
                retrospective=retrospective,
            )
        except PermissionDenied as exc:
            self._rule(index, f"granted although {exc}", table="grants", row=grant_id)
        else:
            if lawful != basis:
                self._rule(
                    index,
                    f"granted on {event.extra.get('legal_basis')}, where the log supports "
                    f"{common_pb2.LegalBasis.Name(lawful)}",  # type: ignore[arg-type]
                    table="grants",
                    row=grant_id,
                )

    def _retro_requested(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        request_id = s.get("retrospective_request", "")
        detainee = self._detainees.get(s.get("detainee", ""))
        direction = _enum(common_pb2.Direction, event.extra.get("direction", ""))
        start = _int(event.extra.get("period_start_ms"))
        end = _int(event.extra.get("period_end_ms"))
        if detainee is None or direction is None or start is None or end is None:
            self._rule(index, "a retrospective request without its detainee, direction or period")
            return
        window = policy.RetrospectiveWindow(
            common_pb2.RETROSPECTIVE_STATUS_PENDING, direction, start, end, None
        )
        self._retrospectives[request_id] = _Retrospective(
            s["detainee"], detainee.institution, event.actor, window
        )
        self._set(
            "retrospective_requests",
            request_id,
            index,
            detainee_id=s["detainee"],
            institution_id=detainee.institution,
            direction=direction,
            period_start_ms=start,
            period_end_ms=end,
            case_reference=event.extra.get("case_reference", ""),
            requested_by=event.actor,
            status=common_pb2.RETROSPECTIVE_STATUS_PENDING,
            decided_by=None,
            decided_at_ms=None,
            valid_until_ms=None,
            created_at_ms=event.time_ms,
        )

    def _retro_decided(self, index: int, event: LogEvent, s: Mapping[str, str]) -> None:
        request_id = s.get("retrospective_request", "")
        retro = self._retrospectives.get(request_id)
        if retro is None:
            self._rule(index, "a decision on an unknown retrospective request")
            return
        if retro.requested_by == event.actor:
            self._rule(
                index,
                f"{event.actor} decided on their own retrospective request (four eyes)",
                table="retrospective_requests",
                row=request_id,
            )
        if retro.window.status != common_pb2.RETROSPECTIVE_STATUS_PENDING:
            self._rule(index, "a retrospective request decided twice", row=request_id)
        approved = event.action is _A.RETROSPECTIVE_APPROVED
        status = (
            common_pb2.RETROSPECTIVE_STATUS_APPROVED
            if approved
            else common_pb2.RETROSPECTIVE_STATUS_REJECTED
        )
        valid_until = _int(event.extra.get("valid_until_ms")) if approved else None
        w = retro.window
        retro.window = policy.RetrospectiveWindow(
            status, w.direction, w.period_start_ms, w.period_end_ms, valid_until
        )
        self._set(
            "retrospective_requests",
            request_id,
            index,
            status=status,
            decided_by=event.actor,
            decided_at_ms=event.time_ms,
            valid_until_ms=valid_until,
        )


_Handler = Any
_HANDLERS: Final[dict[LogAction, _Handler]] = {
    _A.INSTITUTION_CREATED: Replay._institution_created,
    _A.REGIME_POLICY_CHANGED: Replay._regime,
    _A.DETAINEE_INTAKE: Replay._intake,
    _A.DETAINEE_TRANSFERRED: Replay._transfer,
    _A.DETAINEE_RELEASED: Replay._released_detainee,
    _A.DETAINEE_REGIME_CHANGED: Replay._regime_changed,
    _A.SCREENING_ORDER_CREATED: Replay._order_created,
    _A.SCREENING_ORDER_ENDED: Replay._order_ended,
    _A.CONTACT_APPROVED: Replay._contact,
    _A.CONTACT_REJECTED: Replay._contact,
    _A.CONTACT_REVOKED: Replay._contact,
    _A.CORRESPONDENT_VERIFIED: Replay._correspondent_verified,
    _A.CORRESPONDENT_REVOKED: Replay._correspondent_revoked,
    _A.TERMINAL_CERTIFICATE_ISSUED: Replay._terminal_issued,
    _A.TERMINAL_CERTIFICATE_REVOKED: Replay._terminal_revoked,
    _A.KEY_RECORD_PUBLISHED: Replay._key_published,
    _A.KEY_REVOKED: Replay._key_revoked,
    _A.ADMIN_ACTION: Replay._admin_action,
    _A.MESSAGE_ACCEPTED: Replay._accepted,
    _A.MESSAGE_ESCROWED: Replay._message_event,
    _A.MESSAGE_QUEUED: Replay._message_event,
    _A.MESSAGE_RELEASED: Replay._message_event,
    _A.MESSAGE_WITHHELD: Replay._message_event,
    _A.MESSAGE_DELIVERED: Replay._message_event,
    _A.MESSAGE_REJECTED: Replay._message_event,
    _A.VERDICT_RECORDED: Replay._verdict,
    _A.REVIEW_GRANTED: Replay._granted,
    _A.RETROSPECTIVE_REQUESTED: Replay._retro_requested,
    _A.RETROSPECTIVE_APPROVED: Replay._retro_decided,
    _A.RETROSPECTIVE_REJECTED: Replay._retro_decided,
}


def _subjects(event: LogEvent) -> dict[str, str]:
    """The first id of each subject kind."""
    out: dict[str, str] = {}
    for kind, id_ in event.subjects:
        out.setdefault(kind, id_)
    return out


def _enum(enum_type: Any, name: str) -> int | None:
    try:
        return int(enum_type.Value(name))
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    if value is None or not value.isascii() or not value.lstrip("-").isdigit():
        return None
    return int(value)


def replay(
    events: Iterable[tuple[int, LogEvent]], head_roots: Mapping[int, bytes] | None = None
) -> Replay:
    """The state the log's events recompute, with the rules they break.

    ``head_roots`` are the stored signed heads' roots by size: escrow audits draw their
    samples from them.
    """
    state = Replay(head_roots=head_roots or {})
    for index, event in events:
        state.add(index, event)
    return state


# --------------------------------------------------------------------------- comparison


#: Rows the database may hold without a log entry: contacts still waiting for a decision.
def _unlogged_allowed(table: str, values: Mapping[str, object]) -> bool:
    return table == "contacts" and values.get("status") == common_pb2.CONTACT_STATUS_REQUESTED


#: Columns holding an API enum: findings show the name, not the number.
_ENUM_COLUMNS: Final[dict[tuple[str, str], Any]] = {
    ("messages", "state"): common_pb2.MessageState,
    ("messages", "direction"): common_pb2.Direction,
    ("messages", "verdict"): common_pb2.Verdict,
    ("messages", "withhold_reason"): common_pb2.WithholdReason,
    ("detainees", "status"): common_pb2.DetaineeStatus,
    ("contacts", "status"): common_pb2.ContactStatus,
    ("regimes", "policy"): common_pb2.RegimePolicy,
    ("screening_orders", "legal_ground"): common_pb2.LegalGround,
    ("screening_orders", "direction"): common_pb2.Direction,
    ("grants", "legal_basis"): common_pb2.LegalBasis,
    ("retrospective_requests", "status"): common_pb2.RetrospectiveStatus,
    ("retrospective_requests", "direction"): common_pb2.Direction,
    ("key_records", "purpose"): keys_pb2.KeyPurpose,
}


def _show(value: object, enum_type: Any = None) -> str:
    if enum_type is not None and isinstance(value, int) and not isinstance(value, bool):
        return enum_word(enum_type, value)
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _same(database: object, logged: object) -> bool:
    if isinstance(database, bytes) and isinstance(logged, str):
        return hmac.compare_digest(database.hex(), logged)
    if isinstance(database, bool) or isinstance(logged, bool):
        return bool(database) == bool(logged) and database is not None
    return database == logged


def compare_table(
    table: str, expected: Mapping[str, Row], rows: Iterable[tuple[str, Mapping[str, object]]]
) -> Iterator[StateFinding]:
    """Hold the database's rows of ``table`` against the recomputed ones.

    ``rows`` gives each stored row's key and its columns, in the form the replay uses.
    Every recomputed row missing from the database, every stored row no log entry
    accounts for, and every column that differs is a finding.
    """
    seen: set[str] = set()
    for key, values in rows:
        seen.add(key)
        row = expected.get(key)
        if row is None:
            if not _unlogged_allowed(table, values):
                yield StateFinding(
                    FindingKind.ROW_UNLOGGED,
                    "no log entry records this row",
                    table=table,
                    row=key,
                )
            continue
        for column, logged in row.values.items():
            if column not in values:
                continue
            stored = values[column]
            if not _same(stored, logged):
                yield StateFinding(
                    FindingKind.COLUMN_DIFFERS,
                    f"{column} differs from the log",
                    table=table,
                    row=key,
                    column=column,
                    database=_show(stored, _ENUM_COLUMNS.get((table, column))),
                    log=_show(logged, _ENUM_COLUMNS.get((table, column))),
                    index=row.index,
                )
    for key, row in expected.items():
        if key not in seen:
            yield StateFinding(
                FindingKind.ROW_MISSING,
                "the log records this row; the database does not hold it",
                table=table,
                row=key,
                index=row.index,
            )
