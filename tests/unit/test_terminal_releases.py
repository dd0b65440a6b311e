"""The terminal delivers only what the log proves released (SPEC P12, docs/terminal.md).

``TerminalClient.check_releases`` splits a ListDeliveries page into proven and unproven
deliveries; here the page is built by hand, lies included, with no gateway involved.
"""

from __future__ import annotations

from sealpost.clients._grpc import Endpoint
from sealpost.clients.terminal.client import TerminalClient
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto import merkle
from sealpost.crypto._sodium import ed25519_public_from_seed, sha256
from sealpost.crypto.envelope import Part
from sealpost.crypto.keyrecords import DirectoryPin, VerifiedKey
from sealpost.crypto.keys import PrivateKeys, SigningSeed
from sealpost.crypto.logentry import LogAction, LogEvent, encode_event, sign_tree_head
from sealpost.v1 import envelope_pb2, keys_pb2, log_pb2, terminal_pb2

NOW_MS = 1_800_000_000_000
LOG_SEED = sha256(b"release test log key")
SENDER = PrivateKeys(b"\x01" * 32, b"\x02" * 32)
MAILBOX = VerifiedKey(
    id=b"\x03" * 32,
    purpose=keys_pb2.KEY_PURPOSE_MAILBOX,
    subject="d-1",
    encryption_key=SENDER.encryption_key,
    signing_key=SENDER.signing_key,
    not_before=0,
    not_after=NOW_MS // 1000 + 3600,
    issuer_key_id=b"\x04" * 32,
)
LOG_KEY = VerifiedKey(
    id=sha256(b"release test log key record"),
    purpose=keys_pb2.KEY_PURPOSE_LOG,
    subject="log",
    encryption_key=b"",
    signing_key=ed25519_public_from_seed(LOG_SEED),
    not_before=0,
    not_after=NOW_MS // 1000 + 3600,
    issuer_key_id=b"\x04" * 32,
)


def _envelope() -> tuple[bytes, envelope_pb2.Envelope]:
    envelope = crypto_envelope.seal_envelope(
        [Part("text/plain; charset=utf-8", b"hallo")],
        sender_keys=SENDER,
        sender_key_id=b"\x05" * 32,
        recipients=[MAILBOX],
        now_ms=NOW_MS,
    )
    return crypto_envelope.parse_header(envelope.header).message_id, envelope


def _event(action: LogAction, message_id: bytes) -> bytes:
    return encode_event(
        LogEvent(
            action=action,
            actor="terminal:t-1",
            time_ms=NOW_MS,
            subjects=[("message", message_id.hex()), ("detainee", "d-1")],
        )
    )


class Page:
    """Two messages in a signed log: the first released, the second released and escrowed."""

    def __init__(self) -> None:
        (self.first, self.first_envelope), (self.second, self.second_envelope) = (
            _envelope(),
            _envelope(),
        )
        self.leaves = [
            _event(LogAction.MESSAGE_ESCROWED, self.first),  # 0
            _event(LogAction.MESSAGE_RELEASED, self.first),  # 1
            _event(LogAction.MESSAGE_ESCROWED, self.second),  # 2
            _event(LogAction.MESSAGE_RELEASED, self.second),  # 3
        ]
        self.head = sign_tree_head(
            len(self.leaves),
            merkle.tree_hash(self.leaves),
            NOW_MS,
            LOG_KEY.id,
            SigningSeed(LOG_SEED),
        )

    def delivery(
        self, message_id: bytes, envelope: envelope_pb2.Envelope, index: int | None
    ) -> terminal_pb2.Delivery:
        delivery = terminal_pb2.Delivery(message_id=message_id, detainee_id="d-1")
        delivery.envelope.CopyFrom(envelope)
        if index is not None:
            delivery.release_entry.CopyFrom(log_pb2.LogEntry(index=index, leaf=self.leaves[index]))
            delivery.release_proof.CopyFrom(
                log_pb2.InclusionProof(
                    leaf_index=index,
                    tree_size=len(self.leaves),
                    path=merkle.inclusion_path(self.leaves, index),
                )
            )
        return delivery

    def reply(self, *deliveries: terminal_pb2.Delivery) -> terminal_pb2.ListDeliveriesResponse:
        reply = terminal_pb2.ListDeliveriesResponse(deliveries=list(deliveries))
        reply.tree_head.CopyFrom(self.head)
        return reply


def _terminal() -> TerminalClient:
    """A terminal that never connects: check_releases works on the page alone."""
    return TerminalClient(Endpoint("127.0.0.1:9", b""), DirectoryPin(b"\x00" * 32), b"", b"")


def _reasons(reply: terminal_pb2.ListDeliveriesResponse) -> tuple[list[bytes], list[str]]:
    listing = _terminal().check_releases(reply, LOG_KEY)
    return [d.message_id for d in listing.proven], [u.reason for u in listing.unproven]


def test_releases_the_log_proves_are_delivered() -> None:
    page = Page()
    reply = page.reply(
        page.delivery(page.first, page.first_envelope, 1),
        page.delivery(page.second, page.second_envelope, 3),
    )
    assert _reasons(reply) == ([page.first, page.second], [])


def test_a_delivery_without_a_release_entry_is_held_back() -> None:
    page = Page()
    proven, reasons = _reasons(page.reply(page.delivery(page.first, page.first_envelope, None)))
    assert proven == []
    assert reasons == ["the gateway gave no release entry from the transparency log"]


def test_another_messages_release_does_not_release_this_one() -> None:
    page = Page()
    proven, reasons = _reasons(page.reply(page.delivery(page.first, page.first_envelope, 3)))
    assert proven == []
    assert reasons == [
        "the release entry does not check out: the release entry is about another message"
    ]


def test_an_escrow_entry_is_no_release() -> None:
    page = Page()
    proven, reasons = _reasons(page.reply(page.delivery(page.first, page.first_envelope, 0)))
    assert proven == []
    assert len(reasons) == 1
    assert "records MESSAGE_ESCROWED, not MESSAGE_RELEASED" in reasons[0]


def test_a_proven_release_carrying_another_messages_envelope_is_held_back() -> None:
    page = Page()
    proven, reasons = _reasons(page.reply(page.delivery(page.first, page.second_envelope, 1)))
    assert proven == []
    assert reasons == ["the envelope is another message than the one listed"]


def test_a_release_entry_the_head_does_not_include_is_held_back() -> None:
    page = Page()
    delivery = page.delivery(page.first, page.first_envelope, 1)
    path = list(delivery.release_proof.path)
    path[0] = bytes([path[0][0] ^ 1]) + path[0][1:]
    del delivery.release_proof.path[:]
    delivery.release_proof.path.extend(path)
    proven, reasons = _reasons(page.reply(delivery))
    assert proven == []
    assert len(reasons) == 1
    assert reasons[0].startswith("the release entry does not check out: inclusion proof")


def test_a_head_the_log_key_did_not_sign_proves_nothing() -> None:
    page = Page()
    page.head = sign_tree_head(
        len(page.leaves),
        merkle.tree_hash(page.leaves),
        NOW_MS,
        LOG_KEY.id,
        SigningSeed(sha256(b"somebody else's key")),
    )
    reply = page.reply(page.delivery(page.first, page.first_envelope, 1))
    proven, reasons = _reasons(reply)
    assert proven == []
    assert len(reasons) == 1
    assert reasons[0].startswith("the tree head does not check out")
    reply.ClearField("tree_head")
    assert _reasons(reply) == ([], ["the gateway sent no signed tree head"])
