"""The directory, log and session-token keys kept by the key server (key_custody = key-server).

On a real OpenBao and a real gateway process: the gateway's state folder holds no key;
every record and tree head is signed at the key server by a key that cannot be
exported; a rotated log key is adopted while the gateway runs and followed by a
relative, a terminal and the auditor; a key server that cannot sign delays proofs and
loses no send.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import hvac
import hvac.exceptions
import pytest
from typer.testing import CliRunner

from sealpost import cli as sealpost_cli
from sealpost._internal.devservers import GatewayProcess, OpenBaoDevServer
from sealpost._internal.stack import (
    Stack,
    approve_all,
    bootstrap_openbao,
    log_events,
    setup_institutions,
    start_gateway,
)
from sealpost.clients.relative.errors import DirectoryMismatchError
from sealpost.crypto import keyrecords
from sealpost.crypto.keyrecords import DirectoryPin
from sealpost.crypto.keys import PrivateKeys
from sealpost.crypto.logentry import LogAction
from sealpost.escrow import signing
from sealpost.escrow._transport import Connection, KeyServerConfig
from sealpost.escrow.bootstrap import BootstrapSettings, KeyServerBootstrap
from sealpost.v1 import keys_pb2, relative_pb2, relative_pb2_grpc

pytestmark = pytest.mark.integration

A = "pi-custody"
SETTINGS = BootstrapSettings()
DIRECTORY_KEY, LOG_KEY = SETTINGS.signing_keys


class CustodyStack(Stack):
    """A stack whose clients pin the directory key the key server holds."""

    directory_key: bytes = b""

    @property
    def pin(self) -> DirectoryPin:
        return DirectoryPin(self.directory_key)


def public_keys(bao: OpenBaoDevServer, name: str) -> dict[int, bytes]:
    client = hvac.Client(url=bao.address, token=bao.root_token)
    data = client.adapter.get(f"/v1/{SETTINGS.signing_mount}/keys/{name}")["data"]
    return {int(v): base64.b64decode(e["public_key"]) for v, e in data["keys"].items()}


def directory_reply(stack: Stack) -> relative_pb2.GetDirectoryResponse:
    relative = stack.relative("Reader")
    reply = relative._call(
        "GetDirectory", relative_pb2.GetDirectoryRequest(), relative_pb2.GetDirectoryResponse
    )
    assert isinstance(reply, relative_pb2.GetDirectoryResponse)
    return reply


def record_key(record: keys_pb2.KeyRecord) -> bytes:
    return keys_pb2.KeyRecordBody.FromString(record.body).signing_key


def audit_verify(database_url: str, directory_key: bytes) -> dict[str, Any]:
    done = CliRunner(env=dict.fromkeys(k for k in os.environ if k.startswith("SEALPOST_"))).invoke(
        sealpost_cli.app,
        [
            "audit",
            "verify",
            "--database-url",
            database_url,
            "--directory-key",
            directory_key.hex(),
            "-q",
            "--json",
        ],
    )
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture
def custody(tmp_path: Path, fresh_openbao: OpenBaoDevServer) -> Iterator[CustodyStack]:
    keyserver = bootstrap_openbao(fresh_openbao)
    admin = KeyServerBootstrap(KeyServerConfig(fresh_openbao.address), fresh_openbao.root_token)
    try:
        token = admin.create_gateway_token()
    finally:
        admin.close()
    token_file = tmp_path / "gateway-token"
    token_file.write_text(token.token)
    token_file.chmod(0o600)
    url = f"sqlite:///{(tmp_path / 'custody.db').resolve()}"
    gateway = start_gateway(
        tmp_path / "gateway",
        fresh_openbao,
        keyserver,
        url,
        extra_env={
            "SEALPOST_KEY_CUSTODY": "key-server",
            "SEALPOST_KEY_SERVER_TOKEN_FILE": str(token_file),
            "SEALPOST_KEY_REFRESH_SECONDS": "1",
        },
    )
    running = CustodyStack(fresh_openbao, keyserver, gateway)
    running.directory_key = public_keys(fresh_openbao, DIRECTORY_KEY)[1]
    try:
        yield running
    finally:
        running.close()
        gateway.stop()


def test_the_key_server_signs_and_the_gateway_holds_no_key(custody: CustodyStack) -> None:
    state = custody.gateway.state_dir
    assert not (state / "gateway-keys.json").exists()
    assert not any("key" in p.name and p.suffix == ".json" for p in state.rglob("*"))

    reply = directory_reply(custody)
    assert record_key(reply.directory_key) == public_keys(custody.openbao, DIRECTORY_KEY)[1]
    assert record_key(reply.log_key) == public_keys(custody.openbao, LOG_KEY)[1]
    # What clients verify: the directory record against the pin, the log record under it.
    directory = keyrecords.verify_directory_record(
        reply.directory_key, custody.pin, now_ms=int(time.time() * 1000)
    )
    assert directory.signing_key == custody.directory_key
    # `gateway pin` asks the key server for the keys the gateway signs with.
    env = {k: v for k, v in custody.gateway.env.items() if k.startswith("SEALPOST_KEY_")}
    env["SEALPOST_DATABASE_URL"] = custody.gateway.database_url
    pinned = CliRunner(env=env).invoke(
        sealpost_cli.app, ["gateway", "pin", "--json", "--state-dir", str(state)]
    )
    assert pinned.exit_code == 0, pinned.output
    assert json.loads(pinned.stdout) == {
        "directoryKey": custody.directory_key.hex(),
        "logKey": record_key(reply.log_key).hex(),
    }

    # Neither the gateway's token nor the root token can take the keys out.
    gateway_token = Path(custody.gateway.env["SEALPOST_KEY_SERVER_TOKEN_FILE"]).read_text()
    for token in (gateway_token, custody.openbao.root_token):
        client = hvac.Client(url=custody.openbao.address, token=token)
        for name in (DIRECTORY_KEY, LOG_KEY):
            with pytest.raises(hvac.exceptions.VaultError):
                client.adapter.get(f"/v1/{SETTINGS.signing_mount}/export/signing-key/{name}")
    # The gateway's token signs with these two keys and nothing else: not the escrow key.
    client = hvac.Client(url=custody.openbao.address, token=gateway_token)
    with pytest.raises(hvac.exceptions.Forbidden):
        client.adapter.post(
            f"/v1/{SETTINGS.escrow_key.mount}/encrypt/{SETTINGS.escrow_key.name}",
            json={"plaintext": "", "context": base64.b64encode(b"x").decode()},
        )
    with pytest.raises(hvac.exceptions.Forbidden):
        client.adapter.post(f"/v1/{SETTINGS.signing_mount}/keys/{LOG_KEY}/rotate")

    # The key server's audit log holds the signing requests: the records', and the heads'
    # (signed every head interval while the log grows).
    deadline = time.monotonic() + 20
    wanted = [f"{SETTINGS.signing_mount}/sign/{name}" for name in (DIRECTORY_KEY, LOG_KEY)]
    while not all(w in custody.openbao.audit_logs[0].read_text() for w in wanted):
        assert time.monotonic() < deadline, "no signing request in the key server's audit log"
        time.sleep(0.5)


def test_a_rotated_log_key_is_followed_by_relative_terminal_and_auditor(
    custody: CustodyStack,
) -> None:
    admin, terminals = setup_institutions(custody, [("d-cu-1", A, "regular")])
    relative = custody.relative("Anna")
    relative.request_contact("d-cu-1")
    approve_all(admin, A)
    before = relative.send("d-cu-1", "voor de wissel")
    old_log = directory_reply(custody).log_key

    connection = Connection(KeyServerConfig(custody.openbao.address), custody.openbao.root_token)
    try:
        assert signing.rotate(connection, SETTINGS.signing_mount, LOG_KEY) == 2
    finally:
        connection.close()
    new_public = public_keys(custody.openbao, LOG_KEY)[2]
    deadline = time.monotonic() + 20
    while record_key(directory_reply(custody).log_key) != new_public:
        assert time.monotonic() < deadline, "the gateway did not adopt the new log key"
        time.sleep(0.5)
    new_log = directory_reply(custody).log_key
    assert new_log.body != old_log.body

    # The log records the new log key, published by the gateway.
    published = [
        e
        for e in log_events(custody)
        if e.action == LogAction.KEY_RECORD_PUBLISHED and e.extra.get("purpose") == "log"
    ]
    assert len(published) == 2
    assert dict(published[-1].subjects)["key"] == keyrecords.key_record_id(new_log.body).hex()

    # The relative's next send is proven under the new key; the old receipt still checks.
    after = relative.send("d-cu-1", "na de wissel")
    assert after.log_key_id == keyrecords.key_record_id(new_log.body)
    assert before.log_key_id == keyrecords.key_record_id(old_log.body)
    # The old receipt, signed by the old key, verifies again (the old record is fetched by
    # its id and judged at the time the message was accepted); a fresh proof verifies too.
    again = relative._verify_and_record(
        before.receipt, before.message_id, before.envelope_digest, None
    )
    assert again.log_key_id == before.log_key_id
    fresh = relative.confirm(before.message_id, before.envelope_digest)
    assert fresh.log_key_id == after.log_key_id

    # The terminal takes both in, and verifies the deliveries' heads under whichever log
    # key signed them.
    terminal = terminals[A]
    states = terminal.take_in(terminal.intake(), custody.escrow_for(A))
    assert {before.message_id, after.message_id} <= set(states)
    listing = terminal.list_deliveries("d-cu-1")
    assert {d.message_id for d in listing.proven} == {before.message_id, after.message_id}
    assert listing.unproven == []

    # The auditor's replay accepts both log keys, both published under the directory.
    result = audit_verify(custody.gateway.database_url, custody.directory_key)
    assert result["ok"], result["findings"]


def test_a_key_server_that_cannot_sign_delays_proofs_and_loses_no_send(
    custody: CustodyStack,
) -> None:
    admin, _terminals = setup_institutions(custody, [("d-cu-2", A, "regular")])
    relative = custody.relative("Bram")
    relative.request_contact("d-cu-2")
    approve_all(admin, A)
    relative.send("d-cu-2", "eerst")
    custody.openbao.seal()
    try:
        accepted = relative.send_sealed(
            relative.seal("d-cu-2", "terwijl de sleutelserver dicht is")
        )
        assert not accepted.HasField("tree_head")  # accepted and logged, proof to follow
    finally:
        custody.openbao.unseal()
    deadline = time.monotonic() + 20
    while True:
        try:
            proven = relative.confirm(accepted.message_id, accepted.envelope_digest)
            break
        except Exception:
            assert time.monotonic() < deadline, "no head was signed after the key server came back"
            time.sleep(0.5)
    assert proven.message_id == accepted.message_id


def test_a_rotated_directory_key_is_handed_over_and_every_pin_follows(
    custody: CustodyStack,
) -> None:
    admin, terminals = setup_institutions(custody, [("d-cu-3", A, "regular")])
    old_pin = custody.directory_key
    anna = custody.relative("Anna")  # pinned to the first directory key
    anna.request_contact("d-cu-3")
    approve_all(admin, A)
    anna.send("d-cu-3", "voor de overdracht")
    old_directory = directory_reply(custody).directory_key

    connection = Connection(KeyServerConfig(custody.openbao.address), custody.openbao.root_token)
    try:
        assert signing.rotate(connection, SETTINGS.signing_mount, DIRECTORY_KEY) == 2
    finally:
        connection.close()
    new_pin = public_keys(custody.openbao, DIRECTORY_KEY)[2]
    deadline = time.monotonic() + 20
    while record_key(directory_reply(custody).directory_key) != new_pin:
        assert time.monotonic() < deadline, "the gateway did not hand the directory over"
        time.sleep(0.5)
    reply = directory_reply(custody)
    assert len(reply.successions) == 1
    previous, following, _ = keyrecords.verify_succession(reply.successions[0])
    assert previous.signing_key == old_pin
    assert following.signing_key == new_pin
    assert previous.id == keyrecords.key_record_id(old_directory.body)

    # The log records the hand-over with the new directory record.
    published = [
        e
        for e in log_events(custody)
        if e.action == LogAction.KEY_RECORD_PUBLISHED and e.extra.get("purpose") == "directory"
    ]
    assert len(published) == 2
    assert published[-1].extra["succeeds"] == previous.id.hex()
    assert (
        published[-1].extra["succession"]
        == keyrecords.succession_id(
            reply.successions[0].SerializeToString(deterministic=True)
        ).hex()
    )

    # Anna keeps her old pin and goes on: the mailbox key the old directory signed still
    # verifies under the new one.
    assert anna.send("d-cu-3", "na de overdracht").message_id
    # A relative given only the new key trusts what the old key signed.
    custody.directory_key = new_pin
    bram = custody.relative("Bram")
    bram.request_contact("d-cu-3")
    approve_all(admin, A)
    assert bram.send("d-cu-3", "nieuw hier").message_id
    # The terminal, pinned to the old key, takes all three in.
    terminal = terminals[A]
    assert terminal.pin.signing_key == old_pin
    states = terminal.take_in(terminal.intake(), custody.escrow_for(A))
    assert len(states) == 3
    # A client pinned to a key outside the chain is refused with the pin named as the cause.
    custody.directory_key = PrivateKeys.generate().signing_key
    with pytest.raises(DirectoryMismatchError, match="pinned key"):
        custody.relative("Stranger")
    custody.directory_key = old_pin

    # The auditor verifies the log and the tables with either pin.
    for pin in (old_pin, new_pin):
        result = audit_verify(custody.gateway.database_url, pin)
        assert result["ok"], result["findings"]

    # A restarted gateway signs with the version the published record carries.
    custody.gateway.stop()
    custody.gateway.start()
    assert record_key(directory_reply(custody).directory_key) == new_pin


def test_two_gateways_adopt_one_rotation_once(custody: CustodyStack, tmp_path: Path) -> None:
    other_dir = tmp_path / "gateway-b"
    other_dir.mkdir()
    shutil.copytree(custody.gateway.state_dir, other_dir / "state")
    other = GatewayProcess(
        other_dir, env=custody.gateway.env, database_url=custody.gateway.database_url
    )
    other.start()
    try:
        connection = Connection(
            KeyServerConfig(custody.openbao.address), custody.openbao.root_token
        )
        try:
            for name in (DIRECTORY_KEY, LOG_KEY):
                signing.rotate(connection, SETTINGS.signing_mount, name)
        finally:
            connection.close()
        new_directory = public_keys(custody.openbao, DIRECTORY_KEY)[2]
        new_log = public_keys(custody.openbao, LOG_KEY)[2]
        deadline = time.monotonic() + 30
        for gateway in (custody.gateway, other):
            while True:
                reply = gateway_directory(gateway, custody)
                if (record_key(reply.directory_key), record_key(reply.log_key)) == (
                    new_directory,
                    new_log,
                ):
                    break
                assert time.monotonic() < deadline, "a gateway did not adopt the new keys"
                time.sleep(0.5)
        assert len(reply.successions) == 1
        published = [e for e in log_events(custody) if e.action == LogAction.KEY_RECORD_PUBLISHED]
        purposes = [e.extra.get("purpose") for e in published]
        assert purposes.count("directory") == 2
        assert purposes.count("log") == 2
    finally:
        other.stop()


def gateway_directory(
    gateway: GatewayProcess, _stack: CustodyStack
) -> relative_pb2.GetDirectoryResponse:
    """GetDirectory from one gateway process, unauthenticated."""
    channel = grpc.secure_channel(gateway.address, grpc.ssl_channel_credentials(gateway.ca_pem))
    with channel:
        stub = relative_pb2_grpc.RelativeServiceStub(channel)
        reply: relative_pb2.GetDirectoryResponse = stub.GetDirectory(
            relative_pb2.GetDirectoryRequest(), timeout=10
        )
        return reply
