"""Every RPC x every role x in and out of scope: no unexpected allow, no unexpected refusal."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from google.protobuf import symbol_database
from google.protobuf.message import Message

from sealpost.gateway import authz
from sealpost.gateway.authz import RULES, Target, authorize
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


def _request(method: Any, institution: str) -> Message:
    """A request whose every id field points at an object of ``institution``."""
    cls = symbol_database.Default().GetSymbol(method.input_type.full_name)
    request = cls()
    for field in method.input_type.fields:
        name = field.name
        if name in {"detainee_id", "contact_id", "order_id", "terminal_id", "request_id"}:
            setattr(request, name, f"{institution}:x")
        elif name in {"institution_id", "to_institution_id"}:
            setattr(request, name, institution)
        elif name == "message_id":
            setattr(request, name, f"{institution}:msg".encode())
        elif name == "submissions":
            request.submissions.add(message_id=f"{institution}:msg".encode())  # type: ignore[attr-defined]
        elif name == "messages" and method.name == "RejectMessages":
            request.messages.add(message_id=f"{institution}:msg".encode())  # type: ignore[attr-defined]
        elif name == "acknowledgements":
            request.acknowledgements.add(message_id=f"{institution}:msg".encode())  # type: ignore[attr-defined]
    return request


def _principals() -> dict[Role, Principal]:
    home = frozenset({HOME})
    return {
        Role.ANONYMOUS: ANONYMOUS,
        Role.RELATIVE: relative("acct-1", b"k" * 32),
        Role.TERMINAL: terminal(f"{HOME}:term", HOME),
        Role.SCREENER: staff("sam", frozenset({Role.SCREENER}), home),
        Role.APPROVER: staff("ann", frozenset({Role.APPROVER}), home),
        Role.ADMINISTRATOR: staff("ada", frozenset({Role.ADMINISTRATOR}), home),
        Role.AUDITOR: staff("aud", frozenset({Role.AUDITOR}), home),
        Role.ESCROW_AUDITOR: staff("esc", frozenset({Role.ESCROW_AUDITOR}), home),
    }


def test_every_rpc_has_exactly_one_rule() -> None:
    assert set(RULES) == set(_methods())


def test_unknown_method_is_refused_for_everyone() -> None:
    for principal in _principals().values():
        with pytest.raises((PermissionDenied, Unauthenticated)):
            authorize("/sealpost.v1.RelativeService/Nope", principal, None, FakeResolver())


CASES = list(itertools.product(sorted(_methods()), list(Role), [HOME, AWAY]))


@pytest.mark.parametrize(("method_name", "role", "where"), CASES)
def test_matrix(method_name: str, role: Role, where: str) -> None:
    method = _methods()[method_name]
    rule = RULES[method_name]
    principal = _principals()[role]
    request = _request(method, where)
    role_allowed = role in rule.roles
    scoped = rule.target not in {Target.NONE, Target.OWN, Target.NATIONAL}
    if rule.target is Target.NATIONAL:
        expected_allow = False  # nobody in the matrix has national scope
    elif not role_allowed:
        expected_allow = False
    elif scoped and role in {
        Role.TERMINAL,
        Role.SCREENER,
        Role.APPROVER,
        Role.ADMINISTRATOR,
        Role.AUDITOR,
    }:
        expected_allow = where == HOME
    else:
        expected_allow = True
    try:
        authorize(method_name, principal, request, FakeResolver())
    except Unauthenticated:
        assert not expected_allow, "refused a call the table allows"
        assert role is Role.ANONYMOUS
    except PermissionDenied:
        assert not expected_allow, "refused a call the table allows"
    except NotFound:  # pragma: no cover - every id in the matrix resolves
        pytest.fail("matrix ids must resolve")
    else:
        assert expected_allow, f"UNEXPECTED ALLOW: {role.value} on {method_name} ({where})"


@pytest.mark.parametrize(
    "method_name", sorted(m for m, r in RULES.items() if r.target is Target.NATIONAL)
)
def test_national_methods_need_national_scope(method_name: str) -> None:
    roles = RULES[method_name].roles
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
    screener = _principals()[Role.SCREENER]
    with pytest.raises(NotFound):
        authorize(method, screener, review_pb2.GrantAccessRequest(message_id=b"x"), FakeResolver())


def test_escrow_batch_touching_another_institution_is_refused() -> None:
    method = "/sealpost.v1.TerminalService/SubmitEscrow"
    request = terminal_pb2.SubmitEscrowRequest()
    request.submissions.add(message_id=f"{HOME}:1".encode())
    request.submissions.add(message_id=f"{AWAY}:2".encode())
    with pytest.raises(PermissionDenied):
        authorize(method, _principals()[Role.TERMINAL], request, FakeResolver())


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
