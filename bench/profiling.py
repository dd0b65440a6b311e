"""Sample the gateway process with py-spy while a benchmark runs, and summarise the samples.

Set ``SEALPOST_BENCH_PROFILE`` to a folder and the benchmarks that start a gateway
(send, national_day) record it with ``py-spy record`` during their timed phase, as a
collapsed-stack file ``<label>.txt`` (flame-graph tools and speedscope read it). Then

    python -m bench.profiling SEALPOST_BENCH_PROFILE/<label>.txt [--top 40]

prints the functions with the most samples: on their own (self) and with what they
call (inclusive). Only the thread holding the GIL is sampled (``--gil``): the gateway
is one Python process, so that thread is the one using the interpreter's CPU, and a
thread waiting for the GIL (or, on a loaded machine, for a core) does not count.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV = "SEALPOST_BENCH_PROFILE"
RATE = 250


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: `make venv` installs the development tools")
    return found


@contextmanager
def profiled(pid: int, label: str) -> Iterator[None]:
    """Record ``pid`` with py-spy while the block runs, if SEALPOST_BENCH_PROFILE is set."""
    folder = os.environ.get(ENV)
    if not folder:
        yield
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    output = Path(folder) / f"{label}.txt"
    recorder = subprocess.Popen(
        [
            _py_spy(),
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(RATE),
            "--gil",
            "--subprocesses",  # the worker processes of ``--workers``
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        try:
            recorder.wait(60)
        except subprocess.TimeoutExpired:
            recorder.kill()
        print(f"profile: {output}", file=sys.stderr)


def _frame_name(frame: str) -> str:
    """``function (path:line)`` -> ``function (file)``, so lines of one function add up."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if parts else path
    return f"{name} ({short})"


def summarise(path: Path, top: int) -> str:
    """The ``top`` functions by self and by inclusive samples, as text."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples ({path.name})", "", "self %   function"]
    lines += [f"{100 * n / total:6.1f}   {name}" for name, n in own.most_common(top)]
    lines += ["", "incl %   function"]
    lines += [f"{100 * n / total:6.1f}   {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    """Print the summary of a collapsed-stack file."""
    parser = argparse.ArgumentParser(description="Summarise a py-spy collapsed-stack profile.")
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    print(summarise(args.profile, args.top))


if __name__ == "__main__":
    main()
