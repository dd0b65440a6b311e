"""The relative SDK: a typed client for relatives and privileged correspondents.

It trusts nothing by name: the directory key is pinned, every key record it
uses is verified against it, and the envelope is sealed and opened locally,
so the gateway only ever sees ciphertext.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import grpc

from sealpost.clients._grpc import ClientError, Endpoint, bearer
from sealpost.crypto import auth as crypto_auth
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto import keyrecords
from sealpost.crypto.envelope import Part
from sealpost.crypto.keyrecords import DirectoryPin, VerifiedKey
from sealpost.crypto.keys import PrivateKeys
from sealpost.gateway.services.context import wall_clock_ms
from sealpost.v1 import keys_pb2, log_pb2, relative_pb2, relative_pb2_grpc

TEXT_PLAIN = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Contact:
    """A contact as the relative sees it."""

    contact_id: str
    detainee_id: str
    status: int
    privileged: bool
    deliverable: bool
    mailbox: VerifiedKey | None


@dataclass(frozen=True)
class InboxMessage:
    """A reply, opened and verified."""

    cursor: str
    message_id: bytes
    detainee_id: str
    parts: tuple[Part, ...]

    @property
    def text(self) -> str:
        """The text parts, joined."""
        return "\n".join(
            p.data.decode("utf-8") for p in self.parts if p.content_type.startswith("text/")
        )


@dataclass
class RelativeClient:
    """One device of a relative (or correspondent) talking to the gateway."""

    endpoint: Endpoint
    pin: DirectoryPin
    keys: PrivateKeys = field(default_factory=PrivateKeys.generate)
    account_id: str = ""
    key_id: bytes = b""
    token: str = ""
    _channel: grpc.Channel | None = None

    @property
    def stub(self) -> relative_pb2_grpc.RelativeServiceStub:
        """The RelativeService stub over this client's channel."""
        if self._channel is None:
            self._channel = self.endpoint.channel()
        return relative_pb2_grpc.RelativeServiceStub(self._channel)

    def close(self) -> None:
        """Close the channel."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return bearer(self.token) if self.token else ()

    def _call(self, method: str, request: object) -> object:
        try:
            return getattr(self.stub, method)(request, metadata=self._metadata(), timeout=30)
        except grpc.RpcError as exc:
            raise ClientError.of(exc) from exc

    def directory(self) -> tuple[VerifiedKey, VerifiedKey, list[keys_pb2.KeyRevocation]]:
        """The directory and log records, verified against the pinned key."""
        reply: relative_pb2.GetDirectoryResponse = self._call(  # type: ignore[assignment]
            "GetDirectory", relative_pb2.GetDirectoryRequest()
        )
        now = wall_clock_ms()
        revocations = list(reply.revocations)
        directory = keyrecords.verify_directory_record(
            reply.directory_key, self.pin, now_ms=now, revocations=revocations
        )
        log = keyrecords.verify_key_record(
            reply.log_key,
            directory,
            now_ms=now,
            revocations=revocations,
            purpose=keys_pb2.KEY_PURPOSE_LOG,
        )
        return directory, log, revocations

    def register(self, display_name: str) -> str:
        """Register this device (a new account unless signed in); returns the account id."""
        proof = crypto_auth.sign_registration(
            self.keys, purpose=keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE, label=display_name
        )
        reply: relative_pb2.RegisterDeviceResponse = self._call(  # type: ignore[assignment]
            "RegisterDevice",
            relative_pb2.RegisterDeviceRequest(
                display_name=display_name,
                encryption_key=self.keys.encryption_key,
                signing_key=self.keys.signing_key,
                proof=proof,
            ),
        )
        directory, _log, revocations = self.directory()
        verified = keyrecords.verify_key_record(
            reply.key_record,
            directory,
            now_ms=wall_clock_ms(),
            revocations=revocations,
            purpose=keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE,
        )
        if verified.signing_key != self.keys.signing_key or verified.subject != reply.account_id:
            raise ClientError(
                grpc.StatusCode.DATA_LOSS, "the gateway issued a record for other keys"
            )
        self.account_id, self.key_id = reply.account_id, verified.id
        return reply.account_id

    def login(self) -> None:
        """Sign a fresh challenge with the device key and keep the session token."""
        challenge: relative_pb2.CreateChallengeResponse = self._call(  # type: ignore[assignment]
            "CreateChallenge", relative_pb2.CreateChallengeRequest(key_id=self.key_id)
        )
        signature = crypto_auth.sign_login(
            self.keys, key_id=self.key_id, challenge=challenge.challenge
        )
        reply: relative_pb2.LoginResponse = self._call(  # type: ignore[assignment]
            "Login",
            relative_pb2.LoginRequest(
                key_id=self.key_id, challenge=challenge.challenge, signature=signature
            ),
        )
        self.token = reply.access_token

    def request_contact(self, detainee_id: str, relationship: str = "") -> Contact:
        """Ask to correspond with a detainee."""
        reply: relative_pb2.RequestContactResponse = self._call(  # type: ignore[assignment]
            "RequestContact",
            relative_pb2.RequestContactRequest(detainee_id=detainee_id, relationship=relationship),
        )
        return self._contact(reply.contact)

    def _contact(self, contact: relative_pb2.Contact) -> Contact:
        mailbox = None
        if contact.HasField("mailbox_key"):
            directory, _log, revocations = self.directory()
            mailbox = keyrecords.verify_key_record(
                contact.mailbox_key,
                directory,
                now_ms=wall_clock_ms(),
                revocations=revocations,
                purpose=keys_pb2.KEY_PURPOSE_MAILBOX,
            )
            if mailbox.subject != contact.detainee_id:
                raise ClientError(grpc.StatusCode.DATA_LOSS, "mailbox key of another detainee")
        return Contact(
            contact.contact_id,
            contact.detainee_id,
            contact.status,
            contact.privileged,
            contact.deliverable,
            mailbox,
        )

    def contacts(self) -> list[Contact]:
        """Every contact, with verified mailbox keys for approved ones."""
        reply: relative_pb2.ListContactsResponse = self._call(  # type: ignore[assignment]
            "ListContacts", relative_pb2.ListContactsRequest()
        )
        return [self._contact(c) for c in reply.contacts]

    def contact(self, detainee_id: str) -> Contact:
        """The contact with one detainee."""
        for contact in self.contacts():
            if contact.detainee_id == detainee_id:
                return contact
        raise ClientError(grpc.StatusCode.NOT_FOUND, f"no contact with {detainee_id}")

    def seal(
        self, detainee_id: str, text: str, attachments: Sequence[Part] = ()
    ) -> relative_pb2.SendMessageRequest:
        """A sealed envelope to a detainee's current mailbox key (not yet sent)."""
        contact = self.contact(detainee_id)
        if contact.mailbox is None:
            raise ClientError(grpc.StatusCode.FAILED_PRECONDITION, "the contact is not approved")
        envelope = crypto_envelope.seal_envelope(
            [Part(TEXT_PLAIN, text.encode("utf-8")), *attachments],
            sender_keys=self.keys,
            sender_key_id=self.key_id,
            recipients=[contact.mailbox],
            now_ms=wall_clock_ms(),
        )
        return relative_pb2.SendMessageRequest(envelope=envelope)

    def send_sealed(self, request: relative_pb2.SendMessageRequest) -> log_pb2.Receipt:
        """Send an envelope made by ``seal``."""
        reply: relative_pb2.SendMessageResponse = self._call(  # type: ignore[assignment]
            "SendMessage", request
        )
        return reply.receipt

    def send(
        self, detainee_id: str, text: str, attachments: Sequence[Part] = ()
    ) -> log_pb2.Receipt:
        """Seal and send a message; returns the gateway's receipt."""
        return self.send_sealed(self.seal(detainee_id, text, attachments))

    def status(self, message_id: bytes) -> int:
        """DELIVERY_STATUS_PENDING, _DELIVERED or _NOT_DELIVERED."""
        reply: relative_pb2.GetMessageStatusResponse = self._call(  # type: ignore[assignment]
            "GetMessageStatus", relative_pb2.GetMessageStatusRequest(message_id=message_id)
        )
        return reply.status

    def inbox(self, after_cursor: str = "") -> Iterator[InboxMessage]:
        """Replies after ``after_cursor``, verified and opened (no waiting for new ones)."""
        directory, _log, revocations = self.directory()
        request = relative_pb2.StreamInboxRequest(after_cursor=after_cursor)
        try:
            items = list(self.stub.StreamInbox(request, metadata=self._metadata(), timeout=30))
        except grpc.RpcError as exc:
            raise ClientError.of(exc) from exc
        for item in items:
            now = item.accepted_at_ms  # the reference time of a stored message
            sender = keyrecords.verify_key_record(
                item.sender_key,
                directory,
                now_ms=now,
                revocations=revocations,
                purpose=keys_pb2.KEY_PURPOSE_MAILBOX,
            )
            if sender.subject != item.detainee_id:
                raise ClientError(grpc.StatusCode.DATA_LOSS, "reply signed for another detainee")
            opened = crypto_envelope.open_envelope(
                item.envelope, self.keys, self.key_id, sender, now_ms=now
            )
            yield InboxMessage(
                item.cursor, opened.header.message_id, item.detainee_id, opened.parts
            )
