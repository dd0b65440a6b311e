"""Which escrow key versions retention may retire: only those whose every message is too old."""

from __future__ import annotations

from datetime import timedelta

from sealpost.escrow.client import KeyInfo

DAY = 86_400


def _info(created: dict[int, int], min_decryption: int = 1) -> KeyInfo:
    versions = tuple(v for v in sorted(created) if v >= min_decryption)
    return KeyInfo(
        name="escrow",
        key_type="aes256-gcm96",
        derived=True,
        exportable=False,
        allow_plaintext_backup=False,
        deletion_allowed=False,
        latest_version=max(created),
        min_decryption_version=min_decryption,
        min_encryption_version=min_decryption,
        min_available_version=min_decryption,
        available_versions=versions,
        auto_rotate_period=timedelta(days=30),
        created_at=tuple(sorted(created.items())),
    )


def test_a_version_is_kept_until_its_successor_is_older_than_the_cutoff() -> None:
    # v1 used days 0-30, v2 days 30-60, v3 since day 60; today is day 100.
    info = _info({1: 0, 2: 30 * DAY, 3: 60 * DAY})
    assert info.retirable_below(10 * DAY) == 1  # keep 90 days: v1's messages are still young
    assert info.retirable_below(45 * DAY) == 2  # keep 55 days: v1 ended on day 30
    assert info.retirable_below(70 * DAY) == 3  # v2 ended on day 60


def test_the_latest_version_is_never_retired() -> None:
    info = _info({1: 0, 2: 30 * DAY})
    assert info.retirable_below(1000 * DAY) == 2


def test_retention_never_goes_back() -> None:
    info = _info({2: 30 * DAY, 3: 60 * DAY, 4: 90 * DAY}, min_decryption=2)
    assert info.retirable_below(10 * DAY) == 2


def test_unknown_creation_times_retire_nothing() -> None:
    info = _info({1: 0, 2: 30 * DAY})
    info = KeyInfo(**{**info.__dict__, "created_at": ()})
    assert info.retirable_below(1000 * DAY) == 1
