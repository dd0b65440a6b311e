"""Run the pure log check (sealpost.crypto.logaudit) over the gateway's database.

Heads are read before leaves: the log only grows, so every head read covers
leaves that are already stored. Leaves stream in batches; on large logs their
canonical decoding runs in worker processes while the main process hashes.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Final

from sqlalchemy import Connection

from sealpost.clients.audit import database
from sealpost.crypto.logaudit import (
    Finding,
    LogAudit,
    LogAuditReport,
    TrustedLogKey,
    check_leaf_encodings,
)

#: Below this many leaves, decoding in the main process is faster than starting workers.
PARALLEL_MIN_LEAVES: Final = 50_000
#: Seconds between progress lines.
PROGRESS_INTERVAL_S: Final = 2.0

Progress = Callable[[str], None]


def _silent(_line: str) -> None:
    return None


def verify_database(
    connection: Connection,
    keys: Sequence[TrustedLogKey],
    *,
    jobs: int = 1,
    use_node_cache: bool = True,
    progress: Progress = _silent,
) -> LogAuditReport:
    """Check every stored leaf and head; the node cache only helps locate a difference."""
    heads = database.stored_heads(connection)
    total = database.leaf_count(connection)
    progress(f"{len(heads)} signed heads, {total} leaves to check")
    parallel = jobs > 1 and total >= PARALLEL_MIN_LEAVES
    audit = LogAudit(keys, check_encodings=not parallel)
    started = last = time.monotonic()
    pool: ProcessPoolExecutor | None = None
    if parallel:
        pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("forkserver"))
    pending: deque[Future[list[Finding]]] = deque()
    try:
        for batch in database.leaf_batches(connection):
            audit.add_leaves(batch)
            if pool is not None:
                pending.append(pool.submit(check_leaf_encodings, batch))
                while len(pending) > 2 * jobs:
                    audit.add_findings(pending.popleft().result())
            now = time.monotonic()
            if now - last >= PROGRESS_INTERVAL_S:
                last = now
                progress(f"leaves: {audit.leaf_count}/{total} ({now - started:.0f} s)")
        while pending:
            audit.add_findings(pending.popleft().result())
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    progress(f"leaves: {audit.leaf_count}/{total} hashed; checking heads")
    hints = database.ReadOnlyNodes(connection) if use_node_cache else None
    report = audit.finish(heads, hints)
    progress(f"done in {time.monotonic() - started:.1f} s")
    return report
