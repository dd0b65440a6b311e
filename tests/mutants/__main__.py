"""``python -m tests.mutants``: run every mutant (or those named) and report each one.

Exit code 0 when every mutant was killed, 1 when one survived or its run failed,
2 when the tests fail before any mutation (nothing can be learned then).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.mutants.catalogue import MUTANTS
from tests.mutants.runner import (
    Mutant,
    Result,
    baseline,
    install_signal_handlers,
    recover,
    run_mutant,
)


def _select(names: Sequence[str]) -> list[Mutant]:
    if not names:
        return list(MUTANTS)
    known = {m.name: m for m in MUTANTS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"no such mutant: {', '.join(unknown)} (see --list)")
    return [known[n] for n in names]


def _markdown(results: Sequence[Result]) -> str:
    lines = [
        "| # | mutant | file | breaks | killed by | time |",
        "|---|---|---|---|---|---|",
    ]
    for number, result in enumerate(results, 1):
        mutant = result.mutant
        killer = result.detail if result.outcome == "killed" else result.outcome.upper()
        lines.append(
            f"| {number} | `{mutant.name}` | `{mutant.path}` | {mutant.breaks} "
            f"| `{killer}` | {result.seconds:.1f} s |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the mutants; print one line per mutant and a summary."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.mutants",
        description="Break each security check in turn and check that its tests fail.",
    )
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the first run of the tests on the unmutated code",
    )
    parser.add_argument("--markdown", type=Path, help="also write the result table here")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    args = parser.parse_args(argv)

    restored = recover()
    if restored is not None:
        print(f"restored {restored}, left mutated by an interrupted run")
    mutants = _select(args.names)
    if args.list:
        for mutant in mutants:
            print(f"{mutant.name:40} {mutant.breaks:8} {mutant.path}")
            print(f"{'':40} {mutant.effect}")
        return 0

    install_signal_handlers()
    started = time.monotonic()
    if not args.no_baseline:
        ok, output, seconds = baseline(mutants)
        if not ok:
            print(output)
            print("the tests fail on the unmutated code: fix that first", file=sys.stderr)
            return 2
        print(f"baseline: the tests pass unmutated ({seconds:.1f} s)")
    results: list[Result] = []
    for number, mutant in enumerate(mutants, 1):
        result = run_mutant(mutant)
        results.append(result)
        print(
            f"[{number:2}/{len(mutants)}] {result.outcome:8} {result.seconds:6.1f} s  "
            f"{mutant.name:40} {mutant.breaks:8} {result.detail}",
            flush=True,
        )
    total = time.monotonic() - started
    killed = sum(r.outcome == "killed" for r in results)
    print(f"{killed} of {len(results)} mutants killed in {total:.0f} s")
    for result in results:
        if result.outcome != "killed":
            print(
                f"  {result.outcome.upper()}: {result.mutant.name} ({result.mutant.path}): "
                f"{result.mutant.effect} {result.detail}".rstrip()
            )
    if args.markdown is not None:
        args.markdown.write_text(_markdown(results) + "\n")
    if args.json is not None:
        document = {
            "seconds": round(total, 1),
            "results": [
                {
                    "mutant": r.mutant.name,
                    "outcome": r.outcome,
                    "seconds": round(r.seconds, 1),
                    "detail": r.detail,
                }
                for r in results
            ],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
