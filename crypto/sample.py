"""Which escrowed messages an escrow audit checks: a sample that a signed tree head draws.

A terminal could hand in an escrow blob that does not open to the message's key, and
nothing would notice until a screener needed it. An escrow audit decrypts the escrowed
keys of a sample of messages and checks each against the sender's key commitment. The
sample must not be chosen by whoever wrote the blobs, so it is drawn from the root of a
signed tree head that covers them: position j of the draw is

    SHA-256(LP("sealpost/v1/escrow-audit/sample") || LP(root) || U64(tree_size) || U64(j))

read as a big-endian 64-bit integer from its first 8 bytes, kept only below the largest
multiple of the population (so every position is equally likely), reduced modulo the
population, and skipped when already drawn. docs/audit.md, "Escrow audit".
"""

from __future__ import annotations

from typing import Final

from sealpost.crypto import domains, merkle
from sealpost.crypto._framing import framed_sha256
from sealpost.crypto.errors import FormatError, LimitError

#: The most messages one escrow audit may decrypt keys of, per tree head.
MAX_SAMPLE: Final = 100
_SPAN: Final = 2**64


def escrow_audit_sample(root: bytes, tree_size: int, population: int, count: int) -> list[int]:
    """``count`` distinct positions in ``range(population)``, in the order drawn.

    ``root`` and ``tree_size`` are a verified tree head's; fewer positions come back only
    when the population is smaller than ``count``.
    """
    if len(root) != merkle.HASH_SIZE:
        raise FormatError(f"a tree root is {merkle.HASH_SIZE} bytes")
    if not 0 < count <= MAX_SAMPLE:
        raise LimitError(f"an escrow audit samples 1 to {MAX_SAMPLE} messages")
    if population < 0 or tree_size < 0:
        raise FormatError("sizes are not negative")
    wanted = min(count, population)
    limit = _SPAN - _SPAN % population if population else 0
    drawn: list[int] = []
    seen: set[int] = set()
    draw = 0
    while len(drawn) < wanted:
        digest = framed_sha256(domains.ESCROW_AUDIT_SAMPLE, [root, tree_size, draw])
        draw += 1
        value = int.from_bytes(digest[:8], "big")
        if value >= limit:
            continue
        position = value % population
        if position not in seen:
            seen.add(position)
            drawn.append(position)
    return drawn
