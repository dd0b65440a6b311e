"""Ordering the screening queue by signals: most weight first, then longest waiting.

The rule (docs/review.md, section 7.5): take the queue in age order (longest waiting
first). A message that screening reaches only because its regime screens all mail, and
in which triage found nothing, keeps exactly its place: triage never delays it (the
regime's mail is not suspect, and it must not wait longer for having nothing in it).
Every other place is refilled by the other messages, most weight first (the sum of
their signals' confidences), then longest waiting. So under a screening order, which is
about one detainee, messages with findings come first; under a regime that screens all,
a message with findings moves ahead only of other messages with findings. Nothing leaves
the queue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class Scored(Protocol):
    """A full report (``Report``) or what the queue shows of it (``sealed.Summary``)."""

    @property
    def score(self) -> float:
        """The sum of the signals' weights; 0 for a message without a finding."""
        ...


@dataclass(frozen=True)
class Queued:
    """A message waiting for a screener, with its triage report or summary."""

    message_id: str
    waiting_since: dt.datetime
    report: Scored
    #: True when only a regime that screens all mail puts it here (never delayed when
    #: triage found nothing); False under a screening order.
    screen_all: bool = True

    @property
    def keeps_place(self) -> bool:
        """Whether the message keeps its place in age order, whatever else is found."""
        return self.screen_all and self.report.score <= 0


def rank(queue: Sequence[Queued]) -> list[Queued]:
    """The queue in screening order."""
    by_age = sorted(queue, key=lambda q: (q.waiting_since, q.message_id))
    movable = sorted(
        (q for q in by_age if not q.keeps_place),
        key=lambda q: (-q.report.score, q.waiting_since, q.message_id),
    )
    refill = iter(movable)
    return [q if q.keeps_place else next(refill) for q in by_age]
