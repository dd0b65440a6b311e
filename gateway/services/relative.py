"""RelativeService: devices, sign-in, contacts, sending, the inbox, status and receipts.

Nothing returned here names an institution, a unit or another detainee (SPEC
P11); tests/unit/test_minimisation.py inspects every response type.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from sqlalchemy import Connection

from sealpost.crypto import auth as crypto_auth
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto.errors import CryptoError
from sealpost.crypto.keyrecords import VerifiedKey
from sealpost.crypto.logentry import LogAction
from sealpost.gateway import auth, directory, newsmail, policy, states, store, translog
from sealpost.gateway.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from sealpost.gateway.services import common
from sealpost.gateway.services.context import CALLER, Context, timestamp
from sealpost.v1 import (
    common_pb2,
    envelope_pb2,
    keys_pb2,
    log_pb2,
    relative_pb2,
)

CHALLENGE_TTL_MS = 2 * 60 * 1000
#: How long a device link code may be used, and how many an account holds at a time.
DEVICE_LINK_TTL_MS = 10 * 60 * 1000
DEVICE_LINKS_KEPT = 3
#: One answer for a link code that is wrong, used, expired or another account's.
LINK_REFUSED = "the link code is wrong or has expired: make a new one on your other device"
RELATIVE_VISIBLE_PURPOSES = frozenset(
    {
        keys_pb2.KEY_PURPOSE_DIRECTORY,
        keys_pb2.KEY_PURPOSE_LOG,
        keys_pb2.KEY_PURPOSE_MAILBOX,
        keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE,
    }
)


class RelativeService:
    """The relative-facing API."""

    def __init__(self, ctx: Context) -> None:
        """Serve with the shared context."""
        self.ctx = ctx

    # ----------------------------------------------------------------- directory and sign-in

    async def GetDirectory(  # noqa: N802 - gRPC method name
        self, request: relative_pb2.GetDirectoryRequest
    ) -> relative_pb2.GetDirectoryResponse:
        """The directory and log records, every revocation and every directory hand-over."""
        revocations = await self.ctx.db.aread(common.revocation_messages)
        current = self.ctx.directory
        return relative_pb2.GetDirectoryResponse(
            directory_key=current.directory_record,
            log_key=current.log_record,
            revocations=revocations,
            successions=current.successions,
        )

    async def RegisterDevice(  # noqa: N802
        self, request: relative_pb2.RegisterDeviceRequest
    ) -> relative_pb2.RegisterDeviceResponse:
        """A new account with its first device, or another device for the caller's account."""
        name = common.name(request.display_name, "display_name")
        encryption_key = common.public_key(request.encryption_key, "encryption_key")
        signing_key = common.public_key(request.signing_key, "signing_key")
        crypto_auth.verify_registration(
            request.proof,
            purpose=keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE,
            label=name,
            encryption_key=encryption_key,
            signing_key=signing_key,
        )
        caller = CALLER.get()
        now = self.ctx.clock()
        link = _link_digest(request.link_code) if request.link_code else None

        def register(connection: Connection) -> tuple[str, keys_pb2.KeyRecord]:
            if link is not None:
                account_id = store.take_device_link(connection, link, now)
                if account_id is None or (caller.account_id and caller.account_id != account_id):
                    raise PermissionDenied(LINK_REFUSED)
            else:
                account_id = caller.account_id or store.create_account(connection, name, now)
            record, verified = self.ctx.directory.issue(
                purpose=keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE,
                subject=account_id,
                encryption_key=encryption_key,
                signing_key=signing_key,
                now_ms=now,
            )
            directory.publish(connection, record, verified, f"relative:{account_id}", now)
            return account_id, record

        account_id, record = await self.ctx.write(register)
        return relative_pb2.RegisterDeviceResponse(account_id=account_id, key_record=record)

    async def CreateChallenge(  # noqa: N802
        self, request: relative_pb2.CreateChallengeRequest
    ) -> relative_pb2.CreateChallengeResponse:
        """A one-time challenge for ``Login``; valid for two minutes.

        A challenge is kept only for a device key that can sign in: for any other key id
        the answer looks the same, and nothing is written (an unauthenticated flood of
        made-up key ids leaves the database as it was).
        """
        key = common.key_id(request.key_id)
        challenge = crypto_auth.new_login_challenge()
        expires = self.ctx.clock() + CHALLENGE_TTL_MS

        def usable(connection: Connection) -> bool:
            row = store.key_record(connection, key)
            return (
                row is not None
                and row.purpose == keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE
                and row.revoked_at_ms is None
            )

        if await self.ctx.db.aread(usable):
            await self.ctx.write(lambda c: store.add_challenge(c, challenge, key, expires))
        return relative_pb2.CreateChallengeResponse(
            challenge=challenge, expires_at=timestamp(expires)
        )

    async def Login(  # noqa: N802
        self, request: relative_pb2.LoginRequest
    ) -> relative_pb2.LoginResponse:
        """A session token for a correctly signed, unused, unexpired challenge."""
        key = common.key_id(request.key_id)
        now = self.ctx.clock()

        def login(connection: Connection) -> str:
            if not store.take_challenge(connection, request.challenge, key, now):
                raise Unauthenticated("unknown, used or expired challenge")
            try:
                _record, verified = common.verified_record(
                    self.ctx, connection, key, keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE, now
                )
            except (NotFound, InvalidArgument) as exc:
                raise Unauthenticated("this device key cannot sign in") from exc
            crypto_auth.verify_login(
                request.signature, record=verified, challenge=request.challenge
            )
            return verified.subject

        try:
            account_id = await self.ctx.write(login)
        except CryptoError as exc:
            raise Unauthenticated("the challenge signature does not verify") from exc
        expires = now + auth.TOKEN_TTL_MS
        token = auth.issue_session_token(
            self.ctx.directory.keys.tokens.token_keys(), auth.SessionToken(account_id, key, expires)
        )
        return relative_pb2.LoginResponse(
            access_token=token, expires_at=timestamp(expires), account_id=account_id
        )

    # ----------------------------------------------------------------- contacts

    def _contact(
        self, connection: Connection, row: store.AccountContactRow, now_ms: int
    ) -> relative_pb2.Contact:
        stored = row.contact
        status = policy.contact_status(stored.status, stored.requested_at_ms, now_ms)
        contact = relative_pb2.Contact(
            contact_id=stored.id,
            detainee_id=stored.detainee_id,
            status=status,  # type: ignore[arg-type]
            privileged=store.is_privileged(connection, stored.account_id),
            deliverable=policy.contact_deliverable(status, row.detainee_status),
        )
        if status == common_pb2.CONTACT_STATUS_APPROVED:
            mailbox = store.current_key(
                connection, keys_pb2.KEY_PURPOSE_MAILBOX, stored.detainee_id, now_ms // 1000
            )
            if mailbox is not None:
                contact.mailbox_key.CopyFrom(common.record_of(mailbox))
        return contact

    async def RequestContact(  # noqa: N802
        self, request: relative_pb2.RequestContactRequest
    ) -> relative_pb2.RequestContactResponse:
        """Ask the detainee's institution to approve correspondence.

        One answer whether the id is a detainee's, a released one's or nobody's: the
        request waits, and only an approval shows that it reached an institution.
        """
        detainee_id = common.identifier(request.detainee_id, "detainee_id")
        relationship = common.name(request.relationship, "relationship", required=False)
        caller = CALLER.get()
        now = self.ctx.clock()

        def request_contact(connection: Connection) -> relative_pb2.Contact:
            row = store.request_contact(
                connection, caller.account_id, detainee_id, relationship, now
            )
            (full,) = [
                r
                for r in store.contacts_of_account(connection, caller.account_id)
                if r.contact.id == row.id
            ]
            return self._contact(connection, full, now)

        contact = await self.ctx.write(request_contact)
        return relative_pb2.RequestContactResponse(contact=contact)

    async def ListContacts(  # noqa: N802
        self, request: relative_pb2.ListContactsRequest
    ) -> relative_pb2.ListContactsResponse:
        """The caller's contacts, with the mailbox key of each approved one."""
        caller = CALLER.get()
        now = self.ctx.clock()

        def list_contacts(connection: Connection) -> list[relative_pb2.Contact]:
            rows = store.contacts_of_account(connection, caller.account_id)
            return [self._contact(connection, row, now) for row in rows]

        return relative_pb2.ListContactsResponse(contacts=await self.ctx.db.aread(list_contacts))

    # ----------------------------------------------------------------- sending

    async def SendMessage(  # noqa: N802
        self, request: relative_pb2.SendMessageRequest
    ) -> relative_pb2.SendMessageResponse:
        """Verify and store a sealed envelope; idempotent by message id."""
        caller = CALLER.get()
        self.ctx.rate.take(caller.account_id)
        envelope = request.envelope
        header = crypto_envelope.parse_header(envelope.header, self.ctx.limits)
        if header.sender_key_id != caller.key_id:
            raise PermissionDenied("the envelope must be signed by your signed-in device")
        if len(header.recipient_key_ids) != 1:
            raise InvalidArgument("a message goes to exactly one detainee mailbox")
        now = self.ctx.clock()
        recipient_id = header.recipient_key_ids[0]
        keys = self._known_send_keys(caller.key_id, recipient_id, now)
        if keys is None:
            keys = await self.ctx.db.aread(
                lambda c: self._send_keys(c, caller.key_id, recipient_id, now)
            )
        sender, detainee_id = keys
        verified = crypto_envelope.verify_envelope(
            envelope, sender, now_ms=now, limits=self.ctx.limits
        )
        checked = common.CheckedEnvelope(
            message_id=header.message_id,
            detainee_id=detainee_id,
            sender_key_id=sender.id,
            envelope=envelope.SerializeToString(deterministic=True),
            envelope_digest=verified.digest,
        )

        def accept(connection: Connection) -> tuple[log_pb2.Receipt, str]:
            if store.message_exists(connection, checked.message_id):
                raise AlreadyExists("a message with this id was accepted already")
            # What decides acceptance is read in the transaction that records it, so the
            # log's order is the order the decisions were made in (SPEC P12).
            current = store.current_key(
                connection, keys_pb2.KEY_PURPOSE_MAILBOX, detainee_id, now // 1000
            )
            if current is None or current.id != recipient_id:
                raise FailedPrecondition(
                    "the recipient's mailbox key has changed: list your contacts and send again"
                )
            new = common.admit_message(connection, checked, caller.account_id, policy.INBOUND, now)
            appended = store.log_acceptance(connection, new, caller.actor)
            translog.want_head(connection)  # the answer then carries its proof
            store.insert_message(connection, new, appended.index)
            store.add_feed(
                connection, store.institution_audience(new.institution_id), new.message_id
            )
            return common.receipt(new, appended), new.institution_id

        # A concurrent replay that wins the race is refused by insert_message alike.
        receipt, institution_id = await self.ctx.write(accept)
        self.ctx.notifier.notify(store.institution_audience(institution_id))
        proven = await common.with_proof(self.ctx, receipt)
        return relative_pb2.SendMessageResponse(receipt=proven)

    def _known_send_keys(
        self, sender_id: bytes, recipient_id: bytes, now: int
    ) -> tuple[VerifiedKey, str] | None:
        """``_send_keys`` from memory, if both are there.

        Both facts are immutable once known: the guard found the caller's device key
        unrevoked in this call, and a mailbox key's detainee never changes.
        """
        sender = common.known_key(self.ctx, sender_id, keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE, now)
        detainee_id = self.ctx.mailbox_owners.get(recipient_id)
        if sender is None or detainee_id is None:
            return None
        return sender, detainee_id

    def _send_keys(
        self, connection: Connection, sender_id: bytes, recipient_id: bytes, now: int
    ) -> tuple[VerifiedKey, str]:
        """The sender's verified device record and the detainee the recipient key is for."""
        _record, sender = common.verified_record(
            self.ctx, connection, sender_id, keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE, now
        )
        detainee_id = store.mailbox_key_owner(connection, recipient_id)
        if detainee_id is None:
            raise InvalidArgument("the recipient is not a detainee's mailbox key")
        common.remember(self.ctx.mailbox_owners, recipient_id, detainee_id)
        return sender, detainee_id

    # ----------------------------------------------------------------- inbox and status

    async def StreamInbox(  # noqa: N802
        self, request: relative_pb2.StreamInboxRequest
    ) -> AsyncIterator[relative_pb2.StreamInboxResponse]:
        """Replies to the caller, in order, resumable from a cursor."""
        caller = CALLER.get()
        after = common.parse_cursor(request.after_cursor)

        def convert(row: store.FeedRow) -> relative_pb2.StreamInboxResponse | None:
            message = row.message
            if message.account_id != caller.account_id or message.direction != policy.OUTBOUND:
                return None
            return relative_pb2.StreamInboxResponse(
                cursor=str(row.seq),
                envelope=envelope_pb2.Envelope.FromString(message.envelope),
                sender_key=keys_pb2.KeyRecord.FromString(row.sender_record),
                detainee_id=message.detainee_id,
                accepted_at_ms=message.accepted_at_ms,
            )

        audience = store.account_audience(caller.account_id)
        async for item in common.follow_feed(
            self.ctx, audience, after, follow=request.follow, convert=convert
        ):
            yield item

    async def AcknowledgeMessage(  # noqa: N802
        self, request: relative_pb2.AcknowledgeMessageRequest
    ) -> relative_pb2.AcknowledgeMessageResponse:
        """A reply reached the caller's device: it is delivered."""
        caller = CALLER.get()
        message_id = common.message_id(request.message_id)
        now = self.ctx.clock()

        def acknowledge(connection: Connection) -> None:
            row = store.message_of_account(connection, message_id, caller.account_id)
            if row.direction != policy.OUTBOUND:
                raise NotFound("no such reply")
            if row.state == states.DELIVERED:
                return
            store.set_state(connection, row, states.DELIVERED, now, delivered_at_ms=now)
            store.log(
                connection,
                LogAction.MESSAGE_DELIVERED,
                caller.actor,
                now,
                [("message", message_id.hex())],
                scope=frozenset({row.institution_id}),
            )

        await self.ctx.write(acknowledge)
        return relative_pb2.AcknowledgeMessageResponse()

    async def GetMessageStatus(  # noqa: N802
        self, request: relative_pb2.GetMessageStatusRequest
    ) -> relative_pb2.GetMessageStatusResponse:
        """Pending, delivered or not delivered; why only where the regime tells relatives."""
        caller = CALLER.get()
        message_id = common.message_id(request.message_id)
        row = await self.ctx.db.aread(
            lambda c: store.message_of_account(c, message_id, caller.account_id)
        )
        return relative_pb2.GetMessageStatusResponse(
            message_id=message_id,
            status=states.delivery_status(row.state),
            updated_at=timestamp(row.state_changed_at_ms),
            withhold_reason=policy.reason_for_relative(  # type: ignore[arg-type]
                state=row.state, reason=row.withhold_reason, told=row.withhold_reason_told
            ),
        )

    async def GetReceiptProof(  # noqa: N802
        self, request: relative_pb2.GetReceiptProofRequest
    ) -> relative_pb2.GetReceiptProofResponse:
        """The acceptance entry of one of the caller's messages, a head covering it, the proof."""
        caller = CALLER.get()
        message_id = common.message_id(request.message_id)
        row = await self.ctx.db.aread(
            lambda c: store.message_of_account(c, message_id, caller.account_id)
        )
        if row.direction != policy.INBOUND:
            raise NotFound("receipts are for messages you sent")
        index = row.log_index
        assert index is not None  # insert_message stores every message with its acceptance
        head, proof = await asyncio.to_thread(common.proof_for, self.ctx, index)
        (entry,) = await self.ctx.db.aread(lambda c: translog.entries(c, index, index + 1))
        return relative_pb2.GetReceiptProofResponse(
            receipt=log_pb2.Receipt(
                message_id=message_id,
                envelope_digest=row.envelope_digest,
                accepted_at_ms=row.accepted_at_ms,
                entry=entry,
                tree_head=head,
                inclusion_proof=proof,
            )
        )

    async def GetKeyRecords(  # noqa: N802
        self, request: relative_pb2.GetKeyRecordsRequest
    ) -> relative_pb2.GetKeyRecordsResponse:
        """Key records by id; relatives see no institution keys (SPEC P11)."""
        if len(request.key_ids) > 100:
            raise InvalidArgument("at most 100 key ids per call")
        ids = [common.key_id(k, "key_ids") for k in request.key_ids]
        caller = CALLER.get()

        def lookup(connection: Connection) -> relative_pb2.GetKeyRecordsResponse:
            rows = store.key_records_by_id(connection, ids)
            if caller.account_id:
                rows = [r for r in rows if r.purpose in RELATIVE_VISIBLE_PURPOSES]
            return relative_pb2.GetKeyRecordsResponse(
                key_records=[common.record_of(r) for r in rows],
                revocations=common.revocation_messages(connection),
            )

        return await self.ctx.db.aread(lookup)

    # ----------------------------------------------------------------- devices

    async def CreateDeviceLink(  # noqa: N802
        self, request: relative_pb2.CreateDeviceLinkRequest
    ) -> relative_pb2.CreateDeviceLinkResponse:
        """A one-time code with which another device joins the caller's account.

        Only its digest is kept; it is used once and lasts DEVICE_LINK_TTL_MS, and an
        account holds at most DEVICE_LINKS_KEPT codes at a time.
        """
        caller = CALLER.get()
        code = crypto_auth.new_device_link_code()
        now = self.ctx.clock()
        expires = now + DEVICE_LINK_TTL_MS
        digest = crypto_auth.device_link_digest(code)
        await self.ctx.write(
            lambda c: store.add_device_link(
                c, digest, caller.account_id, expires, now, DEVICE_LINKS_KEPT
            )
        )
        return relative_pb2.CreateDeviceLinkResponse(code=code, expires_at=timestamp(expires))

    async def ListDevices(  # noqa: N802
        self, request: relative_pb2.ListDevicesRequest
    ) -> relative_pb2.ListDevicesResponse:
        """The caller's account's device keys, oldest first, the revoked ones too."""
        caller = CALLER.get()

        def devices(connection: Connection) -> list[relative_pb2.Device]:
            found = store.records_of(
                connection, keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE, caller.account_id
            )
            return [
                relative_pb2.Device(
                    key_record=common.record_of(row),
                    revoked_at=None if row.revoked_at_ms is None else timestamp(row.revoked_at_ms),
                )
                for row in found
            ]

        return relative_pb2.ListDevicesResponse(devices=await self.ctx.db.aread(devices))

    async def SetNotifications(  # noqa: N802
        self, request: relative_pb2.SetNotificationsRequest
    ) -> relative_pb2.SetNotificationsResponse:
        """Keep (or, empty, forget) the address told when there is news; never its content."""
        caller = CALLER.get()
        language = request.language or newsmail.LANGUAGES[0]
        if language not in newsmail.LANGUAGES:
            raise InvalidArgument(f"language must be one of {', '.join(newsmail.LANGUAGES)}")
        now = self.ctx.clock()
        if not request.email:
            await self.ctx.write(lambda c: store.remove_notification_address(c, caller.account_id))
            return relative_pb2.SetNotificationsResponse()
        email = common.email_address(request.email)
        await self.ctx.write(
            lambda c: store.set_notification_address(c, caller.account_id, email, language, now)
        )
        return relative_pb2.SetNotificationsResponse()

    async def GetNotifications(  # noqa: N802
        self, request: relative_pb2.GetNotificationsRequest
    ) -> relative_pb2.GetNotificationsResponse:
        """The address told when there is news, if one is set."""
        caller = CALLER.get()
        row = await self.ctx.db.aread(lambda c: store.notification_address(c, caller.account_id))
        if row is None:
            return relative_pb2.GetNotificationsResponse()
        return relative_pb2.GetNotificationsResponse(email=row.email, language=row.language)

    async def RevokeDevice(  # noqa: N802
        self, request: relative_pb2.RevokeDeviceRequest
    ) -> relative_pb2.RevokeDeviceResponse:
        """Revoke one of the caller's own device keys; another's is NOT_FOUND, as unknown."""
        caller = CALLER.get()
        key = common.key_id(request.key_id)
        now = self.ctx.clock()

        def revoke(connection: Connection) -> keys_pb2.KeyRevocation:
            row = store.key_record(connection, key)
            if (
                row is None
                or row.purpose != keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE
                or row.subject != caller.account_id
            ):
                raise NotFound("no such device of yours")
            if row.revoked_at_ms is not None:
                raise FailedPrecondition("the device is revoked already")
            return directory.withdraw(
                connection, self.ctx.directory, row, "revoked by its owner", caller.actor, now
            )

        revocation = await self.ctx.write(revoke)
        return relative_pb2.RevokeDeviceResponse(revocation=revocation)


def _link_digest(code: str) -> bytes:
    """The digest of a link code as typed; a malformed one is refused like a wrong one."""
    try:
        return crypto_auth.device_link_digest(code)
    except CryptoError:
        raise PermissionDenied(LINK_REFUSED) from None
