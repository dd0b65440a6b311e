"""The auditor's check of a whole transparency log: every leaf, every signed head (SPEC P7).

Pure code: stored leaves (in index order), stored signed tree heads (in the order they
were stored) and the trusted log keys go in; a typed ``LogAuditReport`` comes out. No
database, no clock. docs/audit.md explains what each check proves.

Heads held outside the database make the end of the log checkable too (SPEC P13): a head
the auditor pins (``PinnedHead``), the leaves an earlier verification saw (``SeenLeaves``)
and witnesses' cosignatures must all still be reproduced by the stored leaves, and
leaves left outside every signed head for longer than the gateway ever leaves them
(``TailPolicy``) are a finding, not a note.

The tree is recomputed from the leaves (RFC 9162 section 2.1.1) and never taken from the
gateway's node cache. The cache is only used as *hints* to locate a difference: a cached
node counts once it hashes up to a root the log key signed (node_hash(left, right) equals
an already authenticated parent), so a forged or stale cache can make the location
coarser, never wrong.
"""

from __future__ import annotations

import enum
import hmac
import itertools
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from google.protobuf.message import DecodeError

from sealpost.crypto import cosignature, logentry, merkle
from sealpost.crypto.errors import CryptoError, ProofError
from sealpost.crypto.logentry import VerifiedTreeHead
from sealpost.v1 import log_pb2

#: Differing leaves located one by one before the search stops (each costs O(log n) lookups).
MAX_LOCATED_LEAVES: Final = 64
#: Findings of one kind about single leaves (malformed, missing) listed before summarising.
MAX_LEAF_FINDINGS: Final = 100
#: Failing heads, largest first, tried as the reference for locating a difference.
_LOCATE_ATTEMPTS: Final = 8
#: Neighbours checked when telling an insertion or a deletion from a modification.
_SHIFT_PROBES: Final = 8


class FindingKind(enum.StrEnum):
    """What is wrong: eight kinds about leaves, four about heads, then the log's end (P13)."""

    LEAF_MALFORMED = "leaf-malformed"
    LEAF_MISSING = "leaf-missing"
    LEAF_MODIFIED = "leaf-modified"
    LEAF_INSERTED = "leaf-inserted"
    LEAF_DELETED = "leaf-deleted"
    LEAVES_REORDERED = "leaves-reordered"
    LEAVES_CHANGED = "leaves-changed"
    LOG_TRUNCATED = "log-truncated"
    HEAD_INVALID = "head-invalid"
    HEAD_ROW_MISMATCH = "head-row-mismatch"
    FORK = "fork"
    NO_SIGNED_HEAD = "no-signed-head"
    #: Leaves outside every signed head for longer than the gateway ever leaves them.
    UNSIGNED_TAIL = "unsigned-tail"
    #: The log is shorter than a head held outside the database (pinned, seen, cosigned).
    ROLLBACK = "rollback"
    #: A head given to pin does not verify under the trusted log keys.
    PINNED_HEAD_INVALID = "pinned-head-invalid"
    #: A stored cosignature does not verify under the witness key it names.
    COSIGNATURE_INVALID = "cosignature-invalid"


class Location(enum.StrEnum):
    """How a finding's leaf index was established."""

    #: The leaf's own bytes do not decode: exact.
    DECODING = "leaf decoding"
    #: The stored indices skip a number: exact.
    STORED_INDICES = "stored leaf indices"
    #: Descending from a signed root through cached nodes that hash up to it: exact.
    AUTHENTICATED_NODES = "signed head and authenticated node cache"
    #: Only bounded: between the sizes of the last matching and the first failing head.
    HEAD_SIZES = "signed head sizes"
    #: The log has fewer leaves than a signed head covers: exact.
    LEAF_COUNT = "leaf count against head size"
    #: The first leaf after the newest signed head, and the times the leaves claim.
    UNSIGNED = "leaf times after the newest signed head"


@dataclass(frozen=True)
class TrustedLogKey:
    """A log key the auditor trusts: its record id, Ed25519 public key and validity window.

    ``key_id`` None trusts the public key under whatever key id a head names: the
    signature alone then decides (for an auditor who pins only the public key).
    """

    key_id: bytes | None
    public_key: bytes
    #: Milliseconds since the epoch; a head signed outside [valid_from, valid_until) is refused.
    valid_from_ms: int | None = None
    valid_until_ms: int | None = None


@dataclass(frozen=True)
class StoredHead:
    """One stored signed head: its row id, the signed bytes and the row's plain columns."""

    row_id: int
    #: A serialised sealpost.v1.SignedTreeHead.
    signed: bytes
    #: What the row's own columns claim; compared with the signed content when given.
    tree_size: int | None = None
    root_hash: bytes | None = None
    timestamp_ms: int | None = None


@dataclass(frozen=True)
class PinnedHead:
    """A signed head held outside the database: ``--since-head``, or the last verification's."""

    #: How findings name it, e.g. "the head pinned with --since-head head.json".
    label: str
    #: A serialised sealpost.v1.SignedTreeHead.
    signed: bytes


@dataclass(frozen=True)
class SeenLeaves:
    """What an earlier verification saw: how many leaves, and the root over all of them.

    Leaves are never removed or changed, signed or not; so the stored leaves must still
    reproduce this root, including any the gateway had not signed yet back then.
    """

    label: str
    count: int
    root_hash: bytes


@dataclass(frozen=True)
class TailPolicy:
    """The unsigned-tail rule: leaves outside every head for longer than this are a finding."""

    #: The auditor's clock, milliseconds since the epoch.
    now_ms: int
    #: The gateway signs within its interval (2 s by default); this adds clock leeway.
    max_unsigned_ms: int


