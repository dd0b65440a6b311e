"""``sealpost admin``: the directory an administrator keeps (SPEC section 2).

Institutions, detainees (intake, transfer, release), regimes, screening orders,
contact approvals, privileged-correspondent verification, and staff logins.
Every gateway command calls AdminService with the caller's identity token; the
gateway checks role and institution scope and logs each change in the
transparency log. ``staff add`` talks to the key server, then records the change
in the log as well (SPEC P14), so that the auditor can account for it.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from sealpost.clients._cli import (
    StaffOptions,
    cli_app,
    emit,
    key_prefix,
    message_json,
    run,
    table,
)
from sealpost.clients._text import isolate
from sealpost.clients.admin.record import settle
from sealpost.clients.review.cli import parse_moment
from sealpost.escrow.identity import StaffRole
from sealpost.i18n import _
from sealpost.v1 import admin_pb2, common_pb2

if TYPE_CHECKING:
    from sealpost.escrow.bootstrap import KeyServerBootstrap

# --------------------------------------------------------------------------- command-line enums
#
# Lower-case, hyphenated words on the command line (as in ``sealpost review``), each mapped to
# its proto enum value; Typer refuses anything else with a usage error that lists these.


class Policy(StrEnum):
    """How a regime treats messaging."""

    blocked = "blocked"
    screen_all = "screen-all"
    screen_on_order = "screen-on-order"


class Ground(StrEnum):
    """Legal ground of a screening order (art. 36 Pbw)."""

    order_and_security = "order-and-security"
    public_order = "public-order"
    crime_prevention = "crime-prevention"
    victim_protection = "victim-protection"


class Way(StrEnum):
    """Which messages a screening order covers."""

    inbound = "inbound"
    outbound = "outbound"
    both = "both"


class ContactState(StrEnum):
    """A contact request's status, for filtering."""

    requested = "requested"
    approved = "approved"
    rejected = "rejected"
    revoked = "revoked"


POLICIES: dict[Policy, common_pb2.RegimePolicy.ValueType] = {
    Policy.blocked: common_pb2.REGIME_POLICY_BLOCKED,
    Policy.screen_all: common_pb2.REGIME_POLICY_SCREEN_ALL,
    Policy.screen_on_order: common_pb2.REGIME_POLICY_SCREEN_ON_ORDER,
}
GROUNDS: dict[Ground, common_pb2.LegalGround.ValueType] = {
    Ground.order_and_security: common_pb2.LEGAL_GROUND_ORDER_AND_SECURITY,
    Ground.public_order: common_pb2.LEGAL_GROUND_PUBLIC_ORDER,
    Ground.crime_prevention: common_pb2.LEGAL_GROUND_CRIME_PREVENTION,
    Ground.victim_protection: common_pb2.LEGAL_GROUND_VICTIM_PROTECTION,
}
WAYS: dict[Way, common_pb2.Direction.ValueType] = {
    Way.inbound: common_pb2.DIRECTION_INBOUND,
    Way.outbound: common_pb2.DIRECTION_OUTBOUND,
    Way.both: common_pb2.DIRECTION_BOTH,
}
CONTACT_STATES: dict[ContactState, common_pb2.ContactStatus.ValueType] = {
    ContactState.requested: common_pb2.CONTACT_STATUS_REQUESTED,
    ContactState.approved: common_pb2.CONTACT_STATUS_APPROVED,
    ContactState.rejected: common_pb2.CONTACT_STATUS_REJECTED,
    ContactState.revoked: common_pb2.CONTACT_STATUS_REVOKED,
}


def _word(mapping: Mapping[Any, int], value: int) -> str:
    """The command-line word for a proto enum value ("?" for one this client does not know)."""
    return next((str(k) for k, v in mapping.items() if v == value), "?")


def _words(mapping: Mapping[Any, int], value: int) -> str:
    """A policy, ground, direction or contact status in the staff language."""
    words = {
        "blocked": _("blocked"),
        "screen-all": _("screen all"),
        "screen-on-order": _("screen on order"),
        "order-and-security": _("order and security"),
        "public-order": _("public order"),
        "crime-prevention": _("crime prevention"),
        "victim-protection": _("victim protection"),
        "inbound": _("inbound"),
        "outbound": _("outbound"),
        "both": _("both"),
        "requested": _("requested"),
        "approved": _("approved"),
        "rejected": _("rejected"),
        "revoked": _("revoked"),
    }
    word = _word(mapping, value)
    return words.get(word, word)


