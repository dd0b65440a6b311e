"""The relative SDK: a typed client for relatives and privileged correspondents.

It trusts nothing by name: the directory key is pinned, every key record it uses is
verified against it, envelopes are sealed and opened locally so the gateway only ever
sees ciphertext, and every acceptance receipt is checked against the signed
transparency log. ``register`` and ``connect`` keep the device in an encrypted profile
(``keystore``) that also holds the inbox position and the sent messages' receipts.
"""

from __future__ import annotations

import enum
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final, TypeAlias, TypeVar

import grpc
from google.protobuf.message import Message

from sealpost.clients._grpc import ClientError, Endpoint, bearer
from sealpost.clients.relative import attachments as _attachments
from sealpost.clients.relative import receipts as _receipts
from sealpost.clients.relative.errors import (
    DirectoryMismatchError,
    MessageError,
    ProfileExistsError,
    ReceiptError,
)
from sealpost.clients.relative.keystore import (
    Profile,
    ProfileData,
    SentRecord,
    check_new_passphrase,
    profile_exists,
)
from sealpost.clients.relative.notice import review_notice
from sealpost.clients.relative.receipts import VerifiedReceipt
from sealpost.crypto import auth as crypto_auth
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto import keyrecords
from sealpost.crypto.envelope import Part
from sealpost.crypto.errors import CryptoError
from sealpost.crypto.keyrecords import DirectoryPin, VerifiedKey
from sealpost.crypto.keys import PrivateKeys
from sealpost.crypto.passphrase import KDF_MODERATE, KdfParams
from sealpost.i18n import SOURCE_LANGUAGE
from sealpost.v1 import common_pb2, keys_pb2, log_pb2, relative_pb2, relative_pb2_grpc

TEXT_PLAIN: Final = "text/plain; charset=utf-8"
#: Sign in again this long before the session token runs out (tokens last 15 minutes).
TOKEN_REFRESH_MARGIN_MS: Final = 60_000
#: Seconds a call may take before it is abandoned.
CALL_TIMEOUT_SECONDS: Final = 30.0
#: Calls that need no session token.
_OPEN_METHODS: Final = frozenset({"GetDirectory", "CreateChallenge", "Login"})

R = TypeVar("R", bound=Message)
T = TypeVar("T")
#: An attachment: a Part built in memory, or a photo or PDF file on disk.
Attachment: TypeAlias = Part | Path


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _notice_to_stderr(text: str) -> None:
    """The default way to show the review notice: on the program's error stream."""
    sys.stderr.write(f"{text}\n")
    sys.stderr.flush()


class ContactStatus(enum.IntEnum):
    """Where a contact request stands (sealpost.v1.ContactStatus)."""

    UNSPECIFIED = common_pb2.CONTACT_STATUS_UNSPECIFIED
    REQUESTED = common_pb2.CONTACT_STATUS_REQUESTED
    APPROVED = common_pb2.CONTACT_STATUS_APPROVED
    REJECTED = common_pb2.CONTACT_STATUS_REJECTED
    REVOKED = common_pb2.CONTACT_STATUS_REVOKED
    EXPIRED = common_pb2.CONTACT_STATUS_EXPIRED

    @classmethod
    def of(cls, value: int) -> ContactStatus:
        """The status for a wire value; UNSPECIFIED for one this code does not know."""
        try:
            return cls(value)
        except ValueError:
            return cls.UNSPECIFIED

    @property
    def label(self) -> str:
        """A word for people: "requested", "approved", ..."""
        return "unknown" if self is ContactStatus.UNSPECIFIED else self.name.lower()


class DeliveryStatus(enum.IntEnum):
    """What a relative may know about a sent message (sealpost.v1.DeliveryStatus)."""

    UNSPECIFIED = common_pb2.DELIVERY_STATUS_UNSPECIFIED
    PENDING = common_pb2.DELIVERY_STATUS_PENDING
    DELIVERED = common_pb2.DELIVERY_STATUS_DELIVERED
    NOT_DELIVERED = common_pb2.DELIVERY_STATUS_NOT_DELIVERED

    @classmethod
    def of(cls, value: int) -> DeliveryStatus:
        """The status for a wire value; UNSPECIFIED for one this code does not know."""
        try:
            return cls(value)
        except ValueError:
            return cls.UNSPECIFIED

    @property
    def label(self) -> str:
        """Words for people: "pending", "delivered", "not delivered"."""
        return (
            "unknown" if self is DeliveryStatus.UNSPECIFIED else self.name.lower().replace("_", " ")
        )


