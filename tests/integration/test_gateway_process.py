"""The gateway process over real gRPC on loopback: health, reflection, UNIMPLEMENTED, shutdown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sealpost._internal.devservers import GatewayProcess, gateway_channel, gateway_directory_pin
from sealpost._internal.logs import ALLOWED_FIELDS
from sealpost.v1 import audit_pb2, audit_pb2_grpc, keys_pb2, relative_pb2, relative_pb2_grpc

pytestmark = pytest.mark.integration

API_SERVICES = {
    "sealpost.v1.RelativeService",
    "sealpost.v1.TerminalService",
    "sealpost.v1.ReviewService",
    "sealpost.v1.AdminService",
    "sealpost.v1.AuditService",
}


def test_health_reports_serving_for_server_and_each_service(gateway: GatewayProcess) -> None:
    with gateway_channel(gateway.address, gateway.ca_pem) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ["", *sorted(API_SERVICES)]:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
        with pytest.raises(grpc.RpcError) as info:
            stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_every_api_service(gateway: GatewayProcess) -> None:
    with gateway_channel(gateway.address, gateway.ca_pem) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        responses = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    names = {s.name for s in responses[0].list_services_response.service}
    assert names >= API_SERVICES | {"grpc.health.v1.Health"}


def test_reflection_serves_file_descriptors(gateway: GatewayProcess) -> None:
    with gateway_channel(gateway.address, gateway.ca_pem) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="sealpost.v1.RelativeService"
        )
        (response,) = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    assert response.file_descriptor_response.file_descriptor_proto


def test_api_calls_without_credentials_are_unauthenticated(gateway: GatewayProcess) -> None:
    with gateway_channel(gateway.address, gateway.ca_pem) as channel:
        relative = relative_pb2_grpc.RelativeServiceStub(channel)
        directory = relative.GetDirectory(relative_pb2.GetDirectoryRequest(), timeout=5)
        assert directory.directory_key.body  # public: the SDK fetches it before signing in
        with pytest.raises(grpc.RpcError) as stream:
            list(relative.StreamInbox(relative_pb2.StreamInboxRequest(), timeout=5))
        assert stream.value.code() == grpc.StatusCode.UNAUTHENTICATED
        audit = audit_pb2_grpc.AuditServiceStub(channel)
        with pytest.raises(grpc.RpcError) as other:
            audit.GetTreeHead(audit_pb2.GetTreeHeadRequest(), timeout=5)
        assert other.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_plaintext_connections_are_refused(gateway: GatewayProcess) -> None:
    with grpc.insecure_channel(gateway.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_terminal_port_requires_a_client_certificate(gateway: GatewayProcess) -> None:
    with gateway_channel(gateway.terminal_address, gateway.ca_pem) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_unknown_method_answers_unimplemented(gateway: GatewayProcess) -> None:
    with gateway_channel(gateway.address, gateway.ca_pem) as channel:
        method: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/sealpost.v1.RelativeService/NoSuchMethod"
        )
        with pytest.raises(grpc.RpcError) as info:
            method(b"", timeout=5)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_request_id_is_returned_and_logged(gateway: GatewayProcess) -> None:
    with gateway_channel(gateway.address, gateway.ca_pem) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        call: grpc.Call
        _reply, call = stub.Check.with_call(
            health_pb2.HealthCheckRequest(),
            metadata=(("x-request-id", "test-request-0001"),),
            timeout=5,
        )
        trailing = dict(call.trailing_metadata() or ())
        _reply, call = stub.Check.with_call(
            health_pb2.HealthCheckRequest(),
            metadata=(("x-request-id", "bad id with spaces"),),
            timeout=5,
        )
        generated = dict(call.trailing_metadata() or ())
    assert trailing["x-request-id"] == "test-request-0001"
    assert generated["x-request-id"] != "bad id with spaces"
    assert len(generated["x-request-id"]) == 16
    assert gateway.stop() == 0
    records = [json.loads(line) for line in gateway.log_file.read_text().splitlines()]
    finished = [r for r in records if r["event"] == "rpc.finished"]
    assert any(r["request_id"] == "test-request-0001" for r in finished)
    assert {r["method"] for r in finished} == {"/grpc.health.v1.Health/Check"}
    for record in records:
        assert set(record) <= ALLOWED_FIELDS, record


def test_sigterm_shuts_down_gracefully(gateway: GatewayProcess) -> None:
    process = gateway.process
    assert gateway.stop() == 0
    assert process.returncode == 0
    events = [json.loads(line)["event"] for line in gateway.log_file.read_text().splitlines()]
    assert events[-2:] == ["gateway.stopping", "gateway.stopped"]


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sealpost", "gateway", "serve", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--port", "http"], {}, "--port: expected an integer from 0 to 65535, got 'http'"),
        ([], {"SEALPOST_PORT": "99999"}, "SEALPOST_PORT: expected an integer from 0 to 65535"),
        (["--host", "example.org"], {}, "--host: expected an IP address"),
        (["--log-level", "loud"], {}, "--log-level: expected one of debug, info, warning, error"),
        ([], {"SEALPOST_GRACE_SECONDS": "-1"}, "SEALPOST_GRACE_SECONDS: expected a number"),
    ],
)
def test_bad_configuration_fails_with_a_readable_message(
    args: list[str], env: dict[str, str], expected: str
) -> None:
    result = _serve(*args, env=env)
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_every_configuration_problem_is_reported_at_once() -> None:
    result = _serve("--port", "x", env={"SEALPOST_LOG_LEVEL": "loud"})
    assert result.returncode == 2
    assert "--port" in result.stderr
    assert "SEALPOST_LOG_LEVEL" in result.stderr


def test_flag_overrides_environment(tmp_path: Path) -> None:
    # A bad environment value is ignored when the flag gives a good one.
    process = GatewayProcess(tmp_path, env={"SEALPOST_TERMINAL_PORT": "not-a-port"})
    process.start()
    try:
        assert process.port > 0
    finally:
        assert process.stop() == 0


def test_port_in_use_fails_clearly(gateway: GatewayProcess) -> None:
    result = _serve(
        "--port",
        str(gateway.port),
        "--state-dir",
        str(gateway.state_dir),
        "--database-url",
        gateway.database_url,
    )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{gateway.port}" in result.stderr


def test_missing_state_tells_how_to_create_it(tmp_path: Path) -> None:
    result = _serve("--port", "0", "--terminal-port", "0", "--state-dir", str(tmp_path / "none"))
    assert result.returncode == 2
    assert "run `sealpost gateway init" in result.stderr
    assert "Traceback" not in result.stderr


def test_unmigrated_database_tells_how_to_migrate(gateway: GatewayProcess, tmp_path: Path) -> None:
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    result = _serve(
        "--port",
        "0",
        "--terminal-port",
        "0",
        "--state-dir",
        str(gateway.state_dir),
        "--database-url",
        empty,
    )
    assert result.returncode == 2
    assert "sealpost gateway migrate" in result.stderr


def test_pin_prints_the_keys_clients_pin(gateway: GatewayProcess) -> None:
    def pin(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "sealpost", "gateway", "pin", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    shown = pin("--state-dir", str(gateway.state_dir), "--json")
    assert shown.returncode == 0, shown.stderr
    keys = json.loads(shown.stdout)
    assert keys["directoryKey"] == gateway_directory_pin(gateway.state_dir).hex()
    with gateway_channel(gateway.address, gateway.ca_pem) as channel:
        stub = relative_pb2_grpc.RelativeServiceStub(channel)
        directory = stub.GetDirectory(relative_pb2.GetDirectoryRequest(), timeout=5)
    for record, name in ((directory.directory_key, "directoryKey"), (directory.log_key, "logKey")):
        assert keys_pb2.KeyRecordBody.FromString(record.body).signing_key.hex() == keys[name]
    text = pin("--state-dir", str(gateway.state_dir))
    assert f"directory key: {keys['directoryKey']}" in text.stdout
    missing = pin("--state-dir", str(gateway.state_dir.parent / "nowhere"))
    assert missing.returncode == 2
    assert "sealpost gateway init" in missing.stderr
