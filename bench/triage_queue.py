"""The screener's queue: how far triage's ranking moves planted messages to the front.

A queue of 1,000 messages is made from the labelled corpus (tests/vectors/triage): its
innocent messages (no label) and 3 % planted ones (messages with labels, all from one
set: the held-out set for the figure to quote, the development set beside it), each
waiting a random time up to three days, in random order (fixed seeds). Every message is
triaged with the corpus's watch lists and the queue is ordered with ``rank``. The figure
is how many planted messages are in the first 10 % of the ranked queue; its same-run
reference is how many are in the first 10 % of the same queue in age order (longest
waiting first), which is where a screener working oldest first would meet them.

Two kinds of queue, because ``rank`` treats them differently (docs/review.md, 7.5):
under a screening order every message may move, so messages with findings come first;
under a regime that screens all mail, a message without findings keeps its place, and
one with findings moves ahead only of others with findings. Each figure is the mean over
``rounds`` queues, one seed each, so that one lucky draw does not make the reference.
The detectors are the library's own: nothing here tunes them.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sealpost.clients.triage import Queued, Report, WatchMatcher, rank, triage
from sealpost.crypto.envelope import Part
from tests.vectors.triage import evaluate

#: The queue's size, the share planted in it, and the front a screener reaches first.
SIZE: Final = 1000
PLANTED_SHARE: Final = 0.03
FRONT_SHARE: Final = 0.10
#: Messages wait up to this long; the queue is seen at NOW.
LONGEST_WAIT: Final = dt.timedelta(days=3)
NOW: Final = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
#: The first queue's seed; round r uses SEED + r.
SEED: Final = 20260302


@dataclass(frozen=True)
class Message:
    """A corpus message and its triage report."""

    id: str
    planted: bool
    report: Report


@dataclass(frozen=True)
class Front:
    """Planted messages in the first 10 % of one queue, ranked and in age order."""

    planted: int
    ranked: int
    by_age: int
    #: Planted messages in the queue on which triage found something (score above 0).
    found: int


def corpus_reports(body: dict[str, Any]) -> dict[str, Message]:
    """Every corpus message triaged once, as a text part, with the corpus's watch lists."""
    matcher = WatchMatcher(evaluate.watch_lists(body))
    out: dict[str, Message] = {}
    for message in body["messages"]:
        part = Part("text/plain; charset=utf-8", message["text"].encode())
        out[message["id"]] = Message(
            message["id"], bool(message["expect"]), triage([part], matcher)
        )
    return out


def pools(body: dict[str, Any], planted_set: str) -> tuple[list[str], list[str]]:
    """Ids of the innocent messages (every set) and of the planted ones of ``planted_set``."""
    innocent = [m["id"] for m in body["messages"] if not m["expect"]]
    planted = [m["id"] for m in body["messages"] if m["expect"] and m["set"] == planted_set]
    if not innocent or not planted:
        raise ValueError(f"the corpus has no innocent or no planted messages in {planted_set}")
    return innocent, planted


def _draw(pool: Sequence[str], count: int, rng: random.Random) -> list[str]:
    """``count`` ids, each of the pool once (shuffled) before any comes again."""
    out: list[str] = []
    while len(out) < count:
        batch = list(pool)
        rng.shuffle(batch)
        out.extend(batch)
    return out[:count]


def queue(
    messages: dict[str, Message],
    innocent: Sequence[str],
    planted: Sequence[str],
    *,
    seed: int,
    screen_all: bool,
    size: int = SIZE,
    share: float = PLANTED_SHARE,
) -> tuple[list[Queued], set[str]]:
    """One queue of ``size`` messages in random order, and the queue ids of the planted ones."""
    rng = random.Random(seed)
    count = round(size * share)
    chosen = _draw(planted, count, rng) + _draw(innocent, size - count, rng)
    rng.shuffle(chosen)
    longest = LONGEST_WAIT.total_seconds()
    items: list[Queued] = []
    marked: set[str] = set()
    for n, corpus_id in enumerate(chosen):
        message = messages[corpus_id]
        queue_id = f"q{n:05d}-{corpus_id}"
        waited = dt.timedelta(seconds=rng.uniform(0, longest))
        items.append(Queued(queue_id, NOW - waited, message.report, screen_all=screen_all))
        if message.planted:
            marked.add(queue_id)
    return items, marked


def front(items: Sequence[Queued], planted: set[str], share: float = FRONT_SHARE) -> Front:
    """Planted messages in the first ``share`` of the ranked queue and of the age order."""
    reach = round(len(items) * share)
    by_age = sorted(items, key=lambda q: (q.waiting_since, q.message_id))
    ranked = rank(items)
    return Front(
        planted=len(planted),
        ranked=sum(q.message_id in planted for q in ranked[:reach]),
        by_age=sum(q.message_id in planted for q in by_age[:reach]),
        found=sum(q.message_id in planted and q.report.score > 0 for q in items),
    )


def measure(
    body: dict[str, Any],
    messages: dict[str, Message],
    planted_set: str,
    *,
    screen_all: bool,
    rounds: int,
) -> list[Front]:
    """One ``Front`` per round, queue r made with seed SEED + r."""
    innocent, planted = pools(body, planted_set)
    out = []
    for r in range(rounds):
        items, marked = queue(messages, innocent, planted, seed=SEED + r, screen_all=screen_all)
        out.append(front(items, marked))
    return out
