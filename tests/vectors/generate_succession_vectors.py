"""Regenerate tests/vectors/directory-succession-v1.json: hand-overs of the directory key.

docs/protocol.md 5.7. A chain A -> B -> C of directory keys (and D after C for a gap),
records and revocations issued by earlier keys, and broken chains. Every key comes from a
fixed seed, so the output is a pure function of this file and sealpost.crypto. Each case
states by hand the outcome the check order predicts; generation refuses to write a case
whose actual outcome differs. tests/unit/test_succession_vectors.py regenerates in memory
and fails when the committed file differs, and checks every case from the JSON alone.

    .venv/bin/python tests/vectors/generate_succession_vectors.py          # rewrite the file
    .venv/bin/python tests/vectors/generate_succession_vectors.py --check  # exit 1 if stale
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sealpost.crypto import domains, errors, keyrecords
from sealpost.crypto._framing import lp, u64
from sealpost.crypto.keyrecords import DirectoryPin, VerifiedKey
from sealpost.crypto.keys import PrivateKeys
from sealpost.v1 import keys_pb2

VECTORS_PATH: Final = Path(__file__).resolve().parent / "directory-succession-v1.json"
RNG_DOMAIN: Final = b"sealpost/test-vectors/rng"

#: The reference time of every case but one: 2026-01-01T00:00:00Z.
NOW_MS: Final = 1_767_225_600_000
_2024: Final = 1_704_067_200  # 2024-01-01T00:00:00Z, seconds
_2025: Final = 1_735_689_600
_2025_03: Final = 1_740_787_200
_2025_06: Final = 1_748_736_000
_2025_09: Final = 1_756_684_800
_2027: Final = 1_798_761_600
_2030: Final = 1_893_456_000

Case = dict[str, Any]


class SeededRandom:
    """A stream for test keys only: block i is SHA-256(LP(domain) || LP(seed) || U64(i))."""

    def __init__(self, seed: bytes) -> None:
        """Start the stream of ``seed`` at block 0."""
        self._seed = seed
        self._counter = 0
        self._buffer = b""

    def __call__(self, size: int) -> bytes:
        """The next ``size`` bytes of the stream."""
        while len(self._buffer) < size:
            block = lp(RNG_DOMAIN) + lp(self._seed) + u64(self._counter)
            self._buffer += hashlib.sha256(block).digest()
            self._counter += 1
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


def _keys(name: str) -> PrivateKeys:
    return PrivateKeys.generate(SeededRandom(f"directory-succession/keys/{name}".encode()))


@dataclass
class World:
    """Every key, record, revocation and succession the cases name."""

    keys: dict[str, PrivateKeys] = field(default_factory=dict)
    #: Record name -> the name of the key it carries.
    key_of: dict[str, str] = field(default_factory=dict)
    directories: dict[str, keys_pb2.KeyRecord] = field(default_factory=dict)
    records: dict[str, keys_pb2.KeyRecord] = field(default_factory=dict)
    revocations: dict[str, keys_pb2.KeyRevocation] = field(default_factory=dict)
    successions: dict[str, tuple[str, keys_pb2.DirectorySuccession]] = field(default_factory=dict)

    def directory_id(self, name: str) -> bytes:
        """The record id of directory ``name``."""
        return keyrecords.key_record_id(self.directories[name].body)

    def record_id(self, name: str) -> bytes:
        """The record id of key record ``name`` (a directory's or another's)."""
        record = self.directories.get(name) or self.records[name]
        return keyrecords.key_record_id(record.body)


def _directory(world: World, name: str, key: str, not_before: int) -> None:
    world.key_of[name] = key
    world.directories[name] = keyrecords.issue_directory_record(
        world.keys[key], subject="sealpost-directory", not_before=not_before, not_after=_2030
    )


def _device(world: World, name: str, issuer: str, *, signer: str | None = None) -> None:
    """A device record naming ``issuer`` as its directory, signed by ``signer`` (the issuer)."""
    world.keys[name] = _keys(name)
    world.key_of[name] = name
    world.records[name] = keyrecords.issue_key_record(
        purpose=keyrecords.RELATIVE_DEVICE,
        subject=f"account-{name}",
        encryption_key=world.keys[name].encryption_key,
        signing_key=world.keys[name].signing_key,
        not_before=_2025,
        not_after=_2027,
        directory_keys=world.keys[signer or issuer],
        directory_key_id=world.directory_id(issuer),
    )


def _revoke(world: World, name: str, record: str, issuer: str) -> None:
    world.revocations[name] = keyrecords.issue_revocation(
        key_id=world.record_id(record),
        revoked_at=_2025_06,
        reason="device reported lost",
        directory_keys=world.keys[issuer],
        directory_key_id=world.directory_id(issuer),
    )


def _hand_over(
    world: World,
    name: str,
    description: str,
    previous: str,
    following: str,
    *,
    previous_signer: PrivateKeys | None = None,
    next_signer: PrivateKeys | None = None,
) -> keys_pb2.DirectorySuccession:
    previous_record = world.directories.get(previous) or world.records[previous]
    next_record = world.directories.get(following) or world.records[following]
    succession = keyrecords.issue_succession(
        previous_signer or world.keys[world.key_of[previous]],
        previous_record,
        next_signer or world.keys[world.key_of[following]],
        next_record,
        effective_at=_2025_03,
    )
    world.successions[name] = (description, succession)
    return succession


def build_world() -> World:
    """The fixed keys, records, revocations and hand-overs."""
    world = World()
    for name in ("A", "B", "C", "D", "X"):
        world.keys[name] = _keys(name)
    for name, not_before in (("A", _2024), ("B", _2025), ("C", _2025_06), ("D", _2025_09)):
        _directory(world, name, name, not_before)
    _directory(world, "X", "X", _2025)
    # The same key as A in a second record (another window): a hand-over to itself.
    _directory(world, "A-again", "A", _2025)
    _device(world, "device-by-A", "A")
    _device(world, "device-by-B", "B")
    _device(world, "device-by-C", "C")
    _device(world, "device-forged-by-X", "A", signer="X")
    _revoke(world, "A-revokes-device-by-B", "device-by-B", "A")
    _revoke(world, "C-revokes-device-by-A", "device-by-A", "C")
    _revoke(world, "X-revokes-device-by-A", "device-by-A", "X")

    _hand_over(world, "A->B", "A hands over to B, both sign", "A", "B")
    _hand_over(world, "B->C", "B hands over to C, both sign", "B", "C")
    _hand_over(world, "C->D", "C hands over to D, both sign", "C", "D")
    _hand_over(
        world,
        "X->A only X signed",
        "X hands over to A, but the next signature is by X, not A: only the old key signed",
        "X",
        "A",
        next_signer=world.keys["X"],
    )
    _hand_over(
        world,
        "C->X only X signed",
        "C hands over to X, but the previous signature is by X, not C: only the new key signed",
        "C",
        "X",
        previous_signer=world.keys["X"],
    )
    _hand_over(world, "A->A", "A hands over to A in another record: the same key", "A", "A-again")
    _hand_over(
        world,
        "A->device",
        "A hands over to a device record, which is not a directory record",
        "A",
        "device-by-A",
    )
    tampered = keys_pb2.DirectorySuccession()
    tampered.CopyFrom(world.successions["A->B"][1])
    body = keys_pb2.DirectorySuccessionBody.FromString(tampered.body)
    body.effective_at += 1
    tampered.body = body.SerializeToString(deterministic=True)
    world.successions["A->B tampered"] = (
        "A->B with effective_at one second later after both keys signed",
        tampered,
    )
    newer = keys_pb2.DirectorySuccession()
    newer.CopyFrom(world.successions["A->B"][1])
    newer.version = 2
    world.successions["A->B version 2"] = ("A->B with outer version 2", newer)
    return world


# --- Cases ---


@dataclass(frozen=True)
class DirectoryCase:
    """Verifying a current directory record under a pin, through successions."""

    name: str
    record: str
    pin: str
    successions: list[str]
    predecessors: list[str] = field(default_factory=list)
    error: type[errors.CryptoError] | None = None
    now_ms: int = NOW_MS


@dataclass(frozen=True)
class RecordCase:
    """Verifying a key record under a directory verified by a valid DirectoryCase."""

    name: str
    directory_case: str
    record: str
    revocations: list[str] = field(default_factory=list)
    issuer: str = ""
    error: type[errors.CryptoError] | None = None


CHAIN: Final = ["A->B", "B->C"]


def directory_cases() -> list[DirectoryCase]:
    """Valid and invalid directory verifications, in the order of the file."""
    k = errors.KeyRecordError
    return [
        DirectoryCase("C alone, pinned C", "C", "C", []),
        DirectoryCase("A-B, pinned A", "B", "A", ["A->B"], ["A"]),
        DirectoryCase("A-B-C, pinned A", "C", "A", CHAIN, ["A", "B"]),
        DirectoryCase("A-B-C, pinned B", "C", "B", CHAIN, ["A", "B"]),
        DirectoryCase("A-B-C, pinned C", "C", "C", CHAIN, ["A", "B"]),
        DirectoryCase(
            "only the old key signed",
            "C",
            "C",
            ["X->A only X signed", *CHAIN],
            error=errors.SignatureError,
        ),
        DirectoryCase(
            "only the new key signed",
            "X",
            "A",
            [*CHAIN, "C->X only X signed"],
            error=errors.SignatureError,
        ),
        DirectoryCase("gap in the chain", "D", "A", ["A->B", "C->D"], error=k),
        DirectoryCase("chain out of order", "C", "C", ["B->C", "A->B"], error=k),
        DirectoryCase("chain goes past the current directory", "B", "B", CHAIN, error=k),
        DirectoryCase("chain stops short of the current directory", "D", "A", CHAIN, error=k),
        DirectoryCase("pin outside the chain", "C", "X", CHAIN, error=k),
        DirectoryCase("replacement without a succession", "C", "A", [], error=k),
        DirectoryCase(
            "tampered body", "C", "C", ["A->B tampered", "B->C"], error=errors.SignatureError
        ),
        DirectoryCase("hand-over to the same key", "A-again", "A", ["A->A"], error=k),
        DirectoryCase("hand-over to a device record", "device-by-A", "A", ["A->device"], error=k),
        DirectoryCase(
            "succession version 2", "B", "A", ["A->B version 2"], error=errors.VersionTooNewError
        ),
        DirectoryCase(
            "more hand-overs than a client follows",
            "B",
            "A",
            ["A->B"] * (keyrecords.MAX_SUCCESSIONS + 1),
            error=errors.LimitError,
        ),
        DirectoryCase("current directory expired", "C", "A", CHAIN, error=k, now_ms=_2030 * 1000),
    ]


def record_cases() -> list[RecordCase]:
    """Key records and revocations issued by earlier directories, under the current one."""
    k = errors.KeyRecordError
    return [
        RecordCase("issued by A, under C pinned C", "A-B-C, pinned C", "device-by-A", issuer="A"),
        RecordCase("issued by A, under C pinned A", "A-B-C, pinned A", "device-by-A", issuer="A"),
        RecordCase("issued by B, under C pinned A", "A-B-C, pinned A", "device-by-B", issuer="B"),
        RecordCase("issued by C, under C pinned A", "A-B-C, pinned A", "device-by-C", issuer="C"),
        RecordCase("issued by A, under B pinned A", "A-B, pinned A", "device-by-A", issuer="A"),
        RecordCase(
            "revoked by X, another device's record",
            "A-B-C, pinned C",
            "device-by-B",
            ["X-revokes-device-by-A"],
            issuer="B",
        ),
        RecordCase("issued by C, under B", "A-B, pinned A", "device-by-C", error=k),
        RecordCase(
            "issued by A, under C without hand-overs", "C alone, pinned C", "device-by-A", error=k
        ),
        RecordCase(
            "signed by X naming A",
            "A-B-C, pinned C",
            "device-forged-by-X",
            error=errors.SignatureError,
        ),
        RecordCase(
            "issued by B, revoked by A",
            "A-B-C, pinned C",
            "device-by-B",
            ["A-revokes-device-by-B"],
            error=k,
        ),
        RecordCase(
            "issued by A, revoked by C",
            "A-B-C, pinned A",
            "device-by-A",
            ["C-revokes-device-by-A"],
            error=k,
        ),
        RecordCase(
            "issued by A, revoked by X",
            "A-B-C, pinned C",
            "device-by-A",
            ["X-revokes-device-by-A"],
            error=k,
        ),
    ]


# --- Running a case ---


def _outcome(call: Callable[[], object]) -> tuple[object, errors.CryptoError | None]:
    try:
        return call(), None
    except errors.CryptoError as exc:
        return None, exc


def run_directory(world: World, case: DirectoryCase) -> VerifiedKey:
    """Verify the case's directory record; raises what the reference raises."""
    record = world.directories.get(case.record) or world.records[case.record]
    return keyrecords.verify_directory_record(
        record,
        DirectoryPin(world.keys[case.pin].signing_key),
        now_ms=case.now_ms,
        successions=[world.successions[name][1] for name in case.successions],
    )


