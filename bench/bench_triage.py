"""Triage: the screener's queue, rates of 1 KiB messages per detector, the time to OCR a photo.

The screener's queue (bench/triage_queue.py): of 30 planted messages in a queue of 1,000,
how many the ranked queue puts in its first 10 %, next to how many the same queue has
there in age order; for the held-out set's planted messages (the figure to quote) and the
development set's, under a screening order and under a regime that screens all.

Messages are 1 KiB texts cut from the labelled corpus (five languages). Every rate is
printed next to the same run's plain regular-expression scan of the same messages (all
runs of digits), the floor cost of looking at every character once in Python's engine, so
the ratio shows what a detector adds. The OCR figure is for one 2400 by 1600 photo of a
handwritten-size note on one core (Tesseract with OMP_THREAD_LIMIT=1), next to the time
Pillow takes to decode the same photo. SPEC section 6: a 1 KiB text under 5 ms and a
photo's OCR under 2 s, per core.
"""

from __future__ import annotations

import importlib.resources
import io
import re
import statistics
import sys
import time
from collections.abc import Callable
from typing import Final

from PIL import Image, ImageDraw, ImageFont

from bench import Result, triage_queue
from sealpost.clients.triage import Limits, WatchMatcher, scan_text
from sealpost.clients.triage import detectors as text_detectors
from sealpost.clients.triage.extract import ocr, tesseract
from sealpost.clients.triage.language import language
from tests.vectors.triage import evaluate

NAME = "triage"
_DIGITS = re.compile(r"\d+")


def _messages() -> list[str]:
    """1 KiB texts (UTF-8), each a run of corpus messages."""
    texts = [m["text"] for m in evaluate.load()["messages"]]
    messages: list[str] = []
    current = ""
    for i in range(len(texts) * 4):
        current += texts[(i * 7) % len(texts)] + "\n"
        if len(current.encode()) >= 1024:
            messages.append(current.encode()[:1024].decode(errors="ignore"))
            current = ""
    return messages


def _rate(scan: Callable[[str], object], messages: list[str], seconds: float) -> float:
    """Messages per second over the whole list, repeated for at least ``seconds``."""
    for text in messages[:3]:
        scan(text)
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for text in messages:
            scan(text)
        count += len(messages)
    return count / (time.perf_counter() - started)


def _scan(detect: text_detectors.Detector) -> Callable[[str], object]:
    return lambda text: detect(text, 0, "text")


def _photo() -> bytes:
    font_path = importlib.resources.files("fontpkg_noto_sans") / "files/NotoSans[wdth,wght].ttf"
    font = ImageFont.truetype(str(font_path), 48)
    image = Image.new("RGB", (2400, 1600), (236, 232, 220))
    draw = ImageDraw.Draw(image)
    lines = [
        "Lieve broer,",
        "Stort het geld op NL91 ABNA 0417 1643 00 voor vrijdag.",
        "Bel daarna 06-12345678 en vraag naar Kevin.",
        "Het pakketje ligt bij Kalverstraat 92, 1012 PH.",
        "Groeten van iedereen, tot zondag!",
    ]
    for i, line in enumerate(lines):
        draw.text((120, 200 + 160 * i), line, fill=(20, 20, 40), font=font)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


#: (planted set, screen_all, words) of each screener's-queue figure, the one to quote first.
QUEUES: Final = (
    ("held-out", False, "screening order"),
    ("development", False, "screening order"),
    ("held-out", True, "regime screens all"),
    ("development", True, "regime screens all"),
)


def queue_results(quick: bool) -> list[Result]:
    """Planted messages in the first 10 % of the ranked queue, against the age order."""
    rounds = 3 if quick else 20
    body = evaluate.load()
    messages = triage_queue.corpus_reports(body)
    innocent = [m for m in messages.values() if not m.planted]
    flagged = sum(m.report.score > 0 for m in innocent)
    print(
        f"  triage queue: {flagged} of {len(innocent)} innocent corpus messages have a finding; "
        f"{rounds} queues of {triage_queue.SIZE} per figure",
        file=sys.stderr,
    )
    results: list[Result] = []
    for planted_set, screen_all, words in QUEUES:
        fronts = triage_queue.measure(
            body, messages, planted_set, screen_all=screen_all, rounds=rounds
        )
        planted = fronts[0].planted
        ranked = statistics.fmean(f.ranked for f in fronts)
        by_age = statistics.fmean(f.by_age for f in fronts)
        found = statistics.fmean(f.found for f in fronts)
        print(
            f"  triage queue, {planted_set}, {words}: first 10 % holds {ranked:.1f} of "
            f"{planted} planted ranked ({min(f.ranked for f in fronts)} to "
            f"{max(f.ranked for f in fronts)}), {by_age:.1f} in age order "
            f"({min(f.by_age for f in fronts)} to {max(f.by_age for f in fronts)}); "
            f"triage found something in {found:.1f} of {planted}",
            file=sys.stderr,
        )
        results.append(
            Result(
                NAME,
                f"queue of {triage_queue.SIZE:,}, {planted} planted ({planted_set}), {words}: "
                "planted in first 10%",
                ranked,
                f"of {planted}, mean of {rounds} queues",
                by_age,
                "age order",
            )
        )
    return results


def run(quick: bool) -> list[Result]:
    """The screener's queue; messages per second per detector and for all; OCR per photo."""
    results = queue_results(quick)
    seconds = 0.3 if quick else 2.0
    messages = _messages()
    body = evaluate.load()
    matcher = WatchMatcher(evaluate.watch_lists(body))
    reference = _rate(_DIGITS.findall, messages, seconds)
    label = "regex digit scan, msg/s"
    scans = {name: _scan(d) for name, d in text_detectors.TEXT_DETECTORS.items()}
    scans["watch-list"] = lambda text: matcher.match(text, 0, "text")
    scans["language"] = lambda text: language(text, 0, "text")
    scans["all (scan_text)"] = lambda text: scan_text(text, 0, "text", matcher)
    for name, scan in scans.items():
        print(f"  triage {name} ...", file=sys.stderr, flush=True)
        rate = _rate(scan, messages, seconds)
        target = ">= 200 msg/s (1 KiB under 5 ms)" if name.startswith("all") else ""
        results.append(Result(NAME, f"{name}, 1 KiB", rate, "msg/s", reference, label, target))
    if tesseract() is None:
        print("  triage OCR skipped: Tesseract is missing (make ocr-deps)", file=sys.stderr)
        return results
    photo = _photo()
    started = time.perf_counter()
    rounds = 1 if quick else 3
    for _ in range(rounds):
        Image.open(io.BytesIO(photo)).convert("L")
    decode = (time.perf_counter() - started) / rounds
    ocr(photo, Limits())
    started = time.perf_counter()
    for _ in range(rounds):
        read = ocr(photo, Limits())
    took = (time.perf_counter() - started) / rounds
    assert "NL91" in read.text, "the benchmark photo was not read"
    results.append(
        Result(NAME, "OCR of a 2400x1600 photo", took, "s", decode, "Pillow decode, s", "< 2 s")
    )
    return results
