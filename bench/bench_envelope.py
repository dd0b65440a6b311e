"""Seal, verify and open rates of envelope v1 for a 1 KiB and a 1 MiB named attachment.

Each rate is printed next to the same run's bare XChaCha20-Poly1305 encryption rate for the
same payload, the floor cost of any design that encrypts the body, so the ratio shows what
sealing (two sealed boxes, hashing, an Ed25519 signature), the gateway's verification
(no decryption) and opening add on top of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bench import Result
from sealpost.crypto import _sodium
from sealpost.crypto import keyrecords as kr
from sealpost.crypto.envelope import Part, open_envelope, seal_envelope, verify_envelope
from sealpost.crypto.keys import PrivateKeys
from sealpost.v1 import envelope_pb2

_SIZES = {"1 KiB": 1024, "1 MiB": 1024 * 1024}


def _rate(operation: Callable[[], object], seconds: float) -> float:
    """Operations per second, measured for at least ``seconds`` after one warm-up call."""
    operation()
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        operation()
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started)


def _parties(now_ms: int) -> tuple[PrivateKeys, kr.VerifiedKey, PrivateKeys, kr.VerifiedKey]:
    directory_keys = PrivateKeys.generate()
    now_s = now_ms // 1000
    directory = kr.verify_directory_record(
        kr.issue_directory_record(
            directory_keys, subject="bench", not_before=now_s - 60, not_after=now_s + 3600
        ),
        kr.DirectoryPin(directory_keys.signing_key),
        now_ms=now_ms,
    )

    def record(keys: PrivateKeys, purpose: kr.KeyPurpose, subject: str) -> kr.VerifiedKey:
        issued = kr.issue_key_record(
            purpose=purpose,
            subject=subject,
            encryption_key=keys.encryption_key,
            signing_key=keys.signing_key,
            not_before=now_s - 60,
            not_after=now_s + 3600,
            directory_keys=directory_keys,
            directory_key_id=directory.id,
        )
        return kr.verify_key_record(issued, directory, now_ms=now_ms, purpose=purpose)

    sender, mailbox = PrivateKeys.generate(), PrivateKeys.generate()
    return (
        sender,
        record(sender, kr.RELATIVE_DEVICE, "bench-account"),
        mailbox,
        record(mailbox, kr.MAILBOX, "bench-detainee"),
    )


def run(quick: bool) -> list[Result]:
    """Seal, verify and open rates per size, each with the bare AEAD rate as reference."""
    seconds = 0.3 if quick else 2.0
    now_ms = int(time.time() * 1000)
    sender, sender_record, mailbox, mailbox_record = _parties(now_ms)
    results: list[Result] = []
    for label, size in _SIZES.items():
        body = _sodium.random_bytes(size)
        parts = [Part("application/pdf", body, "scan-0001.pdf")]  # the name is encrypted too
        key, nonce = _sodium.random_bytes(32), _sodium.random_bytes(24)

        def encrypt(b: bytes = body, k: bytes = key, n: bytes = nonce) -> bytes:
            return _sodium.aead_encrypt(k, n, b, b"")

        aead = _rate(encrypt, seconds)

        def seal(p: list[Part] = parts) -> envelope_pb2.Envelope:
            return seal_envelope(
                p,
                sender_keys=sender,
                sender_key_id=sender_record.id,
                recipients=[mailbox_record],
                now_ms=now_ms,
            )

        envelope = seal()

        def verify(e: envelope_pb2.Envelope = envelope) -> object:
            return verify_envelope(e, sender_record, now_ms=now_ms)

        def open_(e: envelope_pb2.Envelope = envelope) -> object:
            return open_envelope(e, mailbox, mailbox_record.id, sender_record, now_ms=now_ms)

        reference = "bare XChaCha20-Poly1305 encrypt, same size"
        measured = (("seal", seal), ("verify", verify), ("open", open_))
        for metric, operation in measured:
            rate = _rate(operation, seconds)
            results.append(
                Result(
                    "envelope",
                    f"{metric} {label} message, 1 recipient",
                    rate,
                    "messages/s",
                    reference=aead,
                    reference_label=reference,
                )
            )
    return results
