"""``sealpost audit``: verify the transparency log, reconcile it with the key server, report.

Read access is all these commands need: the gateway's database (opened read
only) and copies of the key server's audit devices' files. Exit codes: 0 clean,
1 a finding (a log problem, an unmatched decrypt, grant or key-server change, an
escrow of a privileged message, audit devices that disagree), 2 the check could
not run (bad input, unreadable database or audit log), 3 a server (the database, the key
server, the gateway) could not be reached. The same numbers as every command (docs/cli.md).
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar

import typer
from sqlalchemy import Connection

from sealpost.clients._cli import (
    CaFile,
    DirectoryKey,
    Gateway,
    KeyServer,
    StaffOptions,
    User,
    cli_app,
)
from sealpost.clients._cli import report as report_problem
from sealpost.clients._problems import ExitCode, Problem, problem_of
from sealpost.clients.audit import database, report, state
from sealpost.clients.audit.changes import ChangeReason, ChangeReconciliation
from sealpost.clients.audit.keyserver import (
    Change,
    Device,
    DeviceComparison,
    Escrow,
    KeyServerLog,
    read_devices,
)
from sealpost.clients.audit.reconcile import (
    DEFAULT_LEEWAY_MS,
    LEAVING,
    Decrypt,
    Grant,
    LogFacts,
    Reason,
    Reconciliation,
    actions_with_signing_times,
    approvals_from_events,
    grant_from_event,
    privileged_messages,
    reconcile,
    timelines_from_events,
    utc,
    with_signing_times,
)
from sealpost.clients.audit.remote import RemoteReport
from sealpost.clients.audit.statecheck import StateReport, check_state
from sealpost.clients.audit.verify import verify_database
from sealpost.clients.witness import HEAD_FORMAT
from sealpost.crypto import cosignature
from sealpost.crypto.errors import FormatError
from sealpost.crypto.logaudit import (
    Finding,
    LogAuditReport,
    PinnedHead,
    SeenLeaves,
    TailPolicy,
    TrustedWitness,
)
from sealpost.crypto.logentry import LogAction
from sealpost.escrow.auditlog import AuditEvent, read_audit_entries
from sealpost.escrow.client import EscrowKeyRef
from sealpost.gateway.keyevents import RecordedAction, action_from_event
from sealpost.i18n import _, _n
from sealpost.v1 import log_pb2

T = TypeVar("T")
#: Exit codes (module docstring).
CLEAN: Final = ExitCode.OK
FOUND: Final = ExitCode.FAILED
CANNOT_RUN: Final = ExitCode.USAGE
#: Leaves may stay outside every signed head this long before that is a finding: the
#: gateway signs within its interval (2 s by default), plus leeway for clocks and load.
DEFAULT_MAX_UNSIGNED_S: Final = 15.0

app = cli_app(
    help=_(
        "Auditors: verify the transparency log, reconcile it with the key server, report.\n\n"
        "Needs read access only: the gateway's database and the key server's audit log. "
        "Exit codes: 0 clean, 1 something found, 2 the check could not run, 3 a server "
        "could not be reached."
    )
)

DatabaseUrl = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="SEALPOST_DATABASE_URL",
        help=_("The gateway's database (sqlite:///path or postgresql://...); opened read only."),
    ),
]
LogKey = Annotated[
    str,
    typer.Option(
        "--log-key",
        envvar="SEALPOST_LOG_KEY",
        help=_("Pinned Ed25519 public key of the log (64 hex digits)."),
    ),
]
AuditLogs = Annotated[
    list[str],
    typer.Option(
        "--audit-log",
        help=_(
            "A key-server audit device's file (JSON lines). Repeat it for each device: the "
            "devices are compared. Several files of one device (rotated): NAME=PATH for each, "
            "with the same NAME."
        ),
    ),
]
Leeway = Annotated[
    float,
    typer.Option(
        "--leeway-seconds",
        min=0,
        help=_("Clock difference allowed between the gateway and the key server."),
    ),
]
EscrowMount = Annotated[
    str,
    typer.Option("--escrow-mount", help=_("The key server's transit mount of the escrow key.")),
]
EscrowKeyName = Annotated[str, typer.Option("--escrow-key", help=_("The escrow key's name."))]
JsonOutput = Annotated[bool, typer.Option("--json", help=_("Print JSON for scripts."))]
MaxUnsigned = Annotated[
    float,
    typer.Option(
        "--max-unsigned-seconds",
        min=0,
        help=_(
            "Leaves outside every signed head for longer than this (by the times they "
            "claim) are a finding: the gateway signs within seconds of any growth."
        ),
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help=_("No progress lines on stderr."))]

_DEFAULT_KEY: Final = EscrowKeyRef()


def _guard(action: Callable[[], T]) -> T:
    """Run a command body; an error that stops the check ends it with 2 (3: unreachable)."""
    try:
        return action()
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        problem = problem_of(exc)
        if problem is None:
            raise
        code = ExitCode.UNAVAILABLE if problem.exit == ExitCode.UNAVAILABLE else CANNOT_RUN
        report_problem(Problem(problem.code, problem.message, code, problem.detail))
        raise typer.Exit(int(code)) from exc


def _hex_key(value: str, option: str) -> bytes | None:
    if not value:
        return None
    try:
        key = bytes.fromhex(value.strip())
    except ValueError:
        raise typer.BadParameter(_("not hexadecimal"), param_hint=option) from None
    if len(key) != 32:
        raise typer.BadParameter(
            _("an Ed25519 public key is 32 bytes (64 hex digits)"), param_hint=option
        )
    return key


def _progress(quiet: bool) -> Callable[[str], None]:
    def show(line: str) -> None:
        if not quiet:
            typer.echo(f"  {line}", err=True)

    return show


def _emit_json(data: dict[str, Any]) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _check_log(
    connection: Connection,
    log_key: str,
    directory_key: str,
    *,
    jobs: int = 1,
    use_node_cache: bool = True,
    quiet: bool = False,
    pinned: Sequence[PinnedHead] = (),
    seen: Sequence[SeenLeaves] = (),
    max_unsigned_s: float = DEFAULT_MAX_UNSIGNED_S,
    witness_keys: Sequence[TrustedWitness] = (),
) -> tuple[LogAuditReport, list[str]]:
    directory_pin = _hex_key(directory_key, "--directory-key")
    keys = database.log_keys(
        connection,
        log_key=_hex_key(log_key, "--log-key"),
        directory_key=directory_pin,
    )
    for warning in keys.warnings:
        typer.echo(_("warning: {warning}", warning=warning), err=True)
    witnesses = list(witness_keys)
    if directory_pin is not None:
        witnesses += database.institution_witnesses(connection, directory_pin)
    found = verify_database(
        connection,
        keys.keys,
        jobs=jobs,
        use_node_cache=use_node_cache,
        progress=_progress(quiet),
        pinned=pinned,
        seen=seen,
        tail=TailPolicy(time.time_ns() // 1_000_000, round(max_unsigned_s * 1000)),
        witnesses=witnesses,
    )
    return found, keys.warnings


def _witness_key(text: str) -> TrustedWitness:
    """An auditor's witness key given as NAME=HEX (as the gateway's --witness-keys takes it)."""
    name, _sep, key_hex = text.partition("=")
    try:
        public = bytes.fromhex(key_hex.strip())
        key_id = cosignature.witness_key_id(public)
    except (ValueError, FormatError):
        raise typer.BadParameter(
            _("NAME=HEX, the hex being an Ed25519 public key (64 hex digits)"),
            param_hint="--witness-key",
        ) from None
    return TrustedWitness(key_id=key_id, name=name.strip() or key_hex[:16], public_key=public)


# --------------------------------------------------------------------------- verify


def _finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "kind": finding.kind.value,
        "where": finding.where(),
        "start": finding.start,
        "end": finding.end,
        "exact": finding.exact,
        "located_by": finding.located_by.value if finding.located_by else None,
        "other_indices": list(finding.other_indices),
        "head_ids": list(finding.head_ids),
        "detail": finding.detail,
    }


def _head_json(signed: bytes | None) -> dict[str, Any] | None:
    """The newest attested head, as a head file for --since-head holds it."""
    if signed is None:
        return None
    sth = log_pb2.SignedTreeHead.FromString(signed)
    head = log_pb2.TreeHead.FromString(sth.tree_head)
    return {
        "format": HEAD_FORMAT,
        "version": 1,
        "signed_tree_head": base64.b64encode(signed).decode("ascii"),
        "tree_size": head.tree_size,
        "root_hash": head.root_hash.hex(),
        "timestamp_ms": head.timestamp_ms,
        "log_key_id": head.log_key_id.hex(),
    }


def _log_json(found: LogAuditReport, warnings: Sequence[str]) -> dict[str, Any]:
    tail = found.tail
    return {
        "ok": found.ok,
        "leaf_count": found.leaf_count,
        "head_count": found.head_count,
        "valid_head_count": found.valid_head_count,
        "attested_size": found.attested_size,
        "first_bad_index": found.first_bad_index,
        "findings": [_finding_json(f) for f in found.findings],
        "notes": list(found.notes),
        "warnings": list(warnings),
        "unsigned_tail": None
        if tail is None
        else {
            "start": tail.start,
            "end": tail.end,
            "oldest_ms": tail.oldest_ms,
            "newest_ms": tail.newest_ms,
            "stale": tail.stale,
        },
        "pinned_heads": [
            {"label": p.label, "tree_size": p.tree_size, "consistent": p.consistent}
            for p in found.pinned
        ],
        "cosigned_heads": [
            {"head_id": c.head_row_id, "tree_size": c.tree_size, "witnesses": list(c.witnesses)}
            for c in found.cosigned
        ],
        "unverified_cosignatures": found.unverified_cosignatures,
        "verified_head": _head_json(found.newest_attested) if found.ok else None,
    }


def _log_text(found: LogAuditReport) -> str:
    lines = [
        _(
            "{leaves} leaves, {heads} signed heads ({valid} valid), attested up to size {size}",
            leaves=found.leaf_count,
            heads=found.head_count,
            valid=found.valid_head_count,
            size=found.attested_size,
        )
    ]
    first = found.first
    if first is None:
        lines.append(_("OK: the stored leaves reproduce every signed head, and no two heads fork."))
    else:
        index = found.first_bad_index
        if index is None:
            lead = first.where()
        elif first.exact:
            lead = _("first bad leaf index {index}", index=index)
        else:
            lead = _("first bad leaf index {index} (lower bound)", index=index)
        if first.located_by:
            lines.append(
                _(
                    "FAIL: {lead}: {kind}, located by {how}",
                    lead=lead,
                    kind=first.kind.value,
                    how=first.located_by.value,
                )
            )
        else:
            lines.append(_("FAIL: {lead}: {kind}", lead=lead, kind=first.kind.value))
        for finding in found.findings:
            lines.append(f"  {finding.kind.value:<18} {finding.where():<16} {finding.detail}")
    for check in found.pinned:
        verdict = _("the log extends it") if check.consistent else _("the log does NOT extend it")
        lines.append(
            _(
                "pinned: {label} (size {size}): {verdict}",
                label=check.label,
                size=check.tree_size,
                verdict=verdict,
            )
        )
    if found.cosigned:
        newest = found.cosigned[-1]
        lines.append(
            _(
                "cosigned: {count} heads carry verified cosignatures; the newest, size {size}, "
                "by {witnesses}",
                count=len(found.cosigned),
                size=newest.tree_size,
                witnesses=", ".join(newest.witnesses),
            )
        )
    if found.unverified_cosignatures:
        lines.append(
            _(
                "cosigned: {count} cosignatures by witnesses not pinned (--directory-key for "
                "institutions, --witness-key for auditors) were not checked",
                count=found.unverified_cosignatures,
            )
        )
    lines += [_("note: {note}", note=note) for note in found.notes]
    return "\n".join(lines)


_VERIFY_HELP: Final = _(
    "Recompute the Merkle tree from every stored leaf and check every signed tree head; "
    "then replay the log and hold the gateway's tables against the state it recomputes.\n\n"
    "Finds modified, deleted, inserted and reordered leaves, a truncated log, replaced or "
    "forged heads and forked histories; names the first bad leaf index and how it was "
    "located. Finds every row of the tables that decide access or delivery that differs "
    "from the log, and every log entry that breaks the log's rules. Holds the log to the "
    "last head this command verified (the state file) and to heads given with "
    "--since-head, so that cutting the log back together with its heads is found too; "
    "leaves kept outside every signed head for longer than --max-unsigned-seconds are a "
    "finding; cosignatures by pinned witnesses are checked. "
    "Exit 0 clean, 1 with findings, 2 when the check cannot run."
)


@app.command("verify", help=_VERIFY_HELP)
def verify_command(
    database_url: DatabaseUrl,
    log_key: LogKey = "",
    directory_key: DirectoryKey = "",
    jobs: Annotated[
        int,
        typer.Option("--jobs", min=1, help=_("Worker processes decoding leaves of large logs.")),
    ] = min(4, os.cpu_count() or 1),
    no_node_cache: Annotated[
        bool,
        typer.Option(
            "--no-node-cache",
            help=_(
                "Do not use the gateway's node cache (even authenticated) to locate a difference."
            ),
        ),
    ] = False,
    since_head: Annotated[
        list[Path],
        typer.Option(
            "--since-head",
            help=_(
                "A signed tree head to hold the log to (repeatable): a head file, a "
                "terminal's witness-state.json, an audit state file, or binary. Every stored "
                "head must be consistent with it, and the log may not be shorter."
            ),
        ),
    ] = [],  # noqa: B006 - Typer reads the default, never mutates it
    state_file: Annotated[
        Path | None,
        typer.Option(
            "--state-file",
            help=_(
                "Where this command keeps the last head it verified (default: "
                "$XDG_STATE_HOME/sealpost/audit/<pinned key>.json); the next run must extend it."
            ),
        ),
    ] = None,
    no_state: Annotated[
        bool,
        typer.Option("--no-state", help=_("Neither read nor write the state file.")),
    ] = False,
    max_unsigned_seconds: MaxUnsigned = DEFAULT_MAX_UNSIGNED_S,
    witness_key: Annotated[
        list[str],
        typer.Option(
            "--witness-key",
            help=_(
                "An auditor's witness key, NAME=HEX (repeatable): its cosignatures are "
                "checked too. Institution keys come from the pinned directory."
            ),
        ),
    ] = [],  # noqa: B006 - Typer reads the default, never mutates it
    no_state_check: Annotated[
        bool,
        typer.Option(
            "--no-state-check",
            help=_("Check the log only, not the gateway's tables against the state it recomputes."),
        ),
    ] = False,
    quiet: Quiet = False,
    json_output: JsonOutput = False,
) -> None:
    """Check the log against its signed heads and witnesses, and the tables against the log.

    SPEC P7, P12, P13.
    """
    witnesses = [_witness_key(text) for text in witness_key]
    state_path: Path | None = None
    directory_pin = _hex_key(directory_key, "--directory-key")
    log_pin = _hex_key(log_key, "--log-key")
    if not no_state and (state_file or directory_pin or log_pin):
        # Without any pin the check refuses to run, and says so, below.
        state_path = state_file or state.default_path(directory_key=directory_pin, log_key=log_pin)

    def body() -> tuple[LogAuditReport, list[str], StateReport | None]:
        pinned = [state.read_pinned_head(path) for path in since_head]
        seen: list[SeenLeaves] = []
        previous = state.load(state_path) if state_path is not None else None
        if previous is not None and state_path is not None:
            kept, leaves = previous.pinned(state_path)
            pinned.append(kept)
            seen.append(leaves)
        with database.connect(database_url) as connection:
            found, warnings = _check_log(
                connection,
                log_key,
                directory_key,
                jobs=jobs,
                use_node_cache=not no_node_cache,
                quiet=quiet,
                pinned=pinned,
                seen=seen,
                max_unsigned_s=max_unsigned_seconds,
                witness_keys=witnesses,
            )
            tables = None if no_state_check else check_state(connection, _progress(quiet))
        if found.ok and found.newest_attested is not None and state_path is not None:
            newest = log_pb2.SignedTreeHead.FromString(found.newest_attested)
            state.save(
                state_path,
                state.AuditState(
                    newest, found.leaf_count, found.leaf_root, time.time_ns() // 1_000_000
                ),
            )
        return found, warnings, tables

    found, warnings, tables = _guard(body)
    if json_output:
        data = _log_json(found, warnings)
        data["state_file"] = None if state_path is None else str(state_path)
        data["max_unsigned_seconds"] = max_unsigned_seconds
        data["state"] = tables.to_json() if tables is not None else None
        _emit_json(data)
    else:
        typer.echo(_log_text(found))
        if state_path is not None and found.ok:
            typer.echo(
                _("state: the verified head is kept in {path} for the next run", path=state_path)
            )
        if tables is not None:
            typer.echo("\n".join(tables.lines()))
    raise typer.Exit(CLEAN if found.ok and (tables is None or tables.ok) else FOUND)


# --------------------------------------------------------------------------- reconcile


#: ``NAME=PATH``: a device name is letters, digits, '.', '_' and '-'.
_DEVICE_SPEC = re.compile(r"([A-Za-z0-9_.-]{1,64})=(.+)")


def audit_devices(specs: Sequence[str]) -> list[tuple[str, list[Path]]]:
    """Devices and their files from ``--audit-log`` values, in the order given.

    ``PATH`` alone is a device of its own (named by the path); ``NAME=PATH`` adds the file
    to device NAME, so rotated files of one device are read as one.
    """
    if not specs:
        raise typer.BadParameter(
            _("give at least one key-server audit log"), param_hint="--audit-log"
        )
    devices: dict[str, list[Path]] = {}
    bare = [Path(s).name for s in specs if not _DEVICE_SPEC.fullmatch(s)]
    for spec in specs:
        match = _DEVICE_SPEC.fullmatch(spec)
        if match:
            name, path = match.group(1), Path(match.group(2))
        else:
            path = Path(spec)
            name = path.name if bare.count(path.name) == 1 else spec
        files = devices.setdefault(name, [])
        if path not in files:
            files.append(path)
    return list(devices.items())


def key_server_log(
    specs: Sequence[str], key: EscrowKeyRef, watch: frozenset[bytes], leeway_ms: int
) -> KeyServerLog:
    def events(path: Path) -> Iterator[AuditEvent]:
        yield from read_audit_entries(path, key=key)

    devices = [
        Device(name, [(path.name, events(path)) for path in paths])
        for name, paths in audit_devices(specs)
    ]
    return read_devices(devices, watch=watch, leeway_ms=leeway_ms)


def log_facts(connection: Connection, found: LogAuditReport | None) -> LogFacts:
    """Grants, approvals, recorded key-server actions, timelines and privilege, from the log."""
    grants: list[Grant] = []
    actions: list[RecordedAction] = []
    approvals_seen = []
    wanted = [
        LogAction.REVIEW_GRANTED,
        LogAction.RETROSPECTIVE_APPROVED,
        LogAction.ADMIN_ACTION,
        LogAction.ESCROW_KEY_ROTATED,
        LogAction.RETENTION_APPLIED,
    ]
    for index, event in database.events(connection, wanted):
        if (grant := grant_from_event(index, event)) is not None:
            grants.append(grant)
        elif (action := action_from_event(index, event)) is not None:
            actions.append(action)
        elif event.action is LogAction.RETROSPECTIVE_APPROVED:
            approvals_seen.append((index, event))
    if found is not None:
        grants = with_signing_times(grants, found.attested_heads)
        actions = actions_with_signing_times(actions, found.attested_heads)
    granted = {g.message_id for g in grants}
    timeline_actions = [LogAction.MESSAGE_QUEUED, *sorted(LEAVING)]
    accepted = (e for _i, e in database.events(connection, [LogAction.MESSAGE_ACCEPTED]))
    return LogFacts(
        grants=grants,
        timelines=timelines_from_events(database.events(connection, timeline_actions), granted),
        approvals=approvals_from_events(approvals_seen),
        actions=actions,
        privileged=privileged_messages(accepted, database.privileged_message_ids(connection)),
    )


def _run_reconcile(
    connection: Connection,
    specs: Sequence[str],
    key: EscrowKeyRef,
    leeway_ms: int,
    log_key: str,
    directory_key: str,
    quiet: bool,
) -> tuple[Reconciliation, LogAuditReport | None]:
    found: LogAuditReport | None = None
    if log_key or directory_key:
        found, _warnings = _check_log(connection, log_key, directory_key, quiet=quiet)
    else:
        typer.echo(
            _(
                "warning: the transparency log is not verified (pass --log-key or "
                "--directory-key): grants are taken from it as stored"
            ),
            err=True,
        )
    facts = log_facts(connection, found)
    server_log = key_server_log(specs, key, frozenset(facts.privileged), leeway_ms)
    outcome = reconcile(
        server_log,
        facts,
        leeway_ms=leeway_ms,
        require_signed=found is not None,
    )
    return outcome, found


def _decrypt_json(decrypt: Decrypt) -> dict[str, Any]:
    return {
        "time": decrypt.time.isoformat(),
        "message_id": decrypt.message_id.hex() if decrypt.message_id else None,
        "entity_id": decrypt.entity_id,
        "display_name": decrypt.display_name,
        "status": decrypt.status.value,
        "request_id": decrypt.request_id,
        "source": decrypt.source,
        "error": decrypt.error,
    }


def _grant_json(grant: Grant) -> dict[str, Any]:
    return {
        "time": utc(grant.time_ms).isoformat(),
        "message_id": grant.message_id.hex(),
        "officer": grant.officer,
        "key_server_entity": grant.entity,
        "grant_id": grant.grant_id,
        "log_index": grant.log_index,
        "legal_basis": grant.legal_basis,
        "retrospective_request": grant.retrospective_request or None,
        "signed_at": utc(grant.signed_at_ms).isoformat() if grant.signed_at_ms else None,
    }


def _reconcile_json(
    outcome: Reconciliation, found: LogAuditReport | None, allow_unused: bool
) -> dict[str, Any]:
    return {
        "clean": outcome.clean(allow_unused=allow_unused),
        "log_verified": None if found is None else found.ok,
        "period": None
        if outcome.period is None
        else {"from": outcome.period[0].isoformat(), "to": outcome.period[1].isoformat()},
        "leeway_seconds": outcome.leeway_ms / 1000,
        "require_signed_head": outcome.require_signed,
        "matched": [{**_decrypt_json(d), "grant": _grant_json(g)} for d, g in outcome.matched],
        "unmatched": [
            {**_decrypt_json(u.decrypt), "reason": u.reason.value, "detail": u.detail}
            for u in outcome.unmatched
        ],
        "refused": [_decrypt_json(d) for d in outcome.refused],
        "unused_grants": [_grant_json(g) for g in outcome.unused_grants],
        "outside_period": [_grant_json(g) for g in outcome.outside_period],
        "notes": list(outcome.notes),
        "grant_validity_seconds": outcome.grant_validity_ms / 1000,
        "key_server_changes": _changes_json(outcome.changes),
        "privileged_escrows": [_escrow_json(e) for e in outcome.privileged_escrows],
        "devices": _devices_json(outcome.devices),
    }


def _change_json(change: Change) -> dict[str, Any]:
    return {
        "time": change.time.isoformat(),
        "kind": change.kind.value,
        "path": change.path,
        "operation": change.operation,
        "entity_id": change.entity_id,
        "display_name": change.display_name,
        "status": change.status.value,
        "settings": dict(change.clear_settings),
        "request_id": change.request_id,
        "source": change.source,
        "error": change.error,
    }


def _action_json(action: RecordedAction) -> dict[str, Any]:
    return {
        "kind": action.kind,
        "target": action.target,
        "log_index": action.log_index,
        "recorded_at": utc(action.time_ms).isoformat(),
        "recorded_by": action.actor,
        "started": utc(action.started_ms).isoformat(),
        "finished": utc(action.finished_ms).isoformat(),
        "key_server_entity": action.key_server_entity,
        "key_server_name": action.key_server_name,
        "paths": sorted(action.paths),
        "signed_at": utc(action.signed_at_ms).isoformat() if action.signed_at_ms else None,
    }


def _changes_json(changes: ChangeReconciliation | None) -> dict[str, Any] | None:
    if changes is None:
        return None
    return {
        "matched": [{**_change_json(c), "action": _action_json(a)} for c, a in changes.matched],
        "unmatched": [
            {**_change_json(u.change), "reason": u.reason.value, "detail": u.detail}
            for u in changes.unmatched
        ],
        "refused": [_change_json(c) for c in changes.refused],
        "noted": [_change_json(c) for c in changes.noted],
        "unused_actions": [_action_json(a) for a in changes.unused_actions],
    }


def _escrow_json(escrow: Escrow) -> dict[str, Any]:
    return {
        "time": escrow.time.isoformat(),
        "message_id": escrow.message_id.hex(),
        "display_name": escrow.display_name,
        "institution_id": escrow.institution_id,
        "request_id": escrow.request_id,
        "source": escrow.source,
    }


def _devices_json(devices: DeviceComparison | None) -> dict[str, Any]:
    if devices is None:
        return {"compared": False, "names": [], "missing": [], "differ": [], "uncovered": 0}

    def finding(f: Any) -> dict[str, Any]:
        return {
            "request_id": f.request_id,
            "entry_type": f.entry_type.value,
            "time": f.time.isoformat(),
            "what": f.what,
            "present_in": list(f.present_in),
            "missing_from": list(f.missing_from),
        }

    return {
        "compared": devices.compared,
        "names": list(devices.devices),
        "spans": [
            {
                "device": name,
                "from": first.isoformat() if first else None,
                "to": last.isoformat() if last else None,
            }
            for name, first, last in devices.spans
        ],
        "missing": [finding(f) for f in devices.findings if f.kind == "missing"],
        "differ": [finding(f) for f in devices.findings if f.kind == "differs"],
        "uncovered": devices.uncovered,
    }


def _utc_time(when: datetime) -> str:
    """A time in a table: UTC to the second, as the audit logs write it."""
    return f"{when:%Y-%m-%d %H:%M:%S}"


def _reason_words(reason: Reason | ChangeReason, detail: str) -> str:
    """Why a decrypt or a change matches nothing, in the staff language (JSON keeps the value)."""
    words: dict[Reason | ChangeReason, str] = {
        Reason.NO_GRANT: _("no grant for this message"),
        Reason.OTHER_IDENTITY: _("the message's grants name another key-server identity"),
        Reason.GRANT_LATER: _("the grant was logged after the decrypt"),
        Reason.NOT_SIGNED: _("the grant was not in a signed tree head before the decrypt"),
        Reason.UNREADABLE_CONTEXT: _("the message id is not readable in the audit log"),
        Reason.NO_IDENTITY: _("not decrypted by a staff identity"),
        Reason.GRANT_EXPIRED: _("the grant's time had run out"),
        Reason.NOT_QUEUED: _("the message was not in the screening queue"),
        Reason.LEFT_QUEUE: _("the message had left the screening queue"),
        Reason.NO_APPROVAL: _("the retrospective request has no approval in the log"),
        Reason.APPROVAL_EXPIRED: _("the retrospective approval had expired"),
        ChangeReason.KEY_LEAVES: _(
            "Sealpost never does this: it lets the escrow key leave the key server"
        ),
        ChangeReason.NOT_RECORDED: _("no recorded key-server action lists this change"),
        ChangeReason.OTHER_IDENTITY: _(
            "the recorded actions listing this change name another key-server identity"
        ),
        ChangeReason.OUTSIDE_WINDOW: _(
            "the recorded actions listing this change happened at another time"
        ),
        ChangeReason.NOT_SIGNED: _("the recorded action is not in a verified signed tree head"),
    }
    said = words.get(reason, reason.value)
    return f"{said} ({detail})" if detail else said


def _findings_text(outcome: Reconciliation) -> list[str]:
    """The sections for key-server changes, privileged escrows and the audit devices."""
    lines: list[str] = []
    changes = outcome.changes
    if changes is not None and changes.unmatched:
        lines.append(_("KEY-SERVER CHANGES WITHOUT A RECORDED ACTION"))
        lines += _table(
            (
                _("time (UTC)"),
                _("change"),
                _("path"),
                _("identity"),
                _("reason"),
                _("audit log"),
            ),
            [
                (
                    _utc_time(u.change.time),
                    u.change.kind.value,
                    u.change.path,
                    u.change.who,
                    _reason_words(u.reason, u.detail),
                    u.change.source,
                )
                for u in changes.unmatched
            ],
        )
    if outcome.privileged_escrows:
        lines.append(_("ESCROWS OF PRIVILEGED MESSAGES (privileged mail carries no escrow)"))
        lines += _table(
            (_("time (UTC)"), _("message"), _("identity"), _("institution"), _("audit log")),
            [
                (
                    _utc_time(e.time),
                    e.message_id.hex(),
                    e.display_name or _("(no identity)"),
                    e.institution_id or "",
                    e.source,
                )
                for e in outcome.privileged_escrows
            ],
        )
    if outcome.devices is not None and outcome.devices.findings:
        lines.append(_("AUDIT DEVICES DISAGREE"))
        lines += _table(
            (
                _("time (UTC)"),
                _("request"),
                _("entry"),
                _("what"),
                _("in"),
                _("missing from"),
            ),
            [
                (
                    _utc_time(f.time),
                    f.request_id,
                    f.entry_type.value,
                    f.what,
                    ", ".join(f.present_in),
                    ", ".join(f.missing_from) or _("(described differently)"),
                )
                for f in outcome.devices.findings
            ],
        )
    if changes is not None and changes.noted:
        lines.append(_("ROOT TOKENS GENERATED (informational)"))
        lines += [f"  {_utc_time(c.time)}  {c.path}  {c.source}" for c in changes.noted]
    return lines


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return ["  " + fmt.format(*header)] + ["  " + fmt.format(*r) for r in rows]


def _reconcile_text(outcome: Reconciliation, allow_unused: bool) -> str:
    decrypts = len(outcome.matched) + len(outcome.unmatched) + len(outcome.refused)
    changes = outcome.changes
    devices = outcome.devices
    recorded = 0 if changes is None else len(changes.matched)
    unrecorded = 0 if changes is None else len(changes.unmatched)
    compared = (
        _(
            "audit devices {devices}: {count} differences",
            devices=", ".join(devices.devices),
            count=len(devices.findings),
        )
        if devices is not None
        else _("audit devices not compared (one given)")
    )
    lines = [
        _(
            "{decrypts} decrypts: {matched} matched, {unmatched} without a grant, {refused} "
            "refused; {unused} grants never used, {outside} outside the audit log's period",
            decrypts=decrypts,
            matched=len(outcome.matched),
            unmatched=len(outcome.unmatched),
            refused=len(outcome.refused),
            unused=len(outcome.unused_grants),
            outside=len(outcome.outside_period),
        ),
        _(
            "{changes} key-server changes: {recorded} recorded, {unrecorded} not; {escrows} "
            "escrows of privileged messages; {compared}",
            changes=recorded + unrecorded,
            recorded=recorded,
            unrecorded=unrecorded,
            escrows=len(outcome.privileged_escrows),
            compared=compared,
        ),
    ]
    if outcome.unmatched:
        lines.append(_("DECRYPTS WITHOUT A GRANT"))
        lines += _table(
            (_("time (UTC)"), _("message"), _("identity"), _("reason"), _("audit log")),
            [
                (
                    _utc_time(u.decrypt.time),
                    u.decrypt.message_id.hex() if u.decrypt.message_id else _("(unreadable)"),
                    u.decrypt.who,
                    _reason_words(u.reason, u.detail),
                    u.decrypt.source,
                )
                for u in outcome.unmatched
            ],
        )
    if outcome.unused_grants:
        lines.append(_("GRANTS NEVER USED (allowed)") if allow_unused else _("GRANTS NEVER USED"))
        lines += _table(
            (_("time (UTC)"), _("message"), _("officer"), _("grant"), _("log index")),
            [
                (
                    _utc_time(utc(g.time_ms)),
                    g.message_id.hex(),
                    g.officer,
                    g.grant_id,
                    str(g.log_index),
                )
                for g in outcome.unused_grants
            ],
        )
    lines += _findings_text(outcome)
    if outcome.refused:
        lines.append(_("REFUSED DECRYPTS (informational)"))
        lines += _table(
            (_("time (UTC)"), _("message"), _("identity"), _("error")),
            [
                (
                    _utc_time(d.time),
                    d.message_id.hex() if d.message_id else _("(unreadable)"),
                    d.who,
                    d.error or "",
                )
                for d in outcome.refused
            ],
        )
    lines += [_("note: {note}", note=note) for note in outcome.notes]
    if outcome.clean(allow_unused=allow_unused):
        lines.append(_("OK: reconciliation clean"))
    else:
        lines.append(_("FAIL: reconciliation found problems"))
    return "\n".join(lines)


_RECONCILE_HELP: Final = _(
    "Reconcile the key server's audit devices with the transparency log.\n\n"
    "A decrypt matches a grant for the same message id, made to the same key-server "
    "identity, at most 15 minutes before the decrypt, while the grant's legal basis held "
    "(the message still queued, or the retrospective approval still valid). With a pinned "
    "key the log is verified first and the grant must also have been in a signed tree head "
    "by then. Every change around the escrow key (its configuration, exports, rotations, "
    "policies, staff logins, tokens, audit devices) must match a recorded administrative "
    "action; an escrow of a privileged message is a finding; two or more audit devices are "
    "compared entry by entry. Exit 1 when anything is found (docs/audit.md)."
)


@app.command("reconcile", help=_RECONCILE_HELP)
def reconcile_command(
    database_url: DatabaseUrl,
    audit_log: AuditLogs,
    leeway_seconds: Leeway = DEFAULT_LEEWAY_MS / 1000,
    log_key: LogKey = "",
    directory_key: DirectoryKey = "",
    escrow_mount: EscrowMount = _DEFAULT_KEY.mount,
    escrow_key: EscrowKeyName = _DEFAULT_KEY.name,
    allow_unused_grants: Annotated[
        bool,
        typer.Option("--allow-unused-grants", help=_("Grants never used do not fail the check.")),
    ] = False,
    quiet: Quiet = False,
    json_output: JsonOutput = False,
) -> None:
    """Reconcile the key server's audit devices with the log (SPEC P6, P14)."""
    key = EscrowKeyRef(mount=escrow_mount, name=escrow_key)

    def body() -> tuple[Reconciliation, LogAuditReport | None]:
        with database.connect(database_url) as connection:
            return _run_reconcile(
                connection,
                audit_log,
                key,
                round(leeway_seconds * 1000),
                log_key,
                directory_key,
                quiet,
            )

    outcome, found = _guard(body)
    if found is not None and not found.ok:
        if json_output:
            _emit_json({"clean": False, "log": _log_json(found, [])})
        else:
            typer.echo(_log_text(found))
            typer.echo(_("FAIL: the transparency log does not verify, so grants cannot be trusted"))
        raise typer.Exit(FOUND)
    if json_output:
        _emit_json(_reconcile_json(outcome, found, allow_unused_grants))
    else:
        typer.echo(_reconcile_text(outcome, allow_unused_grants))
    raise typer.Exit(CLEAN if outcome.clean(allow_unused=allow_unused_grants) else FOUND)


