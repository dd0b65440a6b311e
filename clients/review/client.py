"""The review tool's core: grant, verify the grant is logged, decrypt with one's own identity.

Order of a review (SPEC section 3, step 5; P3, P6):

1. GrantAccess: the gateway checks the legal basis, appends the grant to the
   transparency log and signs a tree head covering it, then returns the escrow.
2. The tool verifies that signed head with the pinned log key and the grant's
   inclusion proof: the access is provably on record before anything is opened.
3. The key server decrypts the data key with the screener's own token, so its
   audit log names the person and the message. A grant covers decrypts for
   GRANT_VALIDITY_MS (gateway/policy.py): the tool decrypts at once, and refuses
   once the grant is older, so normal use never leaves the auditor a finding.
4. The data key is checked against the key commitment in the signed header,
   then the parts are decrypted locally. Plaintext stays in memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from google.protobuf.timestamp_pb2 import Timestamp

from sealpost.clients.review.errors import GrantExpiredError
from sealpost.clients.staff import StaffClient
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto import keyrecords, logentry
from sealpost.crypto.envelope import OpenedMessage, Part
from sealpost.crypto.errors import ProofError
from sealpost.crypto.keyrecords import DirectoryPin, VerifiedKey
from sealpost.escrow.blob import EscrowedKey
from sealpost.escrow.client import EscrowClient
from sealpost.gateway.policy import GRANT_VALIDITY_MS
from sealpost.i18n import _
from sealpost.v1 import common_pb2, keys_pb2, log_pb2, relative_pb2, review_pb2

#: The decrypt must start this long before the grant's bound: the key server's own retries
#: (RetryPolicy, 20 s at most) and a clock difference (the auditor's leeway) fit inside.
GRANT_MARGIN_MS: Final = 60_000


@dataclass(frozen=True)
class Review:
    """An opened message and the proof that its opening is on record."""

    grant: review_pb2.GrantAccessResponse
    message: OpenedMessage
    sender: VerifiedKey
    tree_head: logentry.VerifiedTreeHead
    #: The data key the key server returned; it opens this message only (for evidence).
    dek: bytes = field(repr=False)
    #: The directory, log key and revocations the grant was checked against.
    directory: relative_pb2.GetDirectoryResponse = field(repr=False)

    def _has_body(self) -> bool:
        parts = self.message.parts
        return bool(parts) and parts[0].content_type.startswith("text/")

    @property
    def text(self) -> str:
        """The message body: the first part when it is text (invalid UTF-8 shown replaced)."""
        if not self._has_body():
            return ""
        return self.message.parts[0].data.decode("utf-8", errors="replace")

    @property
    def attachments(self) -> tuple[Part, ...]:
        """Every part but the body: photos, documents, text files."""
        return self.message.parts[1:] if self._has_body() else self.message.parts


@dataclass
class ReviewClient:
    """A screener's (or approver's) session: gateway identity token plus key-server token."""

    staff: StaffClient
    pin: DirectoryPin
    escrow: EscrowClient | None = None
    #: Seconds, monotonic: how old a grant is when its key is about to be decrypted.
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def queue(
        self, institution_id: str = "", detainee_id: str = "", limit: int = 1000
    ) -> list[review_pb2.QueueItem]:
        """The screening queue (up to ``limit`` items), longest waiting first."""
        items: dict[bytes, review_pb2.QueueItem] = {}
        token = ""
        while len(items) < limit:
            reply: review_pb2.ListQueueResponse = self.staff.call(
                "review",
                "ListQueue",
                review_pb2.ListQueueRequest(
                    institution_id=institution_id,
                    detainee_id=detainee_id,
                    page=common_pb2.PageRequest(page_token=token),
                ),
            )
            for item in reply.items:
                items.setdefault(item.message_id, item)
            token = reply.next_page_token
            if not token:
                break
        ordered = sorted(items.values(), key=lambda i: -i.waited_seconds)
        return ordered[:limit]

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
        pinned = self.staff.directory(self.pin)
        granted_at = self.clock()
        grant = self.grant(message_id, retrospective_request_id)
        head = verify_grant(grant, pinned.log, message_id)
        purpose = (
            keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE
            if grant.direction == common_pb2.DIRECTION_INBOUND
            else keys_pb2.KEY_PURPOSE_MAILBOX
        )
        sender = keyrecords.verify_key_record(
            grant.sender_key,
            pinned.directory,
            now_ms=grant.accepted_at_ms,
            revocations=pinned.revocations,
            purpose=purpose,
        )
        escrowed = EscrowedKey.from_proto(grant.escrow)
        if escrowed.message_id != message_id:
            raise ProofError(_("the escrow blob is for another message"))
        # The grant was logged before the reply left the gateway, so it is at most this old.
        if (self.clock() - granted_at) * 1000 >= GRANT_VALIDITY_MS - GRANT_MARGIN_MS:
            raise GrantExpiredError(
                _("the grant is too old to decrypt under; nothing was decrypted")
            )
        dek = self.escrow.decrypt(message_id, escrowed.ciphertext)
        opened = crypto_envelope.decrypt_with_dek(
            grant.envelope, dek, sender, now_ms=grant.accepted_at_ms
        )
        return Review(grant, opened, sender, head, dek, pinned.reply)

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

    def release_withheld(self, message_id: bytes, complaint_reference: str) -> int:
        """Release a withheld message after a successful complaint; returns its new state."""
        reply: review_pb2.ReleaseWithheldResponse = self.staff.call(
            "review",
            "ReleaseWithheld",
            review_pb2.ReleaseWithheldRequest(
                message_id=message_id, complaint_reference=complaint_reference
            ),
        )
        return reply.state

    # ------------------------------------------------------------- retrospective access (SPEC 3.9)

    def file_retrospective(
        self,
        detainee_id: str,
        period_start_ms: int,
        period_end_ms: int,
        case_reference: str,
        reason: str,
        direction: common_pb2.Direction.ValueType = common_pb2.DIRECTION_BOTH,
    ) -> review_pb2.RetrospectiveRequest:
        """Ask for access to a detainee's past messages; a second officer must approve."""
        reply: review_pb2.FileRetrospectiveRequestResponse = self.staff.call(
            "review",
            "FileRetrospectiveRequest",
            review_pb2.FileRetrospectiveRequestRequest(
                detainee_id=detainee_id,
                direction=direction,
                period_start=_stamp(period_start_ms),
                period_end=_stamp(period_end_ms),
                case_reference=case_reference,
                reason=reason,
            ),
        )
        return reply.request

    def retrospective_requests(
        self,
        status: common_pb2.RetrospectiveStatus.ValueType = (
            common_pb2.RETROSPECTIVE_STATUS_UNSPECIFIED
        ),
    ) -> list[review_pb2.RetrospectiveRequest]:
        """Requests at one's institutions (every page), optionally of one status."""
        requests: list[review_pb2.RetrospectiveRequest] = []
        token = ""
        while True:
            reply: review_pb2.ListRetrospectiveRequestsResponse = self.staff.call(
                "review",
                "ListRetrospectiveRequests",
                review_pb2.ListRetrospectiveRequestsRequest(
                    status=status, page=common_pb2.PageRequest(page_token=token)
                ),
            )
            requests.extend(reply.requests)
            token = reply.next_page_token
            if not token:
                return requests

    def decide_retrospective(
        self, request_id: str, *, approve: bool, valid_until_ms: int = 0, note: str = ""
    ) -> review_pb2.RetrospectiveRequest:
        """Four eyes: approve (until ``valid_until_ms``) or reject a colleague's request."""
        request = review_pb2.DecideRetrospectiveRequestRequest(
            request_id=request_id, approve=approve, note=note
        )
        if approve:
            request.valid_until.CopyFrom(_stamp(valid_until_ms))
        reply: review_pb2.DecideRetrospectiveRequestResponse = self.staff.call(
            "review", "DecideRetrospectiveRequest", request
        )
        return reply.request

    def retrospective_messages(self, request_id: str) -> list[review_pb2.QueueItem]:
        """The messages one's own approved request covers (every page)."""
        items: list[review_pb2.QueueItem] = []
        token = ""
        while True:
            reply: review_pb2.ListRetrospectiveMessagesResponse = self.staff.call(
                "review",
                "ListRetrospectiveMessages",
                review_pb2.ListRetrospectiveMessagesRequest(
                    request_id=request_id, page=common_pb2.PageRequest(page_token=token)
                ),
            )
            items.extend(reply.items)
            token = reply.next_page_token
            if not token:
                return items

    def decision_times(
        self, institution_id: str = "", since_ms: int = 0
    ) -> review_pb2.GetDecisionTimesResponse:
        """Time from the queue to a verdict per institution and screener since ``since_ms``."""
        request = review_pb2.GetDecisionTimesRequest(institution_id=institution_id)
        if since_ms:
            request.since.FromMilliseconds(since_ms)
        reply: review_pb2.GetDecisionTimesResponse = self.staff.call(
            "review", "GetDecisionTimes", request
        )
        return reply

    def watch_lists(
        self, institution_id: str, detainee_id: str = ""
    ) -> list[common_pb2.WatchListRecord]:
        """An institution's sealed watch lists: its own and its detainees' (or one's)."""
        reply: review_pb2.GetWatchListsResponse = self.staff.call(
            "review",
            "GetWatchLists",
            review_pb2.GetWatchListsRequest(institution_id=institution_id, detainee_id=detainee_id),
        )
        return list(reply.lists)

    def set_watch_list(
        self, institution_id: str, detainee_id: str, sealed: str, replaces_version: int
    ) -> review_pb2.SetWatchListResponse:
        """Replace a watch list with a sealed new version (logged with its digest)."""
        reply: review_pb2.SetWatchListResponse = self.staff.call(
            "review",
            "SetWatchList",
            review_pb2.SetWatchListRequest(
                institution_id=institution_id,
                detainee_id=detainee_id,
                sealed=sealed,
                replaces_version=replaces_version,
            ),
        )
        return reply


def _stamp(time_ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(time_ms)
    return stamp


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
        raise ProofError(_("the logged entry is not the grant for this message"))
    return head


def tree_size(head: log_pb2.SignedTreeHead) -> int:
    """The size a signed head commits to (unverified)."""
    return log_pb2.TreeHead.FromString(head.tree_head).tree_size
