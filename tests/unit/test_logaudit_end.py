"""The log's end (SPEC P13) in the pure auditor: unsigned tails, pinned heads, seen leaves,
cosignatures. Each tampering here left the old check clean; each must now be found."""

from __future__ import annotations

from collections.abc import Sequence

from sealpost.crypto import _sodium, cosignature, merkle
from sealpost.crypto.keys import SigningSeed
from sealpost.crypto.logaudit import (
    FindingKind,
    Location,
    LogAudit,
    LogAuditReport,
    PinnedHead,
    SeenLeaves,
    StoredCosignature,
    StoredHead,
    TailPolicy,
    TrustedLogKey,
    TrustedWitness,
)
from sealpost.crypto.logentry import LogAction, LogEvent, encode_event, sign_tree_head
from sealpost.v1 import log_pb2

SEED = bytes(range(32))
KEY_ID = _sodium.sha256(b"test log key record")
KEY = TrustedLogKey(KEY_ID, _sodium.ed25519_public_from_seed(SEED))
T0 = 1_760_000_000_000
LIMIT_MS = 15_000
WITNESS_SEED = _sodium.sha256(b"witness")
WITNESS_PUBLIC = _sodium.ed25519_public_from_seed(WITNESS_SEED)
WITNESS_ID = cosignature.witness_key_id(WITNESS_PUBLIC)
WITNESS = TrustedWitness(WITNESS_ID, "audit-office", WITNESS_PUBLIC)


def leaf(i: int, *, at: int | None = None, actor: str = "gateway") -> bytes:
    return encode_event(
        LogEvent(
            action=LogAction.ADMIN_ACTION,
            actor=actor,
            time_ms=T0 + 1000 * i if at is None else at,
            subjects=[("institution", f"pi-{i}")],
            extra={"operation": "test"},
        )
    )


def signed(leaves: Sequence[bytes], size: int, when: int) -> bytes:
    root = merkle.tree_hash(list(leaves[:size]))
    return sign_tree_head(size, root, when, KEY_ID, SigningSeed(SEED)).SerializeToString(
        deterministic=True
    )


def heads(leaves: Sequence[bytes], sizes: Sequence[int]) -> list[StoredHead]:
    return [
        StoredHead(row_id=n + 1, signed=signed(leaves, size, T0 + 1000 * size))
        for n, size in enumerate(sizes)
    ]


def run(
    leaves: Sequence[bytes],
    stored: Sequence[StoredHead],
    *,
    now_ms: int | None = None,
    pinned: Sequence[PinnedHead] = (),
    seen: Sequence[SeenLeaves] = (),
    cosignatures: Sequence[StoredCosignature] = (),
    hints: bool = True,
    cache: Sequence[bytes] | None = None,
) -> LogAuditReport:
    audit = LogAudit([KEY])
    audit.add_leaves(list(enumerate(leaves)))
    nodes = merkle.MemoryNodeStore()
    merkle.MerkleTree(nodes).append_many(list(leaves if cache is None else cache))
    return audit.finish(
        stored,
        nodes if hints else None,
        pinned=pinned,
        seen=seen,
        tail=None if now_ms is None else TailPolicy(now_ms, LIMIT_MS),
        cosignatures=cosignatures,
        witnesses=[WITNESS],
    )


def kinds(report: LogAuditReport) -> list[FindingKind]:
    return [f.kind for f in report.findings]


# --------------------------------------------------------------------------- unsigned tail


def test_a_young_tail_is_a_note_and_a_stale_one_a_finding() -> None:
    leaves = [leaf(i) for i in range(12)]
    stored = heads(leaves, [4, 9])
    young = run(leaves, stored, now_ms=T0 + 1000 * 9 + 5_000)
    assert young.ok, young.findings
    assert young.tail is not None
    assert (young.tail.start, young.tail.end, young.tail.stale) == (9, 12, False)
    assert "within the 15 s limit" in young.notes[0]
    stale = run(leaves, stored, now_ms=T0 + 1000 * 9 + 16_000)
    (finding,) = stale.findings
    assert finding.kind is FindingKind.UNSIGNED_TAIL
    assert (finding.start, finding.end, finding.exact) == (9, 12, True)
    assert finding.located_by is Location.UNSIGNED
    assert stale.first_bad_index == 9
    # Without a clock the rule cannot run: a note, as before.
    assert run(leaves, stored).ok