def _when(message: Message, name: str) -> str:
    """A timestamp field as "2026-03-01 09:00 UTC", or "" when unset."""
    if not message.HasField(name):
        return ""
    stamp: Timestamp = getattr(message, name)
    return stamp.ToDatetime(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _stamp(ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def _call(options: StaffOptions, method: str, request: Message) -> Any:
    """One AdminService call with a client that is closed afterwards."""
    client = options.client()
    try:
        return client.call("admin", method, request)
    finally:
        client.close()


def _listing(key: str, items: Iterable[Message]) -> dict[str, Any]:
    """JSON for a list; the key is present even when the list is empty."""
    return {key: [message_json(item) for item in items]}


# --------------------------------------------------------------------------- institutions

institution_app = cli_app(help=_("Institutions: add, list."))


@institution_app.command("add", help=_("Add an institution (national administrators only)."))
def institution_add(
    ctx: typer.Context,
    institution_id: Annotated[
        str,
        typer.Argument(help=_("Short stable id such as pi-vught: lower case, digits, dashes.")),
    ],
    name: Annotated[str, typer.Option(help=_("The institution's name."))],
) -> None:
    """Add an institution (national administrators only)."""
    options: StaffOptions = ctx.obj
    request = admin_pb2.CreateInstitutionRequest(institution_id=institution_id, name=name)
    reply: admin_pb2.CreateInstitutionResponse = run(
        lambda: _call(options, "CreateInstitution", request)
    )
    emit(
        options,
        reply.institution,
        _("institution {institution} added: {name}", institution=institution_id, name=name),
    )


@institution_app.command("list", help=_("Institutions within your scope."))
def institution_list(ctx: typer.Context) -> None:
    """Institutions within your scope."""
    options: StaffOptions = ctx.obj
    reply: admin_pb2.ListInstitutionsResponse = run(
        lambda: _call(options, "ListInstitutions", admin_pb2.ListInstitutionsRequest())
    )
    lines = [f"{i.institution_id}  {i.name}" for i in reply.institutions]
    emit(
        options,
        _listing("institutions", reply.institutions),
        "\n".join(lines) or _("no institutions"),
    )


# --------------------------------------------------------------------------- detainees

detainee_app = cli_app(help=_("Detainees: intake, transfer, release, regime, list."))


def _detainee_line(d: common_pb2.Detainee) -> str:
    # One message per status: a released detainee is not a released message ("vrijgegeven").
    lines: dict[int, str] = {
        common_pb2.DETAINEE_STATUS_HELD: _("{detainee}  {institution}  {regime}  held  {mailbox}"),
        common_pb2.DETAINEE_STATUS_TRANSFERRED: _(
            "{detainee}  {institution}  {regime}  transferred  {mailbox}"
        ),
        common_pb2.DETAINEE_STATUS_RELEASED: _(
            "{detainee}  {institution}  {regime}  released  {mailbox}"
        ),
    }
    line = lines.get(d.status, "{detainee}  {institution}  {regime}  ?  {mailbox}")
    return line.format(
        detainee=d.detainee_id,
        institution=d.institution_id,
        regime=d.regime,
        mailbox=_("mailbox ready") if d.mailbox_key_id else _("no mailbox key yet"),
    )


@detainee_app.command(
    "intake",
    help=_(
        "Register a detainee at an institution under a regime.\n\n"
        "The institution's terminal then provisions the mailbox key; until then nobody can write."
    ),
)
def detainee_intake(
    ctx: typer.Context,
    institution: Annotated[str, typer.Option(help=_("The institution that holds the detainee."))],
    detainee_id: Annotated[
        str,
        typer.Argument(help=_("The detainee's id; leave out to have the gateway make one.")),
    ] = "",
    regime: Annotated[str, typer.Option(help=_("The regime (see `regime list`)."))] = "regular",
) -> None:
    """Register a detainee at an institution under a regime.

    The institution's terminal then provisions the mailbox key; until then nobody can write.
    """
    options: StaffOptions = ctx.obj
    request = admin_pb2.IntakeDetaineeRequest(
        detainee_id=detainee_id, institution_id=institution, regime=regime
    )
    reply: admin_pb2.IntakeDetaineeResponse = run(lambda: _call(options, "IntakeDetainee", request))
    d = reply.detainee
    emit(
        options,
        d,
        _(
            "detainee {detainee} taken in at {institution}, regime {regime}",
            detainee=d.detainee_id,
            institution=d.institution_id,
            regime=d.regime,
        ),
    )


@detainee_app.command(
    "transfer",
    help=_(
        "Move a detainee and the undelivered messages to another institution.\n\n"
        "Your scope must cover both institutions.\n\n"
        "The old institution's terminal hands the mailbox over; it can open nothing new."
    ),
)
def detainee_transfer(
    ctx: typer.Context,
    detainee_id: Annotated[str, typer.Argument(help=_("The detainee to move."))],
    to: Annotated[str, typer.Option("--to", help=_("The receiving institution."))],
    regime: Annotated[
        str,
        typer.Option(help=_("A new regime at the receiving institution; default: unchanged.")),
    ] = "",
) -> None:
    """Move a detainee and the undelivered messages to another institution.

    Your scope must cover both institutions.

    The old institution's terminal hands the mailbox over; it can open nothing new.
    """
    options: StaffOptions = ctx.obj
    request = admin_pb2.TransferDetaineeRequest(
        detainee_id=detainee_id, to_institution_id=to, regime=regime
    )
    reply: admin_pb2.TransferDetaineeResponse = run(
        lambda: _call(options, "TransferDetainee", request)
    )
    d = reply.detainee
    emit(
        options,
        d,
        _(
            "detainee {detainee} transferred to {institution} ({regime})",
            detainee=d.detainee_id,
            institution=d.institution_id,
            regime=d.regime,
        ),
    )


@detainee_app.command(
    "release",
    help=_('Close the detainee\'s mailbox: undelivered messages become "not delivered". Final.'),
)
def detainee_release(
    ctx: typer.Context,
    detainee_id: Annotated[str, typer.Argument(help=_("The detainee who leaves."))],
    yes: Annotated[bool, typer.Option("--yes", help=_("Do not ask for confirmation."))] = False,
) -> None:
    """Close the detainee's mailbox: undelivered messages become "not delivered". Final."""
    options: StaffOptions = ctx.obj
    if not yes:
        typer.confirm(
            _(
                "Release {detainee}? The mailbox closes and undelivered messages are not "
                "delivered.",
                detainee=detainee_id,
            ),
            abort=True,
        )
    request = admin_pb2.ReleaseDetaineeRequest(detainee_id=detainee_id)
    reply: admin_pb2.ReleaseDetaineeResponse = run(
        lambda: _call(options, "ReleaseDetainee", request)
    )
    emit(
        options,
        reply.detainee,
        _("detainee {detainee} released: mailbox closed", detainee=detainee_id),
    )


@detainee_app.command(
    "regime",
    help=_(
        "Place a detainee in another regime; it decides whether messages are screened or blocked."
    ),
)
def detainee_regime(
    ctx: typer.Context,
    detainee_id: Annotated[str, typer.Argument(help=_("The detainee."))],
    regime: Annotated[str, typer.Argument(help=_("The new regime (see `regime list`)."))],
) -> None:
    """Place a detainee in another regime; it decides whether messages are screened or blocked."""
    options: StaffOptions = ctx.obj
    request = admin_pb2.SetDetaineeRegimeRequest(detainee_id=detainee_id, regime=regime)
    reply: admin_pb2.SetDetaineeRegimeResponse = run(
        lambda: _call(options, "SetDetaineeRegime", request)
    )
    emit(
        options,
        reply.detainee,
        _(
            "detainee {detainee} now in regime {regime}",
            detainee=detainee_id,
            regime=reply.detainee.regime,
        ),
    )


@detainee_app.command(
    "list", help=_("Detainees of one institution, or of every institution in your scope.")
)
def detainee_list(
    ctx: typer.Context,
    institution: Annotated[str, typer.Option(help=_("Only this institution."))] = "",
) -> None:
    """Detainees of one institution, or of every institution in your scope."""
    options: StaffOptions = ctx.obj

    def list_all() -> list[common_pb2.Detainee]:
        client = options.client()
        found: list[common_pb2.Detainee] = []
        token = ""
        try:
            while True:
                reply: admin_pb2.ListDetaineesResponse = client.call(
                    "admin",
                    "ListDetainees",
                    admin_pb2.ListDetaineesRequest(
                        institution_id=institution,
                        page=common_pb2.PageRequest(page_size=500, page_token=token),
                    ),
                )
                found.extend(reply.detainees)
                token = reply.next_page_token
                if not token:
                    return found
        finally:
            client.close()

    detainees = run(list_all)
    emit(
        options,
        _listing("detainees", detainees),
        "\n".join(_detainee_line(d) for d in detainees) or _("no detainees"),
    )


# --------------------------------------------------------------------------- regimes

regime_app = cli_app(help=_("Regimes and their messaging policy: set, list."))


def _regime_line(r: admin_pb2.Regime) -> str:
    line = f"{r.name}  {_words(POLICIES, r.policy)}"
    if r.tell_relatives_reason:
        line += "  " + _("relatives told the reason")
    return f"{line}  {r.description}" if r.description else line


@regime_app.command(
    "set",
    help=_(
        "Create a regime or change its policy (national administrators only).\n\n"
        "The change applies at once to every detainee in the regime."
    ),
)
def regime_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help=_("Stable name such as regular, ebi, gvm."))],
    policy: Annotated[
        Policy,
        typer.Option(
            help=_(
                "blocked: no messaging at all; screen-all: every non-privileged message is "
                "screened; screen-on-order: screened only under an active screening order."
            )
        ),
    ],
    description: Annotated[str, typer.Option(help=_("What the regime is, for people."))] = "",
    tell_relatives_reason: Annotated[
        bool,
        typer.Option(
            "--tell-relatives-reason/--no-tell-relatives-reason",
            help=_(
                "Whether relatives are told the reason category of a message withheld in "
                "this regime; by default they read only 'not delivered'."
            ),
        ),
    ] = False,
) -> None:
    """Create a regime or change its policy (national administrators only).

    The change applies at once to every detainee in the regime.
    """
    options: StaffOptions = ctx.obj
    request = admin_pb2.SetRegimeRequest(
        regime=admin_pb2.Regime(
            name=name,
            policy=POLICIES[policy],
            description=description,
            tell_relatives_reason=tell_relatives_reason,
        )
    )
    reply: admin_pb2.SetRegimeResponse = run(lambda: _call(options, "SetRegime", request))
    emit(options, reply.regime, _("regime {regime}", regime=_regime_line(reply.regime)))


