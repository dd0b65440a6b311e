"""Run every benchmark in bench/ (or those named) and report them together."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path

from bench import Result

BENCH_DIR = Path(__file__).resolve().parent


def available() -> list[str]:
    """Names of the benchmark modules, without the bench_ prefix."""
    return sorted(p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py"))


def render(results: list[Result]) -> str:
    """A plain-text table of the results."""
    rows = [("benchmark", "metric", "value", "unit", "reference", "ratio", "target")]
    for r in results:
        rows.append(
            (
                r.benchmark,
                r.metric,
                f"{r.value:,.3f}",
                r.unit,
                f"{r.reference:,.3f} ({r.reference_label})" if r.reference is not None else "",
                f"{r.ratio:.3f}" if r.ratio is not None else "",
                r.target,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    """Parse arguments, run, print, write bench/results.json."""
    parser = argparse.ArgumentParser(description="Run Sealpost's benchmarks.")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {available()})")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results.json")
    args = parser.parse_args()
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    results: list[Result] = []
    load: dict[str, dict[str, list[float]]] = {}
    for name in names:
        print(f"running {name} ... (load average {_load()})", file=sys.stderr, flush=True)
        module = importlib.import_module(f"bench.bench_{name}")
        before = list(os.getloadavg())
        results.extend(module.run(quick=args.quick))
        load[name] = {"before": before, "after": list(os.getloadavg())}
    print(f"machine: {os.cpu_count()} cores; load average (1/5/15 min) at the end: {_load()}")
    print(render(results))
    report = {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        # The machine is shared: the 1/5/15-minute load average around each benchmark.
        "load_average": load,
        "quick": args.quick,
        "results": [r.as_dict() for r in results],
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
