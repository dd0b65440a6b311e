"""TerminalService: an institution's terminals take in, escrow, deliver and reply.

Every call is scoped to the caller's one institution by the authorisation
interceptor; queries filter on it again, so a terminal of another
institution sees nothing (SPEC section 2).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import Connection

from sealpost.crypto import auth as crypto_auth
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto.keyrecords import key_record_id
from sealpost.crypto.logentry import ESCROW_DIGEST_FIELD, LogAction, escrow_digest
from sealpost.escrow.blob import EscrowedKey
from sealpost.escrow.errors import EscrowError
from sealpost.gateway import authz, directory, policy, states, store, translog
from sealpost.gateway.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
)
from sealpost.gateway.principals import Principal
from sealpost.gateway.services import common
from sealpost.gateway.services.context import CALLER, Context, page_after, page_size, timestamp
from sealpost.gateway.storage import schema
from sealpost.v1 import common_pb2, envelope_pb2, keys_pb2, log_pb2, terminal_pb2

#: Why a terminal rejected a message, as the log records it.
_REJECT_REASONS: dict[int, str] = {
    terminal_pb2.REJECT_REASON_MALFORMED_ENVELOPE: "malformed_envelope",
    terminal_pb2.REJECT_REASON_SENDER_KEY_INVALID: "sender_key_invalid",
    terminal_pb2.REJECT_REASON_DOES_NOT_OPEN: "does_not_open",
}
#: The key server refuses much larger batch bodies; SubmitEscrow matches its batch size.
MAX_ESCROW_BATCH = authz.MAX_BATCH_IDS


def _batch_ids(items: Sequence[Any], field: str) -> list[bytes]:
    """The message ids of a batched request's ``field``: not empty, at most a batch, each once."""
    if not items:
        raise InvalidArgument(f"{field} is empty")
    if len(items) > MAX_ESCROW_BATCH:
        raise InvalidArgument(f"at most {MAX_ESCROW_BATCH} {field} per call")
    ids = [common.message_id(item.message_id) for item in items]
    if len(set(ids)) != len(ids):
        raise InvalidArgument("a message appears twice in one batch")
    return ids


def _acknowledge(
    connection: Connection, message_id: bytes, reference: str, caller: Principal, now: int
) -> int:
    """Record one delivery (idempotent) and log it; returns the message's state afterwards."""
    row = store.message(connection, message_id, for_update=True)
    if row.institution_id != _institution(caller):
        raise PermissionDenied("a message of another institution")
    if row.direction != policy.INBOUND:
        raise InvalidArgument("replies are acknowledged by the relative's device")
    if row.state == states.DELIVERED:
        return states.DELIVERED
    store.set_state(
        connection,
        row,
        states.DELIVERED,
        now,
        delivered_at_ms=now,
        delivery_reference=reference,
    )
    store.log(
        connection,
        LogAction.MESSAGE_DELIVERED,
        caller.actor,
        now,
        [("message", message_id.hex()), ("detainee", row.detainee_id)],
        scope=frozenset({row.institution_id}),
        delivery_reference=reference,
    )
    return states.DELIVERED


def _institution(caller: Principal) -> str:
    return caller.institution_id


def check_escrow_blob(blob: envelope_pb2.EscrowBlob, message_id: bytes) -> bytes:
    """The serialised blob if it is a valid escrow blob for ``message_id``; InvalidArgument if not.

    The gateway cannot check that the blob holds the right key (it never sees keys);
    the review tool checks the key commitment after the key server decrypts.
    """
    try:
        escrowed = EscrowedKey.from_proto(blob)
    except EscrowError as exc:
        raise InvalidArgument(f"escrow blob: {exc.explain()}") from exc
    if escrowed.message_id != message_id:
        raise InvalidArgument("escrow blob is for another message")
    return escrowed.to_bytes()