# --------------------------------------------------------------------------- report


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(_("a date is YYYY-MM-DD"), param_hint=option) from None


_REPORT_HELP: Final = _(
    "Write the periodic report of one or more institutions as report.md and report.pdf.\n\n"
    "Volumes, share screened, queue waiting times, time to a decision per institution and "
    "screener, verdicts, reviews per officer, retrospective requests and, with --audit-log, "
    "the anomalies the reconciliation finds; with a pinned key, the transparency log's "
    "verification too. Give --institution once per institution the report covers: nothing "
    "of any other institution is counted or named."
)


@app.command("report", help=_REPORT_HELP)
def report_command(
    database_url: DatabaseUrl,
    institution: Annotated[
        list[str],
        typer.Option(
            "--institution",
            help=_("An institution's id; repeat it for a report on several institutions."),
        ),
    ],
    from_: Annotated[str, typer.Option("--from", help=_("First day of the period (YYYY-MM-DD)."))],
    to: Annotated[str, typer.Option("--to", help=_("Last day of the period, included."))],
    out_dir: Annotated[
        Path, typer.Option("--out-dir", help=_("Folder for report.md and report.pdf."))
    ],
    audit_log: AuditLogs = [],  # noqa: B006 - Typer reads the default, never mutates it
    leeway_seconds: Leeway = DEFAULT_LEEWAY_MS / 1000,
    log_key: LogKey = "",
    directory_key: DirectoryKey = "",
    escrow_mount: EscrowMount = _DEFAULT_KEY.mount,
    escrow_key: EscrowKeyName = _DEFAULT_KEY.name,
    font: Annotated[
        Path | None,
        typer.Option(
            "--font",
            help=_("TrueType font for the PDF (default: Noto Sans, installed with Sealpost)."),
        ),
    ] = None,
    quiet: Quiet = False,
    json_output: JsonOutput = False,
) -> None:
    """Write the periodic audit report of one or more institutions (Markdown and PDF)."""
    covers = ", ".join(dict.fromkeys(institution))
    try:
        period = report.Period(_day(from_, "--from"), _day(to, "--to"))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--to") from None
    key = EscrowKeyRef(mount=escrow_mount, name=escrow_key)
    now = datetime.now(UTC).replace(microsecond=0)

    def body() -> report.InstitutionReport:
        with database.connect(database_url) as connection:
            reconciliation: Reconciliation | None = None
            found: LogAuditReport | None = None
            if audit_log:
                reconciliation, found = _run_reconcile(
                    connection,
                    audit_log,
                    key,
                    round(leeway_seconds * 1000),
                    log_key,
                    directory_key,
                    quiet,
                )
            elif log_key or directory_key:
                found, _warnings = _check_log(connection, log_key, directory_key, quiet=quiet)
            gathered = report.gather(
                connection,
                institution,
                period,
                now=now,
                reconciliation=reconciliation,
                log=found,
            )
        # The PDF library is loaded only here: verify and reconcile start faster without it.
        from sealpost.clients.audit import document, pdf  # noqa: PLC0415

        content = report.blocks(gathered)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "report.md").write_text(document.to_markdown(content), encoding="utf-8")
        title = _(
            "Sealpost audit report {institution} {period}",
            institution=covers,
            period=period.label(),
        )
        pdf.to_pdf(
            content,
            out_dir / "report.pdf",
            title=title,
            created=now,
            font=font,
        )
        return gathered

    gathered = _guard(body)
    if json_output:
        _emit_json(gathered.to_dict())
    else:
        anomalies = _("not checked") if gathered.anomalies is None else str(len(gathered.anomalies))
        typer.echo(
            _(
                "report for {institution}, {period}: {messages} messages, {officers} "
                "officer(s), anomalies: {anomalies}; written to {markdown} and {pdf}",
                institution=covers,
                period=period.label(),
                messages=gathered.total.messages,
                officers=len(gathered.officers),
                anomalies=anomalies,
                markdown=out_dir / "report.md",
                pdf=out_dir / "report.pdf",
            )
        )


