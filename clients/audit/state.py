"""What ``sealpost audit verify`` remembers between runs: the last head it verified (SPEC P13).

The gateway's database holds the only copy of its heads, so an operator who deletes the
last leaves and every head above them leaves a log that is consistent in itself. The
auditor keeps its own copy instead: after each clean verification, the newest head the
stored leaves reproduce and the root over every leaf it saw (signed or not yet), in a
small JSON file readable by its owner only. The next run requires the log to extend
both. The file is written only after a clean verification, atomically.

Default location: ``$XDG_STATE_HOME/sealpost/audit/`` (``~/.local/state/sealpost/audit/``
when XDG_STATE_HOME is not set), one file per pinned key, named after it
(``directory-<16 hex digits>.json`` or ``log-<16 hex digits>.json``), so that auditing
several gateways never mixes their states. Format (docs/audit.md)::

    {"format": "sealpost-audit-state", "version": 1,
     "signed_tree_head": base64 SignedTreeHead, "tree_size": N, "root_hash": hex,
     "timestamp_ms": N, "log_key_id": hex,
     "leaves_seen": {"count": N, "root_hash": hex}, "verified_at_ms": N}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sealpost._internal.files import write_atomic
from sealpost.clients.witness import (
    HEAD_BEARING_FORMATS,
    WitnessStateError,
    head_document,
    parse_head,
)
from sealpost.crypto.logaudit import PinnedHead, SeenLeaves
from sealpost.crypto.logentry import VerifiedTreeHead
from sealpost.errors import SealpostError
from sealpost.v1 import log_pb2

STATE_FORMAT: Final = "sealpost-audit-state"
STATE_VERSION: Final = 1


class AuditStateError(SealpostError):
    """The audit state file or a pinned head file cannot be read: the check cannot run."""


def default_path(*, directory_key: bytes | None, log_key: bytes | None) -> Path:
    """The state file for the pinned key, under ``$XDG_STATE_HOME/sealpost/audit``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    if directory_key is not None:
        name = f"directory-{directory_key.hex()[:16]}.json"
    elif log_key is not None:
        name = f"log-{log_key.hex()[:16]}.json"
    else:
        raise AuditStateError("the state file is named after the pinned key: pin one")
    return Path(base) / "sealpost" / "audit" / name


@dataclass(frozen=True)
class AuditState:
    """The last clean verification: its newest attested head and the leaves it saw."""

    head: log_pb2.SignedTreeHead
    leaves_seen: int
    leaf_root: bytes
    verified_at_ms: int

    def pinned(self, path: Path) -> tuple[PinnedHead, SeenLeaves]:
        """The head and the leaves, for the verifier to hold the log to."""
        label = f"the head the last verification kept ({path})"
        seen = f"the last verification ({path})"
        return (
            PinnedHead(label, self.head.SerializeToString(deterministic=True)),
            SeenLeaves(seen, self.leaves_seen, self.leaf_root),
        )


def load(path: Path) -> AuditState | None:
    """The state in ``path``; None when there is none yet; AuditStateError if damaged."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuditStateError(f"cannot read the audit state {path}: {exc.strerror}") from exc
    try:
        document = json.loads(raw)
        head = parse_head(raw, formats=frozenset({STATE_FORMAT}))
    except (ValueError, UnicodeDecodeError, WitnessStateError) as exc:
        raise AuditStateError(f"{path} is not an audit state file: {exc}") from exc
    if document.get("version") != STATE_VERSION:
        raise AuditStateError(
            f"{path}: audit state version {document.get('version')!r} is not read"
        )
    seen = document.get("leaves_seen")
    verified_at = document.get("verified_at_ms")
    count = seen.get("count") if isinstance(seen, dict) else None
    root_hex = seen.get("root_hash") if isinstance(seen, dict) else None
    try:
        root = bytes.fromhex(root_hex) if isinstance(root_hex, str) else b""
    except ValueError:
        root = b""
    if (
        not isinstance(count, int)
        or not isinstance(verified_at, int)
        or isinstance(count, bool)
        or isinstance(verified_at, bool)
        or min(count, verified_at) < 0
        or len(root) != 32
    ):
        raise AuditStateError(f"{path}: leaves_seen or verified_at_ms is damaged")
    return AuditState(head, count, root, verified_at)


def save(path: Path, state: AuditState) -> None:
    """Write the state atomically, owner-only, creating the folder (0700) if needed."""
    head = state.head
    signed = log_pb2.TreeHead.FromString(head.tree_head)
    verified = VerifiedTreeHead(
        signed.version, signed.tree_size, signed.root_hash, signed.timestamp_ms, signed.log_key_id
    )
    document = head_document(head, verified, kind=STATE_FORMAT)
    document["version"] = STATE_VERSION
    document["leaves_seen"] = {"count": state.leaves_seen, "root_hash": state.leaf_root.hex()}
    document["verified_at_ms"] = state.verified_at_ms
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, (json.dumps(document, indent=2) + "\n").encode("utf-8"))


def read_pinned_head(path: Path) -> PinnedHead:
    """A head to pin from a file: a head file, a witness or audit state file, or binary."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AuditStateError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        head = parse_head(raw, formats=frozenset({*HEAD_BEARING_FORMATS, STATE_FORMAT}))
    except WitnessStateError as exc:
        raise AuditStateError(f"{path}: {exc.explain()}") from exc
    return PinnedHead(
        f"the head pinned with --since-head {path}", head.SerializeToString(deterministic=True)
    )
