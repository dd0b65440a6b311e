"""Log leaves and signed tree heads: canonical bytes, refusals, signatures, receipts."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealpost.crypto import errors, logentry, merkle
from sealpost.crypto._sodium import ed25519_public_from_seed, ed25519_sign, sha256
from sealpost.crypto.errors import (
    CryptoError,
    FormatError,
    LimitError,
    ProofError,
    SignatureError,
    VersionTooNewError,
    VersionTooOldError,
)
from sealpost.crypto.keys import SigningSeed
from sealpost.crypto.logentry import (
    LogAction,
    LogEvent,
    Subject,
    decode_event,
    encode_event,
    sign_tree_head,
    verify_entry_inclusion,
    verify_head_consistency,
    verify_receipt,
    verify_tree_head,
)
from sealpost.v1 import log_pb2
from tests.conftest import REPO_ROOT

VECTOR_DIR = REPO_ROOT / "tests" / "vectors"
SEED = sha256(b"unit test log key")
PUBLIC = ed25519_public_from_seed(SEED)
KEY_ID = sha256(b"unit test log key record")
DIGEST = sha256(b"an envelope")
MESSAGE_ID = bytes.fromhex("0123456789abcdef0123456789abcdef")


def _accepted(
    message_id: bytes = MESSAGE_ID, digest: bytes = DIGEST, time_ms: int = 1_000
) -> LogEvent:
    return LogEvent(
        action=LogAction.MESSAGE_ACCEPTED,
        actor="relative:r-1",
        time_ms=time_ms,
        subjects=[("message", message_id.hex()), ("detainee", "d-7")],
        extra={"envelope_digest": digest.hex()},
    )


# --------------------------------------------------------------------------- encoding


def test_golden_encoding_byte_for_byte() -> None:
    event = LogEvent(
        action=LogAction.REVIEW_GRANTED,
        actor="staff:a",
        time_ms=0x0102030405060708,
        subjects=[("grant", "g1"), ("message", "ab")],
        extra={"z": "", "legal_basis": "order"},
    )
    expected = (
        b"\x01"  # version
        + b"\x02\x01"  # action REVIEW_GRANTED
        + b"\x01\x02\x03\x04\x05\x06\x07\x08"  # time_ms
        + b"\x00\x07staff:a"
        + b"\x02"  # two subjects, in the given order
        + b"\x00\x05grant\x00\x02g1"
        + b"\x00\x07message\x00\x02ab"
        + b"\x02"  # two extra fields, sorted by key
        + b"\x00\x0blegal_basis\x00\x05order"
        + b"\x00\x01z\x00\x00"
    )
    assert encode_event(event) == expected
    assert decode_event(expected) == event


def test_extra_fields_are_sorted_and_subjects_keep_their_order() -> None:
    event = LogEvent(
        action=LogAction.DETAINEE_TRANSFERRED,
        actor="staff:admin",
        time_ms=5,
        subjects=[("institution", "to"), ("institution", "from"), ("detainee", "d")],
        extra={"b": "2", "a": "1", "c": "3"},
    )
    assert list(event.extra) == ["a", "b", "c"]
    assert event.subjects == (
        Subject("institution", "to"),
        Subject("institution", "from"),
        Subject("detainee", "d"),
    )
    same = LogEvent(
        action=LogAction.DETAINEE_TRANSFERRED,
        actor="staff:admin",
        time_ms=5,
        subjects=(("institution", "to"), ("institution", "from"), ("detainee", "d")),
        extra={"c": "3", "a": "1", "b": "2"},
    )
    assert same == event
    assert hash(same) == hash(event)
    assert len({same, event}) == 1
    assert encode_event(same) == encode_event(event)


def test_every_action_has_a_stable_distinct_code() -> None:
    codes = [int(a) for a in LogAction]
    assert len(set(codes)) == len(codes)
    assert all(0 < c <= 0xFFFF for c in codes)
    assert int(LogAction.MESSAGE_ACCEPTED) == 0x0101
    assert int(LogAction.ADMIN_ACTION) == 0x0603


_text = st.text(alphabet=st.characters(blacklist_categories=["Cc", "Cs"]), min_size=1, max_size=20)
_name = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)


@st.composite
def events(draw: st.DrawFn) -> LogEvent:
    action = draw(st.sampled_from([a for a in LogAction if a is not LogAction.MESSAGE_ACCEPTED]))
    subjects = draw(st.lists(st.tuples(_name, _text), max_size=5, unique=True))
    subjects = [(k, v) for k, v in subjects if k != "message"]
    extra = draw(st.dictionaries(_name, st.text(max_size=30).filter(str.isprintable), max_size=5))
    return LogEvent(
        action=action,
        actor=draw(_text),
        time_ms=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        subjects=subjects,
        extra=extra,
    )


@settings(max_examples=150, deadline=None)
@given(events())
def test_encoding_round_trips_canonically(event: LogEvent) -> None:
    data = encode_event(event)
    assert data[0] == logentry.LOG_EVENT_VERSION
    decoded = decode_event(data)
    assert decoded == event
    assert encode_event(decoded) == data
    assert len(data) <= logentry.MAX_LEAF_BYTES


@settings(max_examples=150, deadline=None)
@given(events(), st.data())
def test_any_changed_byte_is_refused_or_is_another_canonical_event(
    event: LogEvent, data: st.DataObject
) -> None:
    encoded = bytearray(encode_event(event))
    position = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    encoded[position] ^= data.draw(st.integers(min_value=1, max_value=255))
    try:
        other = decode_event(bytes(encoded))
    except (FormatError, LimitError):
        return
    assert encode_event(other) == bytes(encoded)
    assert other != event


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_decoder(data: bytes) -> None:
    try:
        event = decode_event(data)
    except CryptoError:
        return
    assert encode_event(event) == data


def test_every_truncation_is_refused() -> None:
    data = encode_event(_accepted())
    for cut in range(len(data)):
        with pytest.raises(FormatError):
            decode_event(data[:cut])


def test_versions_are_refused_with_distinct_errors() -> None:
    data = encode_event(LogEvent(action=LogAction.INSTITUTION_CREATED, actor="x", time_ms=1))
    with pytest.raises(VersionTooOldError):
        decode_event(b"\x00" + data[1:])
    for future in (2, 0x7F, 0xFF):
        with pytest.raises(VersionTooNewError):
            decode_event(bytes([future]) + data[1:])
    with pytest.raises(VersionTooOldError):
        LogEvent(action=LogAction.INSTITUTION_CREATED, actor="x", time_ms=1, version=0)
    with pytest.raises(VersionTooNewError):
        LogEvent(action=LogAction.INSTITUTION_CREATED, actor="x", time_ms=1, version=2)
    assert issubclass(VersionTooOldError, errors.UnsupportedVersionError)


def _raw(
    actor: bytes = b"a",
    subjects: list[tuple[bytes, bytes]] | None = None,
    extra: list[tuple[bytes, bytes]] | None = None,
    action: int = LogAction.INSTITUTION_CREATED,
) -> bytes:
    """Hand-built leaf bytes, so that the decoder meets what encode_event would never write."""
    out = struct.pack(">BHQ", 1, action, 7) + struct.pack(">H", len(actor)) + actor
    out += bytes([len(subjects or [])])
    for kind, id_ in subjects or []:
        out += struct.pack(">H", len(kind)) + kind + struct.pack(">H", len(id_)) + id_
    out += bytes([len(extra or [])])
    for key, value in extra or []:
        out += struct.pack(">H", len(key)) + key + struct.pack(">H", len(value)) + value
    return out


def test_hand_built_reference_decodes() -> None:
    event = decode_event(_raw(subjects=[(b"institution", b"i")], extra=[(b"a", b"1"), (b"b", b"")]))
    assert event.extra == {"a": "1", "b": ""}


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (b"", FormatError, "empty"),
        (_raw() + b"\x00", FormatError, "trailing"),
        (_raw(extra=[(b"b", b"1"), (b"a", b"2")]), FormatError, "increasing"),
        (_raw(extra=[(b"a", b"1"), (b"a", b"2")]), FormatError, "increasing"),
        (_raw(subjects=[(b"d", b"1"), (b"d", b"1")]), FormatError, "twice"),
        (_raw(actor=b""), FormatError, "actor is empty"),
        (_raw(actor=b"\xc0\x80"), FormatError, "UTF-8"),  # overlong NUL
        (_raw(actor=b"\xed\xa0\x80"), FormatError, "UTF-8"),  # a UTF-16 surrogate
        (_raw(actor=b"a\x00b"), FormatError, "control"),
        (_raw(actor=b"a\xc2\x85"), FormatError, "control"),  # C1 NEXT LINE
        (_raw(actor=b"x" * 129), LimitError, "actor"),
        (_raw(subjects=[(b"Kind", b"1")]), FormatError, "lower-case"),
        (_raw(subjects=[(b"", b"1")]), FormatError, "empty"),
        (_raw(subjects=[(b"k", b"")]), FormatError, "empty"),
        (_raw(subjects=[(b"k", b"x" * 129)]), LimitError, "subject id"),
        (_raw(subjects=[(b"k" * 33, b"1")]), LimitError, "subject kind"),
        (_raw(subjects=[(b"message", b"ABCD")]), FormatError, "hex"),
        (_raw(subjects=[(b"message", b"abc")]), FormatError, "hex"),
        (_raw(subjects=[(b"k", b"%d" % i) for i in range(17)]), LimitError, "subjects"),
        (_raw(extra=[(b"k%02d" % i, b"") for i in range(17)]), LimitError, "extra fields"),
        (_raw(extra=[(b"k", b"v" * 257)]), LimitError, "extra field k"),
        (_raw(extra=[(b"bad-key", b"v")]), FormatError, "lower-case"),
        (_raw(extra=[(b"k", b"tab\there")]), FormatError, "control"),
        (_raw(action=0), FormatError, "unknown log action"),
        (_raw(action=0x0108), FormatError, "unknown log action"),
        (_raw(action=LogAction.MESSAGE_ACCEPTED), FormatError, "message subject"),
        (
            _raw(
                action=LogAction.MESSAGE_ACCEPTED,
                subjects=[(b"message", b"ab")],
                extra=[(b"envelope_digest", b"AB" * 32)],
            ),
            FormatError,
            "envelope_digest",
        ),
        (b"\x01" + b"\x00" * logentry.MAX_LEAF_BYTES, LimitError, "at most"),
        (_raw()[:-1] + b"\x01" + b"\x00\x01a\x00\x10abc", FormatError, "truncated"),
        (_raw()[:-1] + b"\x01" + b"\x00\x01a\xff\xff", LimitError, "65535 bytes"),
    ],
)
def test_non_canonical_or_invalid_leaves_are_refused(
    data: bytes, error: type[CryptoError], match: str
) -> None:
    with pytest.raises(error, match=match):
        decode_event(data)


def test_invalid_events_cannot_be_constructed() -> None:
    base: dict[str, Any] = {"action": LogAction.CONTACT_APPROVED, "actor": "staff:x", "time_ms": 1}
    not_text: Any = 5
    with pytest.raises(FormatError, match="pair of strings"):
        LogEvent(**base, subjects=[("contact", not_text)])
    with pytest.raises(FormatError, match="pair of strings"):
        LogEvent(**base, subjects=[("contact", "c", "extra")])  # type: ignore[list-item]
    with pytest.raises(FormatError, match="pair of strings"):
        LogEvent(**base, extra={"count": not_text})
    with pytest.raises(FormatError, match="integer"):
        LogEvent(action=LogAction.CONTACT_APPROVED, actor="x", time_ms=True)
    with pytest.raises(FormatError, match="integer"):
        LogEvent(action=LogAction.CONTACT_APPROVED, actor="x", time_ms=1, version=not_text + 0.5)
    with pytest.raises(FormatError, match="actor must be a string"):
        LogEvent(action=LogAction.CONTACT_APPROVED, actor=not_text, time_ms=1)
    with pytest.raises(LimitError):
        LogEvent(action=LogAction.CONTACT_APPROVED, actor="x", time_ms=-1)
    with pytest.raises(LimitError):
        LogEvent(action=LogAction.CONTACT_APPROVED, actor="x", time_ms=2**63)
    with pytest.raises(FormatError, match="unknown log action"):
        LogEvent(action=0x9999, actor="x", time_ms=1)  # type: ignore[arg-type]
    with pytest.raises(FormatError, match="Unicode"):
        LogEvent(action=LogAction.CONTACT_APPROVED, actor="\ud800", time_ms=1)
    with pytest.raises(FormatError, match="envelope_digest"):
        LogEvent(
            action=LogAction.MESSAGE_ACCEPTED,
            actor="relative:r",
            time_ms=1,
            subjects=[("message", "ab")],
        )
    event = LogEvent(**base)
    with pytest.raises(AttributeError):
        event.actor = "someone else"  # type: ignore[misc]
    with pytest.raises(TypeError):
        event.extra["added"] = "later"  # type: ignore[index]


# --------------------------------------------------------------------------- tree heads


def _root(size: int) -> bytes:
    return merkle.tree_hash([b"%d" % i for i in range(size)])


def test_tree_head_round_trip() -> None:
    sth = sign_tree_head(8, _root(8), 1_700_000_000_000, KEY_ID, SigningSeed(SEED))
    head = verify_tree_head(sth, PUBLIC, KEY_ID)
    assert (head.version, head.tree_size, head.root_hash) == (1, 8, _root(8))
    assert (head.timestamp_ms, head.log_key_id) == (1_700_000_000_000, KEY_ID)
    # Deterministic: the same head gives the same bytes and signature.
    assert sign_tree_head(8, _root(8), 1_700_000_000_000, KEY_ID, SigningSeed(SEED)) == sth
    parsed = log_pb2.TreeHead.FromString(sth.tree_head)
    assert parsed.root_hash == _root(8)
    # The signature is over the framed, domain-separated digest, not over the bare bytes.
    domain = b"sealpost/v1/log/tree-head"
    assert domain == logentry.TREE_HEAD_SIGNATURE_DOMAIN
    framed = struct.pack(">Q", len(domain)) + domain + struct.pack(">Q", len(sth.tree_head))
    digest = sha256(framed + sth.tree_head)
    assert logentry.tree_head_signing_digest(sth.tree_head) == digest
    assert sth.signature == ed25519_sign(SEED, digest)
    empty = verify_tree_head(
        sign_tree_head(0, merkle.EMPTY_ROOT, 0, KEY_ID, SigningSeed(SEED)), PUBLIC, KEY_ID
    )
    assert (empty.tree_size, empty.root_hash) == (0, merkle.EMPTY_ROOT)


def _resigned(**fields: Any) -> log_pb2.SignedTreeHead:
    values: dict[str, Any] = {
        "version": 1,
        "tree_size": 8,
        "root_hash": _root(8),
        "timestamp_ms": 5,
        "log_key_id": KEY_ID,
    }
    values.update(fields)
    body = log_pb2.TreeHead(**values).SerializeToString(deterministic=True)
    return log_pb2.SignedTreeHead(
        tree_head=body, signature=ed25519_sign(SEED, logentry.tree_head_signing_digest(body))
    )


def test_tree_head_refusals() -> None:
    good = sign_tree_head(8, _root(8), 5, KEY_ID, SigningSeed(SEED))
    assert verify_tree_head(_resigned(), PUBLIC, KEY_ID).tree_size == 8

    bad_sig = bytearray(good.signature)
    bad_sig[10] ^= 1
    with pytest.raises(SignatureError):
        verify_tree_head(
            log_pb2.SignedTreeHead(tree_head=good.tree_head, signature=bytes(bad_sig)),
            PUBLIC,
            KEY_ID,
        )
    with pytest.raises(SignatureError):
        verify_tree_head(good, ed25519_public_from_seed(sha256(b"other")), KEY_ID)
    with pytest.raises(SignatureError, match="another log key"):
        verify_tree_head(good, PUBLIC, sha256(b"other id"))
    with pytest.raises(SignatureError):
        verify_tree_head(good, PUBLIC[:31], KEY_ID)
    grown = log_pb2.SignedTreeHead(
        tree_head=_resigned(tree_size=9).tree_head, signature=good.signature
    )
    with pytest.raises(SignatureError):
        verify_tree_head(grown, PUBLIC, KEY_ID)
    bare = log_pb2.SignedTreeHead(
        tree_head=good.tree_head, signature=ed25519_sign(SEED, good.tree_head)
    )
    with pytest.raises(SignatureError):
        verify_tree_head(bare, PUBLIC, KEY_ID)
    with pytest.raises(VersionTooOldError):
        verify_tree_head(_resigned(version=0), PUBLIC, KEY_ID)
    with pytest.raises(VersionTooNewError):
        verify_tree_head(_resigned(version=2), PUBLIC, KEY_ID)
    with pytest.raises(FormatError, match="root hash"):
        verify_tree_head(_resigned(root_hash=b"\x00" * 31), PUBLIC, KEY_ID)
    with pytest.raises(FormatError, match="timestamp"):
        verify_tree_head(_resigned(timestamp_ms=-1), PUBLIC, KEY_ID)

    def signed(body: bytes) -> log_pb2.SignedTreeHead:
        sig = ed25519_sign(SEED, logentry.tree_head_signing_digest(body))
        return log_pb2.SignedTreeHead(tree_head=body, signature=sig)

    with pytest.raises(FormatError, match="canonical"):
        verify_tree_head(signed(good.tree_head + b"\x30\x01"), PUBLIC, KEY_ID)  # unknown field
    with pytest.raises(FormatError, match="canonical"):
        verify_tree_head(signed(good.tree_head[2:] + good.tree_head[:2]), PUBLIC, KEY_ID)
    with pytest.raises(FormatError, match="canonical"):
        # version 1 as a two-byte (non-minimal) varint
        verify_tree_head(signed(b"\x08\x81\x00" + good.tree_head[2:]), PUBLIC, KEY_ID)
    with pytest.raises(FormatError, match="parse"):
        verify_tree_head(signed(b"\xff\xff\xff"), PUBLIC, KEY_ID)


def test_signing_refuses_bad_fields() -> None:
    with pytest.raises(FormatError):
        sign_tree_head(1, b"short", 5, KEY_ID, SigningSeed(SEED))
    with pytest.raises(FormatError):
        sign_tree_head(1, _root(1), 5, b"id", SigningSeed(SEED))
    with pytest.raises(FormatError):
        sign_tree_head(1, _root(1), -5, KEY_ID, SigningSeed(SEED))
    with pytest.raises(FormatError):
        sign_tree_head(2**64, _root(1), 5, KEY_ID, SigningSeed(SEED))
    with pytest.raises(FormatError):
        sign_tree_head(1, _root(1), 5, KEY_ID, SigningSeed(SEED[:16]))


# --------------------------------------------------------------------------- entries, receipts


def _log_with_acceptance(
    position: int = 5, total: int = 9
) -> tuple[merkle.MerkleTree, bytes, logentry.VerifiedTreeHead]:
    tree = merkle.MerkleTree(merkle.MemoryNodeStore())
    other = [
        encode_event(LogEvent(action=LogAction.MESSAGE_DELIVERED, actor="terminal:t", time_ms=i))
        for i in range(total)
    ]
    leaf = encode_event(_accepted())
    tree.append_many([*other[:position], leaf, *other[position + 1 :]])
    sth = sign_tree_head(tree.size, tree.root(), 77, KEY_ID, SigningSeed(SEED))
    return tree, leaf, verify_tree_head(sth, PUBLIC, KEY_ID)


def _proof(tree: merkle.MerkleTree, index: int, size: int) -> log_pb2.InclusionProof:
    return log_pb2.InclusionProof(
        leaf_index=index, tree_size=size, path=tree.inclusion_proof(index, size)
    )


def test_entry_inclusion() -> None:
    tree, leaf, head = _log_with_acceptance()
    verify_entry_inclusion(leaf, 5, _proof(tree, 5, 9), head)
    with pytest.raises(ProofError, match="for leaf 5, the entry is 4"):
        verify_entry_inclusion(leaf, 4, _proof(tree, 5, 9), head)
    with pytest.raises(ProofError, match="tree size 8, the head has 9"):
        verify_entry_inclusion(leaf, 5, _proof(tree, 5, 8), head)
    with pytest.raises(ProofError):
        verify_entry_inclusion(leaf + b"\x00", 5, _proof(tree, 5, 9), head)
    with pytest.raises(ProofError):
        verify_entry_inclusion(leaf, 4, _proof(tree, 4, 9), head)
    # A proof for another size does not pass as one for the head's size.
    stale = _proof(tree, 5, 8)
    stale.tree_size = 9
    with pytest.raises(ProofError):
        verify_entry_inclusion(leaf, 5, stale, head)


def test_head_consistency() -> None:
    tree, _, head9 = _log_with_acceptance()
    head6 = verify_tree_head(
        sign_tree_head(6, tree.root(6), 70, KEY_ID, SigningSeed(SEED)), PUBLIC, KEY_ID
    )
    proof = log_pb2.ConsistencyProof(first_size=6, second_size=9, path=tree.consistency_proof(6, 9))
    verify_head_consistency(head6, head9, proof)
    with pytest.raises(ProofError, match="sizes 6 -> 9"):
        verify_head_consistency(head9, head9, proof)
    forged = verify_tree_head(
        sign_tree_head(6, _root(6), 70, KEY_ID, SigningSeed(SEED)), PUBLIC, KEY_ID
    )
    with pytest.raises(ProofError):
        verify_head_consistency(forged, head9, proof)


def _released(
    message_id: bytes = MESSAGE_ID, action: LogAction = LogAction.MESSAGE_RELEASED
) -> bytes:
    return encode_event(
        LogEvent(
            action=action,
            actor="terminal:t-1",
            time_ms=2_000,
            subjects=[("message", message_id.hex()), ("detainee", "d-7")],
        )
    )


def _log_of(
    leaves: list[bytes],
) -> tuple[merkle.MerkleTree, logentry.VerifiedTreeHead]:
    tree = merkle.MerkleTree(merkle.MemoryNodeStore())
    tree.append_many(leaves)
    sth = sign_tree_head(tree.size, tree.root(), 88, KEY_ID, SigningSeed(SEED))
    return tree, verify_tree_head(sth, PUBLIC, KEY_ID)


def test_a_release_is_proven_only_by_its_own_release_entry() -> None:
    """What a terminal checks before it hands a message over (SPEC P12)."""
    other_id = bytes.fromhex("ffeeddccbbaa99887766554433221100")
    leaves = [
        encode_event(_accepted()),
        _released(action=LogAction.MESSAGE_ESCROWED),
        _released(other_id),
        _released(),
    ]
    tree, head = _log_of(leaves)

    def check(index: int, message_id: bytes = MESSAGE_ID) -> LogEvent:
        entry = log_pb2.LogEntry(index=index, leaf=leaves[index])
        return logentry.verify_release(entry, _proof(tree, index, 4), head, message_id)

    event = check(3)
    assert (event.action, event.message_id()) == (LogAction.MESSAGE_RELEASED, MESSAGE_ID.hex())
    # The message's acceptance or escrow, proven in the log, is no release.
    with pytest.raises(ProofError, match="records MESSAGE_ACCEPTED, not MESSAGE_RELEASED"):
        check(0)
    with pytest.raises(ProofError, match="records MESSAGE_ESCROWED, not MESSAGE_RELEASED"):
        check(1)
    # Another message's release does not release this one.
    with pytest.raises(ProofError, match="the release entry is about another message"):
        check(2)
    assert check(2, other_id).message_id() == other_id.hex()
    # An entry the head does not include proves nothing.
    forged = log_pb2.LogEntry(
        index=3, leaf=_released(action=LogAction.MESSAGE_RELEASED)[:-1] + b"x"
    )
    with pytest.raises(CryptoError):
        logentry.verify_release(forged, _proof(tree, 3, 4), head, MESSAGE_ID)


def _receipt(tree: merkle.MerkleTree, leaf: bytes, index: int = 5) -> log_pb2.Receipt:
    return log_pb2.Receipt(
        message_id=MESSAGE_ID,
        envelope_digest=DIGEST,
        accepted_at_ms=1_000,
        entry=log_pb2.LogEntry(index=index, leaf=leaf),
        tree_head=sign_tree_head(tree.size, tree.root(), 77, KEY_ID, SigningSeed(SEED)),
        inclusion_proof=_proof(tree, index, tree.size),
    )


def _check(receipt: log_pb2.Receipt, **overrides: Any) -> None:
    arguments: dict[str, Any] = {
        "log_public_key": PUBLIC,
        "log_key_id": KEY_ID,
        "message_id": MESSAGE_ID,
        "envelope_digest": DIGEST,
    }
    arguments.update(overrides)
    verify_receipt(receipt, **arguments)


def test_receipt_proves_acceptance_of_the_senders_own_message() -> None:
    tree, leaf, _ = _log_with_acceptance()
    event, head = verify_receipt(
        _receipt(tree, leaf),
        log_public_key=PUBLIC,
        log_key_id=KEY_ID,
        message_id=MESSAGE_ID,
        envelope_digest=DIGEST,
    )
    assert event == _accepted()
    assert head.tree_size == 9


def test_receipt_refusals() -> None:
    tree, leaf, _ = _log_with_acceptance()
    good = _receipt(tree, leaf)
    with pytest.raises(ProofError, match="another message"):
        _check(good, message_id=bytes(16))
    with pytest.raises(ProofError, match="envelope digest"):
        _check(good, envelope_digest=sha256(b"another envelope"))
    with pytest.raises(SignatureError):
        _check(good, log_public_key=ed25519_public_from_seed(sha256(b"other")))

    no_head = log_pb2.Receipt()
    no_head.CopyFrom(good)
    no_head.ClearField("tree_head")
    with pytest.raises(ProofError, match="no signed tree head"):
        _check(no_head)
    no_entry = log_pb2.Receipt()
    no_entry.CopyFrom(good)
    no_entry.ClearField("entry")
    with pytest.raises(ProofError, match="no log entry"):
        _check(no_entry)

    moved = log_pb2.Receipt()
    moved.CopyFrom(good)
    moved.entry.index = 4
    with pytest.raises(ProofError):
        _check(moved)

    late = log_pb2.Receipt()
    late.CopyFrom(good)
    late.accepted_at_ms = 2_000
    with pytest.raises(ProofError, match="acceptance time"):
        _check(late)

    # A genuine log entry, included and signed, but about a different message or action.
    for event in (
        _accepted(message_id=bytes(16)),
        _accepted(digest=sha256(b"another envelope")),
        LogEvent(
            action=LogAction.MESSAGE_DELIVERED,
            actor="terminal:t",
            time_ms=1_000,
            subjects=[("message", MESSAGE_ID.hex())],
        ),
    ):
        swapped = merkle.MerkleTree(merkle.MemoryNodeStore())
        swapped.append_many([encode_event(event)])
        with pytest.raises(ProofError, match="log entry"):
            _check(_receipt(swapped, encode_event(event), index=0))


# --------------------------------------------------------------------------- vectors


def _vectors(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((VECTOR_DIR / name).read_text(encoding="utf-8"))
    return document


def test_leaf_vectors() -> None:
    document = _vectors("merkle-leaves.json")
    assert document["actions"] == {a.name: int(a) for a in LogAction}
    for case in document["valid"]:
        data = bytes.fromhex(case["encoding"])
        event = decode_event(data)
        fields = case["event"]
        assert event.action.name == fields["action"]
        assert (event.actor, event.time_ms) == (fields["actor"], fields["time_ms"])
        assert [list(s) for s in event.subjects] == fields["subjects"]
        assert dict(event.extra) == fields["extra"]
        assert encode_event(event) == data
        assert sha256(b"\x00" + data).hex() == case["leaf_hash"]
    assert len(document["invalid"]) >= 15
    for case in document["invalid"]:
        error = getattr(errors, case["error"])
        with pytest.raises(error):
            decode_event(bytes.fromhex(case["encoding"]))


def test_tree_head_vectors() -> None:
    document = _vectors("merkle-tree-heads.json")
    public = bytes.fromhex(document["log_public_key"])
    key_id = bytes.fromhex(document["log_key_id"])
    assert ed25519_public_from_seed(bytes.fromhex(document["log_seed"])) == public
    assert document["signature_domain"].encode("ascii") == logentry.TREE_HEAD_SIGNATURE_DOMAIN
    for case in document["valid"]:
        sth = log_pb2.SignedTreeHead(
            tree_head=bytes.fromhex(case["tree_head"]), signature=bytes.fromhex(case["signature"])
        )
        head = verify_tree_head(sth, public, key_id)
        assert head.tree_size == case["tree_size"]
        assert head.root_hash.hex() == case["root"]
        assert logentry.tree_head_signing_digest(sth.tree_head).hex() == case["signing_digest"]
    for case in document["invalid"]:
        sth = log_pb2.SignedTreeHead(
            tree_head=bytes.fromhex(case["tree_head"]), signature=bytes.fromhex(case["signature"])
        )
        with pytest.raises(getattr(errors, case["error"])):
            verify_tree_head(sth, public, key_id)