@dataclass(frozen=True)
class UnsignedTail:
    """Leaves [start, end) outside every signed head, and the times they claim."""

    start: int
    end: int
    oldest_ms: int | None
    newest_ms: int | None
    #: True when the rule made a finding of it.
    stale: bool


@dataclass(frozen=True)
class PinnedCheck:
    """The outcome for one head held outside the database."""

    label: str
    tree_size: int
    #: True when the stored leaves reproduce it (the log extends it).
    consistent: bool


@dataclass(frozen=True)
class TrustedWitness:
    """A witness key the auditor trusts: an institution key record, or an auditor's key."""

    key_id: bytes
    name: str
    public_key: bytes
    #: Milliseconds; a cosignature dated outside [valid_from, valid_until) is refused.
    valid_from_ms: int | None = None
    valid_until_ms: int | None = None


@dataclass(frozen=True)
class StoredCosignature:
    """One stored cosignature: its row, the row of the head it cosigns, the bytes."""

    row_id: int
    head_row_id: int
    #: A serialised sealpost.v1.Cosignature.
    cosignature: bytes


@dataclass(frozen=True)
class CosignedHead:
    """A stored head with the trusted witnesses whose cosignatures of it verify."""

    head_row_id: int
    tree_size: int
    witnesses: tuple[str, ...]


@dataclass(frozen=True)
class Finding:
    """One problem: its kind, a sentence, and where in the log it lies."""

    kind: FindingKind
    detail: str
    #: First leaf index involved: exact when ``exact``, otherwise a lower bound.
    start: int | None = None
    #: Exclusive end of the index range the problem is known to lie in.
    end: int | None = None
    exact: bool = False
    located_by: Location | None = None
    #: Further leaf indices involved (the other leaf of a swap, later changed leaves).
    other_indices: tuple[int, ...] = ()
    #: Row ids of the heads involved.
    head_ids: tuple[int, ...] = ()

    def where(self) -> str:
        """A short location for people: "leaf 17", "leaves 10..19", "head #4"."""
        if self.start is not None:
            if self.exact:
                return f"leaf {self.start}"
            return f"leaves {self.start}..{(self.end or self.start + 1) - 1}"
        if self.head_ids:
            return ", ".join(f"head #{i}" for i in self.head_ids)
        return "the log"


def _sort_key(finding: Finding) -> tuple[int, int, int]:
    start = finding.start if finding.start is not None else merkle.MAX_TREE_SIZE + 1
    first_head = min(finding.head_ids) if finding.head_ids else 0
    return start, list(FindingKind).index(finding.kind), first_head


@dataclass(frozen=True)
class LogAuditReport:
    """Everything the audit found; ``ok`` when there is nothing to report."""

    leaf_count: int
    head_count: int
    valid_head_count: int
    #: The largest signed tree size the stored leaves reproduce exactly (0 if none).
    attested_size: int
    findings: tuple[Finding, ...]
    #: Observations that are not failures (uncovered tail, head timestamps out of order).
    notes: tuple[str, ...] = ()
    #: (tree_size, timestamp_ms) of every valid head the stored leaves reproduce, by size:
    #: when each leaf was first in a signed head (the reconciliation's "logged before" rule).
    attested_heads: tuple[tuple[int, int], ...] = ()
    #: Leaves after the newest signed head, if any.
    tail: UnsignedTail | None = None
    #: Heads held outside the database, and whether the log still extends each.
    pinned: tuple[PinnedCheck, ...] = ()
    #: The serialised SignedTreeHead of the largest head the stored leaves reproduce.
    newest_attested: bytes | None = None
    #: MTH of every stored leaf, signed or not (what a later verification must still find).
    leaf_root: bytes = merkle.EMPTY_ROOT
    #: Stored heads with trusted cosignatures that verify.
    cosigned: tuple[CosignedHead, ...] = ()
    #: Stored cosignatures by witnesses the auditor was not given a key for.
    unverified_cosignatures: int = 0

    @property
    def ok(self) -> bool:
        """True when no finding was made."""
        return not self.findings

    @property
    def first(self) -> Finding | None:
        """The finding to show first: the lowest leaf index, then head problems."""
        return self.findings[0] if self.findings else None

    @property
    def first_bad_index(self) -> int | None:
        """The lowest leaf index any finding points at (a lower bound when not exact)."""
        starts = [f.start for f in self.findings if f.start is not None]
        return min(starts) if starts else None


# --------------------------------------------------------------------------- leaves


def check_leaf_encodings(entries: Sequence[tuple[int, bytes]]) -> list[Finding]:
    """A LEAF_MALFORMED finding for every stored ``(index, leaf)`` that is not a canonical event.

    A top-level function so that callers may run it in worker processes on chunks of a
    large log, and pass the findings to ``LogAudit.add_findings``.
    """
    findings: list[Finding] = []
    for index, leaf in entries:
        try:
            logentry.decode_event(leaf)
        except CryptoError as exc:
            findings.append(
                Finding(
                    FindingKind.LEAF_MALFORMED,
                    f"leaf {index} is not a canonical log event: {exc}",
                    start=index,
                    end=index + 1,
                    exact=True,
                    located_by=Location.DECODING,
                )
            )
    return findings


def _pieces(lo: int, hi: int) -> list[merkle.NodeKey]:
    """Perfect subtrees making up [lo, hi), largest first, for ranges the RFC recursion visits."""
    keys: list[merkle.NodeKey] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        keys.append((level, lo >> level))
        lo += 1 << level
    return keys


