"""AdminService: institutions, detainees, regimes, orders, contacts, correspondents, terminals.

Every change is logged in the transparency log with the officer who made it.
Administrators manage who may write to whom; nothing here returns content.
"""

from __future__ import annotations

import re

from sqlalchemy import Connection

from sealpost.crypto.logentry import TELL_RELATIVES_REASON_FIELD, LogAction
from sealpost.gateway import directory, keyevents, pki, policy, store, translog
from sealpost.gateway.errors import FailedPrecondition, InvalidArgument
from sealpost.gateway.principals import Principal
from sealpost.gateway.services import common
from sealpost.gateway.services.context import CALLER, Context, millis, page_size, timestamp
from sealpost.v1 import admin_pb2, common_pb2, keys_pb2

INSTITUTION_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
REGIME_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
DEFAULT_TERMINAL_DAYS = 90
MAX_ORDER_DAYS = 366


def _scope(caller: Principal) -> frozenset[str] | None:
    """The institutions a caller may list; None for national staff (all)."""
    return None if caller.national else caller.institutions


def _key_scope(connection: Connection, purpose: int, subject: str) -> translog.Scope:
    """The institutions a key's revocation concerns: its institution's, or its detainee's."""
    if purpose == keys_pb2.KEY_PURPOSE_INSTITUTION:
        return frozenset({subject})
    if purpose == keys_pb2.KEY_PURPOSE_MAILBOX:
        return frozenset({store.detainee(connection, subject).institution_id})
    return translog.NATIONAL