@regime_app.command("list", help=_("Every regime and its policy."))
def regime_list(ctx: typer.Context) -> None:
    """Every regime and its policy."""
    options: StaffOptions = ctx.obj
    reply: admin_pb2.ListRegimesResponse = run(
        lambda: _call(options, "ListRegimes", admin_pb2.ListRegimesRequest())
    )
    emit(
        options,
        _listing("regimes", reply.regimes),
        "\n".join(_regime_line(r) for r in reply.regimes) or _("no regimes"),
    )


# --------------------------------------------------------------------------- screening orders

order_app = cli_app(help=_("Screening orders (art. 36 Pbw): create, end, list."))


def _order_line(o: admin_pb2.ScreeningOrder) -> str:
    ended = (
        _(", ended early {time}", time=_when(o, "ended_early_at"))
        if o.HasField("ended_early_at")
        else ""
    )
    return (
        _(
            "{order}  {detainee}  {ground}  {direction}  from {start} until {end}",
            order=o.order_id,
            detainee=o.detainee_id,
            ground=_words(GROUNDS, o.legal_ground),
            direction=_words(WAYS, o.direction),
            start=_when(o, "starts_at"),
            end=_when(o, "ends_at"),
        )
        + ended
    )


@order_app.command(
    "create",
    help=_(
        "Order that a detainee's messages be screened for a period (at most 366 days).\n\n"
        "Messages covered by an active order wait in the screening queue; privileged ones "
        "never do."
    ),
)
def order_create(
    ctx: typer.Context,
    detainee_id: Annotated[
        str, typer.Argument(help=_("The detainee whose messages are screened."))
    ],
    ground: Annotated[Ground, typer.Option(help=_("The legal ground of the order."))],
    until: Annotated[
        str,
        typer.Option(
            "--to", help=_("Last day (a date includes that whole day) or date-time, UTC.")
        ),
    ],
    direction: Annotated[
        Way, typer.Option(help=_("Messages to the detainee, from, or both."))
    ] = Way.both,
    since: Annotated[
        str, typer.Option("--from", help=_("First day or date-time, UTC; default: now."))
    ] = "",
    note: Annotated[str, typer.Option(help=_("The decision's reference and reasons."))] = "",
) -> None:
    """Order that a detainee's messages be screened for a period (at most 366 days).

    Messages covered by an active order wait in the screening queue; privileged ones never do.
    """
    options: StaffOptions = ctx.obj
    starts = (
        parse_moment(since, end_of_day=False)
        if since
        else int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    )
    ends = parse_moment(until, end_of_day=True)
    if ends <= starts:
        raise typer.BadParameter(_("--to must come after --from"), param_hint="--to")
    request = admin_pb2.CreateScreeningOrderRequest(
        detainee_id=detainee_id,
        legal_ground=GROUNDS[ground],
        direction=WAYS[direction],
        starts_at=_stamp(starts),
        ends_at=_stamp(ends),
        note=note,
    )
    reply: admin_pb2.CreateScreeningOrderResponse = run(
        lambda: _call(options, "CreateScreeningOrder", request)
    )
    emit(options, reply.order, _("order {order}", order=_order_line(reply.order)))