# --------------------------------------------------------------------------- witness

_WITNESS_KEY_HELP: Final = _(
    "Make the auditor's own witness key (Ed25519), sealed under a passphrase.\n\n"
    "Prints the public key and key id: publish them out of band, and give the public key "
    "to the gateway's operator for --witness-keys NAME=HEX. The passphrase comes from "
    "SEALPOST_PASSPHRASE or a prompt."
)


@app.command("witness-key", help=_WITNESS_KEY_HELP)
def witness_key_command(
    out: Annotated[Path, typer.Option("--out", help=_("The key file to write (never replaced)."))],
    json_output: JsonOutput = False,
) -> None:
    """Make a witness key for `sealpost audit witness`."""
    from sealpost.clients.audit import witness  # noqa: PLC0415

    passphrase = os.environ.get("SEALPOST_PASSPHRASE") or typer.prompt(
        _("Choose a passphrase for the witness key"), hide_input=True, confirmation_prompt=True
    )
    public = _guard(lambda: witness.create_key(out, passphrase))
    if json_output:
        _emit_json({"publicKey": public.public_key.hex(), "witnessKeyId": public.key_id.hex()})
    else:
        typer.echo(_("witness key written to {path}", path=out))
        typer.echo(_("public key:     {key}", key=public.public_key.hex()))
        typer.echo(_("witness key id: {key_id}", key_id=public.key_id.hex()))


