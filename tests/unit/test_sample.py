"""The escrow audit's sample: drawn from a tree head, uniform, reproducible, bounded."""

from __future__ import annotations

from collections import Counter

import pytest

from sealpost.crypto.errors import FormatError, LimitError
from sealpost.crypto.sample import MAX_SAMPLE, escrow_audit_sample

ROOT = bytes(range(32))


def test_the_same_head_draws_the_same_sample() -> None:
    first = escrow_audit_sample(ROOT, 1000, 500, 20)
    assert first == escrow_audit_sample(ROOT, 1000, 500, 20)
    assert len(first) == len(set(first)) == 20
    assert all(0 <= p < 500 for p in first)


def test_another_root_or_size_draws_another_sample() -> None:
    base = escrow_audit_sample(ROOT, 1000, 500, 20)
    assert escrow_audit_sample(bytes(32), 1000, 500, 20) != base
    assert escrow_audit_sample(ROOT, 1001, 500, 20) != base


def test_a_larger_sample_extends_a_smaller_one() -> None:
    assert escrow_audit_sample(ROOT, 7, 50, 10)[:5] == escrow_audit_sample(ROOT, 7, 50, 5)


def test_a_small_population_is_taken_whole() -> None:
    assert sorted(escrow_audit_sample(ROOT, 3, 4, 10)) == [0, 1, 2, 3]
    assert escrow_audit_sample(ROOT, 3, 0, 10) == []


def test_positions_are_close_to_uniform() -> None:
    counts: Counter[int] = Counter()
    for size in range(2000):
        counts.update(escrow_audit_sample(ROOT, size, 10, 1))
    assert set(counts) == set(range(10))
    assert min(counts.values()) > 150  # 200 expected each


def test_limits() -> None:
    with pytest.raises(LimitError):
        escrow_audit_sample(ROOT, 1, 10, MAX_SAMPLE + 1)
    with pytest.raises(LimitError):
        escrow_audit_sample(ROOT, 1, 10, 0)
    with pytest.raises(FormatError):
        escrow_audit_sample(b"short", 1, 10, 1)