def take_in(
    connection: Connection,
    row: store.MessageRow,
    blob: envelope_pb2.EscrowBlob | None,
    actor: str,
    now: int,
    *,
    unexpected: str,
    missing: str,
) -> states.State:
    """Move an accepted message on as ``policy.intake_outcome`` decides; logged. The new state.

    A privileged message is released without escrow (an escrow handed in is refused with
    ``unexpected``); any other must come with its escrow (``missing`` otherwise), which the
    escrow event binds to the log by its digest, and is then queued or released. The row
    is written once, in the state it ends in; each step is checked by the state machine.
    """
    detainee = store.detainee(connection, row.detainee_id)
    outcome = policy.intake_outcome(
        privileged=row.privileged,
        regime_policy=detainee.policy,
        direction=row.direction,
        accepted_at_ms=row.accepted_at_ms,
        orders=() if row.privileged else store.order_windows(connection, row.detainee_id),
    )
    if blob is not None and not outcome.escrowed:
        raise InvalidArgument(unexpected)
    if blob is None and outcome.escrowed:
        raise InvalidArgument(missing)
    escrow = None if blob is None else check_escrow_blob(blob, row.message_id)
    subjects = [("message", row.message_id.hex()), ("detainee", row.detainee_id)]
    scope = frozenset({row.institution_id})
    values: dict[str, Any] = {}
    if escrow is not None:
        escrowed = store.log(
            connection,
            LogAction.MESSAGE_ESCROWED,
            actor,
            now,
            subjects,
            scope=scope,
            **{ESCROW_DIGEST_FIELD: escrow_digest(escrow).hex()},
        )
        values = {"through": states.ESCROWED, "escrow": escrow, "escrow_log_index": escrowed.index}
    if outcome.state == states.QUEUED:
        store.log(connection, LogAction.MESSAGE_QUEUED, actor, now, subjects, scope=scope)
        store.set_state(connection, row, outcome.state, now, **values)
        return outcome.state
    basis = {} if outcome.escrowed else {"basis": "privileged"}
    released = store.log(
        connection, LogAction.MESSAGE_RELEASED, actor, now, subjects, scope=scope, **basis
    )
    store.set_state(connection, row, outcome.state, now, release_log_index=released.index, **values)
    _released(connection, row)
    return outcome.state


def _released(connection: Connection, row: store.MessageRow) -> None:
    """A released reply appears on its relative's inbox stream."""
    if row.direction == policy.OUTBOUND:
        store.add_feed(connection, store.account_audience(row.account_id), row.message_id)