#: The reason categories a regime may tell relatives, in words for people.
_REASON_LABELS: Final[dict[int, str]] = {
    common_pb2.WITHHOLD_REASON_ORDER_AND_SECURITY: "order and security in the institution",
    common_pb2.WITHHOLD_REASON_PUBLIC_ORDER: "protection of public order",
    common_pb2.WITHHOLD_REASON_CRIME_PREVENTION: "prevention or investigation of crime",
    common_pb2.WITHHOLD_REASON_VICTIM_PROTECTION: "protection of victims",
}


@dataclass(frozen=True)
class MessageStatus:
    """A sent message's status, with the withholding's reason category where told.

    ``withhold_reason`` is a WithholdReason wire value, UNSPECIFIED (0) unless the message
    was withheld while its detainee's regime told relatives the reason.
    """

    message_id: bytes
    status: DeliveryStatus
    updated_at_ms: int
    withhold_reason: int = common_pb2.WITHHOLD_REASON_UNSPECIFIED

    @property
    def reason_label(self) -> str:
        """The reason category in words, or "" when none was told."""
        return _REASON_LABELS.get(self.withhold_reason, "")


@dataclass(frozen=True)
class Contact:
    """A contact as the relative sees it: never where the detainee is held."""

    contact_id: str
    detainee_id: str
    #: The wire value (sealpost.v1.ContactStatus); ``state`` gives it as a ContactStatus.
    status: common_pb2.ContactStatus.ValueType
    #: True when the gateway verified this account as a privileged correspondent (lawyer).
    privileged: bool
    #: False once the detainee is released: new messages cannot be delivered.
    deliverable: bool
    #: The detainee's mailbox key, verified against the pinned directory; None until approved.
    mailbox: VerifiedKey | None

    @property
    def state(self) -> ContactStatus:
        """The status as an enum, with a ``label`` for people."""
        return ContactStatus.of(self.status)

    def why_not_sendable(self) -> str:
        """Why a message to this contact cannot be sealed now, in words that match the status."""
        who = self.detainee_id
        state = self.state
        if state is ContactStatus.REQUESTED:
            return (
                f"your request to write to {who} waits for the institution's decision: "
                "messages can be sent once it is approved"
            )
        if state is ContactStatus.APPROVED:
            return (
                f"your contact with {who} is approved, but the institution has not yet opened "
                "a mailbox for it: try again later"
            )
        return (
            f"your contact with {who} is {state.label}: messages cannot be sent; ask again "
            f"with `sealpost relative request-contact {who}` if you think that is wrong"
        )


@dataclass(frozen=True)
class InboxMessage:
    """A reply, verified and opened."""

    cursor: str
    message_id: bytes
    detainee_id: str
    parts: tuple[Part, ...]
    #: When the gateway accepted the reply (milliseconds since the epoch).
    accepted_at_ms: int = 0

    @property
    def text(self) -> str:
        """The text of the reply (its unnamed text parts, joined)."""
        return "\n".join(
            p.data.decode("utf-8", "replace")
            for p in self.parts
            if not p.filename and p.content_type.startswith("text/")
        )

    @property
    def attachments(self) -> tuple[Part, ...]:
        """Photos, documents and any other named part."""
        return tuple(p for p in self.parts if p.filename or not p.content_type.startswith("text/"))


@dataclass(frozen=True)
class Trust:
    """The directory and log key records of this moment, verified against the pin."""

    directory: VerifiedKey
    log: VerifiedKey
    revocations: tuple[keys_pb2.KeyRevocation, ...]


@dataclass(frozen=True)
class ReceiptCheck:
    """The outcome of re-checking one stored receipt."""

    record: SentRecord
    receipt: VerifiedReceipt | None
    error: ReceiptError | None