def _fold(hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 section 2.1.1: MTH of a range from its perfect subtrees, right to left."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = merkle.node_hash(left, result)
    return result


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _unsigned_head(count: int, root: bytes) -> VerifiedTreeHead:
    """A stand-in head for leaves an earlier verification saw (never signed by anyone)."""
    return VerifiedTreeHead(
        version=logentry.TREE_HEAD_VERSION,
        tree_size=count,
        root_hash=root,
        timestamp_ms=0,
        log_key_id=b"",
    )


class _Hints:
    """Read access to an untrusted node cache: absent, malformed or failing lookups are None."""

    def __init__(self, store: merkle.NodeStore | None) -> None:
        self._store = store

    @property
    def available(self) -> bool:
        return self._store is not None

    def ranges(self, ranges: Sequence[tuple[int, int]]) -> list[bytes | None]:
        """MTH of each range from the cache, in one lookup, or None where it cannot tell."""
        if self._store is None:
            return [None] * len(ranges)
        groups = [_pieces(lo, hi) for lo, hi in ranges]
        flat = [key for group in groups for key in group]
        try:
            hashes = self._store.get_many(flat)
        except LookupError:
            return self._one_by_one(groups)
        if len(hashes) != len(flat) or any(len(h) != merkle.HASH_SIZE for h in hashes):
            return [None] * len(ranges)
        out: list[bytes | None] = []
        position = 0
        for group in groups:
            out.append(_fold(hashes[position : position + len(group)]))
            position += len(group)
        return out

    def _one_by_one(self, groups: Sequence[Sequence[merkle.NodeKey]]) -> list[bytes | None]:
        assert self._store is not None
        out: list[bytes | None] = []
        for group in groups:
            try:
                hashes = self._store.get_many(list(group))
            except LookupError:
                out.append(None)
                continue
            ok = len(hashes) == len(group) and all(len(h) == merkle.HASH_SIZE for h in hashes)
            out.append(_fold(hashes) if ok else None)
        return out

    def leaf_proof(self, index: int, size: int) -> tuple[bytes, list[bytes]] | None:
        """The cached leaf hash of ``index`` and its inclusion path in a tree of ``size``."""
        if self._store is None:
            return None
        try:
            tree = merkle.MerkleTree(self._store, size)
            path = tree.inclusion_proof(index, size)
            (leaf,) = self._store.get_many([(0, index)])
        except (LookupError, CryptoError):
            return None
        return leaf, path

    def consistency(self, first: int, second: int) -> list[bytes] | None:
        """A consistency proof built from the cache (to be verified, never trusted)."""
        if self._store is None:
            return None
        try:
            return merkle.MerkleTree(self._store, second).consistency_proof(first, second)
        except (LookupError, CryptoError):
            return None


@dataclass
class _Head:
    """A head whose signature verified, with where it was stored (row 0: held elsewhere)."""

    row_id: int
    position: int
    head: VerifiedTreeHead
    #: How findings name a head held elsewhere ("the head pinned with --since-head ...").
    label: str = ""
    #: False for leaves seen by an earlier verification: a root, but no signature.
    signed: bool = True
    #: The serialised SignedTreeHead of a head held elsewhere.
    signed_bytes: bytes | None = None

    @property
    def name(self) -> str:
        return self.label or f"head #{self.row_id}"

    @property
    def size(self) -> int:
        return self.head.tree_size

    @property
    def root(self) -> bytes:
        return self.head.root_hash


@dataclass
class _Located:
    """Leaves that differ from a signed head, leftmost first, with their signed leaf hashes."""

    leaves: list[tuple[int, bytes]] = field(default_factory=list)
    #: The leftmost range the cache could not resolve, if the search stopped there.
    unresolved: tuple[int, int] | None = None
    #: True when the search stopped at MAX_LOCATED_LEAVES.
    truncated: bool = False


class LogAudit:
    """Feed leaves in index order with ``add_leaves``, then ``finish`` with the stored heads."""

    def __init__(self, keys: Sequence[TrustedLogKey], *, check_encodings: bool = True) -> None:
        """Trust heads signed by ``keys``; decode every leaf unless ``check_encodings`` is off.

        Turn the decoding off only when the caller runs ``check_leaf_encodings`` itself
        (for example in parallel) and passes the result to ``add_findings``.
        """
        self._keys = {key.key_id: key for key in keys if key.key_id is not None}
        self._any_id = [key for key in keys if key.key_id is None]
        self._check_encodings = check_encodings
        self._nodes = merkle.MemoryNodeStore()
        self._tree = merkle.MerkleTree(self._nodes)
        self._next_index = 0
        self._leaf_findings: list[Finding] = []
        self._suppressed: Counter[FindingKind] = Counter()
        self._listed: Counter[FindingKind] = Counter()
        self._matched: dict[tuple[int, bytes], bool] = {}
        #: The time each leaf claims (-1: not readable), for the unsigned-tail rule.
        self._times = array("q")

    @property
    def leaf_count(self) -> int:
        """Leaves added so far."""
        return self._tree.size

    def add_findings(self, findings: Iterable[Finding]) -> None:
        """Record leaf findings made elsewhere (``check_leaf_encodings`` on a worker)."""
        for finding in findings:
            self._record(finding)

    def _record(self, finding: Finding) -> None:
        if self._listed[finding.kind] >= MAX_LEAF_FINDINGS:
            self._suppressed[finding.kind] += 1
            return
        self._listed[finding.kind] += 1
        self._leaf_findings.append(finding)

    def add_leaves(self, entries: Sequence[tuple[int, bytes]]) -> None:
        """Append stored leaves ``(index, bytes)``; indices must increase, gaps are findings."""
        self._append(
            [
                (index, merkle.leaf_hash(leaf), logentry.leaf_time_ms(leaf))
                for index, leaf in entries
            ]
        )
        if self._check_encodings:
            for finding in check_leaf_encodings(entries):
                self._record(finding)

    def add_leaf_hashes(self, entries: Sequence[tuple[int, bytes]]) -> None:
        """Append leaves known only by their hash ``(index, SHA-256(0x00 || leaf))``.

        What an auditor scoped to some institutions is given for the other entries: the
        tree and every head are checked as fully; only these leaves cannot be decoded
        (nor their time read, for the unsigned-tail rule).
        """
        for index, leaf_hash in entries:
            if len(leaf_hash) != merkle.HASH_SIZE:
                raise ValueError(f"leaf hash {index} is not {merkle.HASH_SIZE} bytes")
        self._append([(index, leaf_hash, None) for index, leaf_hash in entries])

    def _append(self, hashed: Sequence[tuple[int, bytes, int | None]]) -> None:
        hashes: list[bytes] = []
        for index, leaf_hash, time_ms in hashed:
            if index < self._next_index:
                raise ValueError(f"leaf indices must increase: {index} after {self._next_index}")
            if index > self._next_index:
                missing = index - self._next_index
                self._record(
                    Finding(
                        FindingKind.LEAF_MISSING,
                        f"{missing} stored leaf index(es) missing: "
                        f"{self._next_index}..{index - 1} (rows deleted)",
                        start=self._next_index,
                        end=index,
                        exact=True,
                        located_by=Location.STORED_INDICES,
                    )
                )
            self._next_index = index + 1
            hashes.append(leaf_hash)
            self._times.append(-1 if time_ms is None else time_ms)
        # The tree is built over the leaves as stored, one after the other: a missing row
        # shifts every later leaf, and the heads then show it too.
        self._tree.append_leaf_hashes(hashes)

    # ------------------------------------------------------------------- finishing

    def finish(
        self,
        heads: Sequence[StoredHead],
        node_hints: merkle.NodeStore | None = None,
        *,
        pinned: Sequence[PinnedHead] = (),
        seen: Sequence[SeenLeaves] = (),
        tail: TailPolicy | None = None,
        cosignatures: Sequence[StoredCosignature] = (),
        witnesses: Sequence[TrustedWitness] = (),
    ) -> LogAuditReport:
        """Check every head against the recomputed tree and against each other.

        ``pinned`` heads and ``seen`` leaves, held outside the database, must still be
        reproduced by the stored leaves; with a ``tail`` policy, leaves outside every
        signed head for too long are a finding; ``cosignatures`` are checked against the
        ``witnesses`` given (others are counted, not judged).
        """
        findings = list(self._leaf_findings)
        notes = [
            f"{count} more {kind.value} findings not listed"
            for kind, count in self._suppressed.items()
        ]
        hints = _Hints(node_hints)
        valid = self._verify_heads(heads, findings)
        if not heads:
            findings.append(
                Finding(
                    FindingKind.NO_SIGNED_HEAD,
                    "no signed tree head is stored: nothing attests the leaves",
                )
            )
        notes += self._order_notes(valid)
        findings += self._forks(valid, hints)
        attested, mismatch = self._compare_roots(valid, hints)
        if mismatch is not None:
            findings.append(mismatch)
        outside = self._verify_pinned(pinned, findings) + [
            _Head(0, -1, _unsigned_head(s.count, s.root_hash), s.label, signed=False) for s in seen
        ]
        checks = [self._check_pinned(h, valid, hints, findings) for h in outside]
        attested_outside = [h for h, check in zip(outside, checks, strict=True) if check.consistent]
        covered = max((h.size for h in [*valid, *attested_outside] if h.signed), default=0)
        unsigned: UnsignedTail | None = None
        if self.leaf_count > covered and valid:
            unsigned, note, stale = self._tail(covered, tail)
            if stale is not None:
                findings.append(stale)
            if note:
                notes.append(note)
        cosigned, unverified = self._check_cosignatures(
            heads, valid, cosignatures, witnesses, findings
        )
        findings.sort(key=_sort_key)
        by_row = {h.row_id: h for h in heads}
        newest = max(
            (h for h in [*valid, *attested_outside] if h.signed and self._matches(h)),
            key=lambda h: (h.size, h.row_id == 0, h.position),
            default=None,
        )
        newest_signed = None
        if newest is not None:
            newest_signed = newest.signed_bytes or by_row[newest.row_id].signed
        return LogAuditReport(
            leaf_count=self.leaf_count,
            head_count=len(heads),
            valid_head_count=len(valid),
            attested_size=attested,
            findings=tuple(findings),
            notes=tuple(notes),
            attested_heads=tuple(
                sorted((h.size, h.head.timestamp_ms) for h in valid if self._matches(h))
            ),
            tail=unsigned,
            pinned=tuple(checks),
            newest_attested=newest_signed,
            leaf_root=self._range_hash(0, self.leaf_count) or merkle.EMPTY_ROOT,
            cosigned=tuple(cosigned),
            unverified_cosignatures=unverified,
        )

    # ------------------------------------------------------------------- the log's end (P13)

    def _verify_pinned(self, pinned: Sequence[PinnedHead], findings: list[Finding]) -> list[_Head]:
        """The pinned heads whose signatures verify; a finding for each that does not."""
        out: list[_Head] = []
        for head in pinned:
            try:
                verified = self._verify_head(StoredHead(row_id=0, signed=head.signed))
            except CryptoError as exc:
                findings.append(
                    Finding(
                        FindingKind.PINNED_HEAD_INVALID,
                        f"{head.label} does not verify under the trusted log keys: {exc}",
                    )
                )
                continue
            out.append(_Head(0, -1, verified, head.label, signed_bytes=head.signed))
        return out

    def _check_pinned(
        self, held: _Head, valid: Sequence[_Head], hints: _Hints, findings: list[Finding]
    ) -> PinnedCheck:
        """A head held outside the database must still be reproduced by the stored leaves."""
        n = self.leaf_count
        if n < held.size:
            what = (
                f"{held.name} covers {held.size} leaves"
                if held.signed
                else f"{held.name} saw {held.size} leaves"
            )
            findings.append(
                Finding(
                    FindingKind.ROLLBACK,
                    f"{what}, but the log holds only {n}: leaves {n}..{held.size - 1} were "
                    "removed (and any head above them); a leaf is never removed",
                    start=n,
                    end=held.size,
                    exact=True,
                    located_by=Location.LEAF_COUNT,
                )
            )
            return PinnedCheck(held.name, held.size, consistent=False)
        if self._matches(held):
            return PinnedCheck(held.name, held.size, consistent=True)
        good = max((h.size for h in valid if self._matches(h) and h.size < held.size), default=0)
        located = self._locate(held, hints)
        context = (
            f"; {held.name} is held outside the database, so the log's history was rewritten "
            "after it"
        )
        findings.append(self._classify(held, held, good, located, hints, valid, context))
        return PinnedCheck(held.name, held.size, consistent=False)

    def _tail(
        self, covered: int, policy: TailPolicy | None
    ) -> tuple[UnsignedTail, str, Finding | None]:
        """The leaves after the newest signed head: a note, or a finding when held too long."""
        n = self.leaf_count
        times = [t for t in self._times[covered:n] if t >= 0]
        oldest = min(times, default=None)
        newest = max(times, default=None)
        where = f"leaves {covered}..{n - 1}"
        if policy is None:
            note = f"{where} are not covered by a signed head yet"
            return UnsignedTail(covered, n, oldest, newest, stale=False), note, None
        limit = policy.max_unsigned_ms
        if oldest is not None and newest is not None:
            age = policy.now_ms - oldest
            ahead = newest - policy.now_ms
            if age <= limit and ahead <= limit:
                note = (
                    f"{where} are not covered by a signed head yet (the oldest was logged "
                    f"{max(age, 0) / 1000:.1f} s ago, within the {limit / 1000:g} s limit)"
                )
                return UnsignedTail(covered, n, oldest, newest, stale=False), note, None
            why = (
                f"the oldest of them was logged {age / 1000:.0f} s ago"
                if age > limit
                else f"they are dated up to {ahead / 1000:.0f} s in the future"
            )
        else:
            why = "none of them carries a readable time"
        finding = Finding(
            FindingKind.UNSIGNED_TAIL,
            f"{where} are in no signed head, and {why} (the limit is {limit / 1000:g} s): the "
            "gateway signs a head within seconds of any growth, so these leaves were kept from "
            "being signed, and nothing attests them; they may have been changed, added or "
            "removed",
            start=covered,
            end=n,
            exact=True,
            located_by=Location.UNSIGNED,
        )
        return UnsignedTail(covered, n, oldest, newest, stale=True), "", finding

    def _check_cosignatures(
        self,
        heads: Sequence[StoredHead],
        valid: Sequence[_Head],
        stored: Sequence[StoredCosignature],
        witnesses: Sequence[TrustedWitness],
        findings: list[Finding],
    ) -> tuple[list[CosignedHead], int]:
        """Verify each stored cosignature against the trusted witness key it names."""
        trusted = {w.key_id: w for w in witnesses}
        signed = {h.row_id: h.signed for h in heads}
        by_row = {h.row_id: h for h in valid}
        names: dict[int, list[str]] = {}
        unverified = 0
        for row in stored:
            head = by_row.get(row.head_row_id)
            try:
                cosig = log_pb2.Cosignature.FromString(row.cosignature)
                tree_head = log_pb2.SignedTreeHead.FromString(signed[row.head_row_id]).tree_head
            except (DecodeError, KeyError):
                cosig, tree_head = None, b""
            witness = trusted.get(cosig.witness_key_id) if cosig is not None else None
            if head is None or cosig is None or witness is None:
                unverified += 1
                continue
            try:
                verified = cosignature.verify_cosignature(
                    cosig, tree_head, witness_key_id=witness.key_id, public_key=witness.public_key
                )
                if (
                    witness.valid_from_ms is not None
                    and verified.cosigned_at_ms < witness.valid_from_ms
                ) or (
                    witness.valid_until_ms is not None
                    and verified.cosigned_at_ms >= witness.valid_until_ms
                ):
                    raise ProofError("cosigned outside the witness key's validity")
            except CryptoError as exc:
                findings.append(
                    Finding(
                        FindingKind.COSIGNATURE_INVALID,
                        f"the cosignature #{row.row_id} of head #{row.head_row_id} by "
                        f"{witness.name} does not verify: {exc}",
                        head_ids=(row.head_row_id,),
                    )
                )
                continue
            names.setdefault(head.row_id, []).append(witness.name)
        cosigned = [
            CosignedHead(row_id, by_row[row_id].size, tuple(sorted(set(found))))
            for row_id, found in sorted(names.items())
        ]
        return cosigned, unverified

    def _verify_heads(self, heads: Sequence[StoredHead], findings: list[Finding]) -> list[_Head]:
        valid: list[_Head] = []
        for position, stored in enumerate(heads):
            try:
                head = self._verify_head(stored)
            except CryptoError as exc:
                findings.append(
                    Finding(
                        FindingKind.HEAD_INVALID,
                        f"head #{stored.row_id} does not verify: {exc}",
                        head_ids=(stored.row_id,),
                    )
                )
                continue
            valid.append(_Head(stored.row_id, position, head))
            differs = [
                name
                for name, column, signed in (
                    ("tree_size", stored.tree_size, head.tree_size),
                    ("root_hash", stored.root_hash, head.root_hash),
                    ("timestamp_ms", stored.timestamp_ms, head.timestamp_ms),
                )
                if column is not None and column != signed
            ]
            if differs:
                findings.append(
                    Finding(
                        FindingKind.HEAD_ROW_MISMATCH,
                        f"head #{stored.row_id}: the row's {', '.join(differs)} differ from "
                        "what the signed head says (the signed content is used)",
                        head_ids=(stored.row_id,),
                    )
                )
        return valid

    def _verify_head(self, stored: StoredHead) -> VerifiedTreeHead:
        try:
            sth = log_pb2.SignedTreeHead.FromString(stored.signed)
            key_id = log_pb2.TreeHead.FromString(sth.tree_head).log_key_id
        except DecodeError:
            raise ProofError("the stored bytes are not a signed tree head") from None
        key = self._keys.get(key_id)
        candidates = [key] if key is not None else self._any_id
        if not candidates:
            raise ProofError(f"signed by an unknown log key (key id {key_id.hex()[:16]}...)")
        for key in candidates[:-1]:
            try:
                return self._check_window(
                    key, logentry.verify_tree_head(sth, key.public_key, key_id)
                )
            except CryptoError:
                continue
        key = candidates[-1]
        return self._check_window(key, logentry.verify_tree_head(sth, key.public_key, key_id))

    @staticmethod
    def _check_window(key: TrustedLogKey, head: VerifiedTreeHead) -> VerifiedTreeHead:
        if key.valid_from_ms is not None and head.timestamp_ms < key.valid_from_ms:
            raise ProofError("signed before the log key's validity began")
        if key.valid_until_ms is not None and head.timestamp_ms >= key.valid_until_ms:
            raise ProofError("signed after the log key's validity ended (expired or revoked)")
        return head

    @staticmethod
    def _order_notes(valid: Sequence[_Head]) -> list[str]:
        notes: list[str] = []
        for before, after in itertools.pairwise(valid):
            if after.head.timestamp_ms < before.head.timestamp_ms:
                notes.append(
                    f"head #{after.row_id} is stored after head #{before.row_id} but has an "
                    "earlier timestamp"
                )
        return notes

    def _range_hash(self, lo: int, hi: int) -> bytes | None:
        """MTH(D[lo:hi]) of the stored leaves, or None when the log has fewer than ``hi``."""
        if hi > self.leaf_count:
            return None
        if hi == lo:
            return merkle.EMPTY_ROOT
        return _fold(self._nodes.get_many(_pieces(lo, hi)))

    def _stored_leaf_hash(self, index: int) -> bytes | None:
        return self._range_hash(index, index + 1)

    def _matches(self, head: _Head) -> bool:
        """True when the stored leaves reproduce ``head`` (remembered per size and root)."""
        key = (head.size, head.root)
        known = self._matched.get(key)
        if known is None:
            root = self._range_hash(0, head.size)
            known = root is not None and hmac.compare_digest(root, head.root)
            self._matched[key] = known
        return known

    # ------------------------------------------------------------------- forks

    def _forks(self, valid: Sequence[_Head], hints: _Hints) -> list[Finding]:
        """Two signed heads that cannot both describe one append-only log (RFC 9162 2.1.4)."""
        findings: list[Finding] = []
        by_size: dict[int, list[_Head]] = {}
        for head in valid:
            by_size.setdefault(head.size, []).append(head)
        for size, group in sorted(by_size.items()):
            roots = {h.root for h in group}
            if len(roots) > 1:
                matching = [h.row_id for h in group if self._matches(h)]
                which = (
                    f"; the stored leaves match head #{matching[0]}"
                    if matching
                    else "; the stored leaves match neither"
                )
                findings.append(
                    Finding(
                        FindingKind.FORK,
                        f"{len(group)} signed heads of size {size} carry {len(roots)} different "
                        f"roots: the log key signed two histories{which}",
                        head_ids=tuple(h.row_id for h in group),
                    )
                )
        # Successive heads, in the order they were stored: the larger must extend the smaller.
        for before, after in itertools.pairwise(valid):
            if before.size == after.size:
                continue
            small, large = (before, after) if before.size < after.size else (after, before)
            verdict = self._consistent(small, large, hints)
            if verdict is False:
                findings.append(
                    Finding(
                        FindingKind.FORK,
                        f"head #{large.row_id} (size {large.size}) does not extend head "
                        f"#{small.row_id} (size {small.size}): no consistency proof exists, "
                        "so the history was rewritten between them",
                        head_ids=(before.row_id, after.row_id),
                    )
                )
        return findings

    def _consistent(self, small: _Head, large: _Head, hints: _Hints) -> bool | None:
        """True when a consistency proof verifies, False when none can, None when unknown.

        When the stored leaves reproduce the large head, the proof built from them is the
        only one there is (RFC 9162 section 2.1.4), so it decides alone; the node cache is
        consulted only when the leaves cannot.
        """
        if large.size <= self.leaf_count and self._matches(large):
            return self._proof_holds(
                small, large, self._tree.consistency_proof(small.size, large.size)
            )
        proofs: list[list[bytes]] = []
        if large.size <= self.leaf_count:
            proofs.append(self._tree.consistency_proof(small.size, large.size))
        large_tree_known = False
        from_cache = hints.consistency(small.size, large.size)
        if from_cache is not None:
            proofs.append(from_cache)
            cached_root = hints.ranges([(0, large.size)])[0]
            large_tree_known = cached_root is not None and hmac.compare_digest(
                cached_root, large.root
            )
        if any(self._proof_holds(small, large, proof) for proof in proofs):
            return True
        # With the large head's tree in hand (an authenticated cache), its consistency
        # proof is unique: when that proof fails, no proof exists.
        return False if large_tree_known else None

    @staticmethod
    def _proof_holds(small: _Head, large: _Head, proof: Sequence[bytes]) -> bool:
        try:
            merkle.verify_consistency(
                first_size=small.size,
                second_size=large.size,
                first_root=small.root,
                second_root=large.root,
                proof=proof,
            )
        except ProofError:
            return False
        return True

    # ------------------------------------------------------------------- leaves vs heads

    def _compare_roots(self, valid: Sequence[_Head], hints: _Hints) -> tuple[int, Finding | None]:
        """The attested size, and a finding for the first head the leaves do not reproduce."""
        matching = [h for h in valid if self._matches(h)]
        attested = max((h.size for h in matching), default=0)
        matched_sizes = {h.size for h in matching}
        failing = sorted(
            (h for h in valid if not self._matches(h)), key=lambda h: (h.size, h.position)
        )
        if not failing:
            return attested, None
        bad = failing[0]
        good = max((s for s in matched_sizes if s < bad.size), default=0)
        later = sorted({h.row_id for h in failing} - {bad.row_id})
        reference, located = self._locate_any(failing, hints)
        first_failing = (
            f"; the first head that fails is #{bad.row_id} (size {bad.size})"
            if reference is not bad and located.leaves
            else ""
        )
        context = (
            first_failing
            + (f" ({len(later)} more head(s) fail)" if later else "")
            + (
                f"; a signed head of size {attested} does match the stored leaves, so the log "
                "key signed two different histories"
                if attested >= bad.size
                else ""
            )
        )
        finding = self._classify(bad, reference, good, located, hints, valid, context)
        return attested, finding

    def _locate_any(self, failing: Sequence[_Head], hints: _Hints) -> tuple[_Head, _Located]:
        """Search against the largest failing heads first, then the smallest.

        A large head covers the most leaves, so the other end of a moved leaf is found
        too; the first differing leaf is the same for every head of one history.
        """
        largest = sorted(failing, key=lambda h: (-h.size, h.position))[:_LOCATE_ATTEMPTS]
        for head in [*largest, failing[0]]:
            located = self._locate(head, hints)
            if located.leaves:
                return head, located
        return failing[0], self._locate(failing[0], hints)

    def _locate(self, head: _Head, hints: _Hints) -> _Located:
        """Leaves whose stored hash differs from what ``head`` signed, found top-down.

        Each step needs the cached children of an authenticated node to hash to it; the
        children are then authenticated too (SHA-256 second-preimage resistance).
        """
        located = _Located()
        if not hints.available:
            located.unresolved = (0, head.size)
            return located
        stack: list[tuple[int, int, bytes]] = [(0, head.size, head.root)]
        while stack:
            lo, hi, expected = stack.pop()
            ours = self._range_hash(lo, hi)
            if ours is not None and hmac.compare_digest(ours, expected):
                continue
            if hi - lo == 1:
                located.leaves.append((lo, expected))
                if len(located.leaves) >= MAX_LOCATED_LEAVES:
                    located.truncated = True
                    return located
                continue
            split = lo + _largest_power_of_two_below(hi - lo)
            left, right = hints.ranges([(lo, split), (split, hi)])
            if (
                left is None
                or right is None
                or not hmac.compare_digest(merkle.node_hash(left, right), expected)
            ):
                located.unresolved = (lo, hi)
                return located
            stack.append((split, hi, right))
            stack.append((lo, split, left))
        return located

    def _signed_leaf(
        self, index: int, located: dict[int, bytes], hints: _Hints, valid: Sequence[_Head]
    ) -> bytes | None:
        """The leaf hash some signed head commits to at ``index``, via a cached inclusion proof."""
        if index in located:
            return located[index]
        for head in sorted(valid, key=lambda h: h.size):
            if head.size <= index:
                continue
            found = hints.leaf_proof(index, head.size)
            if found is None:
                continue
            leaf, path = found
            try:
                merkle.verify_inclusion(
                    leaf_hash=leaf, index=index, size=head.size, proof=path, root=head.root
                )
            except ProofError:
                continue
            return leaf
        return None

    def _classify(
        self,
        bad: _Head,
        reference: _Head,
        good: int,
        located: _Located,
        hints: _Hints,
        valid: Sequence[_Head],
        context: str,
    ) -> Finding:
        """Name what happened to the leaves that no longer reproduce head ``bad``."""
        if not located.leaves:
            return self._bounded(bad, good, located, context)
        positions = [index for index, _ in located.leaves]
        first = positions[0]
        kind, detail, others = self._shape(reference, located, hints, valid)
        return Finding(
            kind,
            detail + context,
            start=first,
            end=first + 1,
            exact=True,
            located_by=Location.AUTHENTICATED_NODES,
            other_indices=tuple(others),
            head_ids=tuple(dict.fromkeys(h.row_id for h in (bad, reference) if h.row_id)),
        )

    def _bounded(self, bad: _Head, good: int, located: _Located, context: str) -> Finding:
        """A finding when the node cache could not single out a leaf."""
        n = self.leaf_count
        ids = (bad.row_id,) if bad.row_id else ()
        lo, hi = located.unresolved or (0, bad.size)
        if max(lo, good) < min(hi, bad.size):
            lo, hi = max(lo, good), min(hi, bad.size)
        if n < bad.size:
            # Leaves are certainly missing; those between the last matching head and the
            # end of the log are not attested either.
            unattested = f"; leaves {lo}..{n - 1} are not attested either" if lo < n else ""
            return Finding(
                FindingKind.LOG_TRUNCATED,
                f"{bad.name} covers {bad.size} leaves but the log holds only {n}: "
                f"leaves {n}..{bad.size - 1} were removed{unattested}{context}",
                start=min(lo, n),
                end=bad.size,
                exact=lo >= n,
                located_by=Location.LEAF_COUNT if lo >= n else Location.HEAD_SIZES,
                head_ids=ids,
            )
        return Finding(
            FindingKind.LEAVES_CHANGED,
            f"the stored leaves do not reproduce {bad.name} (size {bad.size}): "
            f"a leaf in {lo}..{hi - 1} was changed, inserted, removed or moved{context}",
            start=lo,
            end=hi,
            exact=hi - lo == 1,
            located_by=Location.HEAD_SIZES,
            head_ids=ids,
        )

    def _shape(
        self, bad: _Head, located: _Located, hints: _Hints, valid: Sequence[_Head]
    ) -> tuple[FindingKind, str, Sequence[int]]:
        """Tell a truncation, insertion, deletion, reordering or modification apart."""
        n = self.leaf_count
        positions = [index for index, _ in located.leaves]
        first = positions[0]
        signed = dict(located.leaves)
        listed = ", ".join(map(str, positions))
        complete = located.unresolved is None and not located.truncated
        probes = positions[:_SHIFT_PROBES]
        stored = self._stored_leaf_hash
        inserted = [stored(p + 1) == signed[p] for p in probes if stored(p + 1) is not None]
        originals = {p: self._signed_leaf(p + 1, signed, hints, valid) for p in probes}
        deleted = [stored(p) == o for p, o in originals.items() if o is not None]
        kind = FindingKind.LEAVES_CHANGED
        more = "" if complete else " (and possibly more)"
        detail = f"leaves {listed}{more} differ from what {bad.name} signed"
        others: Sequence[int] = positions[1:]
        if first >= n:
            kind, others = FindingKind.LOG_TRUNCATED, ()
            detail = (
                f"{bad.name} covers {bad.size} leaves but the log holds only {n}: "
                f"leaves {n}..{bad.size - 1} were removed"
            )
        elif inserted and all(inserted):
            kind, others = FindingKind.LEAF_INSERTED, ()
            detail = (
                f"a leaf was inserted at index {first}: the leaves from there on are the ones "
                f"{bad.name} signed, shifted up by one"
            )
        elif deleted and all(deleted):
            kind, others = FindingKind.LEAF_DELETED, ()
            detail = (
                f"leaf {first} was removed: the leaves from there on are the ones "
                f"{bad.name} signed, shifted down by one"
            )
        elif (
            complete
            and len(positions) >= 2
            and Counter(stored(p) for p in positions) == Counter(signed[p] for p in positions)
        ):
            kind = FindingKind.LEAVES_REORDERED
            detail = f"leaves {listed} hold the leaves {bad.name} signed, in another order"
        elif complete and len(positions) == 1:
            kind = FindingKind.LEAF_MODIFIED
            detail = f"leaf {first} differs from the leaf {bad.name} signed"
        return kind, detail, others


# --------------------------------------------------------------------------- one call


def _as_stored(heads: Sequence[StoredHead | log_pb2.SignedTreeHead]) -> list[StoredHead]:
    return [
        h
        if isinstance(h, StoredHead)
        else StoredHead(row_id=i + 1, signed=h.SerializeToString(deterministic=True))
        for i, h in enumerate(heads)
    ]


def audit_log(
    leaves: Sequence[bytes],
    heads: Sequence[StoredHead | log_pb2.SignedTreeHead],
    keys: Sequence[TrustedLogKey],
    *,
    node_hints: merkle.NodeStore | None = None,
) -> LogAuditReport:
    """Audit a whole log held in memory: ``leaves[i]`` is leaf i, heads in stored order.

    Plain SignedTreeHead messages get row ids 1, 2, ... in the order given.
    """
    audit = LogAudit(keys)
    audit.add_leaves(list(enumerate(leaves)))
    return audit.finish(_as_stored(heads), node_hints)


def verify_log(
    leaves: Sequence[bytes],
    heads: Sequence[StoredHead | log_pb2.SignedTreeHead],
    keys: Sequence[TrustedLogKey],
    *,
    node_hints: merkle.NodeStore | None = None,
) -> None:
    """Raise ProofError naming the first finding unless the log audits clean."""
    report = audit_log(leaves, heads, keys, node_hints=node_hints)
    first = report.first
    if first is not None:
        raise ProofError(f"{first.kind.value} at {first.where()}: {first.detail}")
