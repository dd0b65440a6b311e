"""What an administrative action changed at the key server, so that it can be recorded (SPEC P14).

Every tool that changes something around the escrow key (the bootstrap, staff
logins, terminal tokens, rotation, retention) keeps an ``ActionJournal``: the
key-server identity it acts as, when it started and finished, and each API path
it wrote. The result, a ``KeyServerAction``, is recorded in the transparency log
through the gateway (``AdminService/RecordKeyEvent``); the auditor then matches
every change in the key server's audit log to a recorded action.

When the gateway cannot be reached yet (the bootstrap comes first), actions are
written to a receipt file (``dump_receipt``) and recorded later. Paths are noted
before each request is sent, so a request that timed out but took effect is
still covered.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from sealpost.escrow._transport import Connection, data_of
from sealpost.escrow.errors import ActionReceiptError, ActionReceiptVersionError

#: The receipt format this code writes and reads.
RECEIPT_FORMAT: Final = "sealpost-key-server-actions"
RECEIPT_VERSION: Final = 1
#: Paths of one recorded event, joined by commas (one log leaf value).
MAX_PATHS_BYTES: Final = 256


class ActionKind(StrEnum):
    """Which administrative action; the names the transparency log uses."""

    BOOTSTRAP = "bootstrap"
    STAFF_CHANGE = "staff_change"
    TERMINAL_TOKEN_CREATED = "terminal_token_created"  # noqa: S105 - a kind, not a secret
    TERMINAL_TOKEN_REVOKED = "terminal_token_revoked"  # noqa: S105 - a kind, not a secret
    ROTATION = "rotation"
    RETENTION = "retention"
    ROTATION_SCHEDULE = "rotation_schedule"


@dataclass(frozen=True)
class KeyServerIdentity:
    """Who a token is at the key server, as its audit log names it."""

    #: Empty for tokens without an entity (root, or a token made for a machine).
    entity_id: str
    display_name: str


@dataclass(frozen=True)
class KeyServerAction:
    """One administrative action at the key server, ready to be recorded."""

    kind: ActionKind
    #: What it was about, for people: a user name, an institution, a key prefix.
    target: str
    #: Distinct API paths written (as the audit log shows them: no "/v1/"), in order.
    paths: tuple[str, ...]
    started_ms: int
    finished_ms: int
    identity: KeyServerIdentity
    #: The escrow key version, for rotation and retention.
    key_version: int = 0
    note: str = ""

    def path_groups(self, max_bytes: int = MAX_PATHS_BYTES) -> list[tuple[str, ...]]:
        """The paths in groups that each fit one recorded event."""
        groups: list[tuple[str, ...]] = []
        current: list[str] = []
        size = 0
        for path in self.paths:
            extra = len(path.encode()) + (1 if current else 0)
            if current and size + extra > max_bytes:
                groups.append(tuple(current))
                current, size = [], 0
                extra = len(path.encode())
            current.append(path)
            size += extra
        if current:
            groups.append(tuple(current))
        return groups

    def to_json(self) -> dict[str, Any]:
        """The action as a receipt entry."""
        return {
            "kind": self.kind.value,
            "target": self.target,
            "paths": list(self.paths),
            "started_ms": self.started_ms,
            "finished_ms": self.finished_ms,
            "key_server_entity": self.identity.entity_id,
            "key_server_name": self.identity.display_name,
            "key_version": self.key_version,
            "note": self.note,
        }


def wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


def lookup_identity(conn: Connection) -> KeyServerIdentity:
    """The calling token's entity id and display name (``auth/token/lookup-self``)."""
    operation = "token lookup-self"
    answer = conn.call(operation, lambda c: c.adapter.get("/v1/auth/token/lookup-self"))
    data = data_of(answer, operation)
    entity = data.get("entity_id")
    name = data.get("display_name")
    return KeyServerIdentity(
        entity_id=entity if isinstance(entity, str) else "",
        display_name=name if isinstance(name, str) else "",
    )


