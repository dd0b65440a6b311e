"""Small statistics the reports share: nearest-rank percentiles of durations."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def nearest_rank(ordered: Sequence[float], share: float) -> float:
    """The nearest-rank percentile ``share`` (0.5 the median) of sorted, non-empty values."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def spread(values: Iterable[float]) -> tuple[int, float | None, float | None]:
    """How many values, their median and their 90th percentile (None when there are none)."""
    ordered = sorted(values)
    if not ordered:
        return 0, None, None
    return len(ordered), nearest_rank(ordered, 0.5), nearest_rank(ordered, 0.9)
