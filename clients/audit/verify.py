"""Run the pure log check (sealpost.crypto.logaudit) over the gateway's database.

Heads (and their cosignatures) are read before leaves: the log only grows, so every
head read covers leaves that are already stored. Leaves stream in batches; on large logs their
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
    PinnedHead,
    SeenLeaves,
    TailPolicy,
    TrustedLogKey,
    TrustedWitness,
    check_leaf_encodings,
)
from sealpost.i18n import _

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
    pinned: Sequence[PinnedHead] = (),
    seen: Sequence[SeenLeaves] = (),
    tail: TailPolicy | None = None,
    witnesses: Sequence[TrustedWitness] = (),
) -> LogAuditReport:
    """Check every stored leaf and head; the node cache only helps locate a difference.

    ``pinned`` heads and ``seen`` leaves are held to the stored log, the ``tail`` policy
    judges leaves after the newest head, and cosignatures by ``witnesses`` are checked
    (sealpost.crypto.logaudit, ``LogAudit.finish``).
    """
    heads = database.stored_heads(connection)
    cosignatures = database.stored_cosignatures(connection)
    total = database.leaf_count(connection)
    progress(_("{heads} signed heads, {total} leaves to check", heads=len(heads), total=total))
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
                progress(
                    _(
                        "leaves: {done}/{total} ({seconds:.0f} s)",
                        done=audit.leaf_count,
                        total=total,
                        seconds=now - started,
                    )
                )
        while pending:
            audit.add_findings(pending.popleft().result())
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    progress(_("leaves: {done}/{total} hashed; checking heads", done=audit.leaf_count, total=total))
    hints = database.ReadOnlyNodes(connection) if use_node_cache else None
    report = audit.finish(
        heads,
        hints,
        pinned=pinned,
        seen=seen,
        tail=tail,
        cosignatures=cosignatures,
        witnesses=witnesses,
    )
    progress(_("done in {seconds:.1f} s", seconds=time.monotonic() - started))
    return report