_WITNESS_HELP: Final = _(
    "Witness the gateway's log once: check its newest tree head against the newest one "
    "this auditor saw, and cosign it.\n\n"
    "A larger head must be proven consistent with the one kept; a head of the same size "
    "must have the same root; a smaller newest head is a rollback. Exit 0 when the head "
    "was accepted (and cosigned, unless the gateway refused to take it: then a warning), "
    "1 on a fork or a rollback (the state file keeps the old head), 2 when the check "
    "cannot run. Sign in as an auditor (SEALPOST_STAFF_TOKEN, or --key-server and --user)."
)


@app.command("witness", help=_WITNESS_HELP)
def witness_command(
    directory_key: DirectoryKey,
    key_file: Annotated[
        Path,
        typer.Option("--key-file", help=_("The witness key (`sealpost audit witness-key`).")),
    ],
    gateway: Gateway = "127.0.0.1:50051",
    ca_file: CaFile = Path("sealpost-state/tls/ca.pem"),
    key_server: KeyServer = "",
    user: User = "",
    state_file: Annotated[
        Path | None,
        typer.Option(
            "--state-file",
            help=_(
                "The newest head seen (default: "
                "$XDG_STATE_HOME/sealpost/witness/directory-<16 hex>.json)."
            ),
        ),
    ] = None,
    json_output: JsonOutput = False,
) -> None:
    """Check and cosign the gateway's newest tree head (SPEC P13)."""
    from sealpost.clients import witness as log_witness  # noqa: PLC0415
    from sealpost.clients._grpc import bearer  # noqa: PLC0415
    from sealpost.clients.audit import witness  # noqa: PLC0415
    from sealpost.crypto.errors import CryptoError, ForkError, RollbackError  # noqa: PLC0415
    from sealpost.crypto.keyrecords import DirectoryPin  # noqa: PLC0415

    pin = _hex_key(directory_key, "--directory-key")
    if pin is None:
        raise typer.BadParameter(_("the directory key is needed"), param_hint="--directory-key")
    options = StaffOptions(gateway, ca_file, key_server, user, json_output)
    path = state_file or witness.default_state_path(pin)

    def body() -> log_witness.Observation | CryptoError:
        passphrase = os.environ.get("SEALPOST_PASSPHRASE") or typer.prompt(
            _("Passphrase of the witness key"), hide_input=True
        )
        key = witness.open_key(key_file, passphrase)
        channel = options.endpoint().channel()
        try:
            log = log_witness.GatewayLog(
                lambda: channel, DirectoryPin(pin), metadata=bearer(options.token())
            )
            watcher = log_witness.Witness(log, log_witness.FileWitnessStore(path), key)
            try:
                return watcher.witness()
            except CryptoError as exc:  # the log does not check out: a finding, not a failure
                return exc
        finally:
            channel.close()

    observed = _guard(body)
    if isinstance(observed, CryptoError):
        kind = (
            "fork"
            if isinstance(observed, ForkError)
            else "rollback"
            if isinstance(observed, RollbackError)
            else "head-invalid"
        )
        if json_output:
            _emit_json(
                {"ok": False, "kind": kind, "detail": observed.explain(), "stateFile": str(path)}
            )
        else:
            typer.echo(_("FAIL: {kind}: {detail}", kind=kind, detail=observed.explain()))
            typer.echo(_("the newest head this witness accepted stays in {path}", path=path))
        raise typer.Exit(FOUND)
    head = observed.head
    summary = {
        "ok": True,
        "treeSize": head.tree_size,
        "rootHash": head.root_hash.hex(),
        "relation": observed.relation.value if observed.relation else "first",
        "stored": observed.stored,
        "cosigned": observed.cosigned,
        "submitError": observed.submit_error,
        "stateFile": str(path),
    }
    if json_output:
        _emit_json(summary)
    else:
        what = {
            "first": _("the first head this witness sees (trusted on first use)"),
            "newer": _("consistent with the head seen before, and newer"),
            "same": _("the same tree as the head seen before"),
            "older": _("an older head of the same history"),
        }[str(summary["relation"])]
        done = _("cosigned and handed in") if observed.cosigned else _("not cosigned")
        typer.echo(
            _("OK: head of size {size}: {what}; {done}", size=head.tree_size, what=what, done=done)
        )
    if observed.submit_error:
        typer.echo(
            _(
                "warning: the gateway did not take the cosignature: {error}",
                error=observed.submit_error,
            ),
            err=True,
        )
    raise typer.Exit(CLEAN)


