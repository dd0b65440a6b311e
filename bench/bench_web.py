"""Sealing in the browser's library next to the Python SDK: a 1 KiB text and a 2 MiB photo.

Runs bench/web_seal.mjs (the TypeScript library in clients/web/protocol, on Node.js and
libsodium's WebAssembly) and Python's ``seal_envelope`` on the same sizes, in the same
run, and reports the TypeScript time with the Python time as its reference. SPEC 6 asks
that a browser seal and send a 2 MiB photo in under a second. Needs the web library built
(``make web-build``; ``make web-bench`` does both).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from bench import Result
from bench.bench_envelope import _parties
from sealpost.crypto import _sodium
from sealpost.crypto.envelope import Part, seal_envelope

SCRIPT = Path(__file__).resolve().parent / "web_seal.mjs"
TEXT = "text/plain; charset=utf-8"


def _python_cases() -> dict[str, list[Part]]:
    return {
        "1 KiB text": [Part(TEXT, _sodium.random_bytes(1024))],
        "2 MiB photo": [
            Part(TEXT, b"Hier is de foto van zondag."),
            Part("image/jpeg", _sodium.random_bytes(2 * 1024 * 1024), "foto.jpg"),
        ],
    }


def _python_median_ms(quick: bool) -> dict[str, float]:
    now_ms = int(time.time() * 1000)
    sender, sender_record, _mailbox, mailbox_record = _parties(now_ms)
    medians: dict[str, float] = {}
    for label, parts in _python_cases().items():
        runs = 5 if quick else (200 if label == "1 KiB text" else 20)

        def seal(p: list[Part] = parts) -> bytes:
            envelope = seal_envelope(
                p,
                sender_keys=sender,
                sender_key_id=sender_record.id,
                recipients=[mailbox_record],
                now_ms=now_ms,
            )
            return envelope.SerializeToString()

        seal()
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            seal()
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        medians[label] = times[len(times) // 2]
    return medians


def _node_median_ms(quick: bool) -> dict[str, float]:
    node = shutil.which("node")
    if node is None:
        raise SystemExit("bench web needs Node.js (node) on the PATH")
    command = [node, str(SCRIPT), "--json", *(["--quick"] if quick else [])]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    results: dict[str, dict[str, float]] = json.loads(output)["results"]
    return {label: entry["median_ms"] for label, entry in results.items()}


def run(quick: bool) -> list[Result]:
    """Median time to seal and serialise each message, TypeScript against Python."""
    typescript = _node_median_ms(quick)
    python = _python_median_ms(quick)
    return [
        Result(
            "web",
            f"seal {label}, TypeScript library (Node.js)",
            typescript[label],
            "ms",
            reference=python[label],
            reference_label="Python SDK seal_envelope, same size",
            target="under 1,000 ms for 2 MiB (SPEC 6, with sending)" if "MiB" in label else "",
        )
        for label in python
    ]
