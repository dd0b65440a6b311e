"""The browser's library next to the Python SDK: a 1 KiB text and a 2 MiB photo.

Sealing: bench/web_seal.mjs (the TypeScript library in clients/web/protocol, on Node.js
and libsodium's WebAssembly) against Python's ``seal_envelope`` on the same sizes.
Sending: seal, send and prove the receipt against a real OpenBao and gateway (SQLite),
the TypeScript library over the browser port (Connect, the web interop driver's
``bench-send``) against the Python SDK's ``send`` over gRPC, to the same gateway in the
same run. Each TypeScript time is reported with the Python time as its reference. SPEC 6
asks that a browser seal and send a 2 MiB photo in under a second. Needs the web library
built (``make web-build``; ``make web-bench`` does both).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench import Result
from bench.bench_envelope import _parties
from sealpost.crypto import _sodium
from sealpost.crypto.envelope import Part, seal_envelope

SCRIPT = Path(__file__).resolve().parent / "web_seal.mjs"
DRIVER = Path(__file__).resolve().parent.parent / "clients/web/protocol/dist/interop/relative.js"
DETAINEE = "bench-web-d"
INSTITUTION = "bench-web"
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


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise SystemExit("bench web needs Node.js (node) on the PATH")
    return node


def _node_median_ms(quick: bool) -> dict[str, float]:
    node = _node()
    command = [node, str(SCRIPT), "--json", *(["--quick"] if quick else [])]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    results: dict[str, dict[str, float]] = json.loads(output)["results"]
    return {label: entry["median_ms"] for label, entry in results.items()}


def _send_medians_ms(quick: bool) -> tuple[dict[str, float], dict[str, float]]:
    """(TypeScript over Connect, Python SDK over gRPC) medians of seal + send + proof."""
    from sealpost._internal.devservers import (  # noqa: PLC0415 - servers only for this part
        OpenBaoDevServer,
        gateway_directory_pin,
    )
    from sealpost._internal.stack import (  # noqa: PLC0415
        approve_all,
        bootstrap_openbao,
        running_stack,
        setup_institutions,
    )

    if not DRIVER.is_file():
        raise SystemExit(f"{DRIVER} is missing: run make web-build")
    runs = 3 if quick else 10
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        work = Path(tmp)
        with OpenBaoDevServer(work / "bao") as bao:
            keyserver = bootstrap_openbao(bao)
            with running_stack(
                work / "gateway",
                bao,
                keyserver,
                f"sqlite:///{work / 'bench.db'}",
                {"SEALPOST_SEND_RATE_PER_MINUTE": "100000"},
            ) as stack:
                gateway = stack.gateway
                admin, _terminals = setup_institutions(stack, [(DETAINEE, INSTITUTION, "regular")])
                (work / "ca.pem").write_bytes(gateway.ca_pem)
                env = {
                    "PATH": os.environ.get("PATH", ""),
                    "NODE_EXTRA_CA_CERTS": str(work / "ca.pem"),
                    "SEALPOST_WEB_URL": gateway.web_url,
                    "SEALPOST_INTEROP_DIR": str(work / "device"),
                    "SEALPOST_INTEROP_PASSPHRASE": "bench passphrase, not secret",
                    "SEALPOST_DIRECTORY_PIN": gateway_directory_pin(gateway.state_dir).hex(),
                }
                (work / "device").mkdir(mode=0o700)

                def device(*args: str) -> list[dict[str, object]]:
                    done = subprocess.run(
                        [_node(), str(DRIVER), *args],
                        env=env,
                        capture_output=True,
                        text=True,
                        check=False,
                        timeout=600,
                    )
                    if done.returncode != 0:
                        raise SystemExit(f"web driver {args[0]} failed: {done.stdout}{done.stderr}")
                    return [json.loads(line) for line in done.stdout.splitlines() if line]

                device("register", "--name", "Bench")
                device("contact", "--detainee", DETAINEE)
                relative = stack.relative("Bench Python")
                relative.request_contact(DETAINEE)
                approve_all(admin, INSTITUTION)
                lines = device("bench-send", "--detainee", DETAINEE, "--runs", str(runs))
                (line,) = [line for line in lines if line.get("step") == "bench-send"]
                measured = line["results"]
                assert isinstance(measured, dict)
                typescript = {label: float(v["median_ms"]) for label, v in measured.items()}
                # A JPEG's signature, so that the SDK's sniffing takes it for the photo it is.
                data = JPEG_START + _sodium.random_bytes(2 * MIB - len(JPEG_START))
                photo = Part("image/jpeg", data, "foto.jpg")
                cases = {"1 KiB text": ("x" * 1024, []), "2 MiB photo": ("Zondag.", [photo])}
                python: dict[str, float] = {}
                for label, (text, attachments) in cases.items():
                    times = []
                    for run in range(runs + 1):
                        started = time.perf_counter()
                        relative.send(DETAINEE, text, attachments)
                        if run:  # the first warms up
                            times.append((time.perf_counter() - started) * 1000)
                    times.sort()
                    python[label] = times[len(times) // 2]
    return typescript, python


MIB = 1024 * 1024
JPEG_START = b"\xff\xd8\xff\xe0"


def run(quick: bool) -> list[Result]:
    """Median time to seal (and to seal, send and prove) each message, TypeScript and Python."""
    typescript = _node_median_ms(quick)
    python = _python_median_ms(quick)
    sent_ts, sent_py = _send_medians_ms(quick)
    return [
        *(
            Result(
                "web",
                f"seal {label}, TypeScript library (Node.js)",
                typescript[label],
                "ms",
                reference=python[label],
                reference_label="Python SDK seal_envelope, same size",
            )
            for label in python
        ),
        *(
            Result(
                "web",
                f"seal + send + prove {label}, TypeScript over Connect (Node.js)",
                sent_ts[label],
                "ms",
                reference=sent_py[label],
                reference_label="Python SDK send over gRPC, same gateway",
                target="under 1,000 ms for 2 MiB (SPEC 6)" if "MiB" in label else "",
            )
            for label in sent_py
        ),
    ]
