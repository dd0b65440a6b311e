"""The review tool's core: grant, verify the grant is logged, decrypt with one's own identity.

Order of a review (SPEC section 3, step 5; P3, P6):

1. GrantAccess: the gateway checks the legal basis, appends the grant to the
   transparency log and signs a tree head covering it, then returns the escrow.
2. The tool verifies that signed head with the pinned log key and the grant's
   inclusion proof: the access is provably on record before anything is opened.
3. The key server decrypts the data key with the screener's own token, so its
   audit log names the person and the message.
4. The data key is checked against the key commitment in the signed header,
   then the parts are decrypted locally. Plaintext stays in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from sealpost.clients.staff import StaffClient
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto import keyrecords, logentry
from sealpost.crypto.envelope import OpenedMessage
from sealpost.crypto.errors import ProofError
from sealpost.crypto.keyrecords import DirectoryPin, VerifiedKey
from sealpost.escrow.blob import EscrowedKey
from sealpost.escrow.client import EscrowClient
from sealpost.gateway.services.context import wall_clock_ms
from sealpost.v1 import common_pb2, keys_pb2, log_pb2, relative_pb2, relative_pb2_grpc, review_pb2


@dataclass(frozen=True)
class Review:
    """An opened message and the proof that its opening is on record."""

    grant: review_pb2.GrantAccessResponse
    message: OpenedMessage
    sender: VerifiedKey
    tree_head: logentry.VerifiedTreeHead

    @property
    def text(self) -> str:
        """The text parts, joined."""
        return "\n".join(
            p.data.decode("utf-8") for p in self.message.parts if p.content_type.startswith("text/")
        )


@dataclass
class ReviewClient:
    """A screener's (or approver's) session: gateway identity token plus key-server token."""

    staff: StaffClient
    pin: DirectoryPin
    escrow: EscrowClient | None = None

    def _directory(self) -> tuple[VerifiedKey, VerifiedKey, list[keys_pb2.KeyRevocation]]:
        stub = relative_pb2_grpc.RelativeServiceStub(self.staff.channel)
        reply = stub.GetDirectory(relative_pb2.GetDirectoryRequest(), timeout=30)
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

    def queue(self, institution_id: str = "", detainee_id: str = "") -> list[review_pb2.QueueItem]:
        """The screening queue, oldest first."""
        reply: review_pb2.ListQueueResponse = self.staff.call(
            "review",
            "ListQueue",
            review_pb2.ListQueueRequest(institution_id=institution_id, detainee_id=detainee_id),
        )
        return list(reply.items)

    def grant(
        self, message_id: bytes, retrospective_request_id: str = ""
    ) -> review_pb2.GrantAccessResponse:
        """Ask for access (logged); does not decrypt."""
        reply: review_pb2.GrantAccessResponse = self.staff.call(
            "review",
            "GrantAccess",
            review_pb2.GrantAccessRequest(
                message_id=message_id, retrospective_request_id=retrospective_request_id
            ),
        )
        return reply

    def open(self, message_id: bytes, retrospective_request_id: str = "") -> Review:
        """Grant, verify the grant is on record, decrypt with the key server, check, decrypt."""
        if self.escrow is None:
            raise ValueError("opening a message needs the screener's key-server client")
        directory, log, revocations = self._directory()
        grant = self.grant(message_id, retrospective_request_id)
        head = verify_grant(grant, log, message_id)
        purpose = (
            keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE
            if grant.direction == common_pb2.DIRECTION_INBOUND
            else keys_pb2.KEY_PURPOSE_MAILBOX
        )
        sender = keyrecords.verify_key_record(
            grant.sender_key,
            directory,
            now_ms=grant.accepted_at_ms,
            revocations=revocations,
            purpose=purpose,
        )
        escrowed = EscrowedKey.from_proto(grant.escrow)
        if escrowed.message_id != message_id:
            raise ProofError("the escrow blob is for another message")
        dek = self.escrow.decrypt(message_id, escrowed.ciphertext)
        opened = crypto_envelope.decrypt_with_dek(
            grant.envelope, dek, sender, now_ms=grant.accepted_at_ms
        )
        return Review(grant, opened, sender, head)

    def verdict(
        self,
        message_id: bytes,
        verdict: common_pb2.Verdict.ValueType,
        reason: common_pb2.WithholdReason.ValueType = common_pb2.WITHHOLD_REASON_UNSPECIFIED,
        note: str = "",
    ) -> int:
        """Release or withhold; returns the message's new state."""
        reply: review_pb2.RecordVerdictResponse = self.staff.call(
            "review",
            "RecordVerdict",
            review_pb2.RecordVerdictRequest(
                message_id=message_id,
                verdict=verdict,
                reason=reason,
                note=note,
            ),
        )
        return reply.state


def verify_grant(
    grant: review_pb2.GrantAccessResponse, log: VerifiedKey, message_id: bytes
) -> logentry.VerifiedTreeHead:
    """The grant's leaf is in a head the log key signed, and it grants this message (SPEC P6)."""
    head = logentry.verify_tree_head(grant.tree_head, log.signing_key, log.id)
    logentry.verify_entry_inclusion(
        grant.grant_entry.leaf, grant.grant_entry.index, grant.inclusion_proof, head
    )
    event = logentry.decode_event(grant.grant_entry.leaf)
    if event.action is not logentry.LogAction.REVIEW_GRANTED or event.message_id() != (
        message_id.hex()
    ):
        raise ProofError("the logged entry is not the grant for this message")
    return head


def tree_size(head: log_pb2.SignedTreeHead) -> int:
    """The size a signed head commits to (unverified)."""
    return log_pb2.TreeHead.FromString(head.tree_head).tree_size
