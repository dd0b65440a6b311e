"""``--workers`` / SEALPOST_WORKERS: validated like every other gateway setting."""

from __future__ import annotations

import pytest

from sealpost.gateway.config import MAX_WORKERS, GatewayConfig
from sealpost.gateway.errors import ConfigError


def test_one_worker_by_default() -> None:
    assert GatewayConfig.load({}, environ={}).workers == 1


def test_workers_from_flag_and_environment() -> None:
    assert GatewayConfig.load({"workers": "2"}, environ={}).workers == 2
    assert GatewayConfig.load({}, environ={"SEALPOST_WORKERS": "3"}).workers == 3
    assert GatewayConfig.load({"workers": "2"}, environ={"SEALPOST_WORKERS": "3"}).workers == 2


@pytest.mark.parametrize("raw", ["0", "-1", str(MAX_WORKERS + 1), "two", ""])
def test_bad_worker_counts_are_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="workers"):
        GatewayConfig.load({"workers": raw}, environ={})
