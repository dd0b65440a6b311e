"""The institution terminal's connection to the gateway: mailboxes, intake, delivery, replies.

Private keys live only here (the institution key and the unwrapped mailbox
secrets); the gateway sees public keys, wrapped secrets and ciphertext. The
escrow step is injected: in production the key server's transit engine
through ``sealpost.escrow.client.EscrowClient`` with an encrypt-only token.
Key records are verified against the pinned directory; batch operations fetch
the directory once and pass it on (``Trust``). The intake loop, the delivery
desk and replies are built on this client (intake.py, desk.py, reply.py).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import grpc

from sealpost.clients._grpc import ClientError, Endpoint
from sealpost.clients.terminal.errors import NoMailboxKeyError
from sealpost.crypto import auth as crypto_auth
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto import keyrecords, logentry, mailbox
from sealpost.crypto.envelope import OpenedMessage, Part
from sealpost.crypto.errors import CryptoError
from sealpost.crypto.keyrecords import DirectoryPin, VerifiedKey
from sealpost.crypto.keys import PrivateKeys
from sealpost.i18n import _
from sealpost.v1 import (
    common_pb2,
    envelope_pb2,
    keys_pb2,
    log_pb2,
    relative_pb2,
    relative_pb2_grpc,
    terminal_pb2,
    terminal_pb2_grpc,
)


def _release_problem(
    delivery: terminal_pb2.Delivery, head: logentry.VerifiedTreeHead | None, head_problem: str
) -> str | None:
    """Why a delivery's release is not proven, or None when it is."""
    if not delivery.HasField("release_entry") or not delivery.HasField("release_proof"):
        return _("the gateway gave no release entry from the transparency log")
    if head is None:
        return head_problem
    try:
        header = crypto_envelope.parse_header(delivery.envelope.header)
        if not hmac.compare_digest(header.message_id, delivery.message_id):
            return _("the envelope is another message than the one listed")
        logentry.verify_release(
            delivery.release_entry, delivery.release_proof, head, delivery.message_id
        )
    except CryptoError as exc:
        return _("the release entry does not check out: {why}", why=exc.explain())
    return None


def wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch: the reference time for verifying key records."""
    return time.time_ns() // 1_000_000


#: Escrows (message id, data key) pairs; returns one blob per pair, in order.
Escrow = Callable[[Sequence[tuple[bytes, bytes]]], list[envelope_pb2.EscrowBlob]]
#: Checks a tree head against what this terminal has witnessed (``Witness.observe``).
ObserveHead = Callable[[log_pb2.SignedTreeHead], logentry.VerifiedTreeHead]
#: The directory record verified against the pin, and the directory's revocations.
Trust = tuple[VerifiedKey, list[keys_pb2.KeyRevocation]]
TEXT_PLAIN = "text/plain; charset=utf-8"
#: SubmitEscrow takes at most this many submissions per call (the key server's batch size).
SUBMIT_BATCH = 200
#: Page size asked for when listing detainees and deliveries.
PAGE_SIZE = 200


@dataclass(frozen=True)
class UnprovenRelease:
    """A message the gateway lists as released without a valid proof of its release."""

    message_id: bytes
    detainee_id: str
    reason: str


@dataclass(frozen=True)
class DeliveryListing:
    """Released messages: those whose release the log proves, and those it does not."""

    proven: list[terminal_pb2.Delivery]
    unproven: list[UnprovenRelease]


@dataclass(frozen=True)
class SentReply:
    """A reply the gateway took: its receipt, its state there, and the contact it went to."""

    receipt: log_pb2.Receipt
    #: RELEASED (on its way to the contact's devices) or QUEUED (it waits for a screener).
    state: common_pb2.MessageState.ValueType
    contact: terminal_pb2.DetaineeContact


@dataclass(frozen=True)
class Intake:
    """One new message for a detainee held here, verified but not yet opened."""

    cursor: str
    message_id: bytes
    detainee_id: str
    envelope: envelope_pb2.Envelope
    sender: VerifiedKey
    sender_display_name: str
    privileged: bool
    accepted_at_ms: int


class IntakeCall(Protocol):
    """A running StreamIntake call: iterate for items, cancel to hang up."""

    def __iter__(self) -> Iterator[terminal_pb2.StreamIntakeResponse]:
        """The items, in feed order."""
        ...

    def cancel(self) -> bool:
        """Hang up the stream."""
        ...


@dataclass
class TerminalClient:
    """One terminal of one institution."""

    endpoint: Endpoint
    pin: DirectoryPin
    key_pem: bytes = field(repr=False)
    certificate_pem: bytes = field(repr=False)
    institution_keys: PrivateKeys = field(default_factory=PrivateKeys.generate)
    institution_key_id: bytes = b""
    _channel: grpc.Channel | None = None
    _mailboxes: dict[bytes, tuple[VerifiedKey, PrivateKeys]] = field(
        default_factory=dict, repr=False
    )
    #: Mailbox keys the last load could not verify or unwrap.
    mailbox_problems: int = 0

    @property
    def channel(self) -> grpc.Channel:
        """The mutual-TLS channel to the terminal port."""
        if self._channel is None:
            self._channel = self.endpoint.mutual_tls_channel(self.key_pem, self.certificate_pem)
        return self._channel

    @property
    def stub(self) -> terminal_pb2_grpc.TerminalServiceStub:
        """The TerminalService stub."""
        return terminal_pb2_grpc.TerminalServiceStub(self.channel)

    def close(self) -> None:
        """Close the channel."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def _call(self, method: str, request: object) -> object:
        try:
            return getattr(self.stub, method)(request, timeout=60)
        except grpc.RpcError as exc:
            raise ClientError.of(exc) from exc

    def directory(self) -> Trust:
        """The directory record, verified against the pinned key, and the revocations."""
        stub = relative_pb2_grpc.RelativeServiceStub(self.channel)
        try:
            reply = stub.GetDirectory(relative_pb2.GetDirectoryRequest(), timeout=30)
        except grpc.RpcError as exc:
            raise ClientError.of(exc) from exc
        revocations = list(reply.revocations)
        directory = keyrecords.verify_directory_record(
            reply.directory_key,
            self.pin,
            now_ms=wall_clock_ms(),
            revocations=revocations,
            successions=reply.successions,
        )
        return directory, revocations

    def verify(
        self,
        record: keys_pb2.KeyRecord,
        purpose: int,
        now_ms: int,
        *,
        trust: Trust | None = None,
    ) -> VerifiedKey:
        """A key record verified against the directory (fetched unless ``trust`` is given)."""
        directory, revocations = trust if trust is not None else self.directory()
        return keyrecords.verify_key_record(
            record,
            directory,
            now_ms=now_ms,
            revocations=revocations,
            purpose=purpose,  # type: ignore[arg-type]
        )

    # ----------------------------------------------------------------- keys

    def register_institution_key(self, institution_id: str) -> VerifiedKey:
        """Publish this institution's key (mailbox secrets are wrapped to it)."""
        proof = crypto_auth.sign_registration(
            self.institution_keys, purpose=keys_pb2.KEY_PURPOSE_INSTITUTION, label=institution_id
        )
        reply: terminal_pb2.RegisterInstitutionKeyResponse = self._call(  # type: ignore[assignment]
            "RegisterInstitutionKey",
            terminal_pb2.RegisterInstitutionKeyRequest(
                encryption_key=self.institution_keys.encryption_key,
                signing_key=self.institution_keys.signing_key,
                proof=proof,
            ),
        )
        verified = self.verify(reply.key_record, keys_pb2.KEY_PURPOSE_INSTITUTION, wall_clock_ms())
        self.institution_key_id = verified.id
        return verified

    def institution_key_revoked(self, trust: Trust | None = None) -> bool:
        """True when the directory has revoked this terminal's institution key."""
        directory, revocations = trust if trust is not None else self.directory()
        now = wall_clock_ms()
        for revocation in revocations:
            verified = keyrecords.verify_revocation(revocation, directory)
            if (
                hmac.compare_digest(verified.key_id, self.institution_key_id)
                and verified.revoked_at * 1000 <= now
            ):
                return True
        return False

    def _institution_record(self) -> VerifiedKey:
        directory, _revocations = self.directory()
        now = wall_clock_ms()
        return VerifiedKey(
            id=self.institution_key_id,
            purpose=keys_pb2.KEY_PURPOSE_INSTITUTION,
            subject="",
            encryption_key=self.institution_keys.encryption_key,
            signing_key=self.institution_keys.signing_key,
            not_before=0,
            not_after=now // 1000 + 3600,
            issuer_key_id=directory.id,
        )

    def held_detainees(self) -> list[common_pb2.Detainee]:
        """Every detainee held at this institution, with the current mailbox key id."""
        out: list[common_pb2.Detainee] = []
        token = ""
        while True:
            reply: terminal_pb2.ListHeldDetaineesResponse = self._call(  # type: ignore[assignment]
                "ListHeldDetainees",
                terminal_pb2.ListHeldDetaineesRequest(
                    page=common_pb2.PageRequest(page_size=PAGE_SIZE, page_token=token)
                ),
            )
            out.extend(reply.detainees)
            token = reply.next_page_token
            if not token:
                return out

    def provision_mailbox(self, detainee_id: str) -> VerifiedKey:
        """Make a mailbox key for a detainee held here; the secret goes up wrapped."""
        keys = PrivateKeys.generate()
        proof = crypto_auth.sign_registration(
            keys, purpose=keys_pb2.KEY_PURPOSE_MAILBOX, label=detainee_id
        )
        wrapped = mailbox.wrap_mailbox_secret(
            keys, detainee_id=detainee_id, institution=self._institution_record()
        )
        reply: terminal_pb2.ProvisionMailboxResponse = self._call(  # type: ignore[assignment]
            "ProvisionMailbox",
            terminal_pb2.ProvisionMailboxRequest(
                detainee_id=detainee_id,
                encryption_key=keys.encryption_key,
                signing_key=keys.signing_key,
                proof=proof,
                wrapped_secret=wrapped,
            ),
        )
        verified = self.verify(reply.key_record, keys_pb2.KEY_PURPOSE_MAILBOX, wall_clock_ms())
        self._mailboxes[verified.id] = (verified, keys)
        return verified

    def provision_missing_mailboxes(self) -> list[str]:
        """Give a mailbox key to every detainee held here who has none held here; their ids.

        A detainee transferred in gets a fresh key at once, so that new mail is sealed to a
        key the previous institution never held (SPEC section 3, step 8).
        """
        done = []
        for detainee in self.held_detainees():
            if detainee.status == common_pb2.DETAINEE_STATUS_RELEASED or detainee.mailbox_key_id:
                continue
            self.provision_mailbox(detainee.detainee_id)
            done.append(detainee.detainee_id)
        return done

    def mailbox_key_count(self) -> int:
        """How many wrapped mailbox secrets the institution holds (to any institution key)."""
        reply: terminal_pb2.GetMailboxKeysResponse = self._call(  # type: ignore[assignment]
            "GetMailboxKeys", terminal_pb2.GetMailboxKeysRequest()
        )
        return len(reply.mailbox_keys)

    def load_mailboxes(self) -> int:
        """Unwrap every mailbox secret the institution holds; returns how many."""
        reply: terminal_pb2.GetMailboxKeysResponse = self._call(  # type: ignore[assignment]
            "GetMailboxKeys", terminal_pb2.GetMailboxKeysRequest()
        )
        trust: Trust | None = None
        problems = 0
        for item in reply.mailbox_keys:
            if item.wrapped_to_key_id != self.institution_key_id:
                continue
            trust = trust or self.directory()
            try:
                record = self.verify(
                    item.key_record, keys_pb2.KEY_PURPOSE_MAILBOX, wall_clock_ms(), trust=trust
                )
                if record.id in self._mailboxes:
                    continue
                keys = mailbox.unwrap_mailbox_secret(
                    item.wrapped_secret, institution_keys=self.institution_keys, mailbox=record
                )
            except CryptoError:
                # One bad record or wrapped secret must not hide the others: messages sealed
                # to it stay unopened (and are reported), the rest open.
                problems += 1
                continue
            self._mailboxes[record.id] = (record, keys)
        self.mailbox_problems = problems
        return len(self._mailboxes)

    def hand_over(self) -> int:
        """Re-wrap the mailboxes of detainees who left for their new institution; how many."""
        reply: terminal_pb2.ListHandoversResponse = self._call(  # type: ignore[assignment]
            "ListHandovers", terminal_pb2.ListHandoversRequest()
        )
        if not reply.handovers:
            return 0
        self.load_mailboxes()
        trust = self.directory()
        done = 0
        for handover in reply.handovers:
            target = self.verify(
                handover.to_institution_key,
                keys_pb2.KEY_PURPOSE_INSTITUTION,
                wall_clock_ms(),
                trust=trust,
            )
            missing = [k for k in handover.mailbox_key_ids if k not in self._mailboxes]
            if missing:
                # Wrapped to another institution key than this terminal's: another terminal
                # of this institution (holding that key) must hand these over.
                continue
            records = self.key_records(list(handover.mailbox_key_ids))
            wrapped = [
                terminal_pb2.MailboxKey(
                    detainee_id=handover.detainee_id,
                    key_record=records[key_id],
                    wrapped_secret=mailbox.wrap_mailbox_secret(
                        self._mailboxes[key_id][1],
                        detainee_id=handover.detainee_id,
                        institution=target,
                    ),
                    wrapped_to_key_id=target.id,
                )
                for key_id in handover.mailbox_key_ids
            ]
            self._call(
                "CompleteHandover",
                terminal_pb2.CompleteHandoverRequest(
                    detainee_id=handover.detainee_id, wrapped_keys=wrapped
                ),
            )
            done += 1
        return done

    def key_records(self, key_ids: list[bytes]) -> dict[bytes, keys_pb2.KeyRecord]:
        """Published key records by id (unverified; verify before use)."""
        if not key_ids:
            return {}
        stub = relative_pb2_grpc.RelativeServiceStub(self.channel)
        try:
            reply = stub.GetKeyRecords(
                relative_pb2.GetKeyRecordsRequest(key_ids=key_ids), timeout=30
            )
        except grpc.RpcError as exc:
            raise ClientError.of(exc) from exc
        return {keyrecords.key_record_id(r.body): r for r in reply.key_records}

    # ----------------------------------------------------------------- intake

    def open_intake_stream(self, after_cursor: str = "", *, follow: bool = False) -> IntakeCall:
        """The raw StreamIntake call from ``after_cursor``; ``follow`` keeps it open for more.

        Errors surface as ``grpc.RpcError`` while iterating; wrap them with ClientError.of.
        """
        request = terminal_pb2.StreamIntakeRequest(after_cursor=after_cursor, follow=follow)
        return self.stub.StreamIntake(request)

    def to_intake(self, item: terminal_pb2.StreamIntakeResponse, trust: Trust) -> Intake:
        """One streamed item with its sender's key record verified at acceptance time.

        Raises CryptoError when the header or the sender's record does not check out.
        """
        sender = self.verify(
            item.sender_key, keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE, item.accepted_at_ms, trust=trust
        )
        header = crypto_envelope.parse_header(item.envelope.header)
        return Intake(
            item.cursor,
            header.message_id,
            item.detainee_id,
            item.envelope,
            sender,
            item.sender_display_name,
            item.privileged,
            item.accepted_at_ms,
        )

    def intake(self, after_cursor: str = "") -> list[Intake]:
        """New messages after ``after_cursor`` (no waiting), sender records verified."""
        try:
            items = list(self.open_intake_stream(after_cursor))
        except grpc.RpcError as exc:
            raise ClientError.of(exc) from exc
        if not items:
            return []
        trust = self.directory()
        return [self.to_intake(item, trust) for item in items]

    def _mailbox_for(
        self, envelope: envelope_pb2.Envelope, *, reload: bool = True
    ) -> tuple[VerifiedKey, PrivateKeys]:
        header = crypto_envelope.parse_header(envelope.header)
        for key_id in (*header.recipient_key_ids, header.sender_key_id):
            if key_id in self._mailboxes:
                return self._mailboxes[key_id]
        if not reload:
            raise NoMailboxKeyError()
        self.load_mailboxes()
        for key_id in (*header.recipient_key_ids, header.sender_key_id):
            if key_id in self._mailboxes:
                return self._mailboxes[key_id]
        raise NoMailboxKeyError()

    def open_dek(self, item: Intake, *, reload: bool = True) -> bytes:
        """Verify the envelope and open its data key with the detainee's mailbox key.

        NoMailboxKeyError when no mailbox secret held here opens it (yet), after asking the
        gateway for newly wrapped ones unless ``reload`` is False; CryptoError when the
        envelope does not verify or its data key does not open.
        """
        record, keys = self._mailbox_for(item.envelope, reload=reload)
        return crypto_envelope.open_dek(
            item.envelope, keys, record.id, item.sender, now_ms=item.accepted_at_ms
        )

    def submit_escrow(
        self, submissions: Sequence[terminal_pb2.EscrowSubmission]
    ) -> dict[bytes, int]:
        """Report escrow blobs (and privileged messages, without) in calls of SUBMIT_BATCH."""
        results: dict[bytes, int] = {}
        for start in range(0, len(submissions), SUBMIT_BATCH):
            reply: terminal_pb2.SubmitEscrowResponse = self._call(  # type: ignore[assignment]
                "SubmitEscrow",
                terminal_pb2.SubmitEscrowRequest(
                    submissions=submissions[start : start + SUBMIT_BATCH]
                ),
            )
            results.update({r.message_id: r.state for r in reply.results})
        return results

    def reject_messages(
        self, rejections: Sequence[terminal_pb2.RejectedMessage]
    ) -> dict[bytes, int]:
        """Report messages that cannot be taken in; they become REJECTED. Id -> state."""
        results: dict[bytes, int] = {}
        for start in range(0, len(rejections), SUBMIT_BATCH):
            reply: terminal_pb2.RejectMessagesResponse = self._call(  # type: ignore[assignment]
                "RejectMessages",
                terminal_pb2.RejectMessagesRequest(
                    messages=rejections[start : start + SUBMIT_BATCH]
                ),
            )
            results.update({r.message_id: r.state for r in reply.results})
        return results

    def take_in(self, items: Sequence[Intake], escrow: Escrow) -> dict[bytes, int]:
        """Open, escrow (non-privileged only) and report a batch; returns message id -> state."""
        submissions = []
        to_escrow = [(i.message_id, self.open_dek(i)) for i in items if not i.privileged]
        escrowed = escrow(to_escrow) if to_escrow else []
        blobs = dict(zip([m for m, _ in to_escrow], escrowed, strict=True))
        del to_escrow  # the data keys: held no longer than the escrow call
        for item in items:
            submission = terminal_pb2.EscrowSubmission(message_id=item.message_id)
            if not item.privileged:
                submission.escrow.CopyFrom(blobs[item.message_id])
            submissions.append(submission)
        return self.submit_escrow(submissions)

    # ----------------------------------------------------------------- delivery and replies

    def log_key(self, trust: Trust | None = None) -> VerifiedKey:
        """The log's key record, verified against the pinned directory."""
        stub = relative_pb2_grpc.RelativeServiceStub(self.channel)
        try:
            reply = stub.GetDirectory(relative_pb2.GetDirectoryRequest(), timeout=30)
        except grpc.RpcError as exc:
            raise ClientError.of(exc) from exc
        return self.verify(reply.log_key, keys_pb2.KEY_PURPOSE_LOG, wall_clock_ms(), trust=trust)

    def check_releases(
        self,
        reply: terminal_pb2.ListDeliveriesResponse,
        log_key: VerifiedKey,
        observe: ObserveHead | None = None,
    ) -> DeliveryListing:
        """Split a page of deliveries into those whose release the log proves, and the rest.

        A delivery counts only with its MESSAGE_RELEASED entry, included in the page's tree
        head, signed by the log key (SPEC P12); the envelope must name the same message.
        With ``observe`` (the terminal's witness, clients/terminal/witness.py) the head
        must also be of the one history this terminal has witnessed.
        """
        head: logentry.VerifiedTreeHead | None = None
        head_problem = _("the gateway sent no signed tree head")
        if reply.HasField("tree_head"):
            try:
                head = logentry.verify_tree_head(reply.tree_head, log_key.signing_key, log_key.id)
                if observe is not None:
                    observe(reply.tree_head)
            except CryptoError as exc:
                head = None
                head_problem = _("the tree head does not check out: {why}", why=exc.explain())
        proven: list[terminal_pb2.Delivery] = []
        unproven: list[UnprovenRelease] = []
        for delivery in reply.deliveries:
            problem = _release_problem(delivery, head, head_problem)
            if problem is None:
                proven.append(delivery)
            else:
                unproven.append(UnprovenRelease(delivery.message_id, delivery.detainee_id, problem))
        return DeliveryListing(proven, unproven)

    def delivery_pages(
        self, detainee_id: str = "", observe: ObserveHead | None = None
    ) -> Iterator[DeliveryListing]:
        """Messages released for delivery, one checked page at a time."""
        log_key = self.log_key()
        token = ""
        while True:
            reply: terminal_pb2.ListDeliveriesResponse = self._call(  # type: ignore[assignment]
                "ListDeliveries",
                terminal_pb2.ListDeliveriesRequest(
                    detainee_id=detainee_id,
                    page=common_pb2.PageRequest(page_size=PAGE_SIZE, page_token=token),
                ),
            )
            yield self.check_releases(reply, log_key, observe)
            token = reply.next_page_token
            if not token:
                return

    def list_deliveries(
        self, detainee_id: str = "", observe: ObserveHead | None = None
    ) -> DeliveryListing:
        """Every message released for delivery, each release checked."""
        proven: list[terminal_pb2.Delivery] = []
        unproven: list[UnprovenRelease] = []
        for page in self.delivery_pages(detainee_id, observe):
            proven.extend(page.proven)
            unproven.extend(page.unproven)
        return DeliveryListing(proven, unproven)

    def deliveries(self, detainee_id: str = "") -> list[terminal_pb2.Delivery]:
        """Messages released for delivery whose release is proven (first page)."""
        reply: terminal_pb2.ListDeliveriesResponse = self._call(  # type: ignore[assignment]
            "ListDeliveries", terminal_pb2.ListDeliveriesRequest(detainee_id=detainee_id)
        )
        return self.check_releases(reply, self.log_key()).proven

    def all_deliveries(self, detainee_id: str = "") -> Iterator[terminal_pb2.Delivery]:
        """Every message released for delivery whose release is proven, page by page."""
        for page in self.delivery_pages(detainee_id):
            yield from page.proven

    def open_delivery(self, delivery: terminal_pb2.Delivery) -> OpenedMessage:
        """Verify and decrypt a released message for the detainee."""
        accepted = delivery.accepted_at.ToMilliseconds()
        sender = self.verify(delivery.sender_key, keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE, accepted)
        record, keys = self._mailbox_for(delivery.envelope)
        return crypto_envelope.open_envelope(
            delivery.envelope, keys, record.id, sender, now_ms=accepted
        )

    def acknowledge(self, message_id: bytes, reference: str) -> int:
        """Record the delivery with the institution's reference."""
        reply: terminal_pb2.AcknowledgeDeliveryResponse = self._call(  # type: ignore[assignment]
            "AcknowledgeDelivery",
            terminal_pb2.AcknowledgeDeliveryRequest(
                message_id=message_id, delivery_reference=reference
            ),
        )
        return reply.state

    def acknowledge_many(self, deliveries: Sequence[tuple[bytes, str]]) -> dict[bytes, int]:
        """Record many deliveries, (message id, reference) each; returns message id -> state.

        Sent in calls of at most SUBMIT_BATCH; each call is all or nothing.
        """
        states: dict[bytes, int] = {}
        for start in range(0, len(deliveries), SUBMIT_BATCH):
            chunk = deliveries[start : start + SUBMIT_BATCH]
            request = terminal_pb2.AcknowledgeDeliveriesRequest(
                acknowledgements=[
                    terminal_pb2.AcknowledgeDeliveryRequest(
                        message_id=message_id, delivery_reference=reference
                    )
                    for message_id, reference in chunk
                ]
            )
            reply: terminal_pb2.AcknowledgeDeliveriesResponse = self._call(  # type: ignore[assignment]
                "AcknowledgeDeliveries", request
            )
            states.update({r.message_id: r.state for r in reply.results})
        return states

    def contacts(self, detainee_id: str) -> list[terminal_pb2.DetaineeContact]:
        """The approved contacts of a detainee held here, with their device keys."""
        reply: terminal_pb2.ListDetaineeContactsResponse = self._call(  # type: ignore[assignment]
            "ListDetaineeContacts",
            terminal_pb2.ListDetaineeContactsRequest(detainee_id=detainee_id),
        )
        return list(reply.contacts)

    def reply(
        self,
        detainee_id: str,
        account_id: str,
        text: str,
        escrow: Escrow,
        attachments: Sequence[Part] = (),
    ) -> log_pb2.Receipt:
        """Seal a detainee's reply to a contact's devices, escrow it at creation and send."""
        return self.send_reply(detainee_id, account_id, text, escrow, attachments).receipt

    def send_reply(
        self,
        detainee_id: str,
        account_id: str,
        text: str,
        escrow: Escrow,
        attachments: Sequence[Part] = (),
    ) -> SentReply:
        """As ``reply``, with the reply's state at the gateway and the contact it went to."""
        matches = [c for c in self.contacts(detainee_id) if c.account_id == account_id]
        if not matches:
            raise ClientError(grpc.StatusCode.NOT_FOUND, _("no approved contact with this account"))
        contact = matches[0]
        now = wall_clock_ms()
        trust = self.directory()
        devices = [
            self.verify(record, keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE, now, trust=trust)
            for record in contact.device_keys
        ]
        if not devices:
            raise ClientError(
                grpc.StatusCode.FAILED_PRECONDITION, _("the contact has no registered device")
            )
        self.load_mailboxes()
        current = [
            (record, keys)
            for record, keys in self._mailboxes.values()
            if record.subject == detainee_id
        ]
        if not current:
            raise NoMailboxKeyError(_("no mailbox key held for this detainee"))
        record, keys = max(current, key=lambda pair: pair[0].not_before)
        envelope = crypto_envelope.seal_envelope(
            [Part(TEXT_PLAIN, text.encode("utf-8")), *attachments],
            sender_keys=keys,
            sender_key_id=record.id,
            recipients=devices,
            now_ms=now,
        )
        request = terminal_pb2.SendReplyRequest(detainee_id=detainee_id, envelope=envelope)
        if not contact.privileged:
            # SPEC section 3, step 7: a reply is escrowed at creation, before it leaves.
            header = crypto_envelope.parse_header(envelope.header)
            dek = crypto_envelope.open_dek(envelope, keys, record.id, record, now_ms=now)
            (blob,) = escrow([(header.message_id, dek)])
            del dek
            request.escrow.CopyFrom(blob)
        reply: terminal_pb2.SendReplyResponse = self._call("SendReply", request)  # type: ignore[assignment]
        return SentReply(reply.receipt, reply.state, contact)

    def withheld(self, detainee_id: str = "") -> list[terminal_pb2.WithheldMessage]:
        """Messages a screener withheld, to and from detainees held here (no content)."""
        found: list[terminal_pb2.WithheldMessage] = []
        token = ""
        while True:
            reply: terminal_pb2.ListWithheldMessagesResponse = self._call(  # type: ignore[assignment]
                "ListWithheldMessages",
                terminal_pb2.ListWithheldMessagesRequest(
                    detainee_id=detainee_id,
                    page=common_pb2.PageRequest(page_size=PAGE_SIZE, page_token=token),
                ),
            )
            found.extend(reply.messages)
            token = reply.next_page_token
            if not token:
                return found

    def watch_lists(self) -> list[common_pb2.WatchListRecord]:
        """The sealed watch lists of this terminal's institution and its detainees (for triage)."""
        reply: terminal_pb2.ListWatchListsResponse = self._call(  # type: ignore[assignment]
            "ListWatchLists", terminal_pb2.ListWatchListsRequest()
        )
        return list(reply.lists)

    def seal_triage(self, seals: Sequence[tuple[bytes, str]]) -> int:
        """Hand in sealed triage summaries of queued messages, in calls of SUBMIT_BATCH."""
        stored = 0
        for start in range(0, len(seals), SUBMIT_BATCH):
            reply: terminal_pb2.SealTriageResponse = self._call(  # type: ignore[assignment]
                "SealTriage",
                terminal_pb2.SealTriageRequest(
                    seals=[
                        terminal_pb2.TriageSeal(message_id=m, sealed=s)
                        for m, s in seals[start : start + SUBMIT_BATCH]
                    ]
                ),
            )
            stored += reply.stored
        return stored
