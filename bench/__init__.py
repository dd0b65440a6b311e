"""Sealpost benchmarks: each figure is printed next to a same-run reference.

A benchmark module is ``bench/bench_<name>.py`` with a ``run(quick: bool) ->
list[Result]``. ``python -m bench`` (``make bench``) runs them all, prints one
table and writes bench/results.json with the machine's core count, so that a
ratio to the reference can be quoted and compared across machines.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Result:
    """One measured figure and, where it has one, its same-run reference."""

    benchmark: str
    metric: str
    value: float
    unit: str
    reference: float | None = None
    reference_label: str = ""
    target: str = ""

    @property
    def ratio(self) -> float | None:
        """value / reference, when a reference was measured."""
        if self.reference is None or self.reference == 0:
            return None
        return self.value / self.reference

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the ratio included."""
        return {**asdict(self), "ratio": self.ratio}
