"""Verify the transparency log through the gateway's API: for auditors without the database.

An auditor scoped to some institutions reads the entries of their institutions (and
the public ones) in full, and every other entry as its leaf hash only (SPEC P11):
enough to recompute every root and check every signed head, as the national auditor
does, without learning whom other institutions hold. The log key comes from the
directory, checked against the pinned directory key; nothing the gateway says is
trusted otherwise. The checks are the pure ones of ``sealpost.crypto.logaudit``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from sealpost.clients.staff import StaffClient
from sealpost.crypto.keyrecords import DirectoryPin
from sealpost.crypto.logaudit import LogAudit, LogAuditReport, StoredHead, TrustedLogKey
from sealpost.i18n import _
from sealpost.v1 import audit_pb2, log_pb2

#: Entries per GetEntries call (the gateway's limit).
ENTRIES_PER_CALL: Final = 1000
#: Heads per ListTreeHeads call (the gateway's limit).
HEADS_PER_CALL: Final = 1000

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RemoteReport:
    """The log check, and how much of the log the caller could read."""

    log: LogAuditReport
    readable: int
    hashed: int


def trusted_log_key(client: StaffClient, pin: DirectoryPin) -> TrustedLogKey:
    """The log key from the directory the gateway serves, checked against the pinned key."""
    log = client.directory(pin).log
    return TrustedLogKey(
        key_id=log.id,
        public_key=log.signing_key,
        valid_from_ms=log.not_before * 1000,
        valid_until_ms=log.not_after * 1000,
    )


def _heads(client: StaffClient) -> list[log_pb2.SignedTreeHead]:
    """Every stored head, in the order signed (paged by size: the log only grows)."""
    seen: set[bytes] = set()
    heads: list[log_pb2.SignedTreeHead] = []
    smallest = 0
    while True:
        reply: audit_pb2.ListTreeHeadsResponse = client.call(
            "audit",
            "ListTreeHeads",
            audit_pb2.ListTreeHeadsRequest(min_tree_size=smallest, limit=HEADS_PER_CALL),
        )
        new = [h for h in reply.tree_heads if h.SerializeToString(deterministic=True) not in seen]
        for head in new:
            seen.add(head.SerializeToString(deterministic=True))
            heads.append(head)
            smallest = max(smallest, log_pb2.TreeHead.FromString(head.tree_head).tree_size)
        if len(reply.tree_heads) < HEADS_PER_CALL or not new:
            return heads


def _entries(client: StaffClient, size: int) -> Iterator[log_pb2.LogEntry]:
    for start in range(0, size, ENTRIES_PER_CALL):
        reply: audit_pb2.GetEntriesResponse = client.call(
            "audit",
            "GetEntries",
            audit_pb2.GetEntriesRequest(start=start, end=min(size, start + ENTRIES_PER_CALL)),
        )
        yield from reply.entries


def verify_through_gateway(
    client: StaffClient, pin: DirectoryPin, progress: Progress | None = None
) -> RemoteReport:
    """Fetch every head and every entry the caller may read, and check the log."""
    say = progress or (lambda _line: None)
    key = trusted_log_key(client, pin)
    heads = _heads(client)
    size = max((log_pb2.TreeHead.FromString(h.tree_head).tree_size for h in heads), default=0)
    say(_("{heads} signed heads; reading {size} entries", heads=len(heads), size=size))
    audit = LogAudit([key])
    readable = hashed = 0
    run: list[tuple[int, bytes]] = []
    run_is_leaf = True

    def flush() -> None:
        if run:
            (audit.add_leaves if run_is_leaf else audit.add_leaf_hashes)(list(run))
            run.clear()

    for entry in _entries(client, size):
        is_leaf = not entry.leaf_hash
        if is_leaf != run_is_leaf:
            flush()
            run_is_leaf = is_leaf
        run.append((entry.index, entry.leaf if is_leaf else entry.leaf_hash))
        readable += is_leaf
        hashed += not is_leaf
    flush()
    stored = [
        StoredHead(row_id=i + 1, signed=h.SerializeToString(deterministic=True))
        for i, h in enumerate(heads)
    ]
    return RemoteReport(audit.finish(stored), readable, hashed)
