"""Recorded key-server actions: how they are written into log leaves, and read back (SPEC P14).

An administrator who changes something at the key server (the bootstrap, a staff
login, a terminal token, a rotation, a retention) records it with
``AdminService/RecordKeyEvent``. The leaf names the kind of action, the key-server
API paths it changed, when it started and finished, and the key-server identity
that acted. The auditor matches every change in the key server's audit log to such
a leaf (docs/audit.md, "Key-server changes"). Rotation and retention keep their own
actions (ESCROW_KEY_ROTATED, RETENTION_APPLIED); every other kind is an ADMIN_ACTION
with ``operation`` = ``key_server``. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from sealpost.crypto.logentry import MAX_EXTRA_VALUE_BYTES, LogAction, LogEvent

#: ``operation`` of an ADMIN_ACTION leaf that records a key-server action.
OPERATION: Final = "key_server"
#: Extra fields of those leaves.
OPERATION_FIELD: Final = "operation"
KIND_FIELD: Final = "kind"
TARGET_FIELD: Final = "target"
PATHS_FIELD: Final = "paths"
STARTED_FIELD: Final = "started_ms"
FINISHED_FIELD: Final = "finished_ms"
ENTITY_FIELD: Final = "key_server_entity"
NAME_FIELD: Final = "key_server_name"
#: Subject kind of an ADMIN_ACTION key-server leaf; its id is the action's kind.
SUBJECT: Final = "key_server"

#: Kinds as leaves name them. Rotation and retention are named by their own actions.
ROTATION: Final = "rotation"
RETENTION: Final = "retention"
BOOTSTRAP: Final = "bootstrap"
STAFF_CHANGE: Final = "staff_change"
TERMINAL_TOKEN_CREATED: Final = "terminal_token_created"  # noqa: S105 - a kind
TERMINAL_TOKEN_REVOKED: Final = "terminal_token_revoked"  # noqa: S105 - a kind
ROTATION_SCHEDULE: Final = "rotation_schedule"
KINDS: Final = frozenset(
    {
        ROTATION,
        RETENTION,
        BOOTSTRAP,
        STAFF_CHANGE,
        TERMINAL_TOKEN_CREATED,
        TERMINAL_TOKEN_REVOKED,
        ROTATION_SCHEDULE,
    }
)

#: A key-server API path as the audit log shows it: no "/v1/", no commas (they separate).
PATH: Final = re.compile(r"[A-Za-z0-9_.@=+-]+(?:/[A-Za-z0-9_.@=+-]+)*")
#: Paths of one record, joined by commas, fit one leaf value.
MAX_PATHS_BYTES: Final = MAX_EXTRA_VALUE_BYTES
#: An action longer than this (start to finish) is not one action.
MAX_ACTION_MS: Final = 3_600_000
#: How long after an action it may still be recorded: the bootstrap happens before the
#: gateway exists, so it is recorded once an administrator can sign in.
MAX_RECORD_DELAY_MS: Final = 7 * 24 * 3_600_000
#: How far the recording tool's clock may run ahead of the gateway's.
MAX_CLOCK_AHEAD_MS: Final = 60_000


class KeyEventError(ValueError):
    """A recorded key-server action that does not fit a leaf or its rules."""


@dataclass(frozen=True)
class RecordedAction:
    """A key-server action as the transparency log records it."""

    log_index: int
    #: When the gateway recorded it.
    time_ms: int
    #: Who recorded it at the gateway ("staff:<name>").
    actor: str
    kind: str
    target: str
    paths: frozenset[str]
    started_ms: int
    finished_ms: int
    key_server_entity: str
    key_server_name: str
    #: When a verified signed head first covered the leaf; None if not known.
    signed_at_ms: int | None = None


def check_paths(paths: Sequence[str]) -> str:
    """The paths joined for a leaf, or KeyEventError."""
    if not paths:
        raise KeyEventError("name the key-server paths the action changed")
    for path in paths:
        if not PATH.fullmatch(path) or path.startswith("v1/"):
            raise KeyEventError(f"not a key-server API path: {path[:80]!r}")
    joined = ",".join(sorted(set(paths)))
    if len(joined.encode()) > MAX_PATHS_BYTES:
        raise KeyEventError(
            f"the paths take more than {MAX_PATHS_BYTES} bytes: record the action in parts"
        )
    return joined


def check_times(started_ms: int, finished_ms: int, now_ms: int) -> None:
    """Raise KeyEventError unless the action's window is plausible when it is recorded."""
    if finished_ms < started_ms:
        raise KeyEventError("the action finished before it started")
    if finished_ms - started_ms > MAX_ACTION_MS:
        raise KeyEventError("an action lasts at most an hour: record it in parts")
    if finished_ms > now_ms + MAX_CLOCK_AHEAD_MS:
        raise KeyEventError("the action finishes in the future")
    if now_ms - finished_ms > MAX_RECORD_DELAY_MS:
        raise KeyEventError("an action is recorded within 7 days")


def leaf_extra(
    kind: str,
    *,
    target: str,
    paths: Sequence[str],
    started_ms: int,
    finished_ms: int,
    key_server_entity: str,
    key_server_name: str,
) -> dict[str, str]:
    """The extra fields recording one key-server action (``operation`` added for ADMIN_ACTION)."""
    if kind not in KINDS:
        raise KeyEventError(f"unknown key-server action {kind!r}")
    extra = {
        PATHS_FIELD: check_paths(paths),
        STARTED_FIELD: str(started_ms),
        FINISHED_FIELD: str(finished_ms),
        ENTITY_FIELD: key_server_entity,
        NAME_FIELD: key_server_name,
        TARGET_FIELD: target,
    }
    if kind not in (ROTATION, RETENTION):
        extra[OPERATION_FIELD] = OPERATION
        extra[KIND_FIELD] = kind
    return extra


def _int(extra: Mapping[str, str], name: str) -> int | None:
    value = extra.get(name, "")
    return int(value) if value.isascii() and value.isdigit() else None


def action_from_event(index: int, event: LogEvent) -> RecordedAction | None:
    """The key-server action a leaf records, or None (another event, or one without paths).

    Rotation and retention leaves written before paths were recorded carry none and
    therefore match no change: the auditor lists such changes as unrecorded.
    """
    extra = event.extra
    if event.action is LogAction.ESCROW_KEY_ROTATED:
        kind = ROTATION
    elif event.action is LogAction.RETENTION_APPLIED:
        kind = RETENTION
    elif event.action is LogAction.ADMIN_ACTION and extra.get(OPERATION_FIELD) == OPERATION:
        kind = extra.get(KIND_FIELD, "")
    else:
        return None
    started, finished = _int(extra, STARTED_FIELD), _int(extra, FINISHED_FIELD)
    paths = frozenset(p for p in extra.get(PATHS_FIELD, "").split(",") if p)
    if kind not in KINDS or started is None or finished is None or not paths:
        return None
    return RecordedAction(
        log_index=index,
        time_ms=event.time_ms,
        actor=event.actor,
        kind=kind,
        target=extra.get(TARGET_FIELD, ""),
        paths=paths,
        started_ms=started,
        finished_ms=finished,
        key_server_entity=extra.get(ENTITY_FIELD, ""),
        key_server_name=extra.get(NAME_FIELD, ""),
    )
