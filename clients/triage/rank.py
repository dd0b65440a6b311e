"""Ordering the screening queue by signals without delaying any message that has none.

The rule (docs/review.md, section 7.5): take the queue in age order (longest waiting
first). Messages without a finding keep exactly their place in it. The places held by
messages with findings are refilled by those same messages, most weight first (the sum of
their signals' confidences), then longest waiting. A message with findings moves ahead
only of other messages with findings, and nothing leaves the queue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sealpost.clients.triage.signals import Report


@dataclass(frozen=True)
class Queued:
    """A message waiting for a screener, with its triage report."""

    message_id: str
    waiting_since: dt.datetime
    report: Report


def rank(queue: Sequence[Queued]) -> list[Queued]:
    """The queue in screening order."""
    by_age = sorted(queue, key=lambda q: (q.waiting_since, q.message_id))
    flagged = sorted(
        (q for q in by_age if q.report.score > 0),
        key=lambda q: (-q.report.score, q.waiting_since, q.message_id),
    )
    refill = iter(flagged)
    return [next(refill) if q.report.score > 0 else q for q in by_age]
