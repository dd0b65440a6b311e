"""docs/operations.md, section 13, names every metric the code serves and no other."""

from __future__ import annotations

import re
from typing import cast

from prometheus_client import CollectorRegistry

from sealpost.clients.terminal.intake import IntakeLoop, IntakeSummary
from sealpost.clients.terminal.metrics import TerminalMetrics
from sealpost.gateway.metrics import GatewayMetrics
from tests.conftest import REPO_ROOT

_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


class _Loop:
    summary = IntakeSummary()
    waiting_for_key_server = False


def _families(registry: CollectorRegistry) -> dict[str, str]:
    """Metric family names (as scraped: counters with ``_total``) and their types."""
    found = {}
    for family in registry.collect():
        if family.name.startswith("sealpost_"):
            name = family.name + ("_total" if family.type == "counter" else "")
            found[name] = family.type
    return found


def _section() -> str:
    document = (REPO_ROOT / "docs" / "operations.md").read_text()
    start = document.index("## 13. Monitoring: metrics, alerts and traces")
    return document[start : document.index("\n## 14.", start)]


def _served() -> dict[str, str]:
    terminal = TerminalMetrics()
    terminal.follow(cast(IntakeLoop, _Loop()))
    return {**_families(GatewayMetrics().registry), **_families(terminal.registry)}


def test_every_metric_served_is_in_the_table_with_its_type() -> None:
    section = _section()
    for name, kind in _served().items():
        row = re.search(rf"^\| `{name}` \| (\w+) \|", section, re.MULTILINE)
        assert row is not None, f"{name} is not in the tables of docs/operations.md, section 13"
        assert row.group(1) == kind, name


def test_every_metric_the_section_names_is_served() -> None:
    served = {name.removesuffix("_total") for name in _served()}
    for mentioned in set(re.findall(r"\bsealpost_[a-z_]+", _section())):
        base = mentioned
        for suffix in _SUFFIXES:
            base = base.removesuffix(suffix)
        assert base in served, f"docs/operations.md names {mentioned}, which nothing serves"