@order_app.command(
    "end",
    help=_("End a screening order now; messages from now on follow the regime alone."),
)
def order_end(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help=_("The order to end now."))],
) -> None:
    """End a screening order now; messages from now on follow the regime alone."""
    options: StaffOptions = ctx.obj
    request = admin_pb2.EndScreeningOrderRequest(order_id=order_id)
    reply: admin_pb2.EndScreeningOrderResponse = run(
        lambda: _call(options, "EndScreeningOrder", request)
    )
    emit(options, reply.order, _("order {order}", order=_order_line(reply.order)))


@order_app.command(
    "list",
    help=_("Active screening orders of one detainee, or of every detainee in your scope."),
)
def order_list(
    ctx: typer.Context,
    detainee: Annotated[str, typer.Option(help=_("Only this detainee's orders."))] = "",
    include_ended: Annotated[
        bool, typer.Option("--all", help=_("Include orders that have ended."))
    ] = False,
) -> None:
    """Active screening orders of one detainee, or of every detainee in your scope."""
    options: StaffOptions = ctx.obj
    request = admin_pb2.ListScreeningOrdersRequest(
        detainee_id=detainee, include_ended=include_ended
    )
    reply: admin_pb2.ListScreeningOrdersResponse = run(
        lambda: _call(options, "ListScreeningOrders", request)
    )
    emit(
        options,
        _listing("orders", reply.orders),
        "\n".join(_order_line(o) for o in reply.orders) or _("no orders"),
    )