class AdminService:
    """The administrators' API."""

    def __init__(self, ctx: Context, ca: pki.KeyPair) -> None:
        """Serve with the shared context and the terminal CA."""
        self.ctx = ctx
        self.ca = ca

    # ----------------------------------------------------------------- institutions

    async def CreateInstitution(  # noqa: N802 - gRPC method name
        self, request: admin_pb2.CreateInstitutionRequest
    ) -> admin_pb2.CreateInstitutionResponse:
        """A new institution."""
        caller = CALLER.get()
        if not INSTITUTION_ID.fullmatch(request.institution_id):
            raise InvalidArgument("institution_id: 2-63 lower-case letters, digits and dashes")
        name = common.text(request.name, "name")
        now = self.ctx.clock()

        def create(connection: Connection) -> None:
            store.create_institution(connection, request.institution_id, name, now)
            store.log(
                connection,
                LogAction.INSTITUTION_CREATED,
                caller.actor,
                now,
                [("institution", request.institution_id)],
                scope=frozenset({request.institution_id}),
            )

        await self.ctx.write(create)
        return admin_pb2.CreateInstitutionResponse(
            institution=admin_pb2.Institution(
                institution_id=request.institution_id, name=name, created_at=timestamp(now)
            )
        )

    async def ListInstitutions(  # noqa: N802
        self, request: admin_pb2.ListInstitutionsRequest
    ) -> admin_pb2.ListInstitutionsResponse:
        """Institutions in the caller's scope."""
        rows = await self.ctx.db.aread(lambda c: store.list_institutions(c, _scope(CALLER.get())))
        return admin_pb2.ListInstitutionsResponse(
            institutions=[
                admin_pb2.Institution(
                    institution_id=r.id, name=r.name, created_at=timestamp(r.created_at_ms)
                )
                for r in rows
            ]
        )

    # ----------------------------------------------------------------- detainees

    def _detainee(self, connection: Connection, detainee_id: str) -> common_pb2.Detainee:
        row = store.detainee(connection, detainee_id)
        key = store.current_key(
            connection, keys_pb2.KEY_PURPOSE_MAILBOX, detainee_id, self.ctx.clock() // 1000
        )
        return common.detainee_message(row, b"" if key is None else key.id)

    async def IntakeDetainee(  # noqa: N802
        self, request: admin_pb2.IntakeDetaineeRequest
    ) -> admin_pb2.IntakeDetaineeResponse:
        """Register a detainee at an institution, under a regime."""
        caller = CALLER.get()
        detainee_id = (
            common.identifier(request.detainee_id, "detainee_id")
            if request.detainee_id
            else store.new_id("det")
        )
        institution = common.identifier(request.institution_id, "institution_id")
        regime = common.identifier(request.regime or "regular", "regime")
        now = self.ctx.clock()

        def intake(connection: Connection) -> common_pb2.Detainee:
            store.intake_detainee(connection, detainee_id, institution, regime, now)
            store.log(
                connection,
                LogAction.DETAINEE_INTAKE,
                caller.actor,
                now,
                [("detainee", detainee_id), ("institution", institution)],
                scope=frozenset({institution}),
                regime=regime,
            )
            return self._detainee(connection, detainee_id)

        return admin_pb2.IntakeDetaineeResponse(detainee=await self.ctx.write(intake))

    async def TransferDetainee(  # noqa: N802
        self, request: admin_pb2.TransferDetaineeRequest
    ) -> admin_pb2.TransferDetaineeResponse:
        """Move a detainee and the undelivered messages to another institution."""
        caller = CALLER.get()
        detainee_id = common.identifier(request.detainee_id, "detainee_id")
        target = common.identifier(request.to_institution_id, "to_institution_id")
        now = self.ctx.clock()

        def transfer(connection: Connection) -> common_pb2.Detainee:
            source = store.transfer_detainee(connection, detainee_id, target, now)
            if request.regime:
                store.set_detainee_regime(connection, detainee_id, request.regime, now)
            store.log(
                connection,
                LogAction.DETAINEE_TRANSFERRED,
                caller.actor,
                now,
                [("detainee", detainee_id), ("institution", source), ("institution_to", target)],
                scope=frozenset({source, target}),
                # A regime changed with the transfer is logged like SetDetaineeRegime's.
                **({"regime": request.regime} if request.regime else {}),
            )
            return self._detainee(connection, detainee_id)

        return admin_pb2.TransferDetaineeResponse(detainee=await self.ctx.write(transfer))

    async def ReleaseDetainee(  # noqa: N802
        self, request: admin_pb2.ReleaseDetaineeRequest
    ) -> admin_pb2.ReleaseDetaineeResponse:
        """Close the mailbox: pending messages become "not delivered"."""
        caller = CALLER.get()
        detainee_id = common.identifier(request.detainee_id, "detainee_id")
        now = self.ctx.clock()

        def release(connection: Connection) -> common_pb2.Detainee:
            rejected = store.release_detainee(connection, detainee_id, now)
            scope = frozenset({store.detainee(connection, detainee_id).institution_id})
            store.log(
                connection,
                LogAction.DETAINEE_RELEASED,
                caller.actor,
                now,
                [("detainee", detainee_id)],
                scope=scope,
                undelivered=str(len(rejected)),
            )
            for message_id in rejected:
                store.log(
                    connection,
                    LogAction.MESSAGE_REJECTED,
                    caller.actor,
                    now,
                    [("message", message_id.hex()), ("detainee", detainee_id)],
                    scope=scope,
                    reason="detainee_released",
                )
            return self._detainee(connection, detainee_id)

        return admin_pb2.ReleaseDetaineeResponse(detainee=await self.ctx.write(release))

    async def ListDetainees(  # noqa: N802
        self, request: admin_pb2.ListDetaineesRequest
    ) -> admin_pb2.ListDetaineesResponse:
        """Detainees of one institution, or of every institution in scope."""
        caller = CALLER.get()
        scope = frozenset({request.institution_id}) if request.institution_id else _scope(caller)
        limit = page_size(request.page.page_size)

        def list_detainees(connection: Connection) -> admin_pb2.ListDetaineesResponse:
            rows = store.list_detainees(connection, scope, request.page.page_token, limit)
            return admin_pb2.ListDetaineesResponse(
                detainees=[self._detainee(connection, r.id) for r in rows],
                next_page_token=rows[-1].id if len(rows) == limit else "",
            )

        return await self.ctx.db.aread(list_detainees)

    # ----------------------------------------------------------------- regimes

    async def SetRegime(  # noqa: N802
        self, request: admin_pb2.SetRegimeRequest
    ) -> admin_pb2.SetRegimeResponse:
        """Create a regime or change its policy (national staff only)."""
        caller = CALLER.get()
        regime = request.regime
        if not REGIME_NAME.fullmatch(regime.name):
            raise InvalidArgument("regime name: lower-case letters, digits and dashes")
        common.enum_value(regime.policy, common_pb2.RegimePolicy, "regime.policy")
        description = common.text(regime.description, "description", max_chars=500, required=False)
        now = self.ctx.clock()

        tell = regime.tell_relatives_reason

        def set_regime(connection: Connection) -> None:
            store.set_regime(
                connection,
                regime.name,
                regime.policy,
                description,
                now,
                tell_relatives_reason=tell,
            )
            store.log(
                connection,
                LogAction.REGIME_POLICY_CHANGED,
                caller.actor,
                now,
                [("regime", regime.name)],
                scope=translog.PUBLIC,
                policy=common_pb2.RegimePolicy.Name(regime.policy),
                **{TELL_RELATIVES_REASON_FIELD: "true" if tell else "false"},
            )

        await self.ctx.write(set_regime)
        return admin_pb2.SetRegimeResponse(
            regime=admin_pb2.Regime(
                name=regime.name,
                policy=regime.policy,
                description=description,
                tell_relatives_reason=tell,
            )
        )

    async def ListRegimes(  # noqa: N802
        self, request: admin_pb2.ListRegimesRequest
    ) -> admin_pb2.ListRegimesResponse:
        """Every regime and its policy."""
        rows = await self.ctx.db.aread(store.list_regimes)
        return admin_pb2.ListRegimesResponse(
            regimes=[
                admin_pb2.Regime(
                    name=r.name,
                    policy=r.policy,
                    description=r.description,
                    tell_relatives_reason=r.tell_relatives_reason,
                )
                for r in rows
            ]
        )

    async def SetDetaineeRegime(  # noqa: N802
        self, request: admin_pb2.SetDetaineeRegimeRequest
    ) -> admin_pb2.SetDetaineeRegimeResponse:
        """Place a detainee in another regime."""
        caller = CALLER.get()
        detainee_id = common.identifier(request.detainee_id, "detainee_id")
        regime = common.identifier(request.regime, "regime")
        now = self.ctx.clock()

        def set_regime(connection: Connection) -> common_pb2.Detainee:
            store.set_detainee_regime(connection, detainee_id, regime, now)
            store.log(
                connection,
                LogAction.DETAINEE_REGIME_CHANGED,
                caller.actor,
                now,
                [("detainee", detainee_id)],
                scope=frozenset({store.detainee(connection, detainee_id).institution_id}),
                regime=regime,
            )
            return self._detainee(connection, detainee_id)

        return admin_pb2.SetDetaineeRegimeResponse(detainee=await self.ctx.write(set_regime))

    # ----------------------------------------------------------------- screening orders

    @staticmethod
    def _order(row: store.ScreeningOrderRow) -> admin_pb2.ScreeningOrder:
        return admin_pb2.ScreeningOrder(
            order_id=row.id,
            detainee_id=row.detainee_id,
            legal_ground=row.legal_ground,
            direction=row.direction,
            starts_at=timestamp(row.starts_at_ms),
            ends_at=timestamp(row.ends_at_ms),
            ordered_by=row.ordered_by,
            note=row.note,
            ended_early_at=timestamp(row.ended_early_at_ms),
        )

    async def CreateScreeningOrder(  # noqa: N802
        self, request: admin_pb2.CreateScreeningOrderRequest
    ) -> admin_pb2.CreateScreeningOrderResponse:
        """Record an order to read a detainee's messages (art. 36 Pbw), with its legal ground."""
        caller = CALLER.get()
        detainee_id = common.identifier(request.detainee_id, "detainee_id")
        ground = common.enum_value(request.legal_ground, common_pb2.LegalGround, "legal_ground")
        direction = common.enum_value(request.direction, common_pb2.Direction, "direction")
        starts = millis(request.starts_at, "starts_at")
        ends = millis(request.ends_at, "ends_at")
        if not starts < ends <= starts + MAX_ORDER_DAYS * 86_400_000:
            raise InvalidArgument(f"ends_at must follow starts_at, within {MAX_ORDER_DAYS} days")
        note = common.text(request.note, "note", max_chars=1000, required=False)
        now = self.ctx.clock()

        def create(connection: Connection) -> admin_pb2.ScreeningOrder:
            detainee = store.detainee(connection, detainee_id)
            if detainee.status == policy.RELEASED_DETAINEE:
                raise FailedPrecondition("the detainee has been released")
            order_id = store.create_order(
                connection, detainee_id, ground, direction, starts, ends, caller.actor, note, now
            )
            store.log(
                connection,
                LogAction.SCREENING_ORDER_CREATED,
                caller.actor,
                now,
                [("detainee", detainee_id), ("order", order_id)],
                scope=frozenset({detainee.institution_id}),
                legal_ground=common_pb2.LegalGround.Name(ground),  # type: ignore[arg-type]
                direction=common_pb2.Direction.Name(direction),  # type: ignore[arg-type]
                starts_at_ms=str(starts),
                ends_at_ms=str(ends),
            )
            return self._order(store.order(connection, order_id))

        return admin_pb2.CreateScreeningOrderResponse(order=await self.ctx.write(create))

    async def EndScreeningOrder(  # noqa: N802
        self, request: admin_pb2.EndScreeningOrderRequest
    ) -> admin_pb2.EndScreeningOrderResponse:
        """End an order now."""
        caller = CALLER.get()
        order_id = common.identifier(request.order_id, "order_id")
        now = self.ctx.clock()

        def end(connection: Connection) -> admin_pb2.ScreeningOrder:
            store.end_order(connection, order_id, now)
            row = store.order(connection, order_id)
            store.log(
                connection,
                LogAction.SCREENING_ORDER_ENDED,
                caller.actor,
                now,
                [("detainee", row.detainee_id), ("order", order_id)],
                scope=frozenset({store.detainee(connection, row.detainee_id).institution_id}),
            )
            return self._order(row)

        return admin_pb2.EndScreeningOrderResponse(order=await self.ctx.write(end))

    async def ListScreeningOrders(  # noqa: N802
        self, request: admin_pb2.ListScreeningOrdersRequest
    ) -> admin_pb2.ListScreeningOrdersResponse:
        """Orders of a detainee, or of every detainee in scope."""
        scope = _scope(CALLER.get())
        now = self.ctx.clock()
        rows = await self.ctx.db.aread(
            lambda c: store.orders_of(c, request.detainee_id, scope, request.include_ended, now)
        )
        return admin_pb2.ListScreeningOrdersResponse(orders=[self._order(r) for r in rows])

    # ----------------------------------------------------------------- contacts

    @staticmethod
    def _contact(row: store.NamedContactRow, now_ms: int) -> admin_pb2.ContactRequest:
        contact = row.contact
        status = policy.contact_status(contact.status, contact.requested_at_ms, now_ms)
        return admin_pb2.ContactRequest(
            contact_id=contact.id,
            detainee_id=contact.detainee_id,
            account_id=contact.account_id,
            display_name=row.display_name,
            relationship=contact.relationship,
            status=status,  # type: ignore[arg-type]
            requested_at=timestamp(contact.requested_at_ms),
            decided_by=contact.decided_by or "",
        )

    async def ListContactRequests(  # noqa: N802
        self, request: admin_pb2.ListContactRequestsRequest
    ) -> admin_pb2.ListContactRequestsResponse:
        """Contact requests of detainees in scope, by status."""
        caller = CALLER.get()
        scope = frozenset({request.institution_id}) if request.institution_id else _scope(caller)
        status = common.enum_filter(request.status, common_pb2.ContactStatus, "status")
        now = self.ctx.clock()
        rows = await self.ctx.db.aread(lambda c: store.contact_requests(c, scope, status, now))
        return admin_pb2.ListContactRequestsResponse(requests=[self._contact(r, now) for r in rows])

    async def DecideContact(  # noqa: N802
        self, request: admin_pb2.DecideContactRequest
    ) -> admin_pb2.DecideContactResponse:
        """Approve or reject a request, or revoke an approved contact."""
        caller = CALLER.get()
        contact_id = common.identifier(request.contact_id, "contact_id")
        decision = common.enum_value(
            request.decision,
            common_pb2.ContactStatus,
            "decision",
            allowed=[
                common_pb2.CONTACT_STATUS_APPROVED,
                common_pb2.CONTACT_STATUS_REJECTED,
                common_pb2.CONTACT_STATUS_REVOKED,
            ],
        )
        note = common.text(request.note, "note", max_chars=1000, required=False)
        now = self.ctx.clock()
        actions: dict[int, LogAction] = {
            common_pb2.CONTACT_STATUS_APPROVED: LogAction.CONTACT_APPROVED,
            common_pb2.CONTACT_STATUS_REJECTED: LogAction.CONTACT_REJECTED,
            common_pb2.CONTACT_STATUS_REVOKED: LogAction.CONTACT_REVOKED,
        }
        action = actions[decision]

        def decide(connection: Connection) -> admin_pb2.ContactRequest:
            store.decide_contact(connection, contact_id, decision, caller.actor, note, now)
            row = store.contact(connection, contact_id)
            contact = row.contact
            store.log(
                connection,
                action,
                caller.actor,
                now,
                [
                    ("contact", contact_id),
                    ("detainee", contact.detainee_id),
                    ("account", contact.account_id),
                ],
                scope=frozenset({store.detainee(connection, contact.detainee_id).institution_id}),
            )
            return self._contact(row, now)

        return admin_pb2.DecideContactResponse(contact=await self.ctx.write(decide))

    # ----------------------------------------------------------------- correspondents

    @staticmethod
    def _correspondent(row: store.CorrespondentRow) -> admin_pb2.Correspondent:
        return admin_pb2.Correspondent(
            account_id=row.account_id,
            kind=row.kind,
            evidence_reference=row.evidence_reference,
            verified_by=row.verified_by,
            verified_at=timestamp(row.verified_at_ms),
            revoked_at=timestamp(row.revoked_at_ms),
        )

    async def VerifyCorrespondent(  # noqa: N802
        self, request: admin_pb2.VerifyCorrespondentRequest
    ) -> admin_pb2.VerifyCorrespondentResponse:
        """Record that an account belongs to a privileged correspondent (art. 37 Pbw)."""
        caller = CALLER.get()
        account_id = common.identifier(request.account_id, "account_id")
        kind = common.text(request.kind, "kind", max_chars=100)
        evidence = common.text(request.evidence_reference, "evidence_reference")
        now = self.ctx.clock()

        def verify(connection: Connection) -> admin_pb2.Correspondent:
            store.verify_correspondent(connection, account_id, kind, evidence, caller.actor, now)
            store.log(
                connection,
                LogAction.CORRESPONDENT_VERIFIED,
                caller.actor,
                now,
                [("account", account_id)],
                scope=translog.NATIONAL,
                kind=kind,
            )
            row = store.correspondent(connection, account_id)
            assert row is not None
            return self._correspondent(row)

        return admin_pb2.VerifyCorrespondentResponse(correspondent=await self.ctx.write(verify))

    async def RevokeCorrespondent(  # noqa: N802
        self, request: admin_pb2.RevokeCorrespondentRequest
    ) -> admin_pb2.RevokeCorrespondentResponse:
        """End an account's privileged status."""
        caller = CALLER.get()
        account_id = common.identifier(request.account_id, "account_id")
        now = self.ctx.clock()

        def revoke(connection: Connection) -> admin_pb2.Correspondent:
            store.revoke_correspondent(connection, account_id, caller.actor, now)
            store.log(
                connection,
                LogAction.CORRESPONDENT_REVOKED,
                caller.actor,
                now,
                [("account", account_id)],
                scope=translog.NATIONAL,
            )
            row = store.correspondent(connection, account_id)
            assert row is not None
            return self._correspondent(row)

        return admin_pb2.RevokeCorrespondentResponse(correspondent=await self.ctx.write(revoke))

    # ----------------------------------------------------------------- terminals and keys

    @staticmethod
    def _terminal(row: store.TerminalRow) -> admin_pb2.Terminal:
        return admin_pb2.Terminal(
            terminal_id=row.id,
            institution_id=row.institution_id,
            certificate_fingerprint=row.fingerprint,
            issued_at=timestamp(row.issued_at_ms),
            expires_at=timestamp(row.expires_at_ms),
            revoked_at=timestamp(row.revoked_at_ms),
        )

    async def IssueTerminalCertificate(  # noqa: N802
        self, request: admin_pb2.IssueTerminalCertificateRequest
    ) -> admin_pb2.IssueTerminalCertificateResponse:
        """Sign a terminal's certificate request: a client certificate for one institution."""
        caller = CALLER.get()
        institution = common.identifier(request.institution_id, "institution_id")
        days = request.valid_days or DEFAULT_TERMINAL_DAYS
        terminal_id = store.new_id("term")
        certificate = pki.sign_terminal_csr(
            self.ca,
            request.csr_pem.encode(),
            terminal_id=terminal_id,
            institution_id=institution,
            valid_days=days,
        )
        fingerprint = pki.fingerprint(certificate)
        expires = pki.expiry_ms(certificate)
        now = self.ctx.clock()

        def issue(connection: Connection) -> admin_pb2.Terminal:
            store.institution(connection, institution)
            store.add_terminal(
                connection,
                terminal_id,
                institution,
                fingerprint,
                certificate.decode(),
                now,
                expires,
            )
            store.log(
                connection,
                LogAction.TERMINAL_CERTIFICATE_ISSUED,
                caller.actor,
                now,
                [("terminal", terminal_id), ("institution", institution)],
                scope=frozenset({institution}),
                fingerprint=fingerprint,
                expires_at_ms=str(expires),
            )
            return self._terminal(store.terminal(connection, terminal_id))

        terminal = await self.ctx.write(issue)
        return admin_pb2.IssueTerminalCertificateResponse(
            terminal=terminal,
            certificate_pem=certificate.decode(),
            ca_certificate_pem=self.ca.certificate_pem.decode(),
        )

    async def RevokeTerminal(  # noqa: N802
        self, request: admin_pb2.RevokeTerminalRequest
    ) -> admin_pb2.RevokeTerminalResponse:
        """Revoke a terminal's certificate; its next call is refused."""
        caller = CALLER.get()
        terminal_id = common.identifier(request.terminal_id, "terminal_id")
        now = self.ctx.clock()

        def revoke(connection: Connection) -> admin_pb2.Terminal:
            store.revoke_terminal(connection, terminal_id, now)
            row = store.terminal(connection, terminal_id)
            store.log(
                connection,
                LogAction.TERMINAL_CERTIFICATE_REVOKED,
                caller.actor,
                now,
                [("terminal", terminal_id), ("institution", row.institution_id)],
                scope=frozenset({row.institution_id}),
            )
            return self._terminal(row)

        return admin_pb2.RevokeTerminalResponse(terminal=await self.ctx.write(revoke))

    async def ListTerminals(  # noqa: N802
        self, request: admin_pb2.ListTerminalsRequest
    ) -> admin_pb2.ListTerminalsResponse:
        """Terminals of one institution, or of every institution in scope."""
        caller = CALLER.get()
        scope = frozenset({request.institution_id}) if request.institution_id else _scope(caller)
        rows = await self.ctx.db.aread(lambda c: store.list_terminals(c, scope))
        return admin_pb2.ListTerminalsResponse(terminals=[self._terminal(r) for r in rows])

    async def RevokeKey(  # noqa: N802
        self, request: admin_pb2.RevokeKeyRequest
    ) -> admin_pb2.RevokeKeyResponse:
        """Revoke a device, mailbox or institution key record."""
        caller = CALLER.get()
        key = common.key_id(request.key_id)
        reason = common.text(request.reason, "reason", max_chars=200)
        now = self.ctx.clock()

        def revoke(connection: Connection) -> None:
            row = store.key_record(connection, key)
            if row is None:
                raise InvalidArgument("no such key")
            directory.withdraw(
                connection,
                self.ctx.directory,
                row,
                reason,
                caller.actor,
                now,
                scope=_key_scope(connection, row.purpose, row.subject),
            )

        await self.ctx.write(revoke)
        return admin_pb2.RevokeKeyResponse()

    async def RecordKeyEvent(  # noqa: N802
        self, request: admin_pb2.RecordKeyEventRequest
    ) -> admin_pb2.RecordKeyEventResponse:
        """Log an administrative action done at the key server (SPEC P14, docs/audit.md)."""
        caller = CALLER.get()
        kind = common.enum_value(request.kind, admin_pb2.KeyEventKind, "kind")
        note = common.text(request.note, "note", max_chars=200, required=False)
        target = common.text(request.target, "target", max_chars=128, required=False)
        now = self.ctx.clock()
        keyed = kind in (admin_pb2.KEY_EVENT_KIND_ROTATION, admin_pb2.KEY_EVENT_KIND_RETENTION)
        if keyed and request.key_version == 0:
            raise InvalidArgument("key_version is required")
        if not keyed and request.key_version:
            raise InvalidArgument("key_version is only for rotation and retention")
        extra: dict[str, str] = {"note": note}
        # Rotation and retention from older tools carry no paths; every other kind must.
        if request.paths or not keyed:
            extra.update(_key_server_fields(request, _KEY_EVENT_KINDS[kind], target, now))
        if keyed:
            extra["key_version"] = str(request.key_version)
            action = (
                LogAction.ESCROW_KEY_ROTATED
                if kind == admin_pb2.KEY_EVENT_KIND_ROTATION
                else LogAction.RETENTION_APPLIED
            )
            subjects = [("escrow_key", "escrow")]
        else:
            action = LogAction.ADMIN_ACTION
            subjects = [(keyevents.SUBJECT, _KEY_EVENT_KINDS[kind])]
        # Key-server work concerns every institution's escrow: every auditor reads it.
        await self.ctx.write(
            lambda c: store.log(
                c, action, caller.actor, now, subjects, scope=translog.PUBLIC, **extra
            )
        )
        return admin_pb2.RecordKeyEventResponse()


