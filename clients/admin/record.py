"""Record key-server actions in the transparency log (``AdminService/RecordKeyEvent``, SPEC P14).

The auditor matches every change in the key server's audit log to a recorded
action: same key-server identity, inside the action's time window, at one of the
paths the action lists (docs/audit.md). An action whose paths do not fit one log
leaf is recorded as several events with the same window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import typer
from google.protobuf.timestamp_pb2 import Timestamp

from sealpost.clients._cli import StaffOptions
from sealpost.clients._grpc import ClientError
from sealpost.clients.staff import StaffClient
from sealpost.errors import SealpostError
from sealpost.escrow.actions import ActionKind, KeyServerAction, dump_receipt
from sealpost.i18n import _
from sealpost.v1 import admin_pb2

#: The API's name for each kind of action.
KINDS: dict[ActionKind, admin_pb2.KeyEventKind.ValueType] = {
    ActionKind.BOOTSTRAP: admin_pb2.KEY_EVENT_KIND_BOOTSTRAP,
    ActionKind.STAFF_CHANGE: admin_pb2.KEY_EVENT_KIND_STAFF_CHANGE,
    ActionKind.TERMINAL_TOKEN_CREATED: admin_pb2.KEY_EVENT_KIND_TERMINAL_TOKEN_CREATED,
    ActionKind.TERMINAL_TOKEN_REVOKED: admin_pb2.KEY_EVENT_KIND_TERMINAL_TOKEN_REVOKED,
    ActionKind.ROTATION: admin_pb2.KEY_EVENT_KIND_ROTATION,
    ActionKind.RETENTION: admin_pb2.KEY_EVENT_KIND_RETENTION,
    ActionKind.ROTATION_SCHEDULE: admin_pb2.KEY_EVENT_KIND_ROTATION_SCHEDULE,
}


def _stamp(ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def requests(action: KeyServerAction) -> list[admin_pb2.RecordKeyEventRequest]:
    """The RecordKeyEvent requests that record ``action`` (one per group of paths)."""
    return [
        admin_pb2.RecordKeyEventRequest(
            kind=KINDS[action.kind],
            key_version=action.key_version,
            note=action.note,
            target=action.target,
            paths=list(paths),
            started_at=_stamp(action.started_ms),
            finished_at=_stamp(action.finished_ms),
            key_server_entity=action.identity.entity_id,
            key_server_name=action.identity.display_name,
        )
        for paths in action.path_groups()
    ]


def record_actions(staff: StaffClient, actions: Iterable[KeyServerAction]) -> int:
    """Record each action through ``staff`` (an administrator); how many events were logged."""
    count = 0
    for action in actions:
        for request in requests(action):
            staff.call("admin", "RecordKeyEvent", request)
            count += 1
    return count


def settle(
    options: StaffOptions,
    actions: Sequence[KeyServerAction],
    *,
    record: bool,
    receipt: Path | None,
) -> int:
    """Record key-server actions a command made (or keep them in a receipt to record later).

    With ``receipt`` the actions are written there first. If recording fails, the
    work at the key server stands, so the actions are kept in a receipt file (the
    given one, or a new one here) and the error says how to record them later.
    Returns how many log events were written.
    """
    if not actions:
        return 0
    if receipt is not None:
        write_receipt(receipt, actions)
    if not record:
        return 0
    try:
        client = options.client()
        try:
            return record_actions(client, actions)
        finally:
            client.close()
    except (SealpostError, typer.BadParameter) as exc:
        kept = receipt or Path(f"sealpost-key-server-actions-{actions[0].started_ms}.json")
        if receipt is None:
            write_receipt(kept, actions)
        reason = exc.message if isinstance(exc, ClientError) else str(exc)
        raise RecordingError(
            _(
                "the key server was changed but the change is not recorded in the log "
                "({reason}); an administrator records it with: sealpost admin key record {file}",
                reason=reason,
                file=kept,
            )
        ) from exc


class RecordingError(SealpostError):
    """A change made at the key server could not be recorded in the transparency log."""


def write_receipt(path: Path, actions: Sequence[KeyServerAction]) -> None:
    """Write a receipt of key-server actions (no secrets: paths, names, times)."""
    path.write_bytes(dump_receipt(actions))