# --------------------------------------------------------------------------- contacts

contact_app = cli_app(help=_("Contact requests from relatives: list, approve, reject, revoke."))


def _contact_line(c: admin_pb2.ContactRequest) -> str:
    who = (
        f"{isolate(c.display_name)} ({isolate(c.relationship)})"
        if c.relationship
        else isolate(c.display_name)
    )
    decided = _("  by {officer}", officer=c.decided_by) if c.decided_by else ""
    return (
        _(
            "{contact}  {status}  {detainee}  {who}  account {account}  {time}",
            contact=c.contact_id,
            status=_words(CONTACT_STATES, c.status),
            detainee=c.detainee_id,
            who=who,
            account=c.account_id,
            time=_when(c, "requested_at"),
        )
        + decided
    )


@contact_app.command("list", help=_("Contact requests of detainees in your scope, oldest first."))
def contact_list(
    ctx: typer.Context,
    institution: Annotated[str, typer.Option(help=_("Only this institution's detainees."))] = "",
    status: Annotated[ContactState | None, typer.Option(help=_("Only this status."))] = None,
) -> None:
    """Contact requests of detainees in your scope, oldest first."""
    options: StaffOptions = ctx.obj
    request = admin_pb2.ListContactRequestsRequest(
        institution_id=institution,
        status=CONTACT_STATES[status] if status else common_pb2.CONTACT_STATUS_UNSPECIFIED,
    )
    reply: admin_pb2.ListContactRequestsResponse = run(
        lambda: _call(options, "ListContactRequests", request)
    )
    emit(
        options,
        _listing("requests", reply.requests),
        "\n".join(_contact_line(c) for c in reply.requests) or _("no contact requests"),
    )


def _decide(
    options: StaffOptions, contact_id: str, decision: common_pb2.ContactStatus.ValueType, note: str
) -> None:
    request = admin_pb2.DecideContactRequest(contact_id=contact_id, decision=decision, note=note)
    reply: admin_pb2.DecideContactResponse = run(lambda: _call(options, "DecideContact", request))
    emit(options, reply.contact, _contact_line(reply.contact))


ContactId = Annotated[str, typer.Argument(help=_("The contact request's id (see `contact list`)."))]
Note = Annotated[str, typer.Option(help=_("For the file; the relative does not see it."))]


@contact_app.command(
    "approve",
    help=_("Approve a requested contact: the relative may write to the detainee from now on."),
)
def contact_approve(ctx: typer.Context, contact_id: ContactId, note: Note = "") -> None:
    """Approve a requested contact: the relative may write to the detainee from now on."""
    _decide(ctx.obj, contact_id, common_pb2.CONTACT_STATUS_APPROVED, note)