@dataclass
class ActionJournal:
    """The actions one client made, path by path (one journal per client and thread)."""

    conn: Connection
    clock: Callable[[], int] = wall_clock_ms
    actions: list[KeyServerAction] = field(default_factory=list)
    _identity: KeyServerIdentity | None = None
    _paths: list[str] | None = None

    def identity(self) -> KeyServerIdentity:
        """The acting token's identity, looked up once."""
        if self._identity is None:
            self._identity = lookup_identity(self.conn)
        return self._identity

    @contextlib.contextmanager
    def action(
        self, kind: ActionKind, target: str, *, key_version: Callable[[], int] | None = None
    ) -> Iterator[None]:
        """Note the paths written inside the block as one action (kept even if it fails)."""
        identity = self.identity()
        started = self.clock()
        outer, self._paths = self._paths, []
        try:
            yield
        finally:
            paths, self._paths = self._paths, outer
            if paths:
                version = 0
                if key_version is not None:
                    with contextlib.suppress(Exception):
                        version = key_version()
                self.actions.append(
                    KeyServerAction(
                        kind=kind,
                        target=target,
                        paths=tuple(dict.fromkeys(paths)),
                        started_ms=started,
                        finished_ms=self.clock(),
                        identity=identity,
                        key_version=version,
                    )
                )

    def wrote(self, path: str) -> None:
        """Note that ``path`` (with or without "/v1/") is about to be written."""
        if self._paths is not None:
            self._paths.append(path.removeprefix("/v1/").strip("/"))

    def take(self) -> list[KeyServerAction]:
        """The actions noted so far, and forget them."""
        done, self.actions = self.actions, []
        return done


def dump_receipt(actions: Iterable[KeyServerAction]) -> bytes:
    """A receipt file's bytes: the actions, for ``sealpost admin key record``."""
    document = {
        "format": RECEIPT_FORMAT,
        "version": RECEIPT_VERSION,
        "actions": [a.to_json() for a in actions],
    }
    return json.dumps(document, indent=2).encode() + b"\n"


def _field(entry: dict[str, Any], name: str, kind: type) -> Any:
    value = entry.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ActionReceiptError(f"an action's {name} is missing or not a {kind.__name__}")
    return value


def _action(entry: object) -> KeyServerAction:
    if not isinstance(entry, dict):
        raise ActionReceiptError("an action is not a JSON object")
    try:
        kind = ActionKind(_field(entry, "kind", str))
    except ValueError:
        raise ActionReceiptError(f"unknown action kind {entry.get('kind')!r}") from None
    paths = _field(entry, "paths", list)
    if not all(isinstance(p, str) for p in paths):
        raise ActionReceiptError("an action's paths are not strings")
    return KeyServerAction(
        kind=kind,
        target=_field(entry, "target", str),
        paths=tuple(paths),
        started_ms=_field(entry, "started_ms", int),
        finished_ms=_field(entry, "finished_ms", int),
        identity=KeyServerIdentity(
            _field(entry, "key_server_entity", str), _field(entry, "key_server_name", str)
        ),
        key_version=_field(entry, "key_version", int),
        note=_field(entry, "note", str),
    )


def load_receipt(data: bytes) -> list[KeyServerAction]:
    """The actions of a receipt file; ActionReceiptError (or its version error) if unreadable."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ActionReceiptError("the receipt is not JSON") from None
    if not isinstance(document, dict) or document.get("format") != RECEIPT_FORMAT:
        raise ActionReceiptError(f"not a {RECEIPT_FORMAT} receipt")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < RECEIPT_VERSION:
        raise ActionReceiptVersionError(f"receipt version {version!r} is not accepted")
    if version > RECEIPT_VERSION:
        raise ActionReceiptVersionError(
            f"receipt version {version} is newer than this Sealpost knows: upgrade it"
        )
    entries = document.get("actions")
    if not isinstance(entries, list):
        raise ActionReceiptError("the receipt has no list of actions")
    return [_action(e) for e in entries]
