"""What a relative is told of a withholding: the reason category only where the regime says.

Against a real gateway (SQLite and PostgreSQL) and a real OpenBao: an administrator sets a
regime that tells relatives the reason (``sealpost admin regime set
--tell-relatives-reason``); a message withheld there reads "not delivered" with its reason
category, one withheld in the default regime reads "not delivered" and nothing more. The
setting at the withholding counts, not a later change of regime or setting. ``sealpost
audit verify`` recomputes the setting and what each withholding told, and names an edit
of either.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sealpost import cli as sealpost_cli
from sealpost._internal.stack import (
    Stack,
    approve_all,
    log_events,
    screening_order,
    setup_institutions,
)
from sealpost.clients.relative.sdk import DeliveryStatus
from sealpost.crypto.logentry import TELL_RELATIVES_REASON_FIELD, LogAction
from sealpost.v1 import admin_pb2, common_pb2
from tests.integration.test_state_follows_log import log_key, tampered_copy, verify

pytestmark = pytest.mark.integration

A = "pi-reden"
TOLD = "told-wing"
REASON = common_pb2.WITHHOLD_REASON_PUBLIC_ORDER
NOTE = "notitie voor het dossier"


def _regime_set(stack: Stack, *args: str) -> str:
    """``sealpost admin regime set ... --json`` as a national administrator."""
    _name, token = stack.staff_token(["administrator"], ["*"])
    ca = stack.gateway.state_dir / "tls" / "ca.pem"
    clean: dict[str, str | None] = dict.fromkeys(k for k in os.environ if k.startswith("SEALPOST_"))
    done = CliRunner(env={**clean, "SEALPOST_STAFF_TOKEN": token}).invoke(
        sealpost_cli.app,
        [
            *("admin", "--gateway", stack.gateway.address, "--ca-file", str(ca), "--json"),
            *("regime", "set", *args),
        ],
    )
    assert done.exit_code == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_the_reason_is_told_only_where_the_regime_said_so_when_withheld(
    stack: Stack, database_url: str, tmp_path: Path
) -> None:
    admin, terminals = setup_institutions(
        stack, [("d-told", A, "regular"), ("d-quiet", A, "regular")]
    )
    north = terminals[A]
    out = _regime_set(stack, TOLD, "--policy", "screen-all", "--tell-relatives-reason")
    assert '"tellRelativesReason": true' in out
    admin.call(
        "admin",
        "SetDetaineeRegime",
        admin_pb2.SetDetaineeRegimeRequest(detainee_id="d-told", regime=TOLD),
    )
    screening_order(admin, "d-quiet")
    relative = stack.relative("Samira")
    for detainee in ("d-told", "d-quiet"):
        relative.request_contact(detainee)
    approve_all(admin, A)
    told = relative.send("d-told", "Een")
    quiet = relative.send("d-quiet", "Twee")
    north.take_in(north.intake(), stack.escrow_for(A))
    screener = stack.reviewer(["screener"], [A])

    def withhold(message_id: bytes) -> None:
        screener.open(message_id)
        screener.verdict(message_id, common_pb2.VERDICT_WITHHOLD, REASON, NOTE)

    withhold(told.message_id)
    withhold(quiet.message_id)

    status = relative.message_status(told.message_id)
    assert status.status is DeliveryStatus.NOT_DELIVERED
    assert status.withhold_reason == REASON
    assert status.reason_label == "protection of public order"
    status = relative.message_status(quiet.message_id)
    assert status.status is DeliveryStatus.NOT_DELIVERED
    assert status.withhold_reason == common_pb2.WITHHOLD_REASON_UNSPECIFIED
    assert status.reason_label == ""

    # The setting at the withholding counts: the regime turned quiet, the quiet detainee
    # moved into a telling regime; neither changes what was told.
    later = relative.send("d-told", "Drie")
    _regime_set(stack, TOLD, "--policy", "screen-all", "--no-tell-relatives-reason")
    _regime_set(stack, "told-too", "--policy", "screen-all", "--tell-relatives-reason")
    admin.call(
        "admin",
        "SetDetaineeRegime",
        admin_pb2.SetDetaineeRegimeRequest(detainee_id="d-quiet", regime="told-too"),
    )
    north.take_in(north.intake(), stack.escrow_for(A))
    withhold(later.message_id)
    assert relative.message_status(told.message_id).withhold_reason == REASON
    assert relative.message_status(quiet.message_id).withhold_reason == 0
    assert relative.message_status(later.message_id).withhold_reason == 0
    regimes = admin.call("admin", "ListRegimes", admin_pb2.ListRegimesRequest()).regimes
    assert {r.name: r.tell_relatives_reason for r in regimes}[TOLD] is False
    assert {r.name: r.tell_relatives_reason for r in regimes}["told-too"] is True
    # Never the note, on any answer.
    assert NOTE.encode() not in relative.message_status(told.message_id).reason_label.encode()

    # The setting is in the log with the regime's other settings.
    settings = [
        e.extra.get(TELL_RELATIVES_REASON_FIELD)
        for e in log_events(stack)
        if e.action is LogAction.REGIME_POLICY_CHANGED and e.subjects[0] == ("regime", TOLD)
    ]
    assert settings == ["true", "false"]

    key = log_key(stack)
    code, state = verify(database_url, key)
    assert (code, state["findings"]) == (0, [])
    if not database_url.startswith("sqlite"):
        return
    for statement, table, column, row in (
        (
            "UPDATE messages SET withhold_reason_told = 1 WHERE message_id = ?",
            "messages",
            "withhold_reason_told",
            quiet.message_id,
        ),
        (
            "UPDATE regimes SET tell_relatives_reason = 1 WHERE name = ?",
            "regimes",
            "tell_relatives_reason",
            TOLD,
        ),
    ):
        copy = tampered_copy(database_url, tmp_path, [(statement, (row,))])
        code, state = verify(copy, key)
        assert code == 1
        found = [(f["table"], f["kind"], f["column"], f["row"]) for f in state["findings"]]
        shown = row.hex() if isinstance(row, bytes) else row
        assert found == [(table, "column-differs", column, shown)]