@dataclass
class RelativeClient:
    """One device of a relative (or correspondent) talking to the gateway.

    Made by ``register`` or ``connect`` with a profile on disk, or directly (keys in
    memory only). Calls raise ``ClientError`` for gateway refusals; an expired session
    is renewed transparently by signing a fresh challenge.
    """

    endpoint: Endpoint
    pin: DirectoryPin
    keys: PrivateKeys = field(default_factory=PrivateKeys.generate)
    account_id: str = ""
    key_id: bytes = b""
    token: str = field(default="", repr=False)
    _channel: grpc.Channel | None = None
    #: The encrypted profile this client records into, when made by register/connect.
    profile: Profile | None = None
    #: How the review notice reaches the person before the first message (SPEC section 7).
    show_notice: Callable[[str], None] = _notice_to_stderr
    #: The language the review notice is shown in (sealpost.i18n.LANGUAGES).
    language: str = SOURCE_LANGUAGE
    notice_shown: bool = False
    token_expires_ms: int = 0
    _sealed_for: dict[bytes, str] = field(default_factory=dict, repr=False)

    # ----------------------------------------------------------------- plumbing

    @property
    def stub(self) -> relative_pb2_grpc.RelativeServiceStub:
        """The RelativeService stub over this client's channel."""
        if self._channel is None:
            self._channel = self.endpoint.channel()
        return relative_pb2_grpc.RelativeServiceStub(self._channel)

    def close(self) -> None:
        """Close the channel and let go of the profile."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self.profile is not None:
            self.profile.close()

    def __enter__(self) -> RelativeClient:
        """Use in a ``with`` block to close reliably."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close."""
        self.close()

    def _metadata(self, method: str = "") -> tuple[tuple[str, str], ...]:
        # Open calls go without a token: a stale one would get them refused.
        return bearer(self.token) if self.token and method not in _OPEN_METHODS else ()

    def _signed_in(self, method: str, action: Callable[[], T]) -> T:
        """Run a call; renew a stale or rejected session once, by signing a fresh challenge."""
        authenticated = method not in _OPEN_METHODS and bool(self.token) and bool(self.key_id)
        if (
            authenticated
            and self.token_expires_ms
            and _now_ms() >= self.token_expires_ms - TOKEN_REFRESH_MARGIN_MS
        ):
            self.login()
        address = self.endpoint.address
        try:
            return _grpc(action, address)
        except ClientError as exc:
            if not authenticated or exc.code != grpc.StatusCode.UNAUTHENTICATED:
                raise
        self.login()
        return _grpc(action, address)

    def _call(self, method: str, request: Message, reply_type: type[R]) -> R:
        def once() -> R:
            reply = getattr(self.stub, method)(
                request, metadata=self._metadata(method), timeout=CALL_TIMEOUT_SECONDS
            )
            if not isinstance(reply, reply_type):
                raise ClientError(grpc.StatusCode.UNKNOWN, f"unexpected answer to {method}")
            return reply

        return self._signed_in(method, once)

    def _stream(self, method: str, request: Message, item_type: type[R]) -> list[R]:
        def once() -> list[R]:
            stream = getattr(self.stub, method)(
                request, metadata=self._metadata(method), timeout=CALL_TIMEOUT_SECONDS
            )
            items = list(stream)
            if not all(isinstance(item, item_type) for item in items):
                raise ClientError(grpc.StatusCode.UNKNOWN, f"unexpected answer to {method}")
            return items

        return self._signed_in(method, once)

    # ----------------------------------------------------------------- keys and sign-in

    def trust(self) -> Trust:
        """The directory and log records, verified against the pinned directory key."""
        reply = self._call(
            "GetDirectory", relative_pb2.GetDirectoryRequest(), relative_pb2.GetDirectoryResponse
        )
        now = _now_ms()
        revocations = tuple(reply.revocations)
        try:
            directory = keyrecords.verify_directory_record(
                reply.directory_key,
                self.pin,
                now_ms=now,
                revocations=revocations,
                successions=reply.successions,
            )
        except CryptoError as exc:
            raise DirectoryMismatchError(exc.explain()) from exc
        log = keyrecords.verify_key_record(
            reply.log_key,
            directory,
            now_ms=now,
            revocations=revocations,
            purpose=keys_pb2.KEY_PURPOSE_LOG,
        )
        return Trust(directory, log, revocations)

    def directory(self) -> tuple[VerifiedKey, VerifiedKey, list[keys_pb2.KeyRevocation]]:
        """The directory and log records and the revocations, verified against the pin."""
        trust = self.trust()
        return trust.directory, trust.log, list(trust.revocations)

    def register(self, display_name: str, *, link_code: str = "") -> str:
        """Register this device (a new account unless signed in); returns the account id.

        With ``link_code`` (from ``link_device`` on another device of the account) the
        device joins that account. The name is sent (and signed) in Unicode normal form
        C, as the gateway requires.
        """
        display_name = unicodedata.normalize("NFC", display_name.strip())
        proof = crypto_auth.sign_registration(
            self.keys, purpose=keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE, label=display_name
        )
        reply = self._call(
            "RegisterDevice",
            relative_pb2.RegisterDeviceRequest(
                display_name=display_name,
                encryption_key=self.keys.encryption_key,
                signing_key=self.keys.signing_key,
                proof=proof,
                link_code=link_code,
            ),
            relative_pb2.RegisterDeviceResponse,
        )
        trust = self.trust()
        verified = keyrecords.verify_key_record(
            reply.key_record,
            trust.directory,
            now_ms=_now_ms(),
            revocations=trust.revocations,
            purpose=keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE,
        )
        if (
            verified.signing_key != self.keys.signing_key
            or verified.encryption_key != self.keys.encryption_key
            or verified.subject != reply.account_id
        ):
            raise ClientError(
                grpc.StatusCode.DATA_LOSS, "the gateway issued a record for other keys"
            )
        self.account_id, self.key_id = reply.account_id, verified.id
        return reply.account_id

    def link_device(self) -> str:
        """A one-time code with which another device joins this account (ten minutes)."""
        reply = self._call(
            "CreateDeviceLink",
            relative_pb2.CreateDeviceLinkRequest(),
            relative_pb2.CreateDeviceLinkResponse,
        )
        return reply.code

    def devices(self) -> list[tuple[VerifiedKey, bool]]:
        """The account's devices, oldest first: each verified record and whether revoked.

        Every record is checked against the pinned directory and must be this account's.
        """
        reply = self._call(
            "ListDevices", relative_pb2.ListDevicesRequest(), relative_pb2.ListDevicesResponse
        )
        trust = self.trust()
        found = []
        for device in reply.devices:
            # Checked as of its own start: a revoked or expired device is listed too.
            body = keys_pb2.KeyRecordBody.FromString(device.key_record.body)
            verified = keyrecords.verify_key_record(
                device.key_record,
                trust.directory,
                now_ms=body.not_before * 1000,
                purpose=keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE,
            )
            if verified.subject != self.account_id:
                raise ClientError(
                    grpc.StatusCode.DATA_LOSS, "the gateway listed another account's device"
                )
            found.append((verified, device.HasField("revoked_at")))
        return found

    def revoke_device(self, key_id: bytes) -> None:
        """Revoke one of this account's devices (a lost one); it can no longer sign in."""
        self._call(
            "RevokeDevice",
            relative_pb2.RevokeDeviceRequest(key_id=key_id),
            relative_pb2.RevokeDeviceResponse,
        )

    def set_notifications(self, email: str, language: str = "nl") -> None:
        """Be told at ``email`` when there is news (no content); an empty address stops it."""
        self._call(
            "SetNotifications",
            relative_pb2.SetNotificationsRequest(email=email, language=language),
            relative_pb2.SetNotificationsResponse,
        )

    def notifications(self) -> tuple[str, str]:
        """The address told when there is news and its language; ("", "") when none."""
        reply = self._call(
            "GetNotifications",
            relative_pb2.GetNotificationsRequest(),
            relative_pb2.GetNotificationsResponse,
        )
        return reply.email, reply.language

    def login(self) -> None:
        """Sign a fresh challenge with the device key and keep the session token."""
        challenge = self._call(
            "CreateChallenge",
            relative_pb2.CreateChallengeRequest(key_id=self.key_id),
            relative_pb2.CreateChallengeResponse,
        )
        signature = crypto_auth.sign_login(
            self.keys, key_id=self.key_id, challenge=challenge.challenge
        )
        reply = self._call(
            "Login",
            relative_pb2.LoginRequest(
                key_id=self.key_id, challenge=challenge.challenge, signature=signature
            ),
            relative_pb2.LoginResponse,
        )
        if self.account_id and reply.account_id and reply.account_id != self.account_id:
            raise ClientError(grpc.StatusCode.DATA_LOSS, "signed in to another account")
        self.token = reply.access_token
        self.token_expires_ms = (
            reply.expires_at.ToMilliseconds() if reply.HasField("expires_at") else 0
        )

    # ----------------------------------------------------------------- contacts

    def request_contact(self, detainee_id: str, relationship: str = "") -> Contact:
        """Ask the detainee's institution to approve correspondence with ``detainee_id``."""
        reply = self._call(
            "RequestContact",
            relative_pb2.RequestContactRequest(
                detainee_id=detainee_id,
                relationship=unicodedata.normalize("NFC", relationship.strip()),
            ),
            relative_pb2.RequestContactResponse,
        )
        return self._contact(reply.contact, None)

    def _contact(self, contact: relative_pb2.Contact, trust: Trust | None) -> Contact:
        mailbox = None
        if contact.HasField("mailbox_key"):
            trust = trust or self.trust()
            mailbox = keyrecords.verify_key_record(
                contact.mailbox_key,
                trust.directory,
                now_ms=_now_ms(),
                revocations=trust.revocations,
                purpose=keys_pb2.KEY_PURPOSE_MAILBOX,
            )
            if mailbox.subject != contact.detainee_id:
                raise ClientError(grpc.StatusCode.DATA_LOSS, "mailbox key of another detainee")
        return Contact(
            contact_id=contact.contact_id,
            detainee_id=contact.detainee_id,
            status=contact.status,
            privileged=contact.privileged,
            deliverable=contact.deliverable,
            mailbox=mailbox,
        )

    def contacts(self) -> list[Contact]:
        """Every contact, with verified mailbox keys for approved ones."""
        reply = self._call(
            "ListContacts", relative_pb2.ListContactsRequest(), relative_pb2.ListContactsResponse
        )
        trust = self.trust() if any(c.HasField("mailbox_key") for c in reply.contacts) else None
        return [self._contact(c, trust) for c in reply.contacts]

    def contact(self, detainee_id: str) -> Contact:
        """The contact with one detainee."""
        for contact in self.contacts():
            if contact.detainee_id == detainee_id:
                return contact
        raise ClientError(grpc.StatusCode.NOT_FOUND, f"no contact with {detainee_id}")

    # ----------------------------------------------------------------- sending

    @property
    def notice_pending(self) -> bool:
        """True until the review notice has been shown on this device."""
        if self.profile is not None and self.profile.data.notice_shown_at_ms is not None:
            return False
        return not self.notice_shown

    def _ensure_notice(self) -> None:
        """Show the review notice before the first message leaves, and record that it was."""
        if not self.notice_pending:
            return
        self.show_notice(review_notice(self.language))
        self.notice_shown = True
        if self.profile is not None:
            self.profile.mark_notice_shown(_now_ms())

    def seal(
        self, contact: str | Contact, text: str, attachments: Sequence[Attachment] = ()
    ) -> relative_pb2.SendMessageRequest:
        """A sealed envelope to the contact's current mailbox key (not yet sent).

        ``text`` may be in any script and of any length up to the envelope limits;
        attachments are photos or PDF documents (``Part`` objects or file paths).
        """
        target = contact if isinstance(contact, Contact) else self.contact(contact)
        if target.mailbox is None:
            raise ClientError(grpc.StatusCode.FAILED_PRECONDITION, target.why_not_sendable())
        parts = [_text_part(text), *(_attachment_part(a) for a in attachments)]
        if not text and len(parts) == 1:
            raise MessageError("nothing to send: write some text or attach a file")
        envelope = crypto_envelope.seal_envelope(
            parts,
            sender_keys=self.keys,
            sender_key_id=self.key_id,
            recipients=[target.mailbox],
            now_ms=_now_ms(),
        )
        header = crypto_envelope.parse_header(envelope.header)
        self._sealed_for[header.message_id] = target.detainee_id
        return relative_pb2.SendMessageRequest(envelope=envelope)

    def send_sealed(self, request: relative_pb2.SendMessageRequest) -> log_pb2.Receipt:
        """Send an envelope made by ``seal``; returns the gateway's receipt, not yet proven.

        The review notice is shown first if it never was. With a profile, the message
        is recorded as soon as the gateway accepts it.
        """
        self._ensure_notice()
        header = crypto_envelope.parse_header(request.envelope.header)
        digest = crypto_envelope.envelope_digest(request.envelope)
        reply = self._call("SendMessage", request, relative_pb2.SendMessageResponse)
        receipt = reply.receipt
        problem = ""
        if receipt.message_id != header.message_id or receipt.envelope_digest != digest:
            problem = "the gateway acknowledged another envelope"
        detainee_id = self._sealed_for.pop(header.message_id, "")
        if self.profile is not None:  # accepted, so kept, even when the answer is wrong
            self.profile.record_sent(
                SentRecord(
                    message_id=header.message_id,
                    detainee_id=detainee_id,
                    accepted_at_ms=receipt.accepted_at_ms,
                    envelope_digest=digest,
                    receipt=receipt.SerializeToString(deterministic=True),
                    problem=problem,
                )
            )
        if problem:
            raise ReceiptError(header.message_id, problem)
        return receipt

    def send(
        self, contact: str | Contact, text: str, attachments: Sequence[Attachment] = ()
    ) -> VerifiedReceipt:
        """Seal, send, and prove from the transparency log that the gateway logged it.

        If the detainee's mailbox key changed since ``contact`` was listed (a transfer),
        the message is sealed again to the new key once. Raises ReceiptError, loudly,
        when the gateway's proof does not verify.
        """
        request = self.seal(contact, text, attachments)
        try:
            accepted = self.send_sealed(request)
        except ClientError as exc:
            retry = self._reseal_after_key_change(exc, request, contact, text, attachments)
            if retry is None:
                raise
            request = retry
            accepted = self.send_sealed(request)
        if accepted.HasField("tree_head") and accepted.HasField("inclusion_proof"):
            # The answer carries its proof (one head per batch): no second round trip.
            return self._verify_and_record(
                accepted, accepted.message_id, accepted.envelope_digest, accepted.entry
            )
        return self.confirm(
            accepted.message_id, accepted.envelope_digest, sent_entry=accepted.entry
        )

    def _reseal_after_key_change(
        self,
        error: ClientError,
        request: relative_pb2.SendMessageRequest,
        contact: str | Contact,
        text: str,
        attachments: Sequence[Attachment],
    ) -> relative_pb2.SendMessageRequest | None:
        if error.code != grpc.StatusCode.FAILED_PRECONDITION:
            return None
        detainee_id = contact.detainee_id if isinstance(contact, Contact) else contact
        fresh = self.contact(detainee_id)
        used = crypto_envelope.parse_header(request.envelope.header).recipient_key_ids
        if fresh.mailbox is None or fresh.mailbox.id in used:
            return None
        return self.seal(fresh, text, attachments)

    # ----------------------------------------------------------------- receipts

    def _log_key_for(self, receipt: log_pb2.Receipt, trust: Trust) -> VerifiedKey:
        """The log key that signed the receipt's tree head, verified against the directory."""
        key_id = _receipts.tree_head_key_id(receipt)
        if not key_id or key_id == trust.log.id:
            return trust.log
        reply = self._call(
            "GetKeyRecords",
            relative_pb2.GetKeyRecordsRequest(key_ids=[key_id]),
            relative_pb2.GetKeyRecordsResponse,
        )
        for record in reply.key_records:
            if keyrecords.key_record_id(record.body) == key_id:
                # A rotated log key is judged at the time the message was accepted (5.6).
                return keyrecords.verify_key_record(
                    record,
                    trust.directory,
                    now_ms=receipt.accepted_at_ms,
                    revocations=[*trust.revocations, *reply.revocations],
                    purpose=keys_pb2.KEY_PURPOSE_LOG,
                )
        return trust.log  # unknown key: verification against the current key fails loudly

    def confirm(
        self,
        message_id: bytes,
        envelope_digest: bytes,
        *,
        sent_entry: log_pb2.LogEntry | None = None,
    ) -> VerifiedReceipt:
        """Fetch the inclusion proof of a sent message's receipt and verify it.

        ``message_id`` and ``envelope_digest`` are this device's own values. The
        verified receipt is stored in the profile; a failure is recorded there too,
        and raised as ReceiptError.
        """
        reply = self._call(
            "GetReceiptProof",
            relative_pb2.GetReceiptProofRequest(message_id=message_id),
            relative_pb2.GetReceiptProofResponse,
        )
        return self._verify_and_record(reply.receipt, message_id, envelope_digest, sent_entry)

    def _verify_and_record(
        self,
        receipt: log_pb2.Receipt,
        message_id: bytes,
        envelope_digest: bytes,
        sent_entry: log_pb2.LogEntry | None,
    ) -> VerifiedReceipt:
        trust = self.trust()
        record = self.profile.sent_record(message_id) if self.profile is not None else None
        try:
            try:
                log_key = self._log_key_for(receipt, trust)
            except CryptoError as exc:
                raise ReceiptError(message_id, f"the log key: {exc.explain()}") from exc
            verified = _receipts.verify_receipt(
                receipt,
                log_key=log_key,
                message_id=message_id,
                envelope_digest=envelope_digest,
                sent_entry=sent_entry,
            )
        except ReceiptError as exc:
            if self.profile is not None and record is not None:
                record.verified_at_ms, record.problem = None, exc.reason
                self.profile.record_sent(record)
            raise
        if self.profile is not None:
            self.profile.record_sent(
                SentRecord(
                    message_id=message_id,
                    detainee_id=record.detainee_id if record else "",
                    accepted_at_ms=receipt.accepted_at_ms,
                    envelope_digest=envelope_digest,
                    receipt=receipt.SerializeToString(deterministic=True),
                    verified_at_ms=_now_ms(),
                )
            )
        return verified

    def sent(self) -> list[SentRecord]:
        """The messages this device sent, oldest first (kept in the profile)."""
        return list(self.profile.data.sent) if self.profile is not None else []

    def check_receipts(self) -> list[ReceiptCheck]:
        """Verify every confirmed receipt again; fetch fresh proofs for the others."""
        results = []
        for record in self.sent():
            stored = log_pb2.Receipt.FromString(record.receipt)
            try:
                proven = stored.HasField("inclusion_proof") and stored.HasField("tree_head")
                if proven and record.verified_at_ms is not None:
                    verified = self._verify_and_record(
                        stored, record.message_id, record.envelope_digest, None
                    )
                else:
                    verified = self.confirm(
                        record.message_id, record.envelope_digest, sent_entry=stored.entry
                    )
            except ReceiptError as exc:
                results.append(ReceiptCheck(record, None, exc))
            else:
                results.append(ReceiptCheck(record, verified, None))
        return results

    # ----------------------------------------------------------------- status and inbox

    def status(self, message_id: bytes | str) -> int:
        """Pending, delivered or not delivered (never why), as a DeliveryStatus.

        Typed ``int`` so that it compares with both DeliveryStatus members and the
        sealpost.v1 wire constants; ``DeliveryStatus.of`` gives the enum to type checkers.
        """
        return self.message_status(message_id).status

    def message_status(self, message_id: bytes | str) -> MessageStatus:
        """The status, when it last changed, and the withholding's reason where told."""
        raw = bytes.fromhex(message_id) if isinstance(message_id, str) else message_id
        reply = self._call(
            "GetMessageStatus",
            relative_pb2.GetMessageStatusRequest(message_id=raw),
            relative_pb2.GetMessageStatusResponse,
        )
        return MessageStatus(
            message_id=raw,
            status=DeliveryStatus.of(reply.status),
            updated_at_ms=reply.updated_at.ToMilliseconds(),
            withhold_reason=reply.withhold_reason,
        )

    def inbox(self, after_cursor: str | None = None) -> Iterator[InboxMessage]:
        """Replies after ``after_cursor`` (default: the profile's position), verified and opened.

        Every reply's sender record is verified against the pinned directory at the time
        the gateway accepted it; nothing is returned unless every part opened.
        """
        if after_cursor is None:
            after_cursor = self.profile.data.inbox_cursor if self.profile is not None else ""
        trust = self.trust()
        items = self._stream(
            "StreamInbox",
            relative_pb2.StreamInboxRequest(after_cursor=after_cursor),
            relative_pb2.StreamInboxResponse,
        )
        for item in items:
            when = item.accepted_at_ms  # the reference time of a stored message
            sender = keyrecords.verify_key_record(
                item.sender_key,
                trust.directory,
                now_ms=when,
                revocations=trust.revocations,
                purpose=keys_pb2.KEY_PURPOSE_MAILBOX,
            )
            if sender.subject != item.detainee_id:
                raise ClientError(grpc.StatusCode.DATA_LOSS, "reply signed for another detainee")
            opened = crypto_envelope.open_envelope(
                item.envelope, self.keys, self.key_id, sender, now_ms=when
            )
            yield InboxMessage(
                item.cursor, opened.header.message_id, item.detainee_id, opened.parts, when
            )

    def acknowledge(self, message: InboxMessage) -> None:
        """Tell the gateway the reply reached this device; the profile moves past it."""
        self._call(
            "AcknowledgeMessage",
            relative_pb2.AcknowledgeMessageRequest(message_id=message.message_id),
            relative_pb2.AcknowledgeMessageResponse,
        )
        if self.profile is not None:
            self.profile.set_inbox_cursor(message.cursor)