def test_tail_leaves_dated_in_the_future_do_not_make_the_tail_young() -> None:
    leaves = [leaf(i) for i in range(6)] + [leaf(6, at=T0 + 10_000_000)]
    report = run(leaves, heads(leaves, [6]), now_ms=T0 + 7_000)
    assert kinds(report) == [FindingKind.UNSIGNED_TAIL]
    assert "in the future" in report.findings[0].detail


def test_changing_a_leaf_after_the_last_head_is_found_once_the_tail_is_stale() -> None:
    leaves = [leaf(i) for i in range(10)]
    stored = heads(leaves, [7])
    changed = [*leaves[:8], leaf(8, actor="staff:mallory"), leaves[9]]
    report = run(changed, stored, now_ms=T0 + 60_000)
    assert kinds(report) == [FindingKind.UNSIGNED_TAIL]
    assert report.first_bad_index == 7


def test_adding_leaves_after_the_last_head_is_found() -> None:
    leaves = [leaf(i) for i in range(10)]
    stored = heads(leaves, [10])
    assert run(leaves, stored, now_ms=T0 + 60_000).ok
    added = [*leaves, leaf(3, actor="staff:mallory")]  # a copy of an old event, its old time
    report = run(added, stored, now_ms=T0 + 60_000)
    assert kinds(report) == [FindingKind.UNSIGNED_TAIL]
    assert report.first_bad_index == 10


# --------------------------------------------------------------------------- pinned heads


def test_deleting_the_last_leaves_and_every_head_above_them() -> None:
    leaves = [leaf(i) for i in range(20)]
    stored = heads(leaves, [5, 12, 20])
    pin = PinnedHead("the head pinned with --since-head h.json", stored[-1].signed)
    before = run(leaves, stored, pinned=[pin])
    assert before.ok
    assert [(p.tree_size, p.consistent) for p in before.pinned] == [(20, True)]
    # The operator cuts the log back to 14 leaves, with the heads above: the stored log is
    # consistent in itself, and the old check is clean.
    cut, kept = leaves[:14], stored[:2]
    assert run(cut, kept, now_ms=T0 + 14_000).ok
    report = run(cut, kept, now_ms=T0 + 14_000, pinned=[pin])
    assert kinds(report) == [FindingKind.ROLLBACK]
    finding = report.findings[0]
    assert (finding.start, finding.end, finding.exact) == (14, 20, True)
    assert "--since-head h.json covers 20 leaves" in finding.detail
    assert report.pinned[0].consistent is False


def test_a_rewritten_history_under_the_same_key_is_found_and_located() -> None:
    leaves = [leaf(i) for i in range(16)]
    pin = PinnedHead("the last verified head", signed(leaves, 16, T0 + 16_000))
    # Rewritten from leaf 11 on and signed again with the (stolen) log key.
    rewritten = [*leaves[:11], *(leaf(i, actor="staff:mallory") for i in range(11, 18))]
    stored = heads(rewritten, [5, 18])
    assert run(rewritten, stored).ok  # nothing in the database shows it
    report = run(rewritten, stored, pinned=[pin])
    (finding,) = report.findings
    # The node cache was rewritten too, so the change is bounded by the heads that still
    # match (5 leaves), not singled out.
    assert finding.kind is FindingKind.LEAVES_CHANGED
    assert finding.start is not None
    assert finding.end is not None
    assert finding.start <= 11 < finding.end
    assert "held outside the database" in finding.detail
    # With the old node cache still in place, the first rewritten leaf is named exactly.
    located = run(rewritten, stored, pinned=[pin], cache=leaves)
    assert located.first_bad_index == 11
    assert located.findings[0].exact
    assert located.findings[0].located_by is Location.AUTHENTICATED_NODES


