"""Key-server administration from the command line, recorded so that reconcile accounts for it.

An operator bootstraps a fresh OpenBao before the gateway exists, makes the first
administrator, and that administrator records both once the gateway runs. Terminal
tokens, rotation and staff logins are recorded as they are made. Reconcile then
matches every key-server change to a recorded action (SPEC P14); a change made
behind the tools' back is a finding.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from sealpost._internal.devservers import GatewayProcess, OpenBaoDevServer
from sealpost._internal.stack import Stack, bootstrap_openbao, start_gateway
from sealpost.clients._grpc import ClientError, Endpoint
from sealpost.clients.staff import StaffClient
from sealpost.escrow import identity
from sealpost.escrow._transport import KeyServerConfig
from sealpost.escrow.bootstrap import BootstrapSettings, KeyServerBootstrap
from sealpost.v1 import admin_pb2, audit_pb2

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"


@pytest.fixture
def gateway_later(tmp_path: Path) -> Iterator[list[GatewayProcess]]:
    """Where the test puts the gateway it starts after the bootstrap; stopped afterwards."""
    started: list[GatewayProcess] = []
    try:
        yield started
    finally:
        for gateway in started:
            gateway.stop()


def sealpost(
    *args: str, env: Mapping[str, str], gateway: GatewayProcess | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEALPOST_")}
    where: list[str] = []
    if gateway is not None and args[0] == "admin":
        ca = gateway.state_dir / "tls" / "ca.pem"
        where = ["--gateway", gateway.address, "--ca-file", str(ca)]
    return subprocess.run(
        [sys.executable, "-m", "sealpost", args[0], *where, *args[1:]],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=120,
        check=False,
    )


def ok(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, f"exit {done.returncode}: {done.stdout}\n{done.stderr}"
    return json.loads(done.stdout) if done.stdout.lstrip().startswith("{") else done.stdout


def reconcile(bao: OpenBaoDevServer, gateway: GatewayProcess, admin: StaffClient) -> Any:
    admin.call("audit", "GetTreeHead", audit_pb2.GetTreeHeadRequest(fresh=True))
    a, b = bao.audit_logs
    done = sealpost(
        "audit",
        "reconcile",
        "--database-url",
        gateway.database_url,
        "--audit-log",
        str(a),
        "--audit-log",
        str(b),
        "--json",
        "-q",
        env={},
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_every_key_server_change_made_with_the_tools_is_recorded(
    tmp_path: Path, fresh_openbao: OpenBaoDevServer, gateway_later: list[GatewayProcess]
) -> None:
    bao = fresh_openbao
    operator = {
        "SEALPOST_KEY_SERVER_ADDRESS": bao.address,
        "SEALPOST_KEY_SERVER_TOKEN": bao.root_token,
    }
    # 1. Before the gateway exists: the bootstrap and the first administrator, on receipts.
    bootstrap_receipt = tmp_path / "bootstrap.json"
    made = ok(
        sealpost(
            "admin", "--json", "key", "bootstrap", "--receipt", str(bootstrap_receipt), env=operator
        )
    )
    assert made["changes"]
    assert made["recorded"] == 0
    first_receipt = tmp_path / "first-admin.json"
    first = ok(
        sealpost(
            "admin",
            "--json",
            "staff",
            "add",
            "first-admin",
            "--role",
            "administrator",
            "--institution",
            "*",
            "--no-record",
            "--receipt",
            str(first_receipt),
            env={**operator, "SEALPOST_NEW_PASSWORD": PASSWORD},
        )
    )
    assert first["recorded"] == 0
    assert first_receipt.is_file()

    # 2. The gateway starts (a second bootstrap changes nothing), the administrator records.
    keyserver = bootstrap_openbao(bao)
    assert keyserver.changes == ()
    assert keyserver.actions == ()
    gateway = start_gateway(tmp_path / "gateway", bao, keyserver, f"sqlite:///{tmp_path}/g.db")
    gateway_later.append(gateway)
    signed_in = {
        "SEALPOST_KEY_SERVER_ADDRESS": bao.address,
        "SEALPOST_USER": "first-admin",
        "SEALPOST_PASSWORD": PASSWORD,
    }
    recorded = ok(
        sealpost(
            "admin",
            "--json",
            "key",
            "record",
            str(bootstrap_receipt),
            str(first_receipt),
            env=signed_in,
            gateway=gateway,
        )
    )
    assert recorded["recorded"] >= 2
    config = KeyServerConfig(bao.address)
    session = identity.login_staff(config, "first-admin", PASSWORD)
    token = identity.issue_identity_token(config, session.token, role=keyserver.identity_role)
    admin = StaffClient(Endpoint(gateway.address, gateway.ca_pem), token)
    try:
        code, found = reconcile(bao, gateway, admin)
        assert code == 0, json.dumps(found, indent=1)

        # 3. Day-to-day work: a screener's login, a terminal token made and revoked, a rotation.
        with_root = {**signed_in, "SEALPOST_KEY_SERVER_TOKEN": bao.root_token}
        ok(
            sealpost(
                "admin",
                "staff",
                "add",
                "screener-a",
                "--role",
                "screener",
                "--institution",
                "pi-a",
                env={**with_root, "SEALPOST_NEW_PASSWORD": PASSWORD},
                gateway=gateway,
            )
        )
        out = tmp_path / "terminal.token"
        made_token = ok(
            sealpost(
                "admin",
                "--json",
                "terminal",
                "token",
                "pi-a",
                "--out",
                str(out),
                env=with_root,
                gateway=gateway,
            )
        )
        assert oct(out.stat().st_mode & 0o777) == "0o600"
        assert made_token["recorded"] == 1
        ok(
            sealpost(
                "admin",
                "terminal",
                "revoke-token",
                made_token["accessor"],
                "--institution",
                "pi-a",
                env=with_root,
                gateway=gateway,
            )
        )
        # A change whose recording fails stays on a receipt, and the error says what to do.
        kept = tmp_path / "unrecorded.json"
        failed = sealpost(
            "admin",
            "staff",
            "add",
            "screener-b",
            "--role",
            "screener",
            "--institution",
            "pi-a",
            "--receipt",
            str(kept),
            env={**operator, "SEALPOST_NEW_PASSWORD": PASSWORD},  # nobody signed in
            gateway=gateway,
        )
        assert failed.returncode == 1
        assert f"sealpost admin key record {kept}" in failed.stderr
        ok(sealpost("admin", "key", "record", str(kept), env=signed_in, gateway=gateway))
        ok(sealpost("admin", "key", "rotate", env=signed_in, gateway=gateway))
        ok(sealpost("admin", "key", "schedule", "--days", "20", env=signed_in, gateway=gateway))

        code, found = reconcile(bao, gateway, admin)
        assert code == 0, json.dumps(found, indent=1)
        changes = found["key_server_changes"]
        kinds = {c["action"]["kind"] for c in changes["matched"]}
        assert kinds == {
            "bootstrap",
            "staff_change",
            "terminal_token_created",
            "terminal_token_revoked",
            "rotation",
            "rotation_schedule",
        }
        rotation = next(c for c in changes["matched"] if c["action"]["kind"] == "rotation")
        assert rotation["entity_id"] == session.entity_id
        assert found["devices"]["compared"] is True

        # 4. Behind the tools' back: a policy written and a login made with the root token.
        request = urllib.request.Request(  # noqa: S310 - http to loopback
            f"{bao.address}/v1/sys/policies/acl/sealpost-extra",
            data=json.dumps({"policy": 'path "x" { capabilities = ["read"] }'}).encode(),
            method="PUT",
            headers={"X-Vault-Token": bao.root_token},
        )
        urllib.request.urlopen(request, timeout=10).close()  # noqa: S310
        direct = KeyServerBootstrap(config, bao.root_token, BootstrapSettings())
        try:
            direct.create_staff_user("ghost", PASSWORD, ["screener"], ["pi-a"])
        finally:
            direct.close()
        code, found = reconcile(bao, gateway, admin)
        assert code == 1
        unmatched = {(u["path"], u["reason"]) for u in found["key_server_changes"]["unmatched"]}
        not_recorded = "no recorded key-server action lists this change"
        assert ("sys/policies/acl/sealpost-extra", not_recorded) in unmatched
        assert ("auth/userpass/users/ghost", not_recorded) in unmatched
        assert ("identity/entity/name/ghost", not_recorded) in unmatched
    finally:
        admin.close()


def _stamp(ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_gateway_refuses_records_it_could_not_match(stack: Stack) -> None:
    admin = stack.staff(["administrator"], ["*"])
    local = stack.staff(["administrator"], ["pi-a"])
    now = int(time.time() * 1000)
    good = admin_pb2.RecordKeyEventRequest(
        kind=admin_pb2.KEY_EVENT_KIND_STAFF_CHANGE,
        target="carol",
        paths=["auth/userpass/users/carol"],
        started_at=_stamp(now - 2_000),
        finished_at=_stamp(now - 1_000),
        key_server_name="root",
    )
    admin.call("admin", "RecordKeyEvent", good)
    broken: list[tuple[dict[str, Any], str]] = [
        ({"paths": []}, "name the key-server paths"),
        ({"paths": ["/v1/sys/policies/acl/x"]}, "not a key-server API path"),
        ({"paths": [f"sys/policies/acl/{n:0>80}" for n in range(4)]}, "in parts"),
        ({"started_at": _stamp(now), "finished_at": _stamp(now - 1)}, "finished before"),
        ({"finished_at": _stamp(now + 120_000)}, "in the future"),
        ({"key_server_name": ""}, "key_server_name is required"),
        ({"key_server_entity": "not an id!"}, "key_server_entity is not a valid id"),
        ({"key_version": 3}, "only for rotation and retention"),
    ]
    for change, message in broken:
        request = admin_pb2.RecordKeyEventRequest()
        request.CopyFrom(good)
        for field, value in change.items():
            if field == "paths":
                del request.paths[:]
                request.paths.extend(value)
            elif isinstance(value, Timestamp):
                getattr(request, field).CopyFrom(value)
            else:
                setattr(request, field, value)
        with pytest.raises(ClientError) as refused:
            admin.call("admin", "RecordKeyEvent", request)
        assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT, message
        assert message in refused.value.message
    with pytest.raises(ClientError) as scoped:
        local.call("admin", "RecordKeyEvent", good)
    assert scoped.value.code == grpc.StatusCode.PERMISSION_DENIED