# --------------------------------------------------------------------------- verify-remote


@app.command(
    "verify-remote",
    help=_(
        "Check the log through the gateway's API, signed in as an auditor (no database "
        "needed).\n\n"
        "An auditor scoped to some institutions reads their entries in full and the others "
        "as leaf hashes: every root and every signed head is still checked. Exit 0 clean, "
        "1 with findings, 2 when the check cannot run."
    ),
)
def verify_remote_command(
    gateway: Gateway,
    ca_file: CaFile,
    directory_key: DirectoryKey,
    key_server: KeyServer = "",
    user: User = "",
    quiet: Quiet = False,
    json_output: JsonOutput = False,
) -> None:
    """Check the log through the gateway's API, signed in as an auditor (no database needed).

    An auditor scoped to some institutions reads their entries in full and the others
    as leaf hashes: every root and every signed head is still checked. Exit 0 clean,
    1 with findings, 2 when the check cannot run.
    """
    from sealpost.clients.audit.remote import verify_through_gateway  # noqa: PLC0415
    from sealpost.crypto.keyrecords import DirectoryPin  # noqa: PLC0415

    pin = _hex_key(directory_key, "--directory-key")
    if pin is None:
        raise typer.BadParameter(
            _("the pinned directory key is needed"), param_hint="--directory-key"
        )
    options = StaffOptions(gateway, ca_file, key_server, user)

    def body() -> RemoteReport:
        client = options.client()
        try:
            return verify_through_gateway(client, DirectoryPin(pin), _progress(quiet))
        finally:
            client.close()

    found = _guard(body)
    if json_output:
        _emit_json(_log_json(found.log, []) | {"readable": found.readable, "hashed": found.hashed})
    else:
        typer.echo(_log_text(found.log))
        typer.echo(
            _(
                "{readable} entries read in full, {hashed} as leaf hashes only (outside your "
                "institutions)",
                readable=found.readable,
                hashed=found.hashed,
            )
        )
    raise typer.Exit(CLEAN if found.log.ok else FOUND)