def _grpc(action: Callable[[], T], address: str = "") -> T:
    try:
        return action()
    except grpc.RpcError as exc:
        raise ClientError.of(exc, address=address) from exc


def _text_part(text: str) -> Part:
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MessageError("the text is not valid Unicode (it holds a lone surrogate)") from exc
    return Part(TEXT_PLAIN, data)


def _attachment_part(attachment: Attachment) -> Part:
    if isinstance(attachment, Path):
        return _attachments.attachment_from_file(attachment)
    _attachments.check_attachment(attachment)
    return attachment


# --------------------------------------------------------------------------- profiles


def register(
    folder: Path | str,
    passphrase: str,
    *,
    endpoint: Endpoint,
    pin: DirectoryPin,
    display_name: str,
    kdf: KdfParams = KDF_MODERATE,
    show_notice: Callable[[str], None] | None = None,
    language: str = SOURCE_LANGUAGE,
) -> RelativeClient:
    """Register a new device and account, keep it in a new profile, and sign in.

    The gateway's directory must match ``pin`` before anything is registered. The
    profile in ``folder`` is encrypted under ``passphrase`` (Argon2id with ``kdf``).
    The review notice is shown in ``language``.
    """
    where = Path(folder).expanduser()
    if profile_exists(where):
        raise ProfileExistsError(f"{where} already holds a profile; it is not replaced")
    check_new_passphrase(passphrase)
    client = RelativeClient(endpoint, pin, language=language)
    if show_notice is not None:
        client.show_notice = show_notice
    try:
        client.trust()
        client.register(display_name)
        data = ProfileData(
            gateway=endpoint.address,
            ca_pem=endpoint.ca_pem,
            directory_pin=pin.signing_key,
            display_name=display_name,
            account_id=client.account_id,
            key_id=client.key_id,
            keys=client.keys,
        )
        client.profile = Profile.create(where, passphrase, data, kdf=kdf)
        client.login()
    except BaseException:
        client.close()
        raise
    return client


def connect(
    folder: Path | str,
    passphrase: str,
    *,
    show_notice: Callable[[str], None] | None = None,
    language: str = SOURCE_LANGUAGE,
) -> RelativeClient:
    """Open a profile and return a signed-in client (the profile stays locked until close).

    The review notice, if it is still to be shown, is shown in ``language``.
    """
    profile = Profile.open(Path(folder).expanduser(), passphrase)
    data = profile.data
    client = RelativeClient(
        Endpoint(data.gateway, data.ca_pem),
        DirectoryPin(data.directory_pin),
        keys=data.keys,
        account_id=data.account_id,
        key_id=data.key_id,
        profile=profile,
        notice_shown=data.notice_shown_at_ms is not None,
        language=language,
    )
    if show_notice is not None:
        client.show_notice = show_notice
    try:
        client.trust()  # the gateway's directory must still match the pin
        client.login()
    except BaseException:
        client.close()
        raise
    return client
