"""The gateway's in-memory facts: bounded, and a verified key only for its purpose and window.

What a send takes from memory (services/common.py ``known_key``, ``remember``) must never
outlive what can change: tests/integration/test_send_known_facts.py shows revocations,
replaced keys and transfers are seen at once on a real gateway; these check the cache's
own rules.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import pytest

from sealpost.crypto.keyrecords import VerifiedKey
from sealpost.gateway.services import common
from sealpost.gateway.services.context import Context
from sealpost.v1 import keys_pb2

DEVICE = keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE
NOW_MS = 1_767_225_600_000


def _key(key_id: bytes, *, not_after_s: int = NOW_MS // 1000 + 3600) -> VerifiedKey:
    return VerifiedKey(
        id=key_id,
        purpose=DEVICE,
        subject="acct-1",
        encryption_key=b"e" * 32,
        signing_key=b"s" * 32,
        not_before=0,
        not_after=not_after_s,
        issuer_key_id=b"d" * 32,
    )


def _context(*keys: VerifiedKey) -> Context:
    return cast(Context, SimpleNamespace(verified_keys={key.id: key for key in keys}))


def test_a_known_key_is_given_for_its_purpose_within_its_window_only() -> None:
    current, expired = _key(b"k" * 32), _key(b"x" * 32, not_after_s=NOW_MS // 1000)
    ctx = _context(current, expired)
    assert common.known_key(ctx, current.id, DEVICE, NOW_MS) is current
    assert common.known_key(ctx, current.id, keys_pb2.KEY_PURPOSE_MAILBOX, NOW_MS) is None
    assert common.known_key(ctx, expired.id, DEVICE, NOW_MS) is None
    assert common.known_key(ctx, b"u" * 32, DEVICE, NOW_MS) is None


def test_a_full_cache_is_emptied_before_the_next_fact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "FACT_CACHE_SIZE", 3)
    cache: dict[bytes, str] = {}
    for i in range(3):
        common.remember(cache, bytes([i]), f"d-{i}")
    assert len(cache) == 3
    common.remember(cache, b"\x09", "d-9")
    assert cache == {b"\x09": "d-9"}