def _expect(name: str, error: type[errors.CryptoError] | None, raised: Exception | None) -> None:
    if error is None and raised is not None:
        raise AssertionError(f"{name}: refused with {type(raised).__name__}: {raised}")
    if error is not None and type(raised) is not error:
        raise AssertionError(f"{name}: {type(raised).__name__} instead of {error.__name__}")


def _hex(data: bytes) -> str:
    return data.hex()


def _succession_json(world: World, description: str, s: keys_pb2.DirectorySuccession) -> Case:
    wire = s.SerializeToString(deterministic=True)
    previous_digest, next_digest = keyrecords.directory_succession_digests(s.body)
    entry: Case = {
        "description": description,
        "succession": _hex(wire),
        "id": _hex(keyrecords.succession_id(wire)),
        "previous_digest": _hex(previous_digest),
        "next_digest": _hex(next_digest),
    }
    result, raised = _outcome(lambda: keyrecords.verify_succession(s))
    if raised is not None:
        entry["error"] = type(raised).__name__
        entry["message"] = str(raised)
    else:
        assert isinstance(result, tuple)
        previous, following, effective_at = result
        entry["previous_id"] = _hex(previous.id)
        entry["next_id"] = _hex(following.id)
        entry["effective_at"] = effective_at
    return entry