@contact_app.command("reject", help=_("Reject a requested contact."))
def contact_reject(ctx: typer.Context, contact_id: ContactId, note: Note = "") -> None:
    """Reject a requested contact."""
    _decide(ctx.obj, contact_id, common_pb2.CONTACT_STATUS_REJECTED, note)


@contact_app.command(
    "revoke", help=_("Revoke an approved contact: new messages from the relative are refused.")
)
def contact_revoke(ctx: typer.Context, contact_id: ContactId, note: Note = "") -> None:
    """Revoke an approved contact: new messages from the relative are refused."""
    _decide(ctx.obj, contact_id, common_pb2.CONTACT_STATUS_REVOKED, note)


# --------------------------------------------------------------------------- correspondents

correspondent_app = cli_app(
    help=_("Privileged correspondents (art. 37 Pbw: lawyers and the like): verify, revoke.")
)


@correspondent_app.command(
    "verify",
    help=_(
        "Record that an account belongs to a privileged correspondent (national administrators)."
        "\n\nFrom then on no screener can open its messages.\n\n"
        "Privilege comes only from this verification, never from the account itself."
    ),
)
def correspondent_verify(
    ctx: typer.Context,
    account_id: Annotated[str, typer.Argument(help=_("The correspondent's account id."))],
    kind: Annotated[str, typer.Option(help=_("What kind of correspondent, e.g. lawyer."))],
    evidence: Annotated[
        str, typer.Option(help=_("The register or document checked, e.g. a bar number."))
    ],
) -> None:
    """Record that an account belongs to a privileged correspondent (national administrators).

    From then on no screener can open its messages.

    Privilege comes only from this verification, never from the account itself.
    """
    options: StaffOptions = ctx.obj
    request = admin_pb2.VerifyCorrespondentRequest(
        account_id=account_id, kind=kind, evidence_reference=evidence
    )
    reply: admin_pb2.VerifyCorrespondentResponse = run(
        lambda: _call(options, "VerifyCorrespondent", request)
    )
    c = reply.correspondent
    emit(
        options,
        c,
        _(
            "account {account} verified as {kind} ({evidence})",
            account=c.account_id,
            kind=c.kind,
            evidence=c.evidence_reference,
        ),
    )


@correspondent_app.command(
    "revoke", help=_("End an account's privileged status (national administrators only).")
)
def correspondent_revoke(
    ctx: typer.Context,
    account_id: Annotated[str, typer.Argument(help=_("The correspondent's account id."))],
) -> None:
    """End an account's privileged status (national administrators only)."""
    options: StaffOptions = ctx.obj
    request = admin_pb2.RevokeCorrespondentRequest(account_id=account_id)
    reply: admin_pb2.RevokeCorrespondentResponse = run(
        lambda: _call(options, "RevokeCorrespondent", request)
    )
    emit(
        options,
        reply.correspondent,
        _("account {account} is no longer privileged", account=account_id),
    )


# --------------------------------------------------------------------------- key records

keyrecord_app = cli_app(
    help=_("Key records of devices, mailboxes and institutions: revoke a lost or stolen one.")
)


@keyrecord_app.command(
    "revoke",
    help=_(
        "Revoke a key record (a relative's lost device, a mailbox or institution key) by its "
        "id, 64 hex digits. From then on nothing signed with it is accepted and nothing new "
        "is sealed to it; the revocation is signed into the directory and logged (national "
        "administrators only)."
    ),
)
def keyrecord_revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help=_("The key record's id, 64 hex digits."))],
    reason: Annotated[str, typer.Option(help=_("Why, in a few words (logged)."))],
    yes: Annotated[bool, typer.Option("--yes", help=_("Do not ask for confirmation."))] = False,
) -> None:
    """Revoke a key record by its id."""
    try:
        raw = bytes.fromhex(key_id.strip())
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise typer.BadParameter(_("a key id is 64 hex digits"), param_hint="KEY_ID")
    options: StaffOptions = ctx.obj
    if not yes:
        typer.confirm(_("Revoke key record {key}? This cannot be undone.", key=key_id), abort=True)
    request = admin_pb2.RevokeKeyRequest(key_id=raw, reason=reason)
    run(lambda: _call(options, "RevokeKey", request))
    emit(
        options,
        {"keyId": raw.hex(), "revoked": True, "reason": reason},
        _("key record {key} revoked", key=raw.hex()),
    )


# --------------------------------------------------------------------------- staff