#: How each KeyEventKind is named in the log.
_KEY_EVENT_KINDS: dict[int, str] = {
    admin_pb2.KEY_EVENT_KIND_ROTATION: keyevents.ROTATION,
    admin_pb2.KEY_EVENT_KIND_RETENTION: keyevents.RETENTION,
    admin_pb2.KEY_EVENT_KIND_BOOTSTRAP: keyevents.BOOTSTRAP,
    admin_pb2.KEY_EVENT_KIND_STAFF_CHANGE: keyevents.STAFF_CHANGE,
    admin_pb2.KEY_EVENT_KIND_TERMINAL_TOKEN_CREATED: keyevents.TERMINAL_TOKEN_CREATED,
    admin_pb2.KEY_EVENT_KIND_TERMINAL_TOKEN_REVOKED: keyevents.TERMINAL_TOKEN_REVOKED,
    admin_pb2.KEY_EVENT_KIND_ROTATION_SCHEDULE: keyevents.ROTATION_SCHEDULE,
}


def _key_server_fields(
    request: admin_pb2.RecordKeyEventRequest, kind: str, target: str, now: int
) -> dict[str, str]:
    """The leaf fields that let the auditor match the action to the key server's audit log."""
    started = millis(request.started_at, "started_at")
    finished = millis(request.finished_at, "finished_at")
    name = common.text(request.key_server_name, "key_server_name", max_chars=128)
    entity = request.key_server_entity
    if entity:
        common.identifier(entity, "key_server_entity")
    try:
        keyevents.check_times(started, finished, now)
        return keyevents.leaf_extra(
            kind,
            target=target,
            paths=list(request.paths),
            started_ms=started,
            finished_ms=finished,
            key_server_entity=entity,
            key_server_name=name,
        )
    except keyevents.KeyEventError as exc:
        raise InvalidArgument(str(exc)) from None
