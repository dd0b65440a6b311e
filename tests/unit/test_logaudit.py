"""The auditor's log check (crypto/logaudit.py): every tampering case found, at the right index."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealpost.crypto import _sodium, logaudit, merkle
from sealpost.crypto.errors import ProofError
from sealpost.crypto.keys import SigningSeed
from sealpost.crypto.logaudit import (
    FindingKind,
    Location,
    LogAudit,
    LogAuditReport,
    StoredHead,
    TrustedLogKey,
    audit_log,
    check_leaf_encodings,
    verify_log,
)
from sealpost.crypto.logentry import LogAction, LogEvent, encode_event, sign_tree_head
from sealpost.v1 import log_pb2

SEED = bytes(range(32))
KEY_ID = _sodium.sha256(b"test log key record")
KEY = TrustedLogKey(KEY_ID, _sodium.ed25519_public_from_seed(SEED))
OTHER_SEED = bytes(range(1, 33))
T0 = 1_760_000_000_000
SIZES = (4, 9, 16, 23, 30)


def leaf(i: int, actor: str = "staff:alice") -> bytes:
    return encode_event(
        LogEvent(
            action=LogAction.MESSAGE_QUEUED if i % 2 else LogAction.MESSAGE_ACCEPTED,
            actor=actor,
            time_ms=T0 + i,
            subjects=[("message", f"{i:032x}")],
            extra={"envelope_digest": f"{i:064x}"} if i % 2 == 0 else {},
        )
    )


def head(
    leaves: Sequence[bytes], size: int, when: int, seed: bytes = SEED, key_id: bytes = KEY_ID
) -> bytes:
    root = merkle.tree_hash(list(leaves[:size]))
    return sign_tree_head(size, root, when, key_id, SigningSeed(seed)).SerializeToString(
        deterministic=True
    )


@dataclass
class Log:
    leaves: list[bytes]
    heads: list[StoredHead]
    nodes: merkle.MemoryNodeStore

    def audit(self, *, hints: bool = True) -> LogAuditReport:
        return audit_log(self.leaves, self.heads, [KEY], node_hints=self.nodes if hints else None)


def make_log(count: int = 30, sizes: Sequence[int] = SIZES) -> Log:
    leaves = [leaf(i) for i in range(count)]
    heads = [
        StoredHead(row_id=n + 1, signed=head(leaves, size, T0 + 1000 * (n + 1)))
        for n, size in enumerate(sizes)
    ]
    nodes = merkle.MemoryNodeStore()
    merkle.MerkleTree(nodes).append_many(leaves)
    return Log(leaves, heads, nodes)


def only(report: LogAuditReport, kind: FindingKind) -> logaudit.Finding:
    matches = [f for f in report.findings if f.kind is kind]
    assert len(matches) == 1, report.findings
    return matches[0]


# --------------------------------------------------------------------------- clean


def test_a_clean_log_passes() -> None:
    log = make_log()
    report = log.audit()
    assert report.ok, report.findings
    assert report.first is None
    assert report.first_bad_index is None
    assert (report.leaf_count, report.head_count, report.valid_head_count) == (30, 5, 5)
    assert report.attested_size == 30
    assert report.notes == ()
    assert report.attested_heads == tuple((s, T0 + 1000 * (n + 1)) for n, s in enumerate(SIZES))
    verify_log(log.leaves, log.heads, [KEY], node_hints=log.nodes)


def test_leaves_after_the_last_head_are_a_note_not_a_failure() -> None:
    log = make_log(count=34)
    report = log.audit()
    assert report.ok
    assert report.notes == ("leaves 30..33 are not covered by a signed head yet",)


def test_plain_signed_heads_are_accepted_in_order() -> None:
    log = make_log()
    plain = [log_pb2.SignedTreeHead.FromString(h.signed) for h in log.heads]
    assert audit_log(log.leaves, plain, [KEY]).ok


def test_an_empty_log_with_an_empty_head_passes() -> None:
    signed = sign_tree_head(0, merkle.EMPTY_ROOT, T0, KEY_ID, SigningSeed(SEED))
    assert audit_log([], [signed], [KEY]).ok


def test_no_signed_head_is_a_finding() -> None:
    report = audit_log([leaf(0)], [], [KEY])
    assert [f.kind for f in report.findings] == [FindingKind.NO_SIGNED_HEAD]


# --------------------------------------------------------------------------- leaves


def test_modified_leaf_is_located_exactly() -> None:
    log = make_log()
    log.leaves[11] = leaf(11, actor="staff:mallory")
    report = log.audit()
    first = report.first
    assert first is not None
    assert first.kind is FindingKind.LEAF_MODIFIED
    assert (first.start, first.exact, first.located_by) == (11, True, Location.AUTHENTICATED_NODES)
    # The first head that fails is size 16 (row 3); the largest one (row 5) located the leaf.
    assert first.head_ids == (3, 5)
    assert report.first_bad_index == 11
    assert report.attested_size == 9
    assert first.where() == "leaf 11"


def test_modified_leaf_without_the_node_cache_is_bounded_by_head_sizes() -> None:
    log = make_log()
    log.leaves[11] = leaf(11, actor="staff:mallory")
    first = log.audit(hints=False).first
    assert first is not None
    assert first.kind is FindingKind.LEAVES_CHANGED
    assert (first.start, first.end, first.exact) == (9, 16, False)
    assert first.located_by is Location.HEAD_SIZES
    assert first.where() == "leaves 9..15"


def test_malformed_leaf_is_located_by_decoding() -> None:
    log = make_log()
    log.leaves[6] = log.leaves[6] + b"\x00"  # trailing byte: not canonical
    report = log.audit()
    malformed = only(report, FindingKind.LEAF_MALFORMED)
    assert (malformed.start, malformed.exact, malformed.located_by) == (6, True, Location.DECODING)
    assert "trailing" in malformed.detail
    assert only(report, FindingKind.LEAF_MODIFIED).start == 6
    assert report.first_bad_index == 6


def test_deleted_and_renumbered_leaf_is_located() -> None:
    log = make_log()
    del log.leaves[5]
    report = log.audit()
    first = report.first
    assert first is not None
    assert first.kind is FindingKind.LEAF_DELETED
    assert (first.start, first.exact) == (5, True)


def test_deleted_row_leaves_a_gap_in_the_indices() -> None:
    log = make_log()
    audit = LogAudit([KEY])
    audit.add_leaves([(i, b) for i, b in enumerate(log.leaves) if i != 5])
    report = audit.finish(log.heads, log.nodes)
    missing = only(report, FindingKind.LEAF_MISSING)
    assert (missing.start, missing.end, missing.located_by) == (5, 6, Location.STORED_INDICES)
    assert only(report, FindingKind.LEAF_DELETED).start == 5
    assert report.first_bad_index == 5


def test_deleting_the_last_leaf_a_head_covers_is_still_a_deletion() -> None:
    log = make_log()
    del log.leaves[15]  # head 3 has size 16: its last leaf goes, head 4 authenticates leaf 16
    first = log.audit().first
    assert first is not None
    assert (first.kind, first.start) == (FindingKind.LEAF_DELETED, 15)


def test_inserted_leaf_is_located() -> None:
    log = make_log()
    log.leaves.insert(7, leaf(99, actor="staff:mallory"))
    first = log.audit().first
    assert first is not None
    assert first.kind is FindingKind.LEAF_INSERTED
    assert (first.start, first.exact) == (7, True)


@pytest.mark.parametrize(("a", "b"), [(3, 12), (20, 21), (0, 29)])
def test_reordered_leaves_are_located(a: int, b: int) -> None:
    log = make_log()
    log.leaves[a], log.leaves[b] = log.leaves[b], log.leaves[a]
    first = log.audit().first
    assert first is not None
    assert first.kind is FindingKind.LEAVES_REORDERED
    assert (first.start, first.other_indices) == (a, (b,))


def test_two_modified_leaves_are_both_named() -> None:
    log = make_log()
    log.leaves[2] = leaf(2, actor="staff:x")
    log.leaves[7] = leaf(7, actor="staff:y")
    first = log.audit().first
    assert first is not None
    assert first.kind is FindingKind.LEAVES_CHANGED
    assert (first.start, first.other_indices) == (2, (7,))


def test_truncated_log_is_located_at_the_first_missing_leaf() -> None:
    log = make_log()
    del log.leaves[25:]
    first = log.audit().first
    assert first is not None
    assert first.kind is FindingKind.LOG_TRUNCATED
    assert (first.start, first.exact) == (25, True)
    assert first.head_ids == (5,)
    # Without the cache, leaves 23 and 24 (after the last matching head) are not attested.
    bounded = log.audit(hints=False).first
    assert bounded is not None
    assert bounded.kind is FindingKind.LOG_TRUNCATED
    assert (bounded.start, bounded.end, bounded.exact) == (23, 30, False)
    assert "leaves 25..29 were removed" in bounded.detail


def test_truncated_log_at_a_head_boundary_is_exact_without_the_cache() -> None:
    log = make_log()
    del log.leaves[23:]
    first = log.audit(hints=False).first
    assert first is not None
    assert (first.kind, first.start, first.exact) == (FindingKind.LOG_TRUNCATED, 23, True)
    assert first.located_by is Location.LEAF_COUNT


def test_a_forged_node_cache_makes_the_location_coarser_never_wrong() -> None:
    log = make_log()
    log.leaves[11] = leaf(11, actor="staff:mallory")
    forged = merkle.MemoryNodeStore()  # the cache recomputed over the tampered leaves
    merkle.MerkleTree(forged).append_many(log.leaves)
    report = audit_log(log.leaves, log.heads, [KEY], node_hints=forged)
    first = report.first
    assert first is not None
    assert first.kind is FindingKind.LEAVES_CHANGED
    assert first.start is not None
    assert first.end is not None
    assert first.start <= 11 < first.end
    assert not first.exact


def test_a_partly_missing_node_cache_still_bounds_the_change() -> None:
    log = make_log()
    log.leaves[11] = leaf(11, actor="staff:mallory")

    class Sparse(merkle.MemoryNodeStore):
        def get_many(self, keys: Sequence[merkle.NodeKey]) -> list[bytes]:
            if any(level == 0 for level, _ in keys):
                raise KeyError("level 0 is not kept")
            return super().get_many(keys)

    sparse = Sparse()
    merkle.MerkleTree(sparse).append_many(make_log().leaves)
    first = audit_log(log.leaves, log.heads, [KEY], node_hints=sparse).first
    assert first is not None
    assert (first.start, first.end) == (10, 12)  # the authenticated pair above leaves 10, 11


@settings(max_examples=30, deadline=None)
@given(
    count=st.integers(min_value=2, max_value=80),
    data=st.data(),
)
def test_any_single_modification_is_found_exactly(count: int, data: st.DataObject) -> None:
    sizes = sorted(
        set(data.draw(st.lists(st.integers(1, count), min_size=1, max_size=5))) | {count}
    )
    log = make_log(count, sizes)
    index = data.draw(st.integers(0, count - 1))
    log.leaves[index] = leaf(index, actor="staff:mallory")
    first = log.audit().first
    assert first is not None
    assert (first.kind, first.start, first.exact) == (FindingKind.LEAF_MODIFIED, index, True)
    bounded = log.audit(hints=False).first
    assert bounded is not None
    assert bounded.start is not None
    assert bounded.end is not None
    assert bounded.start <= index < bounded.end


# --------------------------------------------------------------------------- heads


def _replace(log: Log, position: int, signed: bytes) -> None:
    old = log.heads[position]
    log.heads[position] = StoredHead(row_id=old.row_id, signed=signed)


def test_head_with_a_broken_signature_is_refused() -> None:
    log = make_log()
    broken = bytearray(log.heads[2].signed)
    broken[-1] ^= 1
    _replace(log, 2, bytes(broken))
    report = log.audit()
    invalid = only(report, FindingKind.HEAD_INVALID)
    assert invalid.head_ids == (3,)
    assert "signature" in invalid.detail.lower()
    assert report.valid_head_count == 4


def test_head_signed_by_another_key_is_refused() -> None:
    log = make_log()
    _replace(log, 1, head(log.leaves, 9, T0 + 2000, seed=OTHER_SEED, key_id=b"\x07" * 32))
    invalid = only(log.audit(), FindingKind.HEAD_INVALID)
    assert invalid.head_ids == (2,)
    assert "unknown log key" in invalid.detail


def test_head_signed_with_the_right_key_id_but_another_key_is_refused() -> None:
    log = make_log()
    _replace(log, 1, head(log.leaves, 9, T0 + 2000, seed=OTHER_SEED))
    assert only(log.audit(), FindingKind.HEAD_INVALID).head_ids == (2,)


def test_garbage_instead_of_a_head_is_refused() -> None:
    log = make_log()
    _replace(log, 0, b"\xff\xff\xff")
    assert only(log.audit(), FindingKind.HEAD_INVALID).head_ids == (1,)


def test_head_row_columns_that_disagree_with_the_signature_are_reported() -> None:
    log = make_log()
    old = log.heads[3]
    log.heads[3] = StoredHead(
        row_id=old.row_id, signed=old.signed, tree_size=24, root_hash=b"\x00" * 32, timestamp_ms=0
    )
    mismatch = only(log.audit(), FindingKind.HEAD_ROW_MISMATCH)
    assert mismatch.head_ids == (4,)
    assert "tree_size, root_hash, timestamp_ms" in mismatch.detail


def test_head_outside_the_key_validity_is_refused() -> None:
    log = make_log()
    late_key = TrustedLogKey(KEY_ID, KEY.public_key, valid_from_ms=T0 + 2500)
    report = audit_log(log.leaves, log.heads, [late_key])
    assert sorted(i for f in report.findings for i in f.head_ids) == [1, 2]
    assert all(f.kind is FindingKind.HEAD_INVALID for f in report.findings)


def test_a_pinned_public_key_alone_verifies_heads_under_any_key_id() -> None:
    log = make_log()
    pinned = TrustedLogKey(None, KEY.public_key)
    assert audit_log(log.leaves, log.heads, [pinned]).ok
    wrong = TrustedLogKey(None, _sodium.ed25519_public_from_seed(OTHER_SEED))
    report = audit_log(log.leaves, log.heads, [wrong])
    assert [f.kind for f in report.findings].count(FindingKind.HEAD_INVALID) == 5


def test_forked_history_two_heads_of_one_size() -> None:
    log = make_log()
    other = list(log.leaves)
    other[3] = leaf(3, actor="staff:mallory")
    log.heads.append(StoredHead(row_id=6, signed=head(other, 16, T0 + 9000)))
    report = log.audit()
    fork = next(f for f in report.findings if f.kind is FindingKind.FORK and len(f.head_ids) == 2)
    assert set(fork.head_ids) == {3, 6}
    assert "match head #3" in fork.detail
    # The stored leaves also fail the forged head; the report says the key signed two histories.
    against = [f for f in report.findings if 6 in f.head_ids and f.kind is not FindingKind.FORK]
    assert against
    assert "two different histories" in against[0].detail


def test_forked_history_a_later_head_that_does_not_extend_an_earlier_one() -> None:
    log = make_log()
    rewritten = list(log.leaves)
    rewritten[3] = leaf(3, actor="staff:mallory")
    # The stored log is rewritten and re-signed; the earlier head still tells the old story.
    log.leaves = rewritten
    log.nodes = merkle.MemoryNodeStore()
    merkle.MerkleTree(log.nodes).append_many(rewritten)
    log.heads = [log.heads[0], StoredHead(row_id=2, signed=head(rewritten, 9, T0 + 2000))]
    report = log.audit()
    fork = only(report, FindingKind.FORK)
    assert fork.head_ids == (1, 2)
    assert "does not extend" in fork.detail
    changed = report.first
    assert changed is not None
    assert changed.head_ids == (1,)
    assert changed.start is not None
    assert changed.end is not None
    assert changed.start <= 3 < changed.end


def test_head_timestamps_going_backwards_are_noted() -> None:
    log = make_log()
    log.heads[1], log.heads[2] = log.heads[2], log.heads[1]
    report = log.audit()
    assert report.ok
    assert any("earlier timestamp" in note for note in report.notes)


# --------------------------------------------------------------------------- interfaces


def test_verify_log_raises_with_the_first_finding() -> None:
    log = make_log()
    log.leaves[11] = leaf(11, actor="staff:mallory")
    with pytest.raises(ProofError, match=r"leaf-modified at leaf 11"):
        verify_log(log.leaves, log.heads, [KEY], node_hints=log.nodes)


def test_leaf_checks_done_elsewhere_give_the_same_report() -> None:
    log = make_log()
    log.leaves[6] = log.leaves[6] + b"\x00"
    audit = LogAudit([KEY], check_encodings=False)
    entries = list(enumerate(log.leaves))
    for start in range(0, len(entries), 7):
        chunk = entries[start : start + 7]
        audit.add_leaves(chunk)
        audit.add_findings(check_leaf_encodings(chunk))
    assert audit.finish(log.heads, log.nodes) == log.audit()


def test_decreasing_indices_are_a_caller_error() -> None:
    audit = LogAudit([KEY])
    audit.add_leaves([(0, leaf(0)), (1, leaf(1))])
    with pytest.raises(ValueError, match="increase"):
        audit.add_leaves([(1, leaf(1))])


def test_many_malformed_leaves_are_summarised() -> None:
    leaves = [b"\x00"] * (logaudit.MAX_LEAF_FINDINGS + 5)
    report = audit_log(leaves, [], [KEY])
    malformed = [f for f in report.findings if f.kind is FindingKind.LEAF_MALFORMED]
    assert len(malformed) == logaudit.MAX_LEAF_FINDINGS
    assert report.notes == ("5 more leaf-malformed findings not listed",)


# --------------------------------------------------------------------------- hashes only


def _audit_mixed(leaves: Sequence[bytes], heads: Sequence[StoredHead]) -> LogAuditReport:
    """Every third leaf known in full, the others by their hash (a scoped auditor's view)."""
    audit = LogAudit([KEY])
    for index, data in enumerate(leaves):
        if index % 3 == 0:
            audit.add_leaves([(index, data)])
        else:
            audit.add_leaf_hashes([(index, merkle.leaf_hash(data))])
    return audit.finish(heads)


def test_leaf_hashes_check_every_head_like_the_leaves_themselves() -> None:
    log = make_log()
    report = _audit_mixed(log.leaves, log.heads)
    assert report.ok, report.findings
    assert (report.leaf_count, report.valid_head_count, report.attested_size) == (30, 5, 30)


def test_a_changed_leaf_known_only_by_its_hash_still_fails_the_heads() -> None:
    log = make_log()
    changed = list(log.leaves)
    changed[13] = leaf(13, actor="staff:mallory")
    report = _audit_mixed(changed, log.heads)
    assert not report.ok
    assert report.first_bad_index is not None
    assert report.first_bad_index <= 13


def test_a_leaf_hash_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="not 32 bytes"):
        LogAudit([KEY]).add_leaf_hashes([(0, b"short")])
