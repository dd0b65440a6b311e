"""Authorisation: one table of every RPC, the roles that may call it, and its scope.

The request-context interceptor calls ``authorize`` for every call before any
handler runs; a method missing from the table is refused (fail closed). The
scope of a call is the set of institutions it touches, resolved from the
request (a detainee, a message, an order ...) through ``ScopeResolver``; a
staff member must cover all of them, a terminal must be of exactly that
institution. Relatives are scoped to their own account by the queries
themselves: every relative query filters on the caller's account id.
tests/unit/test_authz_matrix.py walks every method for every role, in and
out of scope.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from sealpost.gateway.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from sealpost.gateway.principals import STAFF_ROLES, Principal, Role


class Target(enum.Enum):
    """What part of a request names the institution(s) a call touches."""

    #: No institution: public, or the caller's own account.
    NONE = "none"
    #: The terminal's own institution, or every institution in a staff member's scope.
    OWN = "own institutions"
    #: ``institution_id``; when empty, the caller's own institutions.
    INSTITUTION = "institution_id"
    #: ``detainee_id`` (required).
    DETAINEE = "detainee_id"
    #: ``detainee_id``; when empty, the caller's own institutions.
    DETAINEE_OPTIONAL = "detainee_id (optional)"
    #: ``detainee_id`` and ``to_institution_id``: both institutions of a transfer.
    TRANSFER = "detainee_id + to_institution_id"
    #: ``message_id``.
    MESSAGE = "message_id"
    #: ``submissions[].message_id``.
    MESSAGES = "submissions[].message_id"
    #: ``messages[].message_id`` of messages a terminal cannot take in.
    REJECTIONS = "messages[].message_id"
    #: ``acknowledgements[].message_id`` of messages delivered to detainees.
    ACKNOWLEDGEMENTS = "acknowledgements[].message_id"
    #: ``seals[].message_id`` of queued messages a terminal triaged.
    TRIAGE_SEALS = "seals[].message_id"
    #: ``contact_id``.
    CONTACT = "contact_id"
    #: ``order_id``.
    ORDER = "order_id"
    #: ``terminal_id``.
    TERMINAL = "terminal_id"
    #: ``request_id`` of a retrospective request.
    RETROSPECTIVE = "request_id"
    #: ``detainee_id`` of a detainee transferred away from the caller's institution.
    HANDOVER = "detainee_id (handover)"
    #: Staff with national scope ("*") only.
    NATIONAL = "national"


@dataclass(frozen=True)
class Rule:
    """Who may call one method, and what scope the call has."""

    roles: frozenset[Role]
    target: Target


class ScopeResolver(Protocol):
    """Looks up which institution an object belongs to (None: no such object)."""

    def institution_of_detainee(self, detainee_id: str) -> str | None: ...
    def institution_of_message(self, message_id: bytes) -> str | None: ...
    def institution_of_contact(self, contact_id: str) -> str | None: ...
    def institution_of_order(self, order_id: str) -> str | None: ...
    def institution_of_terminal(self, terminal_id: str) -> str | None: ...
    def institution_of_retrospective(self, request_id: str) -> str | None: ...
    def handover_sources(self, detainee_id: str) -> frozenset[str]: ...


#: Most message ids one batched call may name (SubmitEscrow, RejectMessages,
#: AcknowledgeDeliveries; the key server's batch size).
MAX_BATCH_IDS: Final = 200

_R = Role
EVERYONE: Final = frozenset(Role)
SIGNED_IN: Final = frozenset(Role) - {Role.ANONYMOUS}
RELATIVE: Final = frozenset({_R.RELATIVE})
TERMINAL: Final = frozenset({_R.TERMINAL})
SCREENER: Final = frozenset({_R.SCREENER})
APPROVER: Final = frozenset({_R.APPROVER})
ADMIN: Final = frozenset({_R.ADMINISTRATOR})
AUDITOR: Final = frozenset({_R.AUDITOR})

_REL = "/sealpost.v1.RelativeService/"
_TER = "/sealpost.v1.TerminalService/"
_REV = "/sealpost.v1.ReviewService/"
_ADM = "/sealpost.v1.AdminService/"
_AUD = "/sealpost.v1.AuditService/"

T = Target

#: Every RPC of the API v1. Adding a method without a rule here refuses every call to it.
RULES: Final[dict[str, Rule]] = {
    # Relatives and correspondents.
    _REL + "GetDirectory": Rule(EVERYONE, T.NONE),
    _REL + "RegisterDevice": Rule(frozenset({_R.ANONYMOUS, _R.RELATIVE}), T.NONE),
    _REL + "CreateChallenge": Rule(EVERYONE, T.NONE),
    _REL + "Login": Rule(EVERYONE, T.NONE),
    _REL + "RequestContact": Rule(RELATIVE, T.NONE),
    _REL + "ListContacts": Rule(RELATIVE, T.NONE),
    _REL + "SendMessage": Rule(RELATIVE, T.NONE),
    _REL + "StreamInbox": Rule(RELATIVE, T.NONE),
    _REL + "AcknowledgeMessage": Rule(RELATIVE, T.NONE),
    _REL + "GetMessageStatus": Rule(RELATIVE, T.NONE),
    _REL + "GetReceiptProof": Rule(RELATIVE, T.NONE),
    _REL + "GetKeyRecords": Rule(SIGNED_IN, T.NONE),
    _REL + "CreateDeviceLink": Rule(RELATIVE, T.NONE),
    _REL + "ListDevices": Rule(RELATIVE, T.NONE),
    _REL + "RevokeDevice": Rule(RELATIVE, T.NONE),
    _REL + "SetNotifications": Rule(RELATIVE, T.NONE),
    _REL + "GetNotifications": Rule(RELATIVE, T.NONE),
    # Institution terminals.
    _TER + "RegisterInstitutionKey": Rule(TERMINAL, T.OWN),
    _TER + "ListHeldDetainees": Rule(TERMINAL, T.OWN),
    _TER + "ProvisionMailbox": Rule(TERMINAL, T.DETAINEE),
    _TER + "GetMailboxKeys": Rule(TERMINAL, T.DETAINEE_OPTIONAL),
    _TER + "ListHandovers": Rule(TERMINAL, T.OWN),
    _TER + "CompleteHandover": Rule(TERMINAL, T.HANDOVER),
    _TER + "StreamIntake": Rule(TERMINAL, T.OWN),
    _TER + "SubmitEscrow": Rule(TERMINAL, T.MESSAGES),
    _TER + "RejectMessages": Rule(TERMINAL, T.REJECTIONS),
    _TER + "ListDeliveries": Rule(TERMINAL, T.DETAINEE_OPTIONAL),
    _TER + "AcknowledgeDelivery": Rule(TERMINAL, T.MESSAGE),
    _TER + "AcknowledgeDeliveries": Rule(TERMINAL, T.ACKNOWLEDGEMENTS),
    _TER + "ListDetaineeContacts": Rule(TERMINAL, T.DETAINEE),
    _TER + "SendReply": Rule(TERMINAL, T.DETAINEE),
    _TER + "ListWithheldMessages": Rule(TERMINAL, T.DETAINEE_OPTIONAL),
    _TER + "ListWatchLists": Rule(TERMINAL, T.OWN),
    _TER + "SealTriage": Rule(TERMINAL, T.TRIAGE_SEALS),
    # Screeners and approvers.
    _REV + "ListQueue": Rule(SCREENER, T.INSTITUTION),
    _REV + "GrantAccess": Rule(SCREENER, T.MESSAGE),
    _REV + "RecordVerdict": Rule(SCREENER, T.MESSAGE),
    _REV + "ReleaseWithheld": Rule(SCREENER, T.MESSAGE),
    _REV + "FileRetrospectiveRequest": Rule(SCREENER, T.DETAINEE),
    _REV + "ListRetrospectiveRequests": Rule(SCREENER | APPROVER, T.OWN),
    _REV + "DecideRetrospectiveRequest": Rule(APPROVER, T.RETROSPECTIVE),
    _REV + "ListRetrospectiveMessages": Rule(SCREENER, T.RETROSPECTIVE),
    _REV + "GetWatchLists": Rule(SCREENER, T.INSTITUTION),
    _REV + "SetWatchList": Rule(SCREENER, T.INSTITUTION),
    _REV + "GetDecisionTimes": Rule(SCREENER | APPROVER, T.INSTITUTION),
    # Administrators.
    _ADM + "CreateInstitution": Rule(ADMIN, T.NATIONAL),
    _ADM + "ListInstitutions": Rule(ADMIN, T.OWN),
    _ADM + "IntakeDetainee": Rule(ADMIN, T.INSTITUTION),
    _ADM + "TransferDetainee": Rule(ADMIN, T.TRANSFER),
    _ADM + "ReleaseDetainee": Rule(ADMIN, T.DETAINEE),
    _ADM + "ListDetainees": Rule(ADMIN, T.INSTITUTION),
    _ADM + "SetRegime": Rule(ADMIN, T.NATIONAL),
    _ADM + "ListRegimes": Rule(ADMIN | SCREENER | APPROVER | AUDITOR, T.NONE),
    _ADM + "SetDetaineeRegime": Rule(ADMIN, T.DETAINEE),
    _ADM + "CreateScreeningOrder": Rule(ADMIN, T.DETAINEE),
    _ADM + "EndScreeningOrder": Rule(ADMIN, T.ORDER),
    _ADM + "ListScreeningOrders": Rule(ADMIN | SCREENER, T.DETAINEE_OPTIONAL),
    _ADM + "ListContactRequests": Rule(ADMIN, T.INSTITUTION),
    _ADM + "DecideContact": Rule(ADMIN, T.CONTACT),
    _ADM + "VerifyCorrespondent": Rule(ADMIN, T.NATIONAL),
    _ADM + "RevokeCorrespondent": Rule(ADMIN, T.NATIONAL),
    _ADM + "IssueTerminalCertificate": Rule(ADMIN, T.INSTITUTION),
    _ADM + "RevokeTerminal": Rule(ADMIN, T.TERMINAL),
    _ADM + "ListTerminals": Rule(ADMIN, T.INSTITUTION),
    _ADM + "RevokeKey": Rule(ADMIN, T.NATIONAL),
    _ADM + "RecordKeyEvent": Rule(ADMIN, T.NATIONAL),
    # The transparency log: heads and proofs reveal only hashes; entries only to auditors.
    # Witnesses cosign with their own key: a terminal its institution's, an auditor a
    # configured witness key (checked by the handler, gateway/witnesses.py).
    _AUD + "GetTreeHead": Rule(SIGNED_IN, T.NONE),
    _AUD + "ListTreeHeads": Rule(SIGNED_IN, T.NONE),
    _AUD + "GetInclusionProof": Rule(SIGNED_IN, T.NONE),
    _AUD + "GetConsistencyProof": Rule(SIGNED_IN, T.NONE),
    _AUD + "GetEntries": Rule(AUDITOR, T.NONE),
    _AUD + "GrantEscrowAudit": Rule(frozenset({_R.ESCROW_AUDITOR}), T.NATIONAL),
    _AUD + "SubmitCosignature": Rule(TERMINAL | AUDITOR, T.OWN),
    _AUD + "GetCosignatures": Rule(SIGNED_IN, T.NONE),
}

#: Methods anyone may call without credentials (gRPC health and reflection are outside the API).
PUBLIC_METHODS: Final = frozenset(m for m, r in RULES.items() if Role.ANONYMOUS in r.roles)

#: Methods browsers reach too (gateway/web.py), under the same rules: the relatives' service
#: and the log's read-only calls with which a relative's client checks its receipts. Staff,
#: terminals and auditors use the gRPC ports only.
WEB_METHODS: Final = frozenset(
    [m for m in RULES if m.startswith(_REL)]
    + [
        _AUD + name
        for name in (
            "GetTreeHead",
            "ListTreeHeads",
            "GetInclusionProof",
            "GetConsistencyProof",
            "GetCosignatures",
        )
    ]
)


def _found(institution: str | None, what: str) -> str:
    if institution is None:
        raise NotFound(f"no such {what}")
    return institution


def _detainee(request: Any, r: ScopeResolver) -> frozenset[str]:
    return frozenset({_found(r.institution_of_detainee(request.detainee_id), "detainee")})


def _optional_detainee(request: Any, r: ScopeResolver) -> frozenset[str] | None:
    return _detainee(request, r) if request.detainee_id else None


def _institution(request: Any, _r: ScopeResolver) -> frozenset[str] | None:
    return frozenset({request.institution_id}) if request.institution_id else None


def _transfer(request: Any, r: ScopeResolver) -> frozenset[str]:
    return _detainee(request, r) | {request.to_institution_id}


def _each_message(field: str) -> Any:
    """The institutions of ``request.<field>[].message_id``, for at most MAX_BATCH_IDS ids.

    The limit is checked before any lookup: a request naming more ids than any call
    may carry is refused without a lookup per id.
    """

    def resolve(request: Any, r: ScopeResolver) -> frozenset[str]:
        items = getattr(request, field)
        if len(items) > MAX_BATCH_IDS:
            raise InvalidArgument(f"at most {MAX_BATCH_IDS} messages per call")
        return frozenset(
            _found(r.institution_of_message(item.message_id), "message") for item in items
        )

    return resolve


def _handover(request: Any, r: ScopeResolver) -> frozenset[str]:
    sources = r.handover_sources(request.detainee_id)
    if not sources:
        raise NotFound("no handover is pending for this detainee")
    return sources


def _one(lookup: str, field: str, what: str) -> Any:
    def resolve(request: Any, r: ScopeResolver) -> frozenset[str]:
        return frozenset({_found(getattr(r, lookup)(getattr(request, field)), what)})

    return resolve


#: How each target resolves to institutions; None means "the caller's own" (no explicit target).
_RESOLVE: Final[dict[Target, Any]] = {
    Target.NONE: lambda _q, _r: None,
    Target.OWN: lambda _q, _r: None,
    Target.NATIONAL: lambda _q, _r: None,
    Target.INSTITUTION: _institution,
    Target.DETAINEE: _detainee,
    Target.DETAINEE_OPTIONAL: _optional_detainee,
    Target.TRANSFER: _transfer,
    Target.MESSAGE: _one("institution_of_message", "message_id", "message"),
    Target.MESSAGES: _each_message("submissions"),
    Target.REJECTIONS: _each_message("messages"),
    Target.ACKNOWLEDGEMENTS: _each_message("acknowledgements"),
    Target.TRIAGE_SEALS: _each_message("seals"),
    Target.CONTACT: _one("institution_of_contact", "contact_id", "contact"),
    Target.ORDER: _one("institution_of_order", "order_id", "order"),
    Target.TERMINAL: _one("institution_of_terminal", "terminal_id", "terminal"),
    Target.RETROSPECTIVE: _one(
        "institution_of_retrospective", "request_id", "retrospective request"
    ),
    Target.HANDOVER: _handover,
}


def touched_institutions(
    target: Target, request: Any, resolver: ScopeResolver
) -> frozenset[str] | None:
    """The institutions a call touches; None means "the caller's own" (no explicit target)."""
    result: frozenset[str] | None = _RESOLVE[target](request, resolver)
    return result


def _check_scope(principal: Principal, institutions: Iterable[str]) -> None:
    for institution in institutions:
        if not principal.covers(institution):
            raise PermissionDenied("outside your institutions")


def authorize(method: str, principal: Principal, request: Any, resolver: ScopeResolver) -> None:
    """Return if ``principal`` may make this call; raise otherwise. Fails closed."""
    rule = RULES.get(method)
    if rule is None:
        raise PermissionDenied("this method is not open to anyone")
    if not principal.roles & rule.roles:
        if principal.has(Role.ANONYMOUS):
            raise Unauthenticated("sign in first")
        raise PermissionDenied("your role may not call this method")
    if rule.target is Target.NATIONAL:
        if not principal.national:
            raise PermissionDenied("only national staff may do this")
        return
    touched = touched_institutions(rule.target, request, resolver)
    if touched is None:
        return
    if rule.target is Target.HANDOVER:
        # The detainee may have left several institutions; any one of them hands over.
        if not any(principal.covers(institution) for institution in touched):
            raise PermissionDenied("outside your institutions")
        return
    # A staff member must cover every touched institution; a terminal must be of it.
    if principal.has(Role.TERMINAL) or principal.roles & STAFF_ROLES:
        _check_scope(principal, touched)


def markdown_table() -> str:
    """The table as Markdown, for docs/gateway.md (a test keeps the two the same)."""
    lines = ["| method | roles | scope |", "|---|---|---|"]
    for method, rule in RULES.items():
        roles = ", ".join(sorted(r.value for r in rule.roles))
        if rule.roles == EVERYONE:
            roles = "everyone (no sign-in needed)"
        elif rule.roles == SIGNED_IN:
            roles = "anyone signed in"
        lines.append(
            f"| `{method.removeprefix('/sealpost.v1.')}` | {roles} | {rule.target.value} |"
        )
    return "\n".join(lines)