class TerminalService:
    """The institution-terminal API."""

    def __init__(self, ctx: Context) -> None:
        """Serve with the shared context."""
        self.ctx = ctx

    async def RegisterInstitutionKey(  # noqa: N802 - gRPC method name
        self, request: terminal_pb2.RegisterInstitutionKeyRequest
    ) -> terminal_pb2.RegisterInstitutionKeyResponse:
        """Publish the institution's key (the one mailbox secrets are wrapped to)."""
        caller = CALLER.get()
        institution = _institution(caller)
        encryption_key = common.public_key(request.encryption_key, "encryption_key")
        signing_key = common.public_key(request.signing_key, "signing_key")
        crypto_auth.verify_registration(
            request.proof,
            purpose=keys_pb2.KEY_PURPOSE_INSTITUTION,
            label=institution,
            encryption_key=encryption_key,
            signing_key=signing_key,
        )
        now = self.ctx.clock()

        def register(connection: Connection) -> keys_pb2.KeyRecord:
            record, verified = self.ctx.directory.issue(
                purpose=keys_pb2.KEY_PURPOSE_INSTITUTION,
                subject=institution,
                encryption_key=encryption_key,
                signing_key=signing_key,
                now_ms=now,
            )
            directory.publish(connection, record, verified, caller.actor, now)
            return record

        record = await self.ctx.write(register)
        return terminal_pb2.RegisterInstitutionKeyResponse(key_record=record)

    async def ListHeldDetainees(  # noqa: N802
        self, request: terminal_pb2.ListHeldDetaineesRequest
    ) -> terminal_pb2.ListHeldDetaineesResponse:
        """Detainees held at this institution, with their current mailbox key id."""
        institution = _institution(CALLER.get())
        limit = page_size(request.page.page_size)
        after = request.page.page_token
        now_s = self.ctx.clock() // 1000

        def list_held(connection: Connection) -> terminal_pb2.ListHeldDetaineesResponse:
            rows = store.list_detainees(connection, frozenset({institution}), after, limit)
            out = []
            for row in rows:
                key = store.current_key(connection, keys_pb2.KEY_PURPOSE_MAILBOX, row.id, now_s)
                held = key is not None and key.id in store.held_mailbox_key_ids(
                    connection, institution, row.id
                )
                out.append(common.detainee_message(row, key.id if held and key else b""))
            token = rows[-1].id if len(rows) == limit else ""
            return terminal_pb2.ListHeldDetaineesResponse(detainees=out, next_page_token=token)

        return await self.ctx.db.aread(list_held)

    async def ProvisionMailbox(  # noqa: N802
        self, request: terminal_pb2.ProvisionMailboxRequest
    ) -> terminal_pb2.ProvisionMailboxResponse:
        """Publish a new mailbox key for a detainee held here; its secret stays wrapped."""
        caller = CALLER.get()
        institution = _institution(caller)
        detainee_id = common.identifier(request.detainee_id, "detainee_id")
        encryption_key = common.public_key(request.encryption_key, "encryption_key")
        signing_key = common.public_key(request.signing_key, "signing_key")
        if not request.wrapped_secret or len(request.wrapped_secret) > 1024:
            raise InvalidArgument("wrapped_secret is required (at most 1024 bytes)")
        crypto_auth.verify_registration(
            request.proof,
            purpose=keys_pb2.KEY_PURPOSE_MAILBOX,
            label=detainee_id,
            encryption_key=encryption_key,
            signing_key=signing_key,
        )
        now = self.ctx.clock()

        def provision(connection: Connection) -> keys_pb2.KeyRecord:
            detainee = store.detainee(connection, detainee_id)
            if detainee.status == policy.RELEASED_DETAINEE:
                raise FailedPrecondition("the detainee has been released")
            wrapped_to = store.current_key(
                connection, keys_pb2.KEY_PURPOSE_INSTITUTION, institution, now // 1000
            )
            if wrapped_to is None:
                raise FailedPrecondition("register the institution key first")
            record, verified = self.ctx.directory.issue(
                purpose=keys_pb2.KEY_PURPOSE_MAILBOX,
                subject=detainee_id,
                encryption_key=encryption_key,
                signing_key=signing_key,
                now_ms=now,
            )
            directory.publish(
                connection, record, verified, caller.actor, now, institution=institution
            )
            store.add_mailbox_key(
                connection,
                verified.id,
                detainee_id,
                institution,
                request.wrapped_secret,
                wrapped_to.id,
                now,
            )
            return record

        record = await self.ctx.write(provision)
        return terminal_pb2.ProvisionMailboxResponse(key_record=record)

    async def GetMailboxKeys(  # noqa: N802
        self, request: terminal_pb2.GetMailboxKeysRequest
    ) -> terminal_pb2.GetMailboxKeysResponse:
        """The wrapped mailbox secrets this institution holds for detainees held here."""
        institution = _institution(CALLER.get())
        rows = await self.ctx.db.aread(
            lambda c: store.mailbox_keys_for(c, institution, request.detainee_id)
        )
        return terminal_pb2.GetMailboxKeysResponse(
            mailbox_keys=[
                terminal_pb2.MailboxKey(
                    detainee_id=row.detainee_id,
                    key_record=keys_pb2.KeyRecord.FromString(row.record),
                    wrapped_secret=row.wrapped_secret,
                    wrapped_to_key_id=row.wrapped_to_key_id,
                )
                for row in rows
            ]
        )

    async def ListHandovers(  # noqa: N802
        self, request: terminal_pb2.ListHandoversRequest
    ) -> terminal_pb2.ListHandoversResponse:
        """Mailboxes of detainees who moved away, to re-wrap for their new institution."""
        institution = _institution(CALLER.get())
        now_s = self.ctx.clock() // 1000

        def list_handovers(connection: Connection) -> list[terminal_pb2.Handover]:
            out = []
            for row in store.pending_handovers(connection, institution):
                target = store.current_key(
                    connection, keys_pb2.KEY_PURPOSE_INSTITUTION, row.to_institution_id, now_s
                )
                if target is None:
                    continue  # the new institution has no key yet; the handover waits
                out.append(
                    terminal_pb2.Handover(
                        detainee_id=row.detainee_id,
                        to_institution_key=common.record_of(target),
                        mailbox_key_ids=store.held_mailbox_key_ids(
                            connection, institution, row.detainee_id
                        ),
                    )
                )
            return out

        return terminal_pb2.ListHandoversResponse(handovers=await self.ctx.db.aread(list_handovers))

    async def CompleteHandover(  # noqa: N802
        self, request: terminal_pb2.CompleteHandoverRequest
    ) -> terminal_pb2.CompleteHandoverResponse:
        """Store the mailbox secrets re-wrapped for the detainee's new institution."""
        caller = CALLER.get()
        institution = _institution(caller)
        detainee_id = common.identifier(request.detainee_id, "detainee_id")
        now = self.ctx.clock()

        def complete(connection: Connection) -> None:
            detainee = store.detainee(connection, detainee_id)
            target = store.current_key(
                connection, keys_pb2.KEY_PURPOSE_INSTITUTION, detainee.institution_id, now // 1000
            )
            if target is None:
                raise FailedPrecondition("the new institution has no key yet")
            held = set(store.held_mailbox_key_ids(connection, institution, detainee_id))
            given = {_key_id_of(k) for k in request.wrapped_keys}
            if held - given:
                raise InvalidArgument("every mailbox key held here must be handed over")
            for item in request.wrapped_keys:
                key = _key_id_of(item)
                if key not in held:
                    raise PermissionDenied("a key that is not held here cannot be handed over")
                if item.wrapped_to_key_id != target.id:
                    raise InvalidArgument("keys must be wrapped to the new institution's key")
                if not item.wrapped_secret or len(item.wrapped_secret) > 1024:
                    raise InvalidArgument("wrapped_secret is required (at most 1024 bytes)")
                store.add_mailbox_key(
                    connection,
                    key,
                    detainee_id,
                    detainee.institution_id,
                    item.wrapped_secret,
                    target.id,
                    now,
                )
            store.complete_handovers(connection, detainee_id, institution, now)
            store.log(
                connection,
                LogAction.ADMIN_ACTION,
                caller.actor,
                now,
                [("detainee", detainee_id), ("institution", detainee.institution_id)],
                scope=frozenset({institution, detainee.institution_id}),
                operation="mailbox_handover",
                keys=str(len(request.wrapped_keys)),
            )

        await self.ctx.write(complete)
        return terminal_pb2.CompleteHandoverResponse()

    async def StreamIntake(  # noqa: N802
        self, request: terminal_pb2.StreamIntakeRequest
    ) -> AsyncIterator[terminal_pb2.StreamIntakeResponse]:
        """New inbound messages for detainees held here, in order, resumable from a cursor."""
        institution = _institution(CALLER.get())
        after = common.parse_cursor(request.after_cursor)

        def convert(row: store.FeedRow) -> terminal_pb2.StreamIntakeResponse | None:
            message = row.message
            # Skip what moved on meanwhile: taken in already, or the detainee moved away.
            if message.institution_id != institution or message.state != states.ACCEPTED:
                return None
            return terminal_pb2.StreamIntakeResponse(
                cursor=str(row.seq),
                envelope=envelope_pb2.Envelope.FromString(message.envelope),
                detainee_id=message.detainee_id,
                sender_key=keys_pb2.KeyRecord.FromString(row.sender_record),
                sender_display_name=row.display_name,
                privileged=message.privileged,
                accepted_at_ms=message.accepted_at_ms,
            )

        audience = store.institution_audience(institution)
        async for item in common.follow_feed(
            self.ctx, audience, after, follow=request.follow, convert=convert
        ):
            yield item

    async def SubmitEscrow(  # noqa: N802
        self, request: terminal_pb2.SubmitEscrowRequest
    ) -> terminal_pb2.SubmitEscrowResponse:
        """Record escrowed keys and move each message on by policy, in one transaction."""
        caller = CALLER.get()
        institution = _institution(caller)
        _batch_ids(request.submissions, "submissions")
        now = self.ctx.clock()

        def submit(connection: Connection) -> list[terminal_pb2.EscrowResult]:
            results = []
            for submission in request.submissions:
                # Locked: a second terminal taking in the same message waits, then sees it taken.
                row = store.message(connection, submission.message_id, for_update=True)
                if row.institution_id != institution:
                    raise PermissionDenied("a message of another institution")
                if row.state != states.ACCEPTED:
                    # Taken in already (perhaps by another terminal): report, change nothing.
                    results.append(
                        terminal_pb2.EscrowResult(message_id=row.message_id, state=row.state)
                    )
                    continue
                results.append(self._take_in(connection, row, submission, caller, now))
            return results

        results = await self.ctx.write(submit)
        return terminal_pb2.SubmitEscrowResponse(results=results)

    async def RejectMessages(  # noqa: N802
        self, request: terminal_pb2.RejectMessagesRequest
    ) -> terminal_pb2.RejectMessagesResponse:
        """Messages the terminal cannot take in become REJECTED, each with its reason logged."""
        caller = CALLER.get()
        institution = _institution(caller)
        _batch_ids(request.messages, "messages")
        reasons: dict[bytes, str] = {}
        for rejected in request.messages:
            if rejected.reason not in _REJECT_REASONS:
                raise InvalidArgument("each rejected message needs a known reason")
            reasons[rejected.message_id] = _REJECT_REASONS[rejected.reason]
        now = self.ctx.clock()

        def reject(connection: Connection) -> list[terminal_pb2.EscrowResult]:
            results = []
            for message_id, reason in reasons.items():
                row = store.message(connection, message_id, for_update=True)
                if row.institution_id != institution:
                    raise PermissionDenied("a message of another institution")
                if row.state == states.ACCEPTED:
                    store.set_state(connection, row, states.REJECTED, now)
                    store.log(
                        connection,
                        LogAction.MESSAGE_REJECTED,
                        caller.actor,
                        now,
                        [("message", row.message_id.hex()), ("detainee", row.detainee_id)],
                        scope=frozenset({institution}),
                        reason=reason,
                    )
                    state = states.REJECTED
                else:
                    state = row.state  # taken in (or rejected) already: nothing changes
                results.append(terminal_pb2.EscrowResult(message_id=row.message_id, state=state))
            return results

        results = await self.ctx.write(reject)
        return terminal_pb2.RejectMessagesResponse(results=results)

    def _take_in(
        self,
        connection: Connection,
        row: store.MessageRow,
        submission: terminal_pb2.EscrowSubmission,
        caller: Principal,
        now: int,
    ) -> terminal_pb2.EscrowResult:
        state = take_in(
            connection,
            row,
            submission.escrow if submission.HasField("escrow") else None,
            caller.actor,
            now,
            unexpected="privileged messages are not escrowed",
            missing="a non-privileged message needs its escrow blob",
        )
        return terminal_pb2.EscrowResult(message_id=row.message_id, state=state)

    async def ListDeliveries(  # noqa: N802
        self, request: terminal_pb2.ListDeliveriesRequest
    ) -> terminal_pb2.ListDeliveriesResponse:
        """Messages released for delivery here, each with its release entry proven in the log."""
        institution = _institution(CALLER.get())
        limit = page_size(request.page.page_size)
        after = page_after(request.page.page_token)

        def list_deliveries(
            connection: Connection,
        ) -> tuple[list[store.DeliveryRow], dict[bytes, keys_pb2.KeyRecord]]:
            rows = store.deliveries(connection, institution, request.detainee_id, after, limit)
            senders = [r.message.sender_key_id for r in rows]
            keys = {k.id: common.record_of(k) for k in store.key_records_by_id(connection, senders)}
            return rows, keys

        rows, keys = await self.ctx.db.aread(list_deliveries)
        messages = [r.message for r in rows]
        response = terminal_pb2.ListDeliveriesResponse(
            next_page_token=str(messages[-1].seq) if len(rows) == limit else ""
        )
        releases = [m.release_log_index for m in messages if m.release_log_index is not None]
        proven: dict[int, tuple[log_pb2.LogEntry, log_pb2.InclusionProof]] = {}
        if releases:
            head = await asyncio.to_thread(common.head_covering, self.ctx, max(releases))
            response.tree_head.CopyFrom(head)
            size = log_pb2.TreeHead.FromString(head.tree_head).tree_size
            # An index the log does not hold gets no proof: the terminal then refuses it.
            wanted = sorted({i for i in releases if 0 <= i < size})
            proven = await self.ctx.db.aread(lambda c: _release_proofs(c, wanted, size))
        for r, m in zip(rows, messages, strict=True):
            delivery = response.deliveries.add(
                message_id=m.message_id,
                detainee_id=m.detainee_id,
                envelope=envelope_pb2.Envelope.FromString(m.envelope),
                sender_key=keys[m.sender_key_id],
                sender_display_name=r.display_name,
                accepted_at=timestamp(m.accepted_at_ms),
                privileged=m.privileged,
            )
            index = m.release_log_index
            if index is not None and index in proven:
                entry, proof = proven[index]
                delivery.release_entry.CopyFrom(entry)
                delivery.release_proof.CopyFrom(proof)
        return response

    async def AcknowledgeDelivery(  # noqa: N802
        self, request: terminal_pb2.AcknowledgeDeliveryRequest
    ) -> terminal_pb2.AcknowledgeDeliveryResponse:
        """The detainee received the message (on screen or on paper)."""
        caller = CALLER.get()
        message_id = common.message_id(request.message_id)
        reference = common.text(request.delivery_reference, "delivery_reference")
        now = self.ctx.clock()
        state = await self.ctx.write(lambda c: _acknowledge(c, message_id, reference, caller, now))
        return terminal_pb2.AcknowledgeDeliveryResponse(state=state)  # type: ignore[arg-type]

    async def AcknowledgeDeliveries(  # noqa: N802
        self, request: terminal_pb2.AcknowledgeDeliveriesRequest
    ) -> terminal_pb2.AcknowledgeDeliveriesResponse:
        """Many deliveries at once, in one transaction: all recorded, or none if one is refused."""
        caller = CALLER.get()
        ids = _batch_ids(request.acknowledgements, "acknowledgements")
        references = [
            common.text(a.delivery_reference, "delivery_reference")
            for a in request.acknowledgements
        ]
        now = self.ctx.clock()

        def acknowledge_all(connection: Connection) -> list[terminal_pb2.EscrowResult]:
            return [
                terminal_pb2.EscrowResult(
                    message_id=message_id,
                    state=_acknowledge(connection, message_id, reference, caller, now),  # type: ignore[arg-type]
                )
                for message_id, reference in zip(ids, references, strict=True)
            ]

        results = await self.ctx.write(acknowledge_all)
        return terminal_pb2.AcknowledgeDeliveriesResponse(results=results)

    async def ListDetaineeContacts(  # noqa: N802
        self, request: terminal_pb2.ListDetaineeContactsRequest
    ) -> terminal_pb2.ListDetaineeContactsResponse:
        """Approved contacts of a detainee held here, with their device keys."""
        detainee_id = common.identifier(request.detainee_id, "detainee_id")
        now_s = self.ctx.clock() // 1000

        def list_contacts(connection: Connection) -> list[terminal_pb2.DetaineeContact]:
            out = []
            for row in store.approved_contacts_of_detainee(connection, detainee_id):
                contact = row.contact
                devices = store.keys_of(
                    connection, keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE, contact.account_id, now_s
                )
                out.append(
                    terminal_pb2.DetaineeContact(
                        contact_id=contact.id,
                        account_id=contact.account_id,
                        display_name=row.display_name,
                        privileged=store.is_privileged(connection, contact.account_id),
                        device_keys=[common.record_of(d) for d in devices],
                    )
                )
            return out

        contacts = await self.ctx.db.aread(list_contacts)
        return terminal_pb2.ListDetaineeContactsResponse(contacts=contacts)

    async def SendReply(  # noqa: N802
        self, request: terminal_pb2.SendReplyRequest
    ) -> terminal_pb2.SendReplyResponse:
        """A detainee's reply: signed by the mailbox key, escrowed at creation, then routed."""
        caller = CALLER.get()
        institution = _institution(caller)
        common.identifier(request.detainee_id, "detainee_id")
        envelope = request.envelope
        header = crypto_envelope.parse_header(envelope.header, self.ctx.limits)
        if not header.recipient_key_ids:
            raise InvalidArgument("a reply needs at least one recipient device")
        now = self.ctx.clock()

        def send(connection: Connection) -> tuple[log_pb2.Receipt, str, states.State]:
            if store.message_exists(connection, header.message_id):
                raise AlreadyExists("a message with this id was accepted already")
            new = self._check_reply(connection, request, header, institution, now)
            appended = store.log_acceptance(connection, new, caller.actor)
            store.insert_message(connection, new, appended.index)
            row = store.message(connection, new.message_id)
            state = take_in(
                connection,
                row,
                request.escrow if request.HasField("escrow") else None,
                caller.actor,
                now,
                unexpected="privileged replies are not escrowed",
                missing="a reply is escrowed at creation: the escrow blob is missing",
            )
            return common.receipt(new, appended), new.account_id, state

        receipt, account_id, state = await self.ctx.write(send)
        self.ctx.notifier.notify(store.account_audience(account_id))
        return terminal_pb2.SendReplyResponse(receipt=receipt, state=state)

    async def ListWithheldMessages(  # noqa: N802
        self, request: terminal_pb2.ListWithheldMessagesRequest
    ) -> terminal_pb2.ListWithheldMessagesResponse:
        """Withheld messages of detainees held here: who, when, why; no content, no note."""
        institution = _institution(CALLER.get())
        limit = page_size(request.page.page_size)
        after = page_after(request.page.page_token)
        rows = await self.ctx.db.aread(
            lambda c: store.withheld(c, institution, request.detainee_id, after, limit)
        )
        return terminal_pb2.ListWithheldMessagesResponse(
            messages=[
                terminal_pb2.WithheldMessage(
                    message_id=row.message_id,
                    detainee_id=row.detainee_id,
                    direction=row.direction,
                    counterpart_display_name=row.display_name,
                    accepted_at=timestamp(row.accepted_at_ms),
                    withheld_at=timestamp(row.state_changed_at_ms),
                    reason=row.withhold_reason or common_pb2.WITHHOLD_REASON_UNSPECIFIED,
                )
                for row in rows
            ],
            next_page_token=str(rows[-1].seq) if len(rows) == limit else "",
        )

    # ----------------------------------------------------------------- triage

    async def ListWatchLists(  # noqa: N802
        self, _request: terminal_pb2.ListWatchListsRequest
    ) -> terminal_pb2.ListWatchListsResponse:
        """The sealed watch lists of the calling terminal's institution and its detainees."""
        institution = _institution(CALLER.get())
        rows = await self.ctx.db.aread(lambda c: store.watch_lists_of(c, institution))
        return terminal_pb2.ListWatchListsResponse(lists=[common.watch_list(r) for r in rows])

    async def SealTriage(  # noqa: N802
        self, request: terminal_pb2.SealTriageRequest
    ) -> terminal_pb2.SealTriageResponse:
        """Store sealed triage summaries of messages waiting for a screener here.

        All or none: a message that is not waiting for a screener (privileged, released,
        decided) refuses the call (FAILED_PRECONDITION). A message sealed before keeps its
        first summary.
        """
        institution = _institution(CALLER.get())
        seals = [
            (
                common.message_id(s.message_id),
                common.sealed(s.sealed, "sealed", max_chars=schema.TRIAGE_SEAL_CHARS),
            )
            for s in request.seals
        ]

        def seal(connection: Connection) -> int:
            stored = 0
            for message_id, sealed in seals:
                row = store.message(connection, message_id)
                if row.institution_id != institution:
                    raise PermissionDenied("the message is not addressed here")
                states.check_triage(row.state, privileged=row.privileged)
                stored += store.seal_triage(connection, message_id, sealed)
            return stored

        stored = await self.ctx.write(seal)
        return terminal_pb2.SealTriageResponse(stored=stored)

    def _check_reply(
        self,
        connection: Connection,
        request: terminal_pb2.SendReplyRequest,
        header: crypto_envelope.Header,
        institution: str,
        now: int,
    ) -> store.NewMessage:
        detainee_id = request.detainee_id
        detainee = store.detainee(connection, detainee_id)
        if detainee.institution_id != institution:
            raise PermissionDenied("the detainee is not held here")
        if header.sender_key_id not in store.held_mailbox_key_ids(
            connection, institution, detainee_id
        ):
            raise PermissionDenied("a reply is signed by the detainee's mailbox key held here")
        _record, sender = common.verified_record(
            self.ctx, connection, header.sender_key_id, keys_pb2.KEY_PURPOSE_MAILBOX, now
        )
        if sender.subject != detainee_id:
            raise PermissionDenied("the mailbox key is another detainee's")
        accounts = set()
        for key in header.recipient_key_ids:
            _rec, device = common.verified_record(
                self.ctx, connection, key, keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE, now
            )
            accounts.add(device.subject)
        if len(accounts) != 1:
            raise InvalidArgument("a reply goes to the devices of exactly one contact")
        (account_id,) = accounts
        verified = crypto_envelope.verify_envelope(
            request.envelope, sender, now_ms=now, limits=self.ctx.limits
        )
        checked = common.CheckedEnvelope(
            message_id=header.message_id,
            detainee_id=detainee_id,
            sender_key_id=sender.id,
            envelope=request.envelope.SerializeToString(deterministic=True),
            envelope_digest=verified.digest,
        )
        new = common.admit_message(connection, checked, account_id, policy.OUTBOUND, now)
        return new


def _release_proofs(
    connection: Connection, indices: Sequence[int], size: int
) -> dict[int, tuple[log_pb2.LogEntry, log_pb2.InclusionProof]]:
    """The entries at ``indices`` with their inclusion proofs in the tree of ``size``."""
    entries = {entry.index: entry for entry in translog.entries_at(connection, indices)}
    return {
        index: (entry, translog.inclusion_proof(connection, index, size))
        for index, entry in entries.items()
    }


def _key_id_of(item: terminal_pb2.MailboxKey) -> bytes:
    return key_record_id(item.key_record.body)
