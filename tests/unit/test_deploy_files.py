"""The deployment files: Containerfiles, the compose file, the Kubernetes manifests.

No container engine or cluster runs here, so each file is checked the way a reviewer
would, by tools and by rule: hadolint lints the Containerfiles, the compose
specification's schema (vendored in check-jsonschema) validates compose.yaml, and
Kubernetes' own schemas (vendored in kubernetes-validate) validate every manifest, all
offline. On top, the rules this project keeps (docs/operations.md, section 14): pinned
base images, non-root users, read-only root file systems, dropped capabilities, health
checks or probes, and no secret value anywhere. The settings files in them are read by
the gateway's and the terminal's own loaders. ``make deploy-check`` runs this file.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from sealpost.clients.terminal.config import SETTINGS as TERMINAL_SETTINGS
from sealpost.clients.terminal.config import TerminalConfig
from sealpost.gateway.config import GatewayConfig

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CONTAINERFILES = sorted((DEPLOY / "containers").glob("*/Containerfile"))
COMPOSE = DEPLOY / "compose" / "compose.yaml"
KUBERNETES = DEPLOY / "kubernetes"
BIN = Path(sys.executable).parent
#: Names that hold a secret when they hold a value.
SECRET_NAME = re.compile(r"PASSWORD|PASSPHRASE|TOKEN|SECRET|PRIVATE|_KEY\b", re.IGNORECASE)
#: An image reference pinned to a release: a tag with a version number, or a digest.
PINNED = re.compile(r"^[\w./-]+(:[\w.-]*\d[\w.-]*)?(@sha256:[0-9a-f]{64})?$")


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]'")
    return found


# ----------------------------------------------------------------------------- Containerfiles


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _stages(path: Path) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = [[]]
    for instruction in _instructions(path):
        if instruction[0] == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


def _base_images(path: Path) -> list[str]:
    """Each stage's base image, with the file's ARG defaults filled in."""
    defaults = {}
    images = []
    stage_names = set()
    for word, rest in _instructions(path):
        if word == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            defaults[name] = value
        if word == "FROM":
            parts = rest.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: defaults.get(m.group(1), m.group(0)), parts[0])
            if image not in stage_names:
                images.append(image)
            if len(parts) == 3 and parts[1].upper() == "AS":
                stage_names.add(parts[2])
    return images


def test_there_is_a_containerfile_per_program() -> None:
    names = {path.parent.name for path in CONTAINERFILES}
    assert {"gateway", "terminal", "sealpost", "patroni", "etcd", "openbao"} <= names


@pytest.mark.parametrize("path", CONTAINERFILES, ids=lambda p: p.parent.name)
def test_hadolint_finds_nothing(path: Path) -> None:
    hadolint = shutil.which("hadolint", path=str(BIN))
    if hadolint is None:  # its wheel is for Linux on x86-64; the rules below still run
        pytest.skip("hadolint is not installed on this platform")
    result = subprocess.run(
        [hadolint, "--no-color", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", CONTAINERFILES, ids=lambda p: p.parent.name)
def test_a_containerfile_keeps_the_rules(path: Path) -> None:
    for image in _base_images(path):
        assert PINNED.match(image), f"{path}: base image {image} is not pinned"
        assert ":" in image or "@" in image, f"{path}: base image {image} has no tag"
        assert not image.endswith(":latest"), f"{path}: {image}"
    final = _stages(path)[-1]
    users = [rest for word, rest in final if word == "USER"]
    assert users, f"{path}: the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user.isdigit(), f"{path}: USER {users[-1]} is not numeric (runAsNonRoot needs it)"
    assert int(user) != 0, f"{path}: the final stage runs as root"
    words = [word for word, _rest in _instructions(path)]
    assert "ADD" not in words, f"{path}: ADD (use COPY; never fetch URLs in a build)"
    assert "HEALTHCHECK" in [w for w, _r in final], f"{path}: no HEALTHCHECK (or NONE)"
    assert any(w in ("ENTRYPOINT", "CMD") for w, _r in final)
    for word, rest in _instructions(path):
        if word in ("ENV", "ARG"):
            for name, value in re.findall(r"(\w+)=(\S+)", rest):
                assert not (SECRET_NAME.search(name) and value), f"{path}: {word} {name}"


@pytest.mark.parametrize("path", CONTAINERFILES, ids=lambda p: p.parent.name)
def test_no_image_sets_a_variable_that_would_beat_the_settings_file(path: Path) -> None:
    settings = {f.metadata["env"] for f in fields(GatewayConfig)}
    settings |= {setting.env for setting in TERMINAL_SETTINGS.values()}
    for word, rest in _instructions(path):
        if word == "ENV":
            for name in re.findall(r"(\w+)=", rest):
                assert name not in settings, f"{path}: ENV {name} beats the settings file"


def test_the_rules_catch_a_bad_containerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Containerfile"
    bad.write_text('FROM python:latest\nADD https://example.org/x /x\nCMD ["x"]\n')
    with pytest.raises(AssertionError):
        test_a_containerfile_keeps_the_rules(bad)
    assert _base_images(bad) == ["python:latest"]
    assert PINNED.match("python:3.12.11-slim-bookworm")
    assert PINNED.match("python:3.12.11-slim-bookworm@sha256:" + "0" * 64)
    assert not PINNED.match("python:slim-bookworm")  # a moving tag: no version number


# ----------------------------------------------------------------------------- compose


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return document


def test_compose_matches_the_compose_specification() -> None:
    result = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_brings_up_the_highly_available_set() -> None:
    services = _compose()["services"]
    for name in ("etcd", "pg", "bao"):
        assert {f"{name}-{i}" for i in (1, 2, 3)} <= set(services), name
    assert {"gateway-1", "gateway-2", "haproxy", "gateway-init"} <= set(services)


def _image_user(service: dict[str, Any]) -> str | None:
    """The numeric USER of the Containerfile a service builds, if it builds one."""
    build = service.get("build")
    if build is None:
        return None
    path = (COMPOSE.parent / build["context"] / build.get("dockerfile", "Containerfile")).resolve()
    users = [rest for word, rest in _stages(path)[-1] if word == "USER"]
    return users[-1] if users else None


def test_every_compose_service_is_hardened_and_checked() -> None:
    document = _compose()
    for name, service in document["services"].items():
        assert service.get("read_only") is True, f"{name}: root file system not read-only"
        assert service.get("cap_drop") == ["ALL"], f"{name}: capabilities not dropped"
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        user = service.get("user") or _image_user(service)
        assert user is not None, f"{name}: no user"
        uid = user.split(":")[0]
        assert uid.isdigit(), f"{name}: user {user} is not numeric"
        assert int(uid) != 0, f"{name}: runs as root"
        image = service["image"]
        assert PINNED.match(image), f"{name}: image {image} is not pinned"
        assert ":" in image, f"{name}: image {image} has no tag"
        check = service.get("healthcheck", {})
        if name != "gateway-init":  # a one-shot job: it ends
            has_own = bool(check.get("test")) and not check.get("disable")
            builds = service.get("build")
            image_check = builds is not None and any(
                w == "HEALTHCHECK" and r != "NONE"
                for w, r in _stages(
                    (COMPOSE.parent / builds["context"] / builds["dockerfile"]).resolve()
                )[-1]
            )
            assert has_own or image_check, f"{name}: no health check"


def test_compose_holds_no_secret_value() -> None:
    document = _compose()
    for name, service in document["services"].items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: environment as a list"
        for variable, value in environment.items():
            if SECRET_NAME.search(variable):
                assert str(value).startswith("/run/secrets/"), f"{name}: {variable} is a value"
    for name, secret in document["secrets"].items():
        assert set(secret) == {"file"}, f"secret {name} is not a file"
        assert secret["file"].startswith("./secrets/"), name
    ignored = (COMPOSE.parent / ".gitignore").read_text(encoding="utf-8")
    assert "secrets/" in ignored.split()


def test_compose_declares_every_volume_config_and_secret_it_uses() -> None:
    document = _compose()
    volumes, configs, secrets = set(), set(), set()
    for service in document["services"].values():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if not source.startswith((".", "/")):
                volumes.add(source)
        configs |= {c["source"] for c in service.get("configs", [])}
        secrets |= {s["source"] for s in service.get("secrets", [])}
    assert volumes == set(document["volumes"])
    assert configs == set(document["configs"])
    assert secrets == set(document["secrets"])
    for config in document["configs"].values():
        assert (COMPOSE.parent / config["file"]).is_file(), config


# ----------------------------------------------------------------------------- Kubernetes


def _manifest_files() -> list[Path]:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    return [KUBERNETES / name for name in kustomization["resources"]]


def _resources() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in _manifest_files():
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document:
                yield path, document


def _pod_spec(resource: dict[str, Any]) -> dict[str, Any] | None:
    spec = resource.get("spec", {})
    template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template")
    if template is None:
        return None
    pod: dict[str, Any] = template["spec"]
    return pod


def test_the_kustomization_lists_every_manifest() -> None:
    listed = {path.name for path in _manifest_files()}
    present = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_kubernetes_manifests_match_kubernetes_schemas() -> None:
    result = subprocess.run(
        [_tool("kubernetes-validate"), "--strict", "--quiet", *map(str, _manifest_files())],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_pod_is_non_root_read_only_and_probed() -> None:
    pods = 0
    for path, resource in _resources():
        pod = _pod_spec(resource)
        if pod is None:
            continue
        pods += 1
        where = f"{path.name}: {resource['kind']}/{resource['metadata']['name']}"
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True, where
        assert context["runAsUser"] != 0, where
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod.get("automountServiceAccountToken") is False, where
        for container in pod.get("initContainers", []) + pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            assert "limits" in container.get("resources", {}), where
            for variable in container.get("env", []):
                if SECRET_NAME.search(variable["name"]):
                    assert "value" not in variable or variable["value"].startswith("/run/"), where
        if resource["kind"] in ("Deployment", "StatefulSet"):
            for container in pod["containers"]:
                assert "readinessProbe" in container, where
                assert "livenessProbe" in container, where
    assert pods >= 5


def test_no_manifest_holds_a_secret() -> None:
    for path, resource in _resources():
        assert resource["kind"] != "Secret", f"{path.name}: a Secret with values"


def test_every_replicated_workload_has_a_disruption_budget() -> None:
    resources = [r for _p, r in _resources()]
    budgets = [
        r["spec"]["selector"]["matchLabels"]
        for r in resources
        if r["kind"] == "PodDisruptionBudget"
    ]
    for resource in resources:
        if resource["kind"] in ("Deployment", "StatefulSet"):
            labels = resource["spec"]["selector"]["matchLabels"]
            assert labels in budgets, resource["metadata"]["name"]
            assert resource["spec"]["replicas"] >= 2, resource["metadata"]["name"]


def _policies() -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for _p, r in _resources() if r["kind"] == "NetworkPolicy"}


def test_network_policies_deny_by_default_and_guard_the_terminal_port() -> None:
    policies = _policies()
    assert policies["default-deny-ingress"]["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress"],
    }
    gateway = policies["gateway"]["spec"]["ingress"]
    terminal_rules = [r for r in gateway if {"port": 50052, "protocol": "TCP"} in r["ports"]]
    assert len(terminal_rules) == 1
    assert terminal_rules[0]["from"], "the terminal port must not be open to everyone"
    assert all("ipBlock" in source for source in terminal_rules[0]["from"])
    for name, port in (("postgres", 5432), ("etcd", 2379), ("openbao", 8200)):
        rules = policies[name]["spec"]["ingress"]
        assert all(rule.get("from") for rule in rules), f"{name}: open to everyone"
        assert any({"port": port, "protocol": "TCP"} in r["ports"] for r in rules), name


# ----------------------------------------------------------------------------- settings files


def _owner_only_copy(text: str, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def test_the_gateway_settings_files_load_without_a_problem(tmp_path: Path) -> None:
    configmaps = [
        r for _p, r in _resources() if r["kind"] == "ConfigMap" and "gateway.toml" in r["data"]
    ]
    assert len(configmaps) == 1
    texts = {
        "compose": (DEPLOY / "compose" / "gateway.toml").read_text(encoding="utf-8"),
        "kubernetes": configmaps[0]["data"]["gateway.toml"],
    }
    for name, text in texts.items():
        config = GatewayConfig.load({}, {}, config_file=_owner_only_copy(text, tmp_path, name))
        assert config.host == "0.0.0.0", name  # noqa: S104 - a container listens on all
        assert config.database_password_file is not None, name
        assert config.staff_auth_enabled, name
        assert urlsplit(config.database_url).password is None, name
        # No signing or token key on a gateway's disk in the highly available set.
        assert config.key_custody == "key-server", name
        assert config.key_server_token_file is not None, name


def test_the_terminal_settings_file_loads(tmp_path: Path) -> None:
    text = (DEPLOY / "containers" / "terminal" / "terminal.toml").read_text(encoding="utf-8")
    config = TerminalConfig.load({}, {}, config_file=_owner_only_copy(text, tmp_path, "t.toml"))
    assert config.passphrase_file == Path("/run/secrets/terminal-passphrase")
