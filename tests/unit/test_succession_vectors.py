"""tests/vectors/directory-succession-v1.json: fresh, and every case checks out from the JSON."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sealpost.crypto import domains, errors, keyrecords
from sealpost.crypto.keyrecords import DirectoryPin, VerifiedKey
from sealpost.v1 import keys_pb2
from tests.generators import load_generator

VECTORS_DIR = Path(__file__).resolve().parents[1] / "vectors"
VECTORS = VECTORS_DIR / "directory-succession-v1.json"


def _load_generator() -> ModuleType:
    return load_generator("generate_succession_vectors")


@cache
def _vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
    return data


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


def test_regeneration_matches_the_committed_file() -> None:
    gen = _load_generator()
    assert VECTORS.read_text(encoding="utf-8") == gen.render(gen.build_vectors()), (
        "stale vectors: run tests/vectors/generate_succession_vectors.py and review the diff"
    )


def test_the_file_covers_valid_and_broken_chains() -> None:
    v = _vectors()
    valid = [c for c in v["directory_cases"] if "error" not in c]
    invalid = [c for c in v["directory_cases"] if "error" in c]
    assert {len(c["predecessors"]) for c in valid} == {0, 1, 2}
    assert {c["error"] for c in invalid} >= {
        "SignatureError",
        "KeyRecordError",
        "LimitError",
        "VersionTooNewError",
    }
    assert {c["pin"] for c in valid if c["successions"] == ["A->B", "B->C"]} == {"A", "B", "C"}
    assert any("error" not in c and c["record"] == "device-by-A" for c in v["record_cases"])


# --- A reader's check, from the JSON alone ---


def _record(name: str) -> bytes:
    v = _vectors()
    entry = v["directories"].get(name) or v["key_records"][name]
    return _h(entry["record"])


def _directory(case: dict[str, Any]) -> VerifiedKey:
    v = _vectors()
    return keyrecords.verify_directory_record(
        keyrecords.parse_key_record(_record(case["record"])),
        DirectoryPin(_h(v["pins"][case["pin"]])),
        now_ms=case["now_ms"],
        successions=[
            keyrecords.parse_succession(_h(v["successions_table"][name]["succession"]))
            for name in case["successions"]
        ],
    )


def _raises(error: str, message: str) -> Any:
    return pytest.raises(getattr(errors, error), match=f"^{re.escape(message)}$")


def test_domains_and_limits_are_the_reference_s() -> None:
    v = _vectors()
    for name, value in v["domains"].items():
        assert getattr(domains, name) == value.encode()
    assert v["max_successions"] == keyrecords.MAX_SUCCESSIONS
    assert v["max_succession_bytes"] == keyrecords.MAX_SUCCESSION_BYTES


@pytest.mark.parametrize("name", list(_vectors()["successions_table"]))
def test_succession(name: str) -> None:
    entry = _vectors()["successions_table"][name]
    wire = _h(entry["succession"])
    assert keyrecords.succession_id(wire).hex() == entry["id"]
    body = keys_pb2.DirectorySuccession.FromString(wire).body
    digests = keyrecords.directory_succession_digests(body)
    assert [d.hex() for d in digests] == [entry["previous_digest"], entry["next_digest"]]
    if "error" in entry:
        with _raises(entry["error"], entry["message"]):
            keyrecords.verify_succession(keyrecords.parse_succession(wire))
        return
    succession = keyrecords.parse_succession(wire)
    previous, following, effective_at = keyrecords.verify_succession(succession)
    assert (previous.id.hex(), following.id.hex(), effective_at) == (
        entry["previous_id"],
        entry["next_id"],
        entry["effective_at"],
    )


@pytest.mark.parametrize("index", range(len(_vectors()["directory_cases"])))
def test_directory_case(index: int) -> None:
    case = _vectors()["directory_cases"][index]
    if "error" in case:
        with _raises(case["error"], case["message"]):
            _directory(case)
        return
    current = _directory(case)
    assert current.id.hex() == case["id"]
    assert [p.id.hex() for p in current.predecessors] == case["predecessors"]


@pytest.mark.parametrize("index", range(len(_vectors()["record_cases"])))
def test_record_case(index: int) -> None:
    v = _vectors()
    case = v["record_cases"][index]
    directory_case = next(c for c in v["directory_cases"] if c["name"] == case["directory_case"])

    def verify() -> VerifiedKey:
        return keyrecords.verify_key_record(
            keyrecords.parse_key_record(_record(case["record"])),
            _directory(directory_case),
            now_ms=case["now_ms"],
            revocations=[
                keyrecords.parse_key_revocation(_h(v["revocations"][r]))
                for r in case["revocations"]
            ],
            purpose=keyrecords.RELATIVE_DEVICE,
        )

    if "error" in case:
        with _raises(case["error"], case["message"]):
            verify()
        return
    assert verify().issuer_key_id.hex() == case["issuer_key_id"]
