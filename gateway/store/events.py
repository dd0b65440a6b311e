"""Log entries written with the change they record, in its transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from sealpost.crypto.logentry import LogAction, LogEvent
from sealpost.gateway import policy, translog
from sealpost.gateway.store.messages import NewMessage

#: The actor of what the gateway records on its own (its keys, the default regimes).
GATEWAY_ACTOR = "gateway"


def log(
    connection: Connection,
    action: LogAction,
    actor: str,
    now_ms: int,
    subjects: Sequence[tuple[str, str]] = (),
    *,
    scope: translog.Scope,
    **extra: str,
) -> translog.Appended:
    """Append one event to the transparency log in the current transaction.

    ``scope`` names the institutions the event concerns (translog.PUBLIC: every
    auditor's; translog.NATIONAL: national auditors' only); an auditor scoped to some
    institutions reads the others as leaf hashes (docs/transparency-log.md).
    """
    event = LogEvent(action=action, actor=actor, time_ms=now_ms, subjects=subjects, extra=extra)
    return translog.append(connection, [event], [scope])[0]


def log_acceptance(connection: Connection, new: NewMessage, actor: str) -> translog.Appended:
    """Record a message's acceptance: what a receipt proves, and what the state replays from.

    It names the message, its detainee and the relative's account, the envelope's digest,
    the sender's key and whether the correspondence is privileged; never the institution,
    because the sender of a receipt may not learn it (SPEC P11).
    """
    return log(
        connection,
        LogAction.MESSAGE_ACCEPTED,
        actor,
        new.accepted_at_ms,
        [
            ("message", new.message_id.hex()),
            ("detainee", new.detainee_id),
            ("account", new.account_id),
        ],
        envelope_digest=new.envelope_digest.hex(),
        scope=frozenset({new.institution_id}),
        direction="inbound" if new.direction == policy.INBOUND else "outbound",
        privileged="true" if new.privileged else "false",
        sender_key=new.sender_key_id.hex(),
    )
