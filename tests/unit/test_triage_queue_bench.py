"""The screener's-queue benchmark (bench/triage_queue.py): how its queues are made and counted.

The counting is checked on small queues whose answer is known; the queues on the corpus
are checked for their make-up (size, planted share, set, seed) and for the ranking rule
the figures rest on: under a regime that screens all, with no innocent message found,
the ranked front is exactly the age-ordered one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from bench import triage_queue
from sealpost.clients.triage import Queued
from tests.vectors.triage import evaluate


@dataclass(frozen=True)
class Scored:
    score: float


@pytest.fixture(scope="module")
def body() -> dict[str, Any]:
    return evaluate.load()


@pytest.fixture(scope="module")
def messages(body: dict[str, Any]) -> dict[str, triage_queue.Message]:
    return triage_queue.corpus_reports(body)


def _waiting(minutes: int) -> dt.datetime:
    return triage_queue.NOW - dt.timedelta(minutes=minutes)


def test_front_counts_planted_messages_ranked_and_by_age() -> None:
    # Twenty messages; the two planted ones waited least, one of them has a finding.
    items = [Queued(f"m{n:02d}", _waiting(100 - n), Scored(0.0), screen_all=False)
             for n in range(18)]  # fmt: skip
    items.append(Queued("found", _waiting(1), Scored(0.9), screen_all=False))
    items.append(Queued("missed", _waiting(2), Scored(0.0), screen_all=False))
    got = triage_queue.front(items, {"found", "missed"})
    assert got == triage_queue.Front(planted=2, ranked=1, by_age=0, found=1)
    # Under a regime that screens all, the message with a finding keeps its late place.
    kept = [Queued(q.message_id, q.waiting_since, q.report) for q in items]
    assert triage_queue.front(kept, {"found", "missed"}).ranked == 0
    # The oldest two are planted: the age order reaches both; ranked, the message with a
    # finding takes one of the two front places.
    old = triage_queue.front(items, {"m00", "m01"})
    assert (old.ranked, old.by_age, old.found) == (1, 2, 0)


def test_a_queue_is_1000_messages_with_30_planted_from_one_set(
    body: dict[str, Any], messages: dict[str, triage_queue.Message]
) -> None:
    innocent, planted = triage_queue.pools(body, "held-out")
    held_out = {m["id"] for m in body["messages"] if m["set"] == "held-out"}
    assert set(planted) <= held_out
    assert len(planted) == 18
    assert not set(innocent) & set(planted)
    items, marked = triage_queue.queue(messages, innocent, planted, seed=7, screen_all=False)
    assert len(items) == 1000
    assert len({q.message_id for q in items}) == 1000
    assert len(marked) == 30
    corpus_ids = {q.message_id.split("-", 1)[1] for q in items if q.message_id in marked}
    assert corpus_ids == set(planted)  # every planted message once before any twice
    assert all(not messages[i].planted for i in innocent)
    ages = [triage_queue.NOW - q.waiting_since for q in items]
    assert min(ages) >= dt.timedelta(0)
    assert max(ages) <= triage_queue.LONGEST_WAIT
    # A fixed seed makes the same queue; another seed another.
    again, _ = triage_queue.queue(messages, innocent, planted, seed=7, screen_all=False)
    other, _ = triage_queue.queue(messages, innocent, planted, seed=8, screen_all=False)
    assert again == items
    assert [q.message_id for q in other] != [q.message_id for q in items]
    with pytest.raises(ValueError, match="no innocent or no planted"):
        triage_queue.pools(body, "no-such-set")


def test_the_figures_rest_on_the_ranking_rule(
    body: dict[str, Any], messages: dict[str, triage_queue.Message]
) -> None:
    # docs/review.md quotes this: no innocent corpus message has a finding.
    assert not [m.id for m in messages.values() if not m.planted and m.report.score > 0]
    ordered = triage_queue.measure(body, messages, "held-out", screen_all=False, rounds=3)
    every = triage_queue.measure(body, messages, "held-out", screen_all=True, rounds=3)
    for order, screen_all in zip(ordered, every, strict=True):
        # The same queues (same seeds), so the age order holds the same planted messages.
        assert order.by_age == screen_all.by_age
        # Under an order every planted message with a finding reaches the front ...
        assert order.ranked >= order.found > 0
        # ... under a regime that screens all, none passes a message without findings.
        assert screen_all.ranked == screen_all.by_age