staff_app = cli_app(help=_("Staff logins at the key server (needs a key-server operator token)."))


@staff_app.command(
    "add",
    help=_(
        "Create a staff login with roles and institutions, or replace an existing one's.\n\n"
        "Needs a key-server operator token in SEALPOST_KEY_SERVER_TOKEN, not your own login.\n\n"
        "That is the root token, or one that may write auth/userpass/users and identity/entity."
        "\n\nThe new password is asked for (not echoed) or read from SEALPOST_NEW_PASSWORD.\n\n"
        "An existing user's password, roles and institutions are replaced.\n\n"
        "New roles and institutions count from that person's next identity token.\n\n"
        "The change is then recorded in the transparency log through the gateway, signed in "
        "as a national administrator (SEALPOST_STAFF_TOKEN, or --user): the auditor matches "
        "it to the key server's audit log."
    ),
)
def staff_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help=_("User name: lower case, digits, '.', '_', '-'."))],
    role: Annotated[
        list[StaffRole],
        typer.Option(help=_("A role; repeat for several. Screener and auditor never combine.")),
    ],
    institution: Annotated[
        list[str],
        typer.Option(help=_("An institution id; repeat for several, or '*' for all (national).")),
    ],
    record: Annotated[
        bool,
        typer.Option(
            help=_(
                "Record the change in the transparency log (signed in as a national "
                "administrator). --no-record for the very first administrator, with --receipt."
            )
        ),
    ] = True,
    receipt: Annotated[
        Path | None,
        typer.Option(help=_("Also write the change to this file, for `admin key record`.")),
    ] = None,
) -> None:
    """Create a staff login with roles and institutions, or replace an existing one's.

    Needs a key-server operator token in SEALPOST_KEY_SERVER_TOKEN, not your own login.

    That is the root token, or one that may write auth/userpass/users and identity/entity.

    The new password is asked for (not echoed) or read from SEALPOST_NEW_PASSWORD.

    An existing user's password, roles and institutions are replaced.

    New roles and institutions count from that person's next identity token.

    The change is then recorded in the transparency log through the gateway, signed in
    as a national administrator (SEALPOST_STAFF_TOKEN, or --user): the auditor matches
    it to the key server's audit log.
    """
    from sealpost.escrow.bootstrap import (  # noqa: PLC0415
        BootstrapSettings,
        KeyServerBootstrap,
        StaffUser,
    )
    from sealpost.escrow.errors import PermissionDeniedError  # noqa: PLC0415

    options: StaffOptions = ctx.obj
    config = options.key_server_config()
    password = os.environ.get("SEALPOST_NEW_PASSWORD") or typer.prompt(
        _("New password for {name}", name=name), hide_input=True, confirmation_prompt=True
    )
    settings = BootstrapSettings(prefix=key_prefix())

    def create() -> tuple[StaffUser, int]:
        admin = KeyServerBootstrap(config, options.key_server_token(), settings)
        try:
            user = admin.create_staff_user(name, password, role, institution)
        except PermissionDeniedError as exc:
            raise PermissionDeniedError(
                _(
                    "the key server refused: creating staff logins needs a key-server operator "
                    "token in SEALPOST_KEY_SERVER_TOKEN (root, or write access to "
                    "auth/{mount}/users and identity/entity)",
                    mount=settings.userpass_mount,
                ),
                status=exc.status,
            ) from None
        finally:
            done = admin.take_actions()
            admin.close()
        return user, settle(options, done, record=record, receipt=receipt)

    user, recorded = run(create)
    roles = sorted(r.value for r in user.roles)
    institutions = sorted(user.institutions)
    emit(
        options,
        {
            "name": user.username,
            "entityId": user.entity_id,
            "roles": roles,
            "institutions": institutions,
            "policies": list(user.policies),
            "recorded": recorded,
        },
        _(
            "staff {name}: roles {roles}; institutions {institutions}",
            name=user.username,
            roles=", ".join(roles),
            institutions=", ".join(institutions),
        )
        + (_("; recorded in the log") if recorded else _("; not recorded in the log")),
    )


def _operator(options: StaffOptions) -> KeyServerBootstrap:
    """The key server with your token (an operator's, for changes to staff logins)."""
    from sealpost.escrow.bootstrap import BootstrapSettings, KeyServerBootstrap  # noqa: PLC0415

    return KeyServerBootstrap(
        options.key_server_config(),
        options.key_server_token(),
        BootstrapSettings(prefix=key_prefix()),
    )


