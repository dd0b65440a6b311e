"""Staff identity tokens issued by the real key server verify against its real JWKS."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from sealpost._internal.devservers import OpenBaoDevServer
from sealpost.escrow.bootstrap import BootstrapResult, BootstrapSettings, KeyServerBootstrap
from sealpost.escrow.client import KeyServerConfig
from sealpost.escrow.errors import (
    AuthenticationFailedError,
    PermissionDeniedError,
    TokenClaimsError,
    TokenExpiredError,
    TokenSignatureError,
)
from sealpost.escrow.identity import (
    StaffRole,
    discover,
    fetch_jwks,
    issue_identity_token,
    login_staff,
    verify_staff_token,
)

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"


@dataclass
class Kit:
    config: KeyServerConfig
    settings: BootstrapSettings
    result: BootstrapResult
    admin: KeyServerBootstrap


@pytest.fixture(scope="module")
def kit(openbao: OpenBaoDevServer) -> Iterator[Kit]:
    settings = BootstrapSettings(prefix=f"id{secrets.token_hex(4)}")
    config = KeyServerConfig(openbao.address)
    admin = KeyServerBootstrap(config, openbao.root_token, settings)
    yield Kit(config, settings, admin.run(), admin)
    admin.close()


def staff_token(kit: Kit, roles: list[StaffRole], institutions: list[str]) -> tuple[str, str]:
    name = f"staff-{secrets.token_hex(4)}"
    user = kit.admin.create_staff_user(name, PASSWORD, roles, institutions)
    session = login_staff(kit.config, name, PASSWORD)
    assert session.entity_id == user.entity_id
    return issue_identity_token(kit.config, session.token, role=kit.settings.identity_role), name


def test_real_token_verifies_with_roles_and_institutions(kit: Kit) -> None:
    token, name = staff_token(kit, [StaffRole.SCREENER, StaffRole.APPROVER], ["pi-a", "pi-b"])
    now = int(time.time())
    ident = verify_staff_token(
        token, fetch_jwks(kit.config), kit.result.issuer, kit.result.audience, now
    )
    assert ident.name == name
    assert ident.roles == frozenset({StaffRole.SCREENER, StaffRole.APPROVER})
    assert ident.institutions == frozenset({"pi-a", "pi-b"})
    assert ident.expires_at - ident.issued_at == 15 * 60
    assert ident.issued_at <= now + 5
    entity = kit.admin.create_staff_user(
        name, PASSWORD, [StaffRole.SCREENER, "approver"], ["pi-a", "pi-b"]
    )
    assert ident.subject == entity.entity_id


def test_discovery_matches_the_bootstrap(kit: Kit) -> None:
    found = discover(kit.config)
    assert found.issuer == kit.result.issuer
    assert found.jwks_uri == kit.result.jwks_uri
    assert "EdDSA" in found.algorithms
    keys = fetch_jwks(kit.config)["keys"]
    assert keys
    assert all(k["kty"] == "OKP" and k["crv"] == "Ed25519" for k in keys if k["alg"] == "EdDSA")


def test_national_auditor_token(kit: Kit) -> None:
    token, _name = staff_token(kit, [StaffRole.AUDITOR], ["*"])
    ident = verify_staff_token(
        token, fetch_jwks(kit.config), kit.result.issuer, kit.result.audience, int(time.time())
    )
    assert ident.roles == frozenset({StaffRole.AUDITOR})
    assert ident.institutions == frozenset({"*"})


def test_role_changes_show_in_the_next_token(kit: Kit) -> None:
    name = f"staff-{secrets.token_hex(4)}"
    kit.admin.create_staff_user(name, PASSWORD, [StaffRole.APPROVER], ["pi-a"])
    session = login_staff(kit.config, name, PASSWORD)
    kit.admin.create_staff_user(name, PASSWORD, [StaffRole.ADMINISTRATOR], ["pi-c"])
    token = issue_identity_token(kit.config, session.token, role=kit.settings.identity_role)
    ident = verify_staff_token(
        token, fetch_jwks(kit.config), kit.result.issuer, kit.result.audience, int(time.time())
    )
    assert ident.roles == frozenset({StaffRole.ADMINISTRATOR})
    assert ident.institutions == frozenset({"pi-c"})


def test_real_token_is_refused_for_another_audience_issuer_or_time(kit: Kit) -> None:
    token, _name = staff_token(kit, [StaffRole.SCREENER], ["pi-a"])
    jwks = fetch_jwks(kit.config)
    now = int(time.time())
    with pytest.raises(TokenClaimsError, match="audience"):
        verify_staff_token(token, jwks, kit.result.issuer, "some-other-service", now)
    with pytest.raises(TokenClaimsError, match="issuer"):
        verify_staff_token(
            token, jwks, "https://elsewhere/v1/identity/oidc", kit.result.audience, now
        )
    with pytest.raises(TokenExpiredError):
        verify_staff_token(token, jwks, kit.result.issuer, kit.result.audience, now + 3600)
    with pytest.raises(TokenSignatureError):
        verify_staff_token(token, {"keys": []}, kit.result.issuer, kit.result.audience, now)


def test_wrong_password_is_refused(kit: Kit) -> None:
    name = f"staff-{secrets.token_hex(4)}"
    kit.admin.create_staff_user(name, PASSWORD, [StaffRole.SCREENER], ["pi-a"])
    with pytest.raises(AuthenticationFailedError):
        login_staff(kit.config, name, "not the password")
    with pytest.raises(AuthenticationFailedError):
        login_staff(kit.config, f"absent-{name}", PASSWORD)


def test_terminal_cannot_obtain_a_staff_identity(kit: Kit) -> None:
    terminal = kit.admin.create_terminal_token("pi-a")
    with pytest.raises(PermissionDeniedError):
        issue_identity_token(kit.config, terminal.token, role=kit.settings.identity_role)