# --------------------------------------------------------------------------- escrow audit


@app.command(
    "escrow-sample",
    help=_(
        "Check that escrowed keys open their messages, on a sample a fresh tree head "
        "draws.\n\n"
        'Signs in as an escrow auditor (the staff role "escrow-auditor"): every sampled '
        "message gets a logged grant before its blob is handed out, each key is decrypted "
        "with your own key-server identity and checked against the sender's commitment; no "
        "content is opened. Exit 0 when every key opens its message, 1 when one does not, 2 "
        "when the check cannot run."
    ),
)
def escrow_sample_command(
    gateway: Gateway,
    ca_file: CaFile,
    directory_key: DirectoryKey,
    count: Annotated[
        int,
        typer.Option("--count", min=1, max=100, help=_("How many escrowed messages to draw.")),
    ] = 20,
    key_server: KeyServer = "",
    user: User = "",
    quiet: Quiet = False,
    json_output: JsonOutput = False,
) -> None:
    """Check that escrowed keys open their messages, on a sample a fresh tree head draws.

    Signs in as an escrow auditor (the staff role "escrow-auditor"): every sampled message
    gets a logged grant before its blob is handed out, each key is decrypted with your own
    key-server identity and checked against the sender's commitment; no content is
    opened. Exit 0 when every key opens its message, 1 when one does not, 2 when the check
    cannot run.
    """
    from sealpost.clients._cli import key_prefix  # noqa: PLC0415
    from sealpost.clients.audit.escrowaudit import run_escrow_audit  # noqa: PLC0415
    from sealpost.crypto.keyrecords import DirectoryPin  # noqa: PLC0415
    from sealpost.escrow.bootstrap import BootstrapSettings  # noqa: PLC0415
    from sealpost.escrow.client import EscrowClient  # noqa: PLC0415

    pin = _hex_key(directory_key, "--directory-key")
    if pin is None:
        raise typer.BadParameter(
            _("the pinned directory key is needed"), param_hint="--directory-key"
        )
    options = StaffOptions(gateway, ca_file, key_server, user)

    def body() -> Any:
        client = options.client()
        keys = EscrowClient(
            options.key_server_config(),
            options.key_server_token(),
            key=BootstrapSettings(prefix=key_prefix()).escrow_key,
        )
        try:
            return run_escrow_audit(client, keys, DirectoryPin(pin), count, _progress(quiet))
        finally:
            keys.close()
            client.close()

    found = _guard(body)
    if json_output:
        _emit_json(found.to_json())
    else:
        typer.echo("\n".join(found.lines()))
    raise typer.Exit(CLEAN if found.ok else FOUND)


