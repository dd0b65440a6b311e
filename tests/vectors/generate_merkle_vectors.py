"""Regenerate the transparency-log test vectors: tests/vectors/merkle-*.json.

Run ``.venv/bin/python tests/vectors/generate_merkle_vectors.py``. The files are data
for any client (valid and deliberately broken cases); tests/unit/test_merkle.py and
test_logentry.py fail when the committed files differ from what this script writes,
and check the valid values against an independent reference implementation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from sealpost.crypto import logentry, merkle
from sealpost.crypto._sodium import ed25519_public_from_seed, ed25519_sign, sha256
from sealpost.crypto.errors import CryptoError
from sealpost.crypto.keys import SigningSeed
from sealpost.crypto.logentry import LogAction, LogEvent
from sealpost.v1 import log_pb2

VECTOR_DIR = Path(__file__).resolve().parent

#: The leaves of the Certificate Transparency reference tests (RFC 6962 test data), hex.
CT_LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
#: A deeper tree: leaf i is the ASCII text "sealpost leaf <i>".
DEEP_SIZE = 70
DEEP_INCLUSION = [(0, 70), (33, 70), (63, 64), (64, 65), (68, 70), (69, 70), (41, 57)]
DEEP_CONSISTENCY = [(1, 70), (32, 70), (33, 64), (63, 64), (64, 70), (7, 67), (57, 69)]
#: The cases of the 8-leaf tree that also get broken variants.
BROKEN_INCLUSION = [(0, 1), (0, 8), (5, 8), (2, 3), (1, 5), (6, 7), (3, 4)]
BROKEN_CONSISTENCY = [(0, 8), (1, 8), (6, 8), (2, 5), (3, 7), (4, 8), (1, 2), (7, 8), (8, 8)]

Case = dict[str, Any]


def _hex(values: list[bytes]) -> list[str]:
    return [v.hex() for v in values]


def _flip(value: bytes, position: int = 0) -> bytes:
    changed = bytearray(value)
    changed[position] ^= 0x01
    return bytes(changed)


def _inclusion_valid(tree: merkle.MerkleTree, index: int, size: int) -> Case:
    return {
        "leaf_index": index,
        "tree_size": size,
        "leaf_hash": tree.leaf_hash_at(index).hex(),
        "root": tree.root(size).hex(),
        "path": _hex(tree.inclusion_proof(index, size)),
    }


def _consistency_valid(tree: merkle.MerkleTree, first: int, second: int) -> Case:
    return {
        "first_size": first,
        "second_size": second,
        "first_root": tree.root(first).hex(),
        "second_root": tree.root(second).hex(),
        "path": _hex(tree.consistency_proof(first, second)),
    }


def _error_of(call: Callable[[], object]) -> str | None:
    """The class name of the CryptoError ``call`` raises, or None if it succeeds."""
    try:
        call()
    except CryptoError as exc:
        return type(exc).__name__
    return None


def _verifies(check: Callable[[], None]) -> bool:
    try:
        check()
    except CryptoError:
        return False
    return True


def _check_inclusion(case: Case) -> Callable[[], None]:
    return lambda: merkle.verify_inclusion(
        leaf_hash=bytes.fromhex(case["leaf_hash"]),
        index=case["leaf_index"],
        size=case["tree_size"],
        proof=[bytes.fromhex(p) for p in case["path"]],
        root=bytes.fromhex(case["root"]),
    )


def _check_consistency(case: Case) -> Callable[[], None]:
    return lambda: merkle.verify_consistency(
        first_size=case["first_size"],
        second_size=case["second_size"],
        first_root=bytes.fromhex(case["first_root"]),
        second_root=bytes.fromhex(case["second_root"]),
        proof=[bytes.fromhex(p) for p in case["path"]],
    )


def _inclusion_broken(valid: Case, roots: list[str]) -> list[Case]:
    """Deliberately broken variants of a valid inclusion case, each described.

    A wrong tree size comes with the true root of that size: RFC 9162 binds a size to
    its root only through the signed tree head, so that is the case worth refusing.
    """
    path: list[str] = valid["path"]
    variants: list[tuple[str, dict[str, Any]]] = []
    for j in sorted({0, len(path) - 1} if path else set()):
        flipped = list(path)
        flipped[j] = _flip(bytes.fromhex(path[j]), j % 32).hex()
        variants.append((f"flipped bit in path[{j}]", {"path": flipped}))
    if valid["leaf_index"] + 1 < valid["tree_size"]:
        variants.append(("wrong leaf index (+1)", {"leaf_index": valid["leaf_index"] + 1}))
    if valid["leaf_index"] > 0:
        variants.append(("wrong leaf index (-1)", {"leaf_index": valid["leaf_index"] - 1}))
    variants.append(("leaf index equal to tree size", {"leaf_index": valid["tree_size"]}))
    for delta in (1, -1):
        size = valid["tree_size"] + delta
        if valid["leaf_index"] < size < len(roots):
            change = {"tree_size": size, "root": roots[size]}
            variants.append((f"proof checked against the head of size {size}", change))
    if path:
        variants.append(("truncated path (last hash dropped)", {"path": path[:-1]}))
    variants.append(("extended path (extra hash appended)", {"path": [*path, valid["root"]]}))
    variants.append(("extended path (extra hash prepended)", {"path": [valid["root"], *path]}))
    if len(path) >= 2:
        swapped = [path[1], path[0], *path[2:]]
        variants.append(("swapped order of path[0] and path[1]", {"path": swapped}))
    variants.append(("wrong root", {"root": _flip(bytes.fromhex(valid["root"]), 31).hex()}))
    wrong_leaf = merkle.leaf_hash(b"not in the tree").hex()
    variants.append(("wrong leaf hash", {"leaf_hash": wrong_leaf}))
    variants.append(("leaf data instead of leaf hash", {"leaf_hash": sha256(b"").hex()}))
    cases = []
    for description, change in variants:
        case = {**valid, **change, "valid": False, "description": description}
        if case["leaf_hash"] == valid["leaf_hash"] and description.startswith("leaf data"):
            continue
        assert not _verifies(_check_inclusion(case)), description
        cases.append(case)
    return cases


def _consistency_broken(valid: Case, roots: list[str]) -> list[Case]:
    """Deliberately broken variants of a valid consistency case; wrong sizes bring their root."""
    path: list[str] = valid["path"]
    first, second = valid["first_size"], valid["second_size"]
    variants: list[tuple[str, dict[str, Any]]] = []
    for j in sorted({0, len(path) - 1} if path else set()):
        flipped = list(path)
        flipped[j] = _flip(bytes.fromhex(path[j]), j % 32).hex()
        variants.append((f"flipped bit in path[{j}]", {"path": flipped}))
    for delta in (1, -1):
        size = first + delta
        if 0 <= size <= second:
            change = {"first_size": size, "first_root": roots[size]}
            variants.append((f"proof checked against a first head of size {size}", change))
        size = second + delta
        if 0 < first <= size < len(roots):  # from size 0, every head is consistent
            change = {"second_size": size, "second_root": roots[size]}
            variants.append((f"proof checked against a second head of size {size}", change))
    if first < second:
        variants.append(("sizes swapped", {"first_size": second, "second_size": first}))
    if path:
        variants.append(("truncated path (last hash dropped)", {"path": path[:-1]}))
    extra = valid["second_root"]
    variants.append(("extended path (extra hash appended)", {"path": [*path, extra]}))
    variants.append(("extended path (extra hash prepended)", {"path": [extra, *path]}))
    if len(path) >= 2:
        swapped = [path[1], path[0], *path[2:]]
        variants.append(("swapped order of path[0] and path[1]", {"path": swapped}))
    for name in ("first_root", "second_root") if first else ("first_root",):
        wrong = _flip(bytes.fromhex(valid[name]), 31).hex()
        variants.append((f"wrong {name.replace('_', ' ')}", {name: wrong}))
    if valid["first_root"] != valid["second_root"]:
        swapped_roots = {"first_root": valid["second_root"], "second_root": valid["first_root"]}
        variants.append(("roots swapped", swapped_roots))
    cases = []
    for description, change in variants:
        case = {**valid, **change, "valid": False, "description": description}
        assert not _verifies(_check_consistency(case)), description
        cases.append(case)
    return cases


def tree_vectors() -> dict[str, Any]:
    """Roots, inclusion and consistency proofs of two trees, with broken variants."""
    ct = merkle.MerkleTree(merkle.MemoryNodeStore())
    ct.append_many([bytes.fromhex(leaf) for leaf in CT_LEAVES])
    deep = merkle.MerkleTree(merkle.MemoryNodeStore())
    deep.append_many([f"sealpost leaf {i}".encode() for i in range(DEEP_SIZE)])

    trees = []
    for name, tree, leaves, inclusion_pairs, consistency_pairs in (
        (
            "ct-8",
            ct,
            CT_LEAVES,
            [(i, n) for n in range(1, 9) for i in range(n)],
            [(m, n) for n in range(0, 9) for m in range(0, n + 1)],
        ),
        (
            "sealpost-70",
            deep,
            [f"sealpost leaf {i}".encode().hex() for i in range(DEEP_SIZE)],
            DEEP_INCLUSION,
            DEEP_CONSISTENCY,
        ),
    ):
        roots = [tree.root(n).hex() for n in range(tree.size + 1)]
        inclusion: list[Case] = []
        for index, size in inclusion_pairs:
            case = {**_inclusion_valid(tree, index, size), "valid": True, "description": "valid"}
            assert _verifies(_check_inclusion(case))
            inclusion.append(case)
            if name == "ct-8" and (index, size) in BROKEN_INCLUSION:
                inclusion.extend(_inclusion_broken(case, roots))
        consistency: list[Case] = []
        for first, second in consistency_pairs:
            case = {
                **_consistency_valid(tree, first, second),
                "valid": True,
                "description": "valid",
            }
            assert _verifies(_check_consistency(case))
            consistency.append(case)
            if name == "ct-8" and (first, second) in BROKEN_CONSISTENCY:
                consistency.extend(_consistency_broken(case, roots))
        trees.append(
            {
                "name": name,
                "leaves": leaves,
                "roots": [{"tree_size": n, "root": root} for n, root in enumerate(roots)],
                "inclusion": inclusion,
                "consistency": consistency,
            }
        )
    return {
        "description": (
            "RFC 9162 section 2.1 Merkle trees (SHA-256, leaf prefix 0x00, node prefix 0x01). "
            "Hashes are hex; leaves are hex leaf data; path is bottom-up as in sections "
            "2.1.3.1 and 2.1.4.1. Every case with valid=false must be rejected."
        ),
        "source": (
            "Leaves of tree ct-8 are the Certificate Transparency reference test data; "
            "every value is recomputed by the tests with an independent recursive "
            "implementation of the RFC definitions."
        ),
        "trees": trees,
    }


# --------------------------------------------------------------------------- leaves

DIGEST = sha256(b"envelope").hex()
MESSAGE_ID = bytes(range(16)).hex()


def sample_events() -> list[tuple[str, LogEvent]]:
    """Representative valid events, one per kind of use."""
    return [
        (
            "message accepted (minimal acceptance event)",
            LogEvent(
                action=LogAction.MESSAGE_ACCEPTED,
                actor="relative:acc-0001",
                time_ms=1_767_225_600_000,
                subjects=[("message", MESSAGE_ID)],
                extra={"envelope_digest": DIGEST},
            ),
        ),
        (
            "review granted with legal basis, several subjects in order",
            LogEvent(
                action=LogAction.REVIEW_GRANTED,
                actor="staff:screener-17",
                time_ms=1_767_225_601_234,
                subjects=[
                    ("grant", "g-42"),
                    ("message", MESSAGE_ID),
                    ("detainee", "d-900"),
                    ("institution", "pi-vught"),
                ],
                extra={"legal_basis": "screening_order", "order": "so-7"},
            ),
        ),
        (
            "withheld with reason code; unsorted input map is stored sorted",
            LogEvent(
                action=LogAction.MESSAGE_WITHHELD,
                actor="staff:screener-17",
                time_ms=1_767_225_700_000,
                subjects=[("message", MESSAGE_ID)],
                extra={"reason": "crime_prevention", "grant": "g-42"},
            ),
        ),
        (
            "gateway event without subjects or fields, time 0",
            LogEvent(action=LogAction.KEY_RECORD_PUBLISHED, actor="gateway", time_ms=0),
        ),
        (
            "non-ASCII and right-to-left text, empty value",
            LogEvent(
                action=LogAction.ADMIN_ACTION,
                actor="staff:Zoë ناصر",
                time_ms=2**63 - 1,
                subjects=[("institution", "pi-זכרון")],
                extra={"note": "", "operation": "rename_unit"},
            ),
        ),
    ]


def _with(base: bytes, offset: int, replacement: bytes) -> bytes:
    return base[:offset] + replacement + base[offset + len(replacement) :]


def invalid_leaves() -> list[Case]:
    """Byte strings every decoder must refuse, with the error class Sealpost raises."""
    accepted = logentry.encode_event(sample_events()[0][1])
    gateway = logentry.encode_event(sample_events()[3][1])
    actor_at = 11 + 2  # version, action, time, then the actor's length
    two_fields = logentry.encode_event(sample_events()[2][1])
    grant_at = two_fields.index(b"grant") - 2
    reason_at = two_fields.index(b"reason") - 2
    grant_field = two_fields[grant_at:reason_at]
    reason_field = two_fields[reason_at:]
    unsorted = two_fields[:grant_at] + reason_field + grant_field
    duplicate = two_fields[:grant_at] + grant_field + grant_field
    digest_at = accepted.index(b"envelope_digest") - 3  # the extra count byte
    upper_id = accepted.replace(MESSAGE_ID.encode(), MESSAGE_ID.upper().encode())
    cases = [
        ("empty", b"", "FormatError"),
        ("version 0", _with(gateway, 0, b"\x00"), "VersionTooOldError"),
        ("version 2 (future)", _with(gateway, 0, b"\x02"), "VersionTooNewError"),
        ("trailing byte", gateway + b"\x00", "FormatError"),
        ("truncated (last byte missing)", accepted[:-1], "FormatError"),
        ("truncated header", gateway[:5], "FormatError"),
        ("unknown action code 0x0000", _with(gateway, 1, b"\x00\x00"), "FormatError"),
        ("unknown action code 0x01ff", _with(gateway, 1, b"\x01\xff"), "FormatError"),
        ("time_ms of 2**63", _with(gateway, 3, b"\x80" + bytes(7)), "LimitError"),
        ("actor length beyond the limit", _with(gateway, 11, b"\x00\x81"), "LimitError"),
        ("actor length beyond the data", _with(gateway, 11, b"\x00\x40"), "FormatError"),
        ("empty actor", gateway[:11] + b"\x00\x00\x00\x00", "FormatError"),
        (
            "actor in overlong UTF-8 (C0 80)",
            gateway[:11] + b"\x00\x02\xc0\x80\x00\x00",
            "FormatError",
        ),
        ("actor with a control character", gateway[:11] + b"\x00\x02a\n\x00\x00", "FormatError"),
        ("17 subjects announced", gateway[: actor_at + 7] + b"\x11", "LimitError"),
        ("17 extra fields announced", gateway[:-1] + b"\x11", "LimitError"),
        ("extra keys not sorted", unsorted, "FormatError"),
        ("duplicate extra key", duplicate, "FormatError"),
        ("message accepted without envelope digest", accepted[:digest_at] + b"\x00", "FormatError"),
        ("message id in upper-case hex", upper_id, "FormatError"),
        ("longer than any valid leaf", b"\x01" + bytes(logentry.MAX_LEAF_BYTES), "LimitError"),
    ]
    return [
        {"description": description, "encoding": data.hex(), "error": error}
        for description, data, error in cases
    ]


def _event_json(event: LogEvent) -> dict[str, Any]:
    return {
        "version": event.version,
        "action": event.action.name,
        "action_code": int(event.action),
        "actor": event.actor,
        "time_ms": event.time_ms,
        "subjects": [list(s) for s in event.subjects],
        "extra": dict(event.extra),
    }


def leaf_vectors() -> dict[str, Any]:
    """Canonical leaf encodings of sample events, and refused byte strings."""
    invalid = invalid_leaves()
    for case in invalid:
        raised = _error_of(partial(logentry.decode_event, bytes.fromhex(case["encoding"])))
        if raised != case["error"]:
            raise AssertionError(f"{case['description']}: {raised} instead of {case['error']}")
    return {
        "description": (
            "Transparency-log leaf encoding, version 1 (docs/transparency-log.md). "
            "Each valid encoding decodes to the event and re-encodes to the same bytes; "
            "leaf_hash is RFC 9162 HASH(0x00 || encoding). Invalid encodings must be refused."
        ),
        "actions": {action.name: int(action) for action in LogAction},
        "valid": [
            {
                "description": description,
                "event": _event_json(event),
                "encoding": logentry.encode_event(event).hex(),
                "leaf_hash": merkle.leaf_hash(logentry.encode_event(event)).hex(),
            }
            for description, event in sample_events()
        ],
        "invalid": invalid,
    }


# --------------------------------------------------------------------------- tree heads

LOG_SEED = sha256(b"sealpost test vector log key")
LOG_KEY_ID = sha256(b"sealpost test vector log key record")
OTHER_KEY_ID = sha256(b"sealpost test vector other key record")
TIMESTAMP_MS = 1_767_225_600_000


def _signed(body: bytes) -> log_pb2.SignedTreeHead:
    signature = ed25519_sign(LOG_SEED, logentry.tree_head_signing_digest(body))
    return log_pb2.SignedTreeHead(tree_head=body, signature=signature)


def _head(
    version: int = 1, size: int = 8, root: bytes | None = None, key_id: bytes = LOG_KEY_ID
) -> bytes:
    head = log_pb2.TreeHead(
        version=version,
        tree_size=size,
        root_hash=merkle.tree_hash([bytes.fromhex(x) for x in CT_LEAVES]) if root is None else root,
        timestamp_ms=TIMESTAMP_MS,
        log_key_id=key_id,
    )
    return head.SerializeToString(deterministic=True)


def _sth_case(description: str, sth: log_pb2.SignedTreeHead, error: str | None) -> Case:
    case: Case = {
        "description": description,
        "tree_head": sth.tree_head.hex(),
        "signature": sth.signature.hex(),
    }
    if error is not None:
        case["error"] = error
    return case


def tree_head_vectors() -> dict[str, Any]:
    """Signed tree heads under a fixed test key, and refused ones."""
    ct_leaves = [bytes.fromhex(x) for x in CT_LEAVES]
    valid = []
    for size in (0, 1, 8):
        root = merkle.tree_hash(ct_leaves[:size])
        sth = logentry.sign_tree_head(size, root, TIMESTAMP_MS, LOG_KEY_ID, SigningSeed(LOG_SEED))
        case = _sth_case(f"tree of the first {size} CT leaves", sth, None)
        case.update({"tree_size": size, "root": root.hex(), "timestamp_ms": TIMESTAMP_MS})
        case["signing_digest"] = logentry.tree_head_signing_digest(sth.tree_head).hex()
        valid.append(case)

    good = _signed(_head())
    flipped_sig = log_pb2.SignedTreeHead(tree_head=good.tree_head, signature=_flip(good.signature))
    bigger = log_pb2.SignedTreeHead(tree_head=_head(size=9), signature=good.signature)
    unsigned_digest = log_pb2.SignedTreeHead(
        tree_head=good.tree_head, signature=ed25519_sign(LOG_SEED, good.tree_head)
    )
    short_signature = log_pb2.SignedTreeHead(
        tree_head=good.tree_head, signature=good.signature[:63]
    )
    unknown_field = _signed(good.tree_head + b"\x30\x01")
    out_of_order = _signed(good.tree_head[2:] + good.tree_head[:2])
    invalid = [
        _sth_case("signature with one bit flipped", flipped_sig, "SignatureError"),
        _sth_case("tree size changed after signing", bigger, "SignatureError"),
        _sth_case("signature over the bare TreeHead", unsigned_digest, "SignatureError"),
        _sth_case(
            "signed under another key id", _signed(_head(key_id=OTHER_KEY_ID)), "SignatureError"
        ),
        _sth_case("unknown field appended, then signed", unknown_field, "FormatError"),
        _sth_case("fields out of order, then signed", out_of_order, "FormatError"),
        _sth_case("not a TreeHead, then signed", _signed(b"\xff\xff\xff"), "FormatError"),
        _sth_case(
            "root hash of 31 bytes, then signed", _signed(_head(root=bytes(31))), "FormatError"
        ),
        _sth_case("version 0, then signed", _signed(_head(version=0)), "VersionTooOldError"),
        _sth_case("version 2, then signed", _signed(_head(version=2)), "VersionTooNewError"),
        _sth_case("signature of 63 bytes", short_signature, "SignatureError"),
    ]
    public = ed25519_public_from_seed(LOG_SEED)
    for case in invalid:
        sth = log_pb2.SignedTreeHead(
            tree_head=bytes.fromhex(case["tree_head"]),
            signature=bytes.fromhex(case["signature"]),
        )
        raised = _error_of(partial(logentry.verify_tree_head, sth, public, LOG_KEY_ID))
        if raised != case["error"]:
            raise AssertionError(f"{case['description']}: {raised} instead of {case['error']}")
    return {
        "description": (
            "Signed tree heads (docs/transparency-log.md, 'Tree heads'): tree_head is a "
            "deterministically serialised sealpost.v1.TreeHead; signature is Ed25519 over "
            "SHA-256(U64(len(domain)) || domain || U64(len(tree_head)) || tree_head), U64 "
            "big-endian. Test key only; never use it for anything else."
        ),
        "signature_domain": logentry.TREE_HEAD_SIGNATURE_DOMAIN.decode("ascii"),
        "log_seed": LOG_SEED.hex(),
        "log_public_key": public.hex(),
        "log_key_id": LOG_KEY_ID.hex(),
        "valid": valid,
        "invalid": invalid,
    }


def build() -> dict[str, str]:
    """File name -> exact JSON text of every vector file."""
    documents = {
        "merkle-trees.json": tree_vectors(),
        "merkle-leaves.json": leaf_vectors(),
        "merkle-tree-heads.json": tree_head_vectors(),
    }
    return {
        name: json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        for name, doc in documents.items()
    }


def main() -> None:
    """Write the vector files next to this script."""
    for name, text in build().items():
        (VECTOR_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote {VECTOR_DIR / name}")


if __name__ == "__main__":
    main()