def test_a_pinned_head_that_does_not_verify_is_a_finding() -> None:
    leaves = [leaf(i) for i in range(8)]
    forged = log_pb2.SignedTreeHead.FromString(signed(leaves, 8, T0))
    forged.signature = bytes(64)
    pin = PinnedHead("--since-head forged.json", forged.SerializeToString())
    report = run(leaves, heads(leaves, [8]), pinned=[pin])
    assert kinds(report) == [FindingKind.PINNED_HEAD_INVALID]


def test_a_pinned_head_extends_the_signed_part_of_the_log() -> None:
    """Leaves a pinned head covers are attested, even if their stored head rows are gone."""
    leaves = [leaf(i) for i in range(10)]
    pin = PinnedHead("pinned", signed(leaves, 10, T0 + 10_000))
    report = run(leaves, heads(leaves, [6]), now_ms=T0 + 600_000, pinned=[pin])
    assert report.ok, report.findings
    assert report.tail is None
    assert report.newest_attested == pin.signed


# --------------------------------------------------------------------------- seen leaves


def test_leaves_seen_before_may_not_disappear_or_change_even_unsigned() -> None:
    leaves = [leaf(i) for i in range(12)]
    stored = heads(leaves, [9])
    first = run(leaves, stored, now_ms=T0 + 12_000)
    assert first.ok
    assert first.leaf_root == merkle.tree_hash(leaves)
    assert first.newest_attested == stored[-1].signed
    seen = SeenLeaves("the last verification", first.leaf_count, first.leaf_root)
    # The unsigned tail is dropped before anyone signs it: no trace in the database.
    assert run(leaves[:9], stored).ok
    dropped = run(leaves[:9], stored, seen=[seen])
    assert kinds(dropped) == [FindingKind.ROLLBACK]
    assert dropped.findings[0].start == 9
    assert "the last verification saw 12 leaves" in dropped.findings[0].detail
    # An unsigned leaf changed, then signed along with the rest: located exactly.
    changed = [*leaves[:10], leaf(10, actor="staff:mallory"), leaves[11]]
    resigned = [*stored, *heads(changed, [12])[-1:]]
    resigned[-1] = StoredHead(row_id=2, signed=resigned[-1].signed)
    report = run(changed, resigned, seen=[seen])
    (finding,) = report.findings
    assert finding.kind is FindingKind.LEAVES_CHANGED
    assert finding.start is not None
    assert finding.end is not None
    assert finding.start <= 10 < finding.end


# --------------------------------------------------------------------------- cosignatures


def _cosign(head: StoredHead, row_id: int, seed: bytes = WITNESS_SEED) -> StoredCosignature:
    tree_head = log_pb2.SignedTreeHead.FromString(head.signed).tree_head
    cosig = cosignature.cosign(tree_head, witness_key_id=WITNESS_ID, cosigned_at_ms=T0, seed=seed)
    return StoredCosignature(row_id, head.row_id, cosig.SerializeToString())


def test_cosignatures_are_verified_and_reported() -> None:
    leaves = [leaf(i) for i in range(8)]
    stored = heads(leaves, [4, 8])
    good = _cosign(stored[1], 1)
    stranger = _sodium.sha256(b"someone else")
    cosig = cosignature.cosign(
        log_pb2.SignedTreeHead.FromString(stored[0].signed).tree_head,
        witness_key_id=cosignature.witness_key_id(_sodium.ed25519_public_from_seed(stranger)),
        cosigned_at_ms=T0,
        seed=stranger,
    )
    unknown = StoredCosignature(2, 1, cosig.SerializeToString())
    report = run(leaves, stored, cosignatures=[good, unknown])
    assert report.ok
    assert [(c.head_row_id, c.tree_size, c.witnesses) for c in report.cosigned] == [
        (2, 8, ("audit-office",))
    ]
    assert report.unverified_cosignatures == 1
    # A cosignature moved to another head, or made by another key, does not verify.
    moved = StoredCosignature(3, 1, good.cosignature)
    forged = _cosign(stored[0], 4, seed=stranger)
    report = run(leaves, stored, cosignatures=[moved, forged])
    assert kinds(report) == [FindingKind.COSIGNATURE_INVALID] * 2
