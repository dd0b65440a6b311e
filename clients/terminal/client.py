"""The institution terminal's connection to the gateway: mailboxes, intake, delivery, replies.

Private keys live only here (the institution key and the unwrapped mailbox
secrets); the gateway sees public keys, wrapped secrets and ciphertext. The
escrow step is injected: in production the key server's transit engine
through ``sealpost.escrow.client.EscrowClient`` with an encrypt-only token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc

from sealpost.clients._grpc import ClientError, Endpoint
from sealpost.crypto import auth as crypto_auth
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto import keyrecords, mailbox
from sealpost.crypto.envelope import OpenedMessage, Part
from sealpost.crypto.keyrecords import DirectoryPin, VerifiedKey
from sealpost.crypto.keys import PrivateKeys
from sealpost.gateway.services.context import wall_clock_ms
from sealpost.v1 import (
    envelope_pb2,
    keys_pb2,
    log_pb2,
    relative_pb2,
    relative_pb2_grpc,
    terminal_pb2,
    terminal_pb2_grpc,
)

#: Escrows (message id, data key) pairs; returns one blob per pair, in order.
Escrow = Callable[[Sequence[tuple[bytes, bytes]]], list[envelope_pb2.EscrowBlob]]
TEXT_PLAIN = "text/plain; charset=utf-8"


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


@dataclass
class TerminalClient:
    """One terminal of one institution."""

    endpoint: Endpoint
    pin: DirectoryPin
    key_pem: bytes
    certificate_pem: bytes
    institution_keys: PrivateKeys = field(default_factory=PrivateKeys.generate)
    institution_key_id: bytes = b""
    _channel: grpc.Channel | None = None
    _mailboxes: dict[bytes, tuple[VerifiedKey, PrivateKeys]] = field(default_factory=dict)

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

    def directory(self) -> tuple[VerifiedKey, list[keys_pb2.KeyRevocation]]:
        """The directory record, verified against the pinned key, and the revocations."""
        stub = relative_pb2_grpc.RelativeServiceStub(self.channel)
        try:
            reply = stub.GetDirectory(relative_pb2.GetDirectoryRequest(), timeout=30)
        except grpc.RpcError as exc:
            raise ClientError.of(exc) from exc
        revocations = list(reply.revocations)
        directory = keyrecords.verify_directory_record(
            reply.directory_key, self.pin, now_ms=wall_clock_ms(), revocations=revocations
        )
        return directory, revocations

    def verify(self, record: keys_pb2.KeyRecord, purpose: int, now_ms: int) -> VerifiedKey:
        """A key record verified against the directory at ``now_ms``."""
        directory, revocations = self.directory()
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

    def load_mailboxes(self) -> int:
        """Unwrap every mailbox secret the institution holds; returns how many."""
        reply: terminal_pb2.GetMailboxKeysResponse = self._call(  # type: ignore[assignment]
            "GetMailboxKeys", terminal_pb2.GetMailboxKeysRequest()
        )
        for item in reply.mailbox_keys:
            if item.wrapped_to_key_id != self.institution_key_id:
                continue
            record = self.verify(item.key_record, keys_pb2.KEY_PURPOSE_MAILBOX, wall_clock_ms())
            keys = mailbox.unwrap_mailbox_secret(
                item.wrapped_secret, institution_keys=self.institution_keys, mailbox=record
            )
            self._mailboxes[record.id] = (record, keys)
        return len(self._mailboxes)

    def hand_over(self) -> int:
        """Re-wrap the mailboxes of detainees who left for their new institution."""
        reply: terminal_pb2.ListHandoversResponse = self._call(  # type: ignore[assignment]
            "ListHandovers", terminal_pb2.ListHandoversRequest()
        )
        self.load_mailboxes()
        for handover in reply.handovers:
            target = self.verify(
                handover.to_institution_key, keys_pb2.KEY_PURPOSE_INSTITUTION, wall_clock_ms()
            )
            wrapped = []
            for key_id in handover.mailbox_key_ids:
                _record, keys = self._mailboxes[key_id]
                wrapped.append(
                    terminal_pb2.MailboxKey(
                        detainee_id=handover.detainee_id,
                        key_record=self._record_bytes(key_id),
                        wrapped_secret=mailbox.wrap_mailbox_secret(
                            keys, detainee_id=handover.detainee_id, institution=target
                        ),
                        wrapped_to_key_id=target.id,
                    )
                )
            self._call(
                "CompleteHandover",
                terminal_pb2.CompleteHandoverRequest(
                    detainee_id=handover.detainee_id, wrapped_keys=wrapped
                ),
            )
        return len(reply.handovers)

    def _record_bytes(self, key_id: bytes) -> keys_pb2.KeyRecord:
        stub = relative_pb2_grpc.RelativeServiceStub(self.channel)
        reply = stub.GetKeyRecords(relative_pb2.GetKeyRecordsRequest(key_ids=[key_id]), timeout=30)
        (record,) = reply.key_records
        return record

    # ----------------------------------------------------------------- intake

    def intake(self, after_cursor: str = "") -> list[Intake]:
        """New messages after ``after_cursor`` (no waiting), sender records verified."""
        request = terminal_pb2.StreamIntakeRequest(after_cursor=after_cursor)
        try:
            items = list(self.stub.StreamIntake(request, timeout=60))
        except grpc.RpcError as exc:
            raise ClientError.of(exc) from exc
        out = []
        for item in items:
            sender = self.verify(
                item.sender_key, keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE, item.accepted_at_ms
            )
            header = crypto_envelope.parse_header(item.envelope.header)
            out.append(
                Intake(
                    item.cursor,
                    header.message_id,
                    item.detainee_id,
                    item.envelope,
                    sender,
                    item.sender_display_name,
                    item.privileged,
                    item.accepted_at_ms,
                )
            )
        return out

    def _mailbox_for(self, envelope: envelope_pb2.Envelope) -> tuple[VerifiedKey, PrivateKeys]:
        header = crypto_envelope.parse_header(envelope.header)
        for key_id in (*header.recipient_key_ids, header.sender_key_id):
            if key_id in self._mailboxes:
                return self._mailboxes[key_id]
        self.load_mailboxes()
        for key_id in (*header.recipient_key_ids, header.sender_key_id):
            if key_id in self._mailboxes:
                return self._mailboxes[key_id]
        raise ClientError(
            grpc.StatusCode.FAILED_PRECONDITION, "no mailbox key held for this message"
        )

    def open_dek(self, item: Intake) -> bytes:
        """Verify the envelope and open its data key with the detainee's mailbox key."""
        record, keys = self._mailbox_for(item.envelope)
        return crypto_envelope.open_dek(
            item.envelope, keys, record.id, item.sender, now_ms=item.accepted_at_ms
        )

    def take_in(self, items: Sequence[Intake], escrow: Escrow) -> dict[bytes, int]:
        """Open, escrow (non-privileged only) and report a batch; returns message id -> state."""
        submissions = []
        to_escrow = [(i.message_id, self.open_dek(i)) for i in items if not i.privileged]
        escrowed = escrow(to_escrow) if to_escrow else []
        blobs = dict(zip([m for m, _ in to_escrow], escrowed, strict=True))
        for item in items:
            submission = terminal_pb2.EscrowSubmission(message_id=item.message_id)
            if not item.privileged:
                submission.escrow.CopyFrom(blobs[item.message_id])
            submissions.append(submission)
        results: dict[bytes, int] = {}
        for start in range(0, len(submissions), 200):
            reply: terminal_pb2.SubmitEscrowResponse = self._call(  # type: ignore[assignment]
                "SubmitEscrow",
                terminal_pb2.SubmitEscrowRequest(submissions=submissions[start : start + 200]),
            )
            results.update({r.message_id: r.state for r in reply.results})
        return results

    # ----------------------------------------------------------------- delivery and replies

    def deliveries(self, detainee_id: str = "") -> list[terminal_pb2.Delivery]:
        """Messages released for delivery (first page)."""
        reply: terminal_pb2.ListDeliveriesResponse = self._call(  # type: ignore[assignment]
            "ListDeliveries", terminal_pb2.ListDeliveriesRequest(detainee_id=detainee_id)
        )
        return list(reply.deliveries)

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

    def reply(
        self,
        detainee_id: str,
        account_id: str,
        text: str,
        escrow: Escrow,
        attachments: Sequence[Part] = (),
    ) -> log_pb2.Receipt:
        """Seal a detainee's reply to a contact's devices, escrow it at creation and send."""
        contacts: terminal_pb2.ListDetaineeContactsResponse = self._call(  # type: ignore[assignment]
            "ListDetaineeContacts",
            terminal_pb2.ListDetaineeContactsRequest(detainee_id=detainee_id),
        )
        matches = [c for c in contacts.contacts if c.account_id == account_id]
        if not matches:
            raise ClientError(grpc.StatusCode.NOT_FOUND, "no approved contact with this account")
        contact = matches[0]
        now = wall_clock_ms()
        devices = [
            self.verify(record, keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE, now)
            for record in contact.device_keys
        ]
        self.load_mailboxes()
        current = [
            (record, keys)
            for record, keys in self._mailboxes.values()
            if record.subject == detainee_id
        ]
        if not current:
            raise ClientError(grpc.StatusCode.FAILED_PRECONDITION, "no mailbox key for detainee")
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
            header = crypto_envelope.parse_header(envelope.header)
            dek = crypto_envelope.open_dek(envelope, keys, record.id, record, now_ms=now)
            (blob,) = escrow([(header.message_id, dek)])
            request.escrow.CopyFrom(blob)
        reply: terminal_pb2.SendReplyResponse = self._call("SendReply", request)  # type: ignore[assignment]
        return reply.receipt
