"""Match every key-server change around the escrow key to a recorded administrative action (P14).

A change in the key server's audit log (escrow/auditlog.py ``ChangeKind``) is
matched by an action recorded in the transparency log (gateway/keyevents.py) when

1. the action **lists the change's path** and its kind may make that kind of change
   (``COVERS``: a staff change cannot cover a policy write, for instance);
2. the **same key-server identity** acted: the entity id, or for a token without an
   entity (root) the display name;
3. the change happened **inside the action's window**, from its start to its finish,
   widened by the clock leeway on both sides;
4. with a verified log, the action is **in a verified signed tree head**.

Some changes are never matched, whatever was recorded: exporting, backing up,
restoring, importing or deleting the escrow key, raw storage access, and making the
key exportable, backed up in plain text or deletable. Sealpost never does these,
and each one can take the key out of the key server. Refused requests changed
nothing and are listed as information; so are root-token generations, whose use is
what the other checks see. Pure functions.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from sealpost.clients.audit.keyserver import Change, DecryptStatus
from sealpost.escrow.auditlog import ChangeKind
from sealpost.gateway import keyevents
from sealpost.gateway.keyevents import RecordedAction

#: Which kinds of change each kind of recorded action may make.
COVERS: Final[dict[str, frozenset[ChangeKind]]] = {
    keyevents.BOOTSTRAP: frozenset(
        {
            ChangeKind.MOUNT,
            ChangeKind.KEY_CREATE,
            ChangeKind.KEY_CONFIG,
            ChangeKind.POLICY,
            ChangeKind.AUTH_METHOD,
            ChangeKind.TOKEN_ROLE,
            ChangeKind.IDENTITY_TOKENS,
        }
    ),
    keyevents.STAFF_CHANGE: frozenset({ChangeKind.STAFF_LOGIN, ChangeKind.IDENTITY}),
    keyevents.TERMINAL_TOKEN_CREATED: frozenset({ChangeKind.TOKEN_CREATE}),
    keyevents.TERMINAL_TOKEN_REVOKED: frozenset({ChangeKind.TOKEN_REVOKE}),
    keyevents.ROTATION: frozenset({ChangeKind.KEY_ROTATE}),
    keyevents.RETENTION: frozenset({ChangeKind.KEY_CONFIG, ChangeKind.KEY_TRIM}),
    keyevents.ROTATION_SCHEDULE: frozenset({ChangeKind.KEY_CONFIG}),
}
#: Changes no recorded action covers: each lets the key leave, or destroys it.
NEVER: Final = frozenset(
    {
        ChangeKind.KEY_DELETE,
        ChangeKind.KEY_EXPORT,
        ChangeKind.KEY_BACKUP,
        ChangeKind.KEY_RESTORE,
        ChangeKind.KEY_IMPORT,
        ChangeKind.RAW_STORAGE,
    }
)
#: Key settings Sealpost never turns on (the bootstrap refuses a key that has them).
UNSAFE_SETTINGS: Final = ("exportable", "allow_plaintext_backup", "deletion_allowed")
#: Listed, not matched: generating a root token is an act of the unseal-key holders.
NOTED: Final = frozenset({ChangeKind.ROOT_TOKEN})


class ChangeReason(enum.StrEnum):
    """Why a key-server change has no recorded action."""

    KEY_LEAVES = "Sealpost never does this: it lets the escrow key leave the key server"
    NOT_RECORDED = "no recorded key-server action lists this change"
    OTHER_IDENTITY = "the recorded actions listing this change name another key-server identity"
    OUTSIDE_WINDOW = "the recorded actions listing this change happened at another time"
    NOT_SIGNED = "the recorded action is not in a verified signed tree head"


@dataclass(frozen=True)
class UnmatchedChange:
    """A key-server change without a recorded action, and why."""

    change: Change
    reason: ChangeReason
    detail: str = ""


@dataclass(frozen=True)
class ChangeReconciliation:
    """Key-server changes matched to recorded actions, and what is left on either side."""

    matched: tuple[tuple[Change, RecordedAction], ...]
    unmatched: tuple[UnmatchedChange, ...]
    #: Refused by the key server: nothing changed (information).
    refused: tuple[Change, ...]
    #: Root-token generations (information).
    noted: tuple[Change, ...]
    #: Recorded actions that no change in the given audit log matched (information: the
    #: audit log may not reach back that far).
    unused_actions: tuple[RecordedAction, ...]


def _unsafe(change: Change) -> str:
    """The unsafe settings a key write turns on, comma-separated ("" when none)."""
    if change.kind not in (ChangeKind.KEY_CONFIG, ChangeKind.KEY_CREATE):
        return ""
    return ", ".join(s for s in UNSAFE_SETTINGS if change.setting(s) == "true")


def _same_identity(change: Change, action: RecordedAction) -> bool:
    if action.key_server_entity:
        return change.entity_id == action.key_server_entity
    return not change.entity_id and change.display_name == action.key_server_name


def _never(change: Change) -> UnmatchedChange | None:
    """The finding for a change no recorded action may cover, or None."""
    if change.kind in NEVER:
        return UnmatchedChange(change, ChangeReason.KEY_LEAVES, change.kind.value)
    unsafe = _unsafe(change)
    if unsafe:
        return UnmatchedChange(change, ChangeReason.KEY_LEAVES, f"sets {unsafe}")
    return None


def _match(
    change: Change,
    actions: Sequence[RecordedAction],
    leeway_ms: int,
    require_signed: bool,
) -> RecordedAction | UnmatchedChange:
    never = _never(change)
    if never is not None:
        return never
    listing = [a for a in actions if change.path in a.paths and change.kind in COVERS[a.kind]]
    if not listing:
        return UnmatchedChange(change, ChangeReason.NOT_RECORDED)
    own = [a for a in listing if _same_identity(change, a)]
    if not own:
        names = ", ".join(sorted({a.key_server_name or a.key_server_entity for a in listing}))
        return UnmatchedChange(change, ChangeReason.OTHER_IDENTITY, f"recorded for {names}")
    at = change.time_ms
    timely = [a for a in own if a.started_ms - leeway_ms <= at <= a.finished_ms + leeway_ms]
    if not timely:
        nearest = min(own, key=lambda a: min(abs(at - a.started_ms), abs(at - a.finished_ms)))
        return UnmatchedChange(
            change,
            ChangeReason.OUTSIDE_WINDOW,
            f"nearest: log index {nearest.log_index}, {nearest.kind}",
        )
    if require_signed:
        timely = [a for a in timely if a.signed_at_ms is not None]
        if not timely:
            return UnmatchedChange(change, ChangeReason.NOT_SIGNED)
    return timely[0]


def match_changes(
    changes: Iterable[Change],
    actions: Iterable[RecordedAction],
    *,
    leeway_ms: int,
    require_signed: bool,
) -> ChangeReconciliation:
    """Match each change that took (or may have taken) effect to a recorded action."""
    recorded = [a for a in actions if a.kind in COVERS]
    matched: list[tuple[Change, RecordedAction]] = []
    unmatched: list[UnmatchedChange] = []
    refused: list[Change] = []
    noted: list[Change] = []
    used: set[int] = set()
    for change in changes:
        if change.status is DecryptStatus.REFUSED:
            refused.append(change)
            continue
        if change.kind in NOTED:
            noted.append(change)
            continue
        found = _match(change, recorded, leeway_ms, require_signed)
        if isinstance(found, UnmatchedChange):
            unmatched.append(found)
        else:
            matched.append((change, found))
            used.add(found.log_index)
    return ChangeReconciliation(
        matched=tuple(matched),
        unmatched=tuple(unmatched),
        refused=tuple(refused),
        noted=tuple(noted),
        unused_actions=tuple(a for a in recorded if a.log_index not in used),
    )
