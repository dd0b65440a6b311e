"""Every RPC x every caller x in and out of scope, against rights written out by hand."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from google.protobuf import symbol_database
from google.protobuf.message import Message

from sealpost.gateway import authz
from sealpost.gateway.authz import RULES, authorize
from sealpost.gateway.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from sealpost.gateway.principals import ANONYMOUS, Principal, Role, relative, staff, terminal
from sealpost.v1 import admin_pb2, audit_pb2, relative_pb2, review_pb2, terminal_pb2

FILES = [relative_pb2, terminal_pb2, review_pb2, admin_pb2, audit_pb2]
HOME, AWAY = "pi-home", "pi-away"


def _methods() -> dict[str, Any]:
    methods = {}
    for module in FILES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                methods[f"/{service.full_name}/{method.name}"] = method
    return methods


class FakeResolver:
    """Objects named after their institution: "<inst>:..." ids, message ids starting HOME/AWAY."""

    @staticmethod
    def _of(value: str | bytes) -> str | None:
        text = value.decode() if isinstance(value, bytes) else value
        for institution in (HOME, AWAY):
            if text.startswith(institution):
                return institution
        return None

    def institution_of_detainee(self, detainee_id: str) -> str | None:
        return self._of(detainee_id)

    def institution_of_message(self, message_id: bytes) -> str | None:
        return self._of(message_id)

    def institution_of_contact(self, contact_id: str) -> str | None:
        return self._of(contact_id)

    def institution_of_order(self, order_id: str) -> str | None:
        return self._of(order_id)

    def institution_of_terminal(self, terminal_id: str) -> str | None:
        return self._of(terminal_id)

    def institution_of_retrospective(self, request_id: str) -> str | None:
        return self._of(request_id)

    def handover_sources(self, detainee_id: str) -> frozenset[str]:
        # Handovers are due from the institution the detainee left: the one in its id.
        source = self._of(detainee_id)
        return frozenset({source}) if source else frozenset()


# --------------------------------------------------------------------------- the expected rights
#
# Written out by hand, method by method, from SPEC.md section 2 (the actors table) and the
# docstrings of the services in gateway/services/; never computed from gateway/authz.py.
# A change of anyone's rights in RULES therefore fails test_matrix until this table is
# changed too, in the same review.
#
# Scope: "none" (public, or the caller's own account: relatives are confined by the
# queries), "own" (the caller's own institutions: the handler reads only those),
# "national" (staff whose scope is every institution), or the request fields whose
# objects name the institutions the call touches; "?" marks a field that may be left
# empty, which then means the caller's own institutions.

EVERYONE = frozenset(Role)
SIGNED_IN = EVERYONE - {Role.ANONYMOUS}
RELATIVE = frozenset({Role.RELATIVE})
TERMINAL = frozenset({Role.TERMINAL})
SCREENER = frozenset({Role.SCREENER})
APPROVER = frozenset({Role.APPROVER})
ADMIN = frozenset({Role.ADMINISTRATOR})
AUDITOR = frozenset({Role.AUDITOR})
ESCROW_AUDITOR = frozenset({Role.ESCROW_AUDITOR})

EXPECTED: dict[str, tuple[frozenset[Role], str]] = {
    # Relatives and correspondents (SPEC 2: register a device, request contact, send and
    # read own messages, see delivery status). Sign-in is open to everyone.
    "RelativeService/GetDirectory": (EVERYONE, "none"),
    "RelativeService/RegisterDevice": (frozenset({Role.ANONYMOUS, Role.RELATIVE}), "none"),
    "RelativeService/CreateChallenge": (EVERYONE, "none"),
    "RelativeService/Login": (EVERYONE, "none"),
    "RelativeService/RequestContact": (RELATIVE, "none"),
    "RelativeService/ListContacts": (RELATIVE, "none"),
    "RelativeService/SendMessage": (RELATIVE, "none"),
    "RelativeService/StreamInbox": (RELATIVE, "none"),
    "RelativeService/AcknowledgeMessage": (RELATIVE, "none"),
    "RelativeService/GetMessageStatus": (RELATIVE, "none"),
    "RelativeService/GetReceiptProof": (RELATIVE, "none"),
    # Key records verify envelopes for every caller; relatives see no institution keys.
    "RelativeService/GetKeyRecords": (SIGNED_IN, "none"),
    # A relative links, lists and revokes only their own account's devices.
    "RelativeService/CreateDeviceLink": (RELATIVE, "none"),
    "RelativeService/ListDevices": (RELATIVE, "none"),
    "RelativeService/RevokeDevice": (RELATIVE, "none"),
    # Only the caller's own address for notices.
    "RelativeService/SetNotifications": (RELATIVE, "none"),
    "RelativeService/GetNotifications": (RELATIVE, "none"),
    # Institution terminals (SPEC 2: open messages for their own detainees, escrow,
    # deliver, send replies; never another institution's).
    "TerminalService/RegisterInstitutionKey": (TERMINAL, "own"),
    "TerminalService/ListHeldDetainees": (TERMINAL, "own"),
    "TerminalService/ProvisionMailbox": (TERMINAL, "detainee_id"),
    "TerminalService/GetMailboxKeys": (TERMINAL, "detainee_id?"),
    "TerminalService/ListHandovers": (TERMINAL, "own"),
    # The institution the detainee left hands the mailbox over (test_a_handover_...).
    "TerminalService/CompleteHandover": (TERMINAL, "detainee_id"),
    "TerminalService/StreamIntake": (TERMINAL, "own"),
    "TerminalService/SubmitEscrow": (TERMINAL, "submissions[].message_id"),
    "TerminalService/RejectMessages": (TERMINAL, "messages[].message_id"),
    "TerminalService/ListDeliveries": (TERMINAL, "detainee_id?"),
    "TerminalService/AcknowledgeDelivery": (TERMINAL, "message_id"),
    "TerminalService/AcknowledgeDeliveries": (TERMINAL, "acknowledgements[].message_id"),
    "TerminalService/ListDetaineeContacts": (TERMINAL, "detainee_id"),
    "TerminalService/SendReply": (TERMINAL, "detainee_id"),
    # Only withholdings of the terminal's own detainees, to tell them on paper.
    "TerminalService/ListWithheldMessages": (TERMINAL, "detainee_id?"),
    # Triage inside the institution's zone: its own sealed watch lists, and sealed
    # summaries only of its own queued messages.
    "TerminalService/ListWatchLists": (TERMINAL, "own"),
    "TerminalService/SealTriage": (TERMINAL, "seals[].message_id"),
    # Screeners review what policy queues and record verdicts; approvers decide a
    # colleague's retrospective request (four eyes), and both see the requests.
    "ReviewService/ListQueue": (SCREENER, "institution_id?"),
    "ReviewService/GrantAccess": (SCREENER, "message_id"),
    "ReviewService/RecordVerdict": (SCREENER, "message_id"),
    "ReviewService/ReleaseWithheld": (SCREENER, "message_id"),
    "ReviewService/FileRetrospectiveRequest": (SCREENER, "detainee_id"),
    "ReviewService/ListRetrospectiveRequests": (SCREENER | APPROVER, "own"),
    "ReviewService/DecideRetrospectiveRequest": (APPROVER, "request_id"),
    "ReviewService/ListRetrospectiveMessages": (SCREENER, "request_id"),
    # Screeners keep their institution's watch lists (names stay sealed at the gateway).
    "ReviewService/GetWatchLists": (SCREENER, "institution_id?"),
    "ReviewService/SetWatchList": (SCREENER, "institution_id?"),
    # Times to a decision: counts and durations, never content or verdicts.
    "ReviewService/GetDecisionTimes": (SCREENER | APPROVER, "institution_id?"),
    # Administrators: institutions, detainees, regimes, orders, contacts, privilege,
    # terminals and keys; what is country-wide needs national scope.
    "AdminService/CreateInstitution": (ADMIN, "national"),
    "AdminService/ListInstitutions": (ADMIN, "own"),
    "AdminService/IntakeDetainee": (ADMIN, "institution_id?"),
    "AdminService/TransferDetainee": (ADMIN, "detainee_id+to_institution_id"),
    "AdminService/ReleaseDetainee": (ADMIN, "detainee_id"),
    "AdminService/ListDetainees": (ADMIN, "institution_id?"),
    "AdminService/SetRegime": (ADMIN, "national"),
    # Regimes are policy, not personal data: every staff role reads them.
    "AdminService/ListRegimes": (ADMIN | SCREENER | APPROVER | AUDITOR, "none"),
    "AdminService/SetDetaineeRegime": (ADMIN, "detainee_id"),
    "AdminService/CreateScreeningOrder": (ADMIN, "detainee_id"),
    "AdminService/EndScreeningOrder": (ADMIN, "order_id"),
    "AdminService/ListScreeningOrders": (ADMIN | SCREENER, "detainee_id?"),
    "AdminService/ListContactRequests": (ADMIN, "institution_id?"),
    "AdminService/DecideContact": (ADMIN, "contact_id"),
    "AdminService/VerifyCorrespondent": (ADMIN, "national"),
    "AdminService/RevokeCorrespondent": (ADMIN, "national"),
    "AdminService/IssueTerminalCertificate": (ADMIN, "institution_id?"),
    "AdminService/RevokeTerminal": (ADMIN, "terminal_id"),
    "AdminService/ListTerminals": (ADMIN, "institution_id?"),
    "AdminService/RevokeKey": (ADMIN, "national"),
    "AdminService/RecordKeyEvent": (ADMIN, "national"),
    # The transparency log: heads and proofs reveal only hashes, for anyone signed in
    # (relatives check receipts); entries only to auditors; witnesses cosign.
    "AuditService/GetTreeHead": (SIGNED_IN, "none"),
    "AuditService/ListTreeHeads": (SIGNED_IN, "none"),
    "AuditService/GetInclusionProof": (SIGNED_IN, "none"),
    "AuditService/GetConsistencyProof": (SIGNED_IN, "none"),
    "AuditService/GetEntries": (AUDITOR, "none"),
    "AuditService/SubmitCosignature": (TERMINAL | AUDITOR, "own"),
    "AuditService/GetCosignatures": (SIGNED_IN, "none"),
    # The escrow audit decrypts keys: a dedicated role, national, nobody else.
    "AuditService/GrantEscrowAudit": (ESCROW_AUDITOR, "national"),
}
UNSCOPED = {"none", "own", "national"}


def _scope_fields(scope: str) -> set[str]:
    """The request fields a scope names: ``submissions[].message_id`` is ``submissions``."""
    if scope in UNSCOPED:
        return set()
    return {part.split("[]")[0] for part in scope.rstrip("?").split("+")}


def _other(institution: str) -> str:
    return AWAY if institution == HOME else HOME


def _request(method: Any, institution: str, scope_fields: set[str] | None = None) -> Message:
    """A request whose every id field points at an object of some institution.

    Fields in ``scope_fields`` (all fields when None) name ``institution``; every other id
    field names the other institution, so a rule that reads the wrong field is caught.
    """
    cls = symbol_database.Default().GetSymbol(method.input_type.full_name)
    request = cls()
    for field in method.input_type.fields:
        name = field.name
        chosen = scope_fields is None or name in scope_fields
        where = institution if chosen else _other(institution)
        if name in {"detainee_id", "contact_id", "order_id", "terminal_id", "request_id"}:
            setattr(request, name, f"{where}:x")
        elif name in {"institution_id", "to_institution_id"}:
            setattr(request, name, where)
        elif name == "message_id":
            setattr(request, name, f"{where}:msg".encode())
        elif name == "submissions":
            request.submissions.add(message_id=f"{where}:msg".encode())  # type: ignore[attr-defined]
        elif name == "messages" and method.name == "RejectMessages":
            request.messages.add(message_id=f"{where}:msg".encode())  # type: ignore[attr-defined]
        elif name == "acknowledgements":
            request.acknowledgements.add(message_id=f"{where}:msg".encode())  # type: ignore[attr-defined]
        elif name == "seals":
            request.seals.add(message_id=f"{where}:msg".encode())  # type: ignore[attr-defined]
    return request


#: Callers of the matrix and the institutions each may act for (empty: not institution staff).
CALLERS: dict[str, tuple[Principal, frozenset[str]]] = {
    "anonymous": (ANONYMOUS, frozenset()),
    "relative": (relative("acct-1", b"k" * 32), frozenset()),
    "terminal": (terminal(f"{HOME}:term", HOME), frozenset({HOME})),
    **{
        f"{role.value}@{HOME}": (
            staff(f"{role.value}-home", frozenset({role}), frozenset({HOME})),
            frozenset({HOME}),
        )
        for role in (
            Role.SCREENER,
            Role.APPROVER,
            Role.ADMINISTRATOR,
            Role.AUDITOR,
            Role.ESCROW_AUDITOR,
        )
    },
    **{
        f"{role.value}@national": (
            staff(f"{role.value}-all", frozenset({role}), frozenset({"*"})),
            frozenset({HOME, AWAY}),
        )
        for role in (
            Role.SCREENER,
            Role.APPROVER,
            Role.ADMINISTRATOR,
            Role.AUDITOR,
            Role.ESCROW_AUDITOR,
        )
    },
}


def _expected_refusal(
    method: str, caller: str, where: str
) -> type[Unauthenticated] | type[PermissionDenied] | None:
    """What the hand table says ``caller`` gets for a call touching ``where``."""
    roles, scope = EXPECTED[method]
    principal, covers = CALLERS[caller]
    if not principal.roles & roles:
        return Unauthenticated if principal is ANONYMOUS else PermissionDenied
    if scope == "national":
        return None if covers == {HOME, AWAY} else PermissionDenied
    if scope in UNSCOPED:
        return None
    return None if where in covers else PermissionDenied


def test_every_rpc_has_exactly_one_rule() -> None:
    assert set(RULES) == set(_methods())


def test_the_expected_table_names_every_rpc() -> None:
    assert {f"/sealpost.v1.{m}" for m in EXPECTED} == set(_methods())


def test_unknown_method_is_refused_for_everyone() -> None:
    for principal, _covers in CALLERS.values():
        with pytest.raises((PermissionDenied, Unauthenticated)):
            authorize("/sealpost.v1.RelativeService/Nope", principal, None, FakeResolver())


CASES = list(itertools.product(sorted(EXPECTED), sorted(CALLERS), [HOME, AWAY]))


@pytest.mark.parametrize(("method", "caller", "where"), CASES)
def test_matrix(method: str, caller: str, where: str) -> None:
    name = f"/sealpost.v1.{method}"
    principal, _covers = CALLERS[caller]
    request = _request(_methods()[name], where, _scope_fields(EXPECTED[method][1]))
    expected = _expected_refusal(method, caller, where)
    refusal: type[Exception] | None = None
    try:
        authorize(name, principal, request, FakeResolver())
    except (Unauthenticated, PermissionDenied) as exc:
        refusal = type(exc)
    if expected is None:
        assert refusal is None, f"UNEXPECTED REFUSAL: {caller} on {method} ({where})"
    else:
        assert refusal is not None, f"UNEXPECTED ALLOW: {caller} on {method} ({where})"
        assert refusal is expected, f"{caller} on {method} ({where}): {refusal.__name__}"


OPTIONAL = sorted(m for m, (_roles, scope) in EXPECTED.items() if scope.endswith("?"))
REQUIRED = sorted(
    m
    for m, (_roles, scope) in EXPECTED.items()
    if scope not in UNSCOPED and not scope.endswith("?") and "[]" not in scope
)


@pytest.mark.parametrize("method", OPTIONAL)
def test_an_empty_optional_scope_field_means_the_callers_own(method: str) -> None:
    roles, _scope = EXPECTED[method]
    name = f"/sealpost.v1.{method}"
    empty = _request(_methods()[name], HOME, set())
    for field in _scope_fields(EXPECTED[method][1]):
        empty.ClearField(field)
    for principal, covers in CALLERS.values():
        if principal.roles & roles and covers == {HOME}:
            authorize(name, principal, empty, FakeResolver())


@pytest.mark.parametrize("method", REQUIRED)
def test_a_required_scope_field_left_empty_names_no_object(method: str) -> None:
    roles, _scope = EXPECTED[method]
    name = f"/sealpost.v1.{method}"
    empty = _request(_methods()[name], HOME, set())
    for field in _scope_fields(EXPECTED[method][1]):
        empty.ClearField(field)
    for principal, covers in CALLERS.values():
        if principal.roles & roles and covers == {HOME}:
            with pytest.raises(NotFound):
                authorize(name, principal, empty, FakeResolver())


class MovedResolver(FakeResolver):
    """A detainee now held at AWAY, whose mailbox HOME (the institution left) hands over."""

    def institution_of_detainee(self, detainee_id: str) -> str | None:
        return AWAY

    def handover_sources(self, detainee_id: str) -> frozenset[str]:
        return frozenset({HOME})


def test_a_handover_is_completed_by_the_institution_the_detainee_left() -> None:
    name = "/sealpost.v1.TerminalService/CompleteHandover"
    request = terminal_pb2.CompleteHandoverRequest(detainee_id="moved")
    authorize(name, terminal(f"{HOME}:term", HOME), request, MovedResolver())
    with pytest.raises(PermissionDenied):
        authorize(name, terminal(f"{AWAY}:term", AWAY), request, MovedResolver())


@pytest.mark.parametrize(
    "method_name",
    sorted(f"/sealpost.v1.{m}" for m, (_r, scope) in EXPECTED.items() if scope == "national"),
)
def test_national_methods_need_national_scope(method_name: str) -> None:
    roles, _scope = EXPECTED[method_name.removeprefix("/sealpost.v1.")]
    national = staff("nat", roles, frozenset({"*"}))
    local = staff("loc", roles, frozenset({HOME}))
    request = _request(_methods()[method_name], HOME)
    authorize(method_name, national, request, FakeResolver())
    with pytest.raises(PermissionDenied):
        authorize(method_name, local, request, FakeResolver())


def test_transfer_needs_both_institutions() -> None:
    method = "/sealpost.v1.AdminService/TransferDetainee"
    request = admin_pb2.TransferDetaineeRequest(detainee_id=f"{HOME}:d", to_institution_id=AWAY)
    home_only = staff("a", frozenset({Role.ADMINISTRATOR}), frozenset({HOME}))
    both = staff("b", frozenset({Role.ADMINISTRATOR}), frozenset({HOME, AWAY}))
    with pytest.raises(PermissionDenied):
        authorize(method, home_only, request, FakeResolver())
    authorize(method, both, request, FakeResolver())


def test_unknown_objects_are_not_found() -> None:
    method = "/sealpost.v1.ReviewService/GrantAccess"
    screener, _covers = CALLERS[f"screener@{HOME}"]
    with pytest.raises(NotFound):
        authorize(method, screener, review_pb2.GrantAccessRequest(message_id=b"x"), FakeResolver())


def test_escrow_batch_touching_another_institution_is_refused() -> None:
    method = "/sealpost.v1.TerminalService/SubmitEscrow"
    request = terminal_pb2.SubmitEscrowRequest()
    request.submissions.add(message_id=f"{HOME}:1".encode())
    request.submissions.add(message_id=f"{AWAY}:2".encode())
    with pytest.raises(PermissionDenied):
        authorize(method, CALLERS["terminal"][0], request, FakeResolver())


def test_public_methods_are_the_sign_in_ones() -> None:
    names = {m.rsplit("/", 1)[1] for m in authz.PUBLIC_METHODS}
    assert names == {"GetDirectory", "RegisterDevice", "CreateChallenge", "Login"}


class CountingResolver(FakeResolver):
    def __init__(self) -> None:
        self.lookups = 0

    def institution_of_message(self, message_id: bytes) -> str | None:
        self.lookups += 1
        return super().institution_of_message(message_id)


@pytest.mark.parametrize(
    ("method", "field"),
    [
        ("SubmitEscrow", "submissions"),
        ("RejectMessages", "messages"),
        ("AcknowledgeDeliveries", "acknowledgements"),
    ],
)
def test_an_oversized_batch_is_refused_before_any_lookup(method: str, field: str) -> None:
    principal = terminal(f"{HOME}:term", HOME)
    name = f"/sealpost.v1.TerminalService/{method}"
    cls = symbol_database.Default().GetSymbol(_methods()[name].input_type.full_name)
    request = cls()
    for n in range(authz.MAX_BATCH_IDS):
        getattr(request, field).add(message_id=f"{HOME}:msg-{n}".encode())
    resolver = CountingResolver()
    authorize(name, principal, request, resolver)  # the largest batch a call may carry
    assert resolver.lookups == authz.MAX_BATCH_IDS
    getattr(request, field).add(message_id=f"{HOME}:msg-extra".encode())
    resolver = CountingResolver()
    with pytest.raises(InvalidArgument, match="at most 200"):
        authorize(name, principal, request, resolver)
    assert resolver.lookups == 0