# --------------------------------------------------------------------------- web app


@app.command(
    "webapp",
    help=_(
        "Check the web app a gateway serves against the transparency log (as an auditor)."
        "\n\n"
        "Fetches the release manifest, every file it lists and the page itself, and checks "
        "that the release is recorded in the log (proven into the newest signed tree head), "
        "that every file is the one recorded, that the page loads only those files with "
        "Subresource Integrity under the app's Content-Security-Policy, and that the app "
        "pins the directory key you pinned. Exit 0 clean, 1 with findings, 2 when the check "
        "cannot run."
    ),
)
def webapp_command(
    url: Annotated[
        str,
        typer.Argument(help=_("The web app's address, https://host:port (the web port).")),
    ],
    gateway: Gateway,
    ca_file: CaFile,
    directory_key: DirectoryKey,
    key_server: KeyServer = "",
    user: User = "",
    json_output: JsonOutput = False,
) -> None:
    """Check the web app a gateway serves against the transparency log (as an auditor).

    Fetches the release manifest, every file it lists and the page itself, and checks
    that the release is recorded in the log (proven into the newest signed tree head),
    that every file is the one recorded, that the page loads only those files with
    Subresource Integrity under the app's Content-Security-Policy, and that the app
    pins the directory key you pinned. Exit 0 clean, 1 with findings, 2 when the check
    cannot run.
    """
    from sealpost.clients._grpc import Endpoint, bearer  # noqa: PLC0415
    from sealpost.clients.audit.webapp import check_webapp, https_fetch  # noqa: PLC0415
    from sealpost.clients.witness import GatewayLog  # noqa: PLC0415
    from sealpost.crypto.keyrecords import DirectoryPin  # noqa: PLC0415

    pin = _hex_key(directory_key, "--directory-key")
    if pin is None:
        raise typer.BadParameter(
            _("the pinned directory key is needed"), param_hint="--directory-key"
        )
    try:
        ca_pem = ca_file.read_bytes()
        fetch = https_fetch(url, ca_pem)
    except OSError as exc:
        raise typer.BadParameter(
            _("cannot read {path}: {reason}", path=ca_file, reason=exc), param_hint="--ca-file"
        ) from exc
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="URL") from exc
    options = StaffOptions(gateway, ca_file, key_server, user)
    token = options.token()
    channel = Endpoint(gateway, ca_pem).channel()
    try:
        log = GatewayLog(lambda: channel, DirectoryPin(pin), metadata=bearer(token))
        found = _guard(lambda: check_webapp(fetch, log, pin))
    finally:
        channel.close()
    if json_output:
        _emit_json(
            {
                "ok": found.ok,
                "app_version": found.app_version,
                "release_digest": found.release_digest,
                "leaf_index": found.leaf_index,
                "tree_size": found.tree_size,
                "files": found.files,
                "problems": found.problems,
            }
        )
    else:
        typer.echo(
            _(
                "web app {version} at {url}: release {digest}",
                version=found.app_version or "?",
                url=url,
                digest=found.release_digest or "?",
            )
        )
        if found.leaf_index is not None:
            typer.echo(
                _(
                    "recorded in log entry {index}; {files} files checked",
                    index=found.leaf_index,
                    files=found.files,
                )
            )
        for problem in found.problems:
            typer.echo(_("FOUND: {problem}", problem=problem))
        typer.echo(
            _("the served app is the release the log records")
            if found.ok
            else _n("{count} finding", "{count} findings", len(found.problems))
        )
    raise typer.Exit(CLEAN if found.ok else FOUND)