@staff_app.command(
    "list",
    help=_(
        "Staff logins at the key server with their roles and institutions.\n\n"
        "Needs a key-server token that may read auth/userpass/users and identity/entity."
    ),
)
def staff_list(ctx: typer.Context) -> None:
    """Staff logins at the key server with their roles and institutions."""
    options: StaffOptions = ctx.obj

    def listed() -> list[Any]:
        admin = _operator(options)
        try:
            return admin.list_staff_users()
        finally:
            admin.close()

    users = run(listed)
    rows = [
        (u.username, ", ".join(sorted(r.value for r in u.roles)), ", ".join(sorted(u.institutions)))
        for u in users
    ]
    emit(
        options,
        {
            "staff": [
                {
                    "name": u.username,
                    "entityId": u.entity_id,
                    "roles": sorted(r.value for r in u.roles),
                    "institutions": sorted(u.institutions),
                    "policies": list(u.policies),
                }
                for u in users
            ]
        },
        table((_("name"), _("roles"), _("institutions")), rows) if rows else _("no staff logins"),
    )


@staff_app.command(
    "remove",
    help=_(
        "Remove a staff login and its key-server identity: it can no longer sign in, and the "
        "key-server tokens it holds lose every capability at once. Identity tokens already "
        "issued expire within their lifetime (15 minutes by default).\n\n"
        "Needs a key-server operator token in SEALPOST_KEY_SERVER_TOKEN. The change is "
        "recorded in the transparency log, as for add."
    ),
)
def staff_remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help=_("The staff login to remove."))],
    yes: Annotated[bool, typer.Option("--yes", help=_("Do not ask for confirmation."))] = False,
    record: Annotated[
        bool,
        typer.Option(
            help=_("Record the change in the transparency log (as a national administrator).")
        ),
    ] = True,
) -> None:
    """Remove a staff login and its key-server identity."""
    options: StaffOptions = ctx.obj
    if not yes:
        typer.confirm(_("Remove the staff login {name}?", name=name), abort=True)

    def remove() -> int:
        admin = _operator(options)
        try:
            admin.remove_staff_user(name)
        finally:
            done = admin.take_actions()
            admin.close()
        return settle(options, done, record=record, receipt=None)

    recorded = run(remove)
    emit(
        options,
        {"name": name, "removed": True, "recorded": recorded},
        _("staff {name} removed", name=name)
        + (_("; recorded in the log") if recorded else _("; not recorded in the log")),
    )


@staff_app.command(
    "mfa",
    help=_(
        "Require a second factor (a TOTP code from an authenticator app) at this person's "
        "sign-in, and write the enrolment link (otpauth://, a secret) to --out for their "
        "app. --reset replaces a lost one. Needs a key-server operator token; recorded in the "
        "transparency log as for add."
    ),
)
def staff_mfa(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help=_("The staff login."))],
    out: Annotated[
        Path,
        typer.Option(help=_("Write the enrolment link here (readable by you only); a new file.")),
    ],
    reset: Annotated[
        bool, typer.Option("--reset", help=_("Replace an existing second factor (a lost phone)."))
    ] = False,
    record: Annotated[
        bool,
        typer.Option(
            help=_("Record the change in the transparency log (as a national administrator).")
        ),
    ] = True,
) -> None:
    """Require a TOTP second factor at this person's sign-in."""
    options: StaffOptions = ctx.obj
    if out.exists():
        raise typer.BadParameter(_("{file} exists: give a new file", file=out), param_hint="--out")

    def enrol() -> tuple[str, int]:
        admin = _operator(options)
        try:
            url = admin.enroll_staff_totp(name, reset=reset)
        finally:
            done = admin.take_actions()
            admin.close()
        return url, settle(options, done, record=record, receipt=None)

    url, recorded = run(enrol)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(url + "\n")
    emit(
        options,
        {"name": name, "mfa": "totp", "enrolmentFile": str(out), "recorded": recorded},
        _(
            "staff {name} now signs in with a one-time code; give them {file} for their "
            "authenticator app, then destroy it",
            name=name,
            file=out,
        ),
    )


def register(app: typer.Typer) -> None:
    """Add the directory commands to ``sealpost admin``."""
    app.add_typer(institution_app, name="institution")
    app.add_typer(detainee_app, name="detainee")
    app.add_typer(regime_app, name="regime")
    app.add_typer(order_app, name="order")
    app.add_typer(contact_app, name="contact")
    app.add_typer(correspondent_app, name="correspondent")
    app.add_typer(staff_app, name="staff")
    app.add_typer(keyrecord_app, name="key-record")