def build_vectors() -> dict[str, Any]:
    """The whole file as a JSON-ready dict; raises if any case's outcome is not the stated one."""
    world = build_world()
    verified: dict[str, VerifiedKey] = {}
    directory_json: list[Case] = []
    for case in directory_cases():
        result, raised = _outcome(lambda case=case: run_directory(world, case))  # type: ignore[misc]
        _expect(case.name, case.error, raised)
        entry: Case = {
            "name": case.name,
            "record": case.record,
            "pin": case.pin,
            "successions": case.successions,
            "now_ms": case.now_ms,
        }
        if raised is not None:
            entry["error"] = type(raised).__name__
            entry["message"] = str(raised)
        else:
            assert isinstance(result, VerifiedKey)
            expected = [world.directory_id(p) for p in case.predecessors]
            if [p.id for p in result.predecessors] != expected:
                raise AssertionError(f"{case.name}: other predecessors")
            if result.id != world.directory_id(case.record):
                raise AssertionError(f"{case.name}: another current directory")
            verified[case.name] = result
            entry["id"] = _hex(result.id)
            entry["predecessors"] = [_hex(i) for i in expected]
        directory_json.append(entry)
    record_json: list[Case] = []
    for rc in record_cases():
        directory = verified[rc.directory_case]
        result, raised = _outcome(
            lambda rc=rc, directory=directory: keyrecords.verify_key_record(  # type: ignore[misc]
                world.records[rc.record],
                directory,
                now_ms=NOW_MS,
                revocations=[world.revocations[r] for r in rc.revocations],
                purpose=keyrecords.RELATIVE_DEVICE,
            )
        )
        _expect(rc.name, rc.error, raised)
        entry = {
            "name": rc.name,
            "directory_case": rc.directory_case,
            "record": rc.record,
            "purpose": "KEY_PURPOSE_RELATIVE_DEVICE",
            "revocations": rc.revocations,
            "now_ms": NOW_MS,
        }
        if raised is not None:
            entry["error"] = type(raised).__name__
            entry["message"] = str(raised)
        else:
            assert isinstance(result, VerifiedKey)
            if result.issuer_key_id != world.directory_id(rc.issuer):
                raise AssertionError(f"{rc.name}: another issuer")
            entry["issuer_key_id"] = _hex(result.issuer_key_id)
        record_json.append(entry)

    def record_entry(record: keys_pb2.KeyRecord) -> Case:
        body = keys_pb2.KeyRecordBody.FromString(record.body)
        return {
            "record": _hex(record.SerializeToString(deterministic=True)),
            "id": _hex(keyrecords.key_record_id(record.body)),
            "signing_key": _hex(body.signing_key),
        }

    return {
        "description": (
            "Hand-overs of the directory key (docs/protocol.md 5.7). Directory records A, B, "
            "C, D (and X outside the chain) are self-signed; a succession names a previous and "
            "a next record and is signed by both keys. Directory cases verify 'record' under "
            "DirectoryPin(signing key of 'pin') at now_ms with 'successions' (names in "
            "'successions_table', oldest first): a valid one yields the current id and its "
            "predecessors' ids (oldest first), an invalid one raises 'error' (a class of "
            "sealpost.crypto.errors) with 'message'. Record cases verify 'record' as a "
            "RELATIVE_DEVICE key under the directory of the named valid directory case, with "
            "the named revocations. Test keys only; never use them for anything else."
        ),
        "domains": {
            "DIRECTORY_SUCCESSION_PREVIOUS": domains.DIRECTORY_SUCCESSION_PREVIOUS.decode(),
            "DIRECTORY_SUCCESSION_NEXT": domains.DIRECTORY_SUCCESSION_NEXT.decode(),
            "DIRECTORY_SUCCESSION_ID": domains.DIRECTORY_SUCCESSION_ID.decode(),
        },
        "max_successions": keyrecords.MAX_SUCCESSIONS,
        "max_succession_bytes": keyrecords.MAX_SUCCESSION_BYTES,
        "directories": {name: record_entry(record) for name, record in world.directories.items()},
        "key_records": {name: record_entry(record) for name, record in world.records.items()},
        "revocations": {
            name: _hex(r.SerializeToString(deterministic=True))
            for name, r in world.revocations.items()
        },
        "pins": {name: _hex(world.keys[name].signing_key) for name in ("A", "B", "C", "D", "X")},
        "successions_table": {
            name: _succession_json(world, description, s)
            for name, (description, s) in world.successions.items()
        },
        "directory_cases": directory_json,
        "record_cases": record_json,
    }


def render(vectors: dict[str, Any]) -> str:
    """The exact text of the committed file."""
    return json.dumps(vectors, indent=1, sort_keys=False, ensure_ascii=False) + "\n"


def main() -> None:
    """Write the file, or with --check exit 1 when the committed file is stale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args()
    text = render(build_vectors())
    if args.check:
        if VECTORS_PATH.read_text(encoding="utf-8") != text:
            print(f"stale: {VECTORS_PATH}", file=sys.stderr)
            sys.exit(1)
        return
    VECTORS_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {VECTORS_PATH}")


if __name__ == "__main__":
    main()
