"""The escrow key in a real OpenBao: bootstrap, least privilege (P9), binding (P3), retention.

Each module bootstraps its own name prefix on the session's server, so that
rotating and retiring key versions here never touches anyone else's key.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import hvac
import hvac.exceptions
import pytest

from sealpost._internal.devservers import OpenBaoDevServer
from sealpost.escrow.auditlog import AuditEntryType, AuditOperation, read_audit_log
from sealpost.escrow.blob import EscrowedKey
from sealpost.escrow.bootstrap import (
    BootstrapResult,
    BootstrapSettings,
    KeyServerBootstrap,
    bootstrap,
)
from sealpost.escrow.client import (
    ESCROW_BATCH_SIZE,
    EscrowClient,
    EscrowKeyRef,
    KeyAdminClient,
    KeyEscrow,
    KeyServerConfig,
)
from sealpost.escrow.errors import (
    BootstrapError,
    InvalidRequestError,
    KeyVersionRetiredError,
    NotFoundError,
    PermissionDeniedError,
)
from sealpost.escrow.identity import StaffRole, issue_identity_token, login_staff

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"


@dataclass
class Provisioned:
    """One bootstrapped prefix with a token of every kind."""

    server: OpenBaoDevServer
    config: KeyServerConfig
    settings: BootstrapSettings
    result: BootstrapResult
    admin: KeyServerBootstrap
    terminal_token: str
    terminal_accessor: str
    screener_token: str
    gateway_token: str
    auditor_token: str
    key_admin_token: str

    def escrow_client(self, token: str) -> EscrowClient:
        return EscrowClient(self.config, token, key=self.settings.escrow_key)

    def admin_client(self, token: str) -> KeyAdminClient:
        return KeyAdminClient(self.config, token, key=self.settings.escrow_key)


def provision(server: OpenBaoDevServer) -> Provisioned:
    settings = BootstrapSettings(prefix=f"t{secrets.token_hex(4)}")
    config = KeyServerConfig(server.address)
    admin = KeyServerBootstrap(config, server.root_token, settings)
    result = admin.run()
    suffix = settings.prefix

    def staff_token(role: StaffRole) -> str:
        name = f"{role.value}-{suffix}"
        admin.create_staff_user(name, PASSWORD, [role], ["pi-a"])
        return login_staff(config, name, PASSWORD).token

    terminal = admin.create_terminal_token("pi-a")
    return Provisioned(
        server=server,
        config=config,
        settings=settings,
        result=result,
        admin=admin,
        terminal_token=terminal.token,
        terminal_accessor=terminal.accessor,
        screener_token=staff_token(StaffRole.SCREENER),
        gateway_token=admin.create_gateway_token().token,
        auditor_token=staff_token(StaffRole.AUDITOR),
        key_admin_token=staff_token(StaffRole.ADMINISTRATOR),
    )


@pytest.fixture(scope="module")
def kit(openbao: OpenBaoDevServer) -> Iterator[Provisioned]:
    provisioned = provision(openbao)
    yield provisioned
    provisioned.admin.close()


def message() -> tuple[bytes, bytes]:
    return secrets.token_bytes(16), secrets.token_bytes(32)


# --- bootstrap ----------------------------------------------------------------------------


def test_bootstrap_is_idempotent(openbao: OpenBaoDevServer) -> None:
    settings = BootstrapSettings(prefix=f"idem{secrets.token_hex(3)}")
    config = KeyServerConfig(openbao.address)
    first = bootstrap(config, openbao.root_token, settings)
    second = bootstrap(config, openbao.root_token, settings)
    assert first.changes, "the first run must create things"
    assert any("created escrow key" in c for c in first.changes)
    assert second.changes == ()
    assert second.key.latest_version == first.key.latest_version == 1
    assert second.policies == first.policies
    assert first.issuer == f"{openbao.address}/v1/identity/oidc"
    assert first.jwks_uri == f"{openbao.address}/v1/identity/oidc/.well-known/keys"
    assert first.audience == f"{settings.prefix}-gateway"


def test_default_bootstrap_converges(openbao: OpenBaoDevServer) -> None:
    config = KeyServerConfig(openbao.address)
    bootstrap(config, openbao.root_token)
    again = bootstrap(config, openbao.root_token)
    assert again.changes == ()
    assert again.escrow_key.mount == "sealpost-transit"


def test_bootstrapped_key_and_mount_are_as_specified(kit: Provisioned) -> None:
    key = kit.result.key
    assert key.key_type == "aes256-gcm96"
    assert key.derived
    assert not key.exportable
    assert not key.allow_plaintext_backup
    assert not key.deletion_allowed
    assert key.auto_rotate_period == timedelta(days=30)
    root = hvac.Client(url=kit.server.address, token=kit.server.root_token)
    tune = root.sys.read_mount_configuration(kit.settings.escrow_key.mount)["data"]
    assert "context" in tune["audit_non_hmac_request_keys"]


def test_bootstrap_refuses_an_unsafe_existing_key(openbao: OpenBaoDevServer) -> None:
    settings = BootstrapSettings(prefix=f"unsafe{secrets.token_hex(3)}")
    root = hvac.Client(url=openbao.address, token=openbao.root_token)
    root.sys.enable_secrets_engine("transit", path=settings.escrow_key.mount)
    root.secrets.transit.create_key(
        settings.escrow_key.name, key_type="aes256-gcm96", mount_point=settings.escrow_key.mount
    )  # not derived: no binding to the message id
    with pytest.raises(BootstrapError, match="not derived"):
        bootstrap(KeyServerConfig(openbao.address), openbao.root_token, settings)


def test_staff_roles_are_validated(kit: Provisioned) -> None:
    with pytest.raises(InvalidRequestError, match="never combined"):
        kit.admin.create_staff_user(
            "both-roles", PASSWORD, [StaffRole.SCREENER, StaffRole.AUDITOR], ["pi-a"]
        )
    with pytest.raises(InvalidRequestError, match="unknown staff role"):
        kit.admin.create_staff_user("nobody", PASSWORD, ["janitor"], ["pi-a"])


# --- least privilege (P9) -------------------------------------------------------------------


def test_terminal_can_escrow_but_never_decrypt(kit: Provisioned) -> None:
    mid, dek = message()
    with kit.escrow_client(kit.terminal_token) as terminal:
        escrowed = terminal.escrow(mid, dek)
        assert escrowed.message_id == mid
        assert escrowed.ciphertext.startswith("vault:v1:")
        with pytest.raises(PermissionDeniedError) as info:
            terminal.decrypt(mid, escrowed.ciphertext)
        assert info.value.status == 403
    with kit.admin_client(kit.terminal_token) as as_admin, pytest.raises(PermissionDeniedError):
        as_admin.rotate()


def test_terminal_token_renews_itself_for_another_period(kit: Provisioned) -> None:
    with kit.escrow_client(kit.terminal_token) as terminal:
        ttl = terminal.renew_self()
        assert 23 * 3600 < ttl <= 24 * 3600  # the terminal role's period, restarted
        assert terminal.escrow(*message()).ciphertext.startswith("vault:v1:")


def test_terminal_cannot_create_keys_by_upsert(kit: Provisioned) -> None:
    other = EscrowKeyRef(kit.settings.escrow_key.mount, "made-by-terminal")
    with (
        EscrowClient(kit.config, kit.terminal_token, key=other) as terminal,
        pytest.raises(PermissionDeniedError),
    ):
        terminal.escrow(*message())
    with (
        KeyAdminClient(kit.config, kit.server.root_token, key=other) as root,
        pytest.raises(NotFoundError),
    ):
        root.key_info()


def test_escrow_client_is_the_key_escrow_interface(kit: Provisioned) -> None:
    mid, dek = message()
    with kit.escrow_client(kit.terminal_token) as terminal:
        escrow: KeyEscrow = terminal
        [escrowed] = escrow.escrow_batch([(mid, dek)])
    with kit.escrow_client(kit.screener_token) as screener:
        opener: KeyEscrow = screener
        assert opener.decrypt(mid, escrowed.ciphertext) == dek


def test_screener_can_decrypt_but_never_escrow(kit: Provisioned) -> None:
    mid, dek = message()
    with kit.escrow_client(kit.terminal_token) as terminal:
        escrowed = terminal.escrow(mid, dek)
    with kit.escrow_client(kit.screener_token) as screener:
        assert screener.decrypt(mid, escrowed.ciphertext) == dek
        with pytest.raises(PermissionDeniedError):
            screener.escrow(*message())


@pytest.mark.parametrize("who", ["gateway_token", "auditor_token", "key_admin_token"])
def test_others_can_neither_escrow_nor_decrypt(kit: Provisioned, who: str) -> None:
    mid, dek = message()
    with kit.escrow_client(kit.terminal_token) as terminal:
        escrowed = terminal.escrow(mid, dek)
    with kit.escrow_client(getattr(kit, who)) as other:
        with pytest.raises(PermissionDeniedError):
            other.escrow(*message())
        with pytest.raises(PermissionDeniedError):
            other.decrypt(mid, escrowed.ciphertext)


def test_gateway_cannot_issue_identity_tokens_or_read_the_key(kit: Provisioned) -> None:
    with pytest.raises(PermissionDeniedError):
        issue_identity_token(kit.config, kit.gateway_token, role=kit.settings.identity_role)
    with kit.admin_client(kit.gateway_token) as gateway, pytest.raises(PermissionDeniedError):
        gateway.key_info()


def test_key_administrator_cannot_make_the_key_exportable_or_deletable(kit: Provisioned) -> None:
    raw = hvac.Client(url=kit.server.address, token=kit.key_admin_token)
    path = f"/v1/{kit.settings.escrow_key.mount}/keys/{kit.settings.escrow_key.name}"
    for forbidden in ({"exportable": True}, {"deletion_allowed": True}):
        with pytest.raises(hvac.exceptions.Forbidden):
            raw.adapter.post(f"{path}/config", json=forbidden)
    with pytest.raises(hvac.exceptions.Forbidden):
        raw.adapter.delete(path)
    with kit.admin_client(kit.key_admin_token) as admin:
        assert admin.key_info().name == kit.settings.escrow_key.name


def test_revoked_terminal_token_is_refused(openbao: OpenBaoDevServer) -> None:
    own = provision(openbao)
    with own.escrow_client(own.terminal_token) as terminal:
        terminal.escrow(*message())
        own.admin.revoke_token(own.terminal_accessor)
        with pytest.raises(PermissionDeniedError):
            terminal.escrow(*message())
    own.admin.close()


# --- binding to the message (P3) -------------------------------------------------------------


def test_wrong_context_is_refused(kit: Provisioned) -> None:
    mid, dek = message()
    other_mid, _ = message()
    with kit.escrow_client(kit.terminal_token) as terminal:
        escrowed = terminal.escrow(mid, dek)
    with kit.escrow_client(kit.screener_token) as screener:
        with pytest.raises(InvalidRequestError) as info:
            screener.decrypt(other_mid, escrowed.ciphertext)
        assert type(info.value) is InvalidRequestError
        assert info.value.status == 400
        assert screener.decrypt(mid, escrowed.ciphertext) == dek


def test_escrow_blob_round_trips_and_decrypts(kit: Provisioned) -> None:
    mid, dek = message()
    with kit.escrow_client(kit.terminal_token) as terminal:
        blob = terminal.escrow(mid, dek).to_bytes()
    parsed = EscrowedKey.from_bytes(blob)
    with kit.escrow_client(kit.screener_token) as screener:
        assert screener.decrypt_escrowed(parsed) == dek


def test_bad_input_is_refused_before_sending(kit: Provisioned) -> None:
    with kit.escrow_client(kit.terminal_token) as terminal:
        with pytest.raises(InvalidRequestError, match="32 bytes"):
            terminal.escrow_batch([(bytes(16), bytes(31))])
        with pytest.raises(InvalidRequestError, match="16 bytes"):
            terminal.escrow_batch([(bytes(15), bytes(32))])
        assert terminal.escrow_batch([]) == []


# --- batches ------------------------------------------------------------------------------


def test_batch_of_450_escrows_in_3_calls_and_decrypts_back(kit: Provisioned) -> None:
    items = [message() for _ in range(450)]
    with kit.escrow_client(kit.terminal_token) as terminal:
        escrowed = terminal.escrow_batch(items)
    assert [e.message_id for e in escrowed] == [mid for mid, _ in items]
    assert all(e.key_version >= 1 for e in escrowed)

    ids = {mid for mid, _ in items}
    requests = [
        e
        for e in read_audit_log(kit.server.audit_log, key=kit.settings.escrow_key)
        if e.operation is AuditOperation.ENCRYPT
        and e.entry_type is AuditEntryType.REQUEST
        and set(e.message_ids) & ids
    ]
    assert sorted(len(e.message_ids) for e in requests) == [
        50,
        ESCROW_BATCH_SIZE,
        ESCROW_BATCH_SIZE,
    ]

    with kit.escrow_client(kit.screener_token) as screener:
        outcomes = screener.decrypt_batch(escrowed)
    assert [o.dek_or_raise() for o in outcomes] == [dek for _, dek in items]


def test_batch_decrypt_reports_refused_items_and_returns_the_rest(kit: Provisioned) -> None:
    items = [message() for _ in range(3)]
    with kit.escrow_client(kit.terminal_token) as terminal:
        escrowed = terminal.escrow_batch(items)
    tampered = EscrowedKey(message()[0], escrowed[1].ciphertext, escrowed[1].key_version)
    with kit.escrow_client(kit.screener_token) as screener:
        outcomes = screener.decrypt_batch([escrowed[0], tampered, escrowed[2]])
    assert outcomes[0].dek == items[0][1]
    assert outcomes[2].dek == items[2][1]
    assert outcomes[1].dek is None
    assert outcomes[1].error is not None
    assert "authentication failed" in str(outcomes[1].error)
    with pytest.raises(InvalidRequestError):
        outcomes[1].dek_or_raise()


# --- rotation and retention ---------------------------------------------------------------------


def test_rotation_new_messages_use_new_version_old_ones_still_open(
    openbao: OpenBaoDevServer,
) -> None:
    own = provision(openbao)
    old_mid, old_dek = message()
    new_mid, new_dek = message()
    with own.escrow_client(own.terminal_token) as terminal:
        old = terminal.escrow(old_mid, old_dek)
        with own.admin_client(own.key_admin_token) as admin:
            info = admin.rotate()
        new = terminal.escrow(new_mid, new_dek)
    assert old.key_version == 1
    assert info.latest_version == 2
    assert new.key_version == 2
    assert new.ciphertext.startswith("vault:v2:")
    with own.escrow_client(own.screener_token) as screener:
        assert screener.decrypt(old_mid, old.ciphertext) == old_dek
        assert screener.decrypt(new_mid, new.ciphertext) == new_dek
    own.admin.close()


def test_auto_rotation_period_is_set_and_bounded(openbao: OpenBaoDevServer) -> None:
    own = provision(openbao)
    with own.admin_client(own.key_admin_token) as admin:
        info = admin.set_auto_rotate_period(timedelta(days=365))
        assert info.auto_rotate_period == timedelta(days=365)
        with pytest.raises(InvalidRequestError, match="hour"):
            admin.set_auto_rotate_period(timedelta(minutes=10))
        assert admin.set_auto_rotate_period(timedelta(0)).auto_rotate_period == timedelta(0)
    own.admin.close()


def test_retention_makes_old_messages_undecryptable_for_good(openbao: OpenBaoDevServer) -> None:
    own = provision(openbao)
    old_items = [message() for _ in range(3)]
    new_mid, new_dek = message()
    with own.escrow_client(own.terminal_token) as terminal:
        old = terminal.escrow_batch(old_items)
        with own.admin_client(own.key_admin_token) as admin:
            admin.rotate()
            new = terminal.escrow(new_mid, new_dek)
            info = admin.apply_retention(2)
            assert admin.apply_retention(2) == info  # idempotent
            with pytest.raises(InvalidRequestError, match="cannot be brought back"):
                admin.apply_retention(1)
            with pytest.raises(InvalidRequestError, match="latest"):
                admin.apply_retention(3)
    assert info.available_versions == (2,)
    assert info.min_available_version == 2
    assert info.min_decryption_version == 2

    with own.escrow_client(own.screener_token) as screener:
        for escrowed in old:
            with pytest.raises(KeyVersionRetiredError):
                screener.decrypt_escrowed(escrowed)
        assert screener.decrypt(new_mid, new.ciphertext) == new_dek
    # Not even root can bring version 1 back: it has been trimmed out of the key ring.
    root = hvac.Client(url=openbao.address, token=openbao.root_token)
    path = f"/v1/{own.settings.escrow_key.mount}/keys/{own.settings.escrow_key.name}/config"
    with pytest.raises(hvac.exceptions.InvalidRequest, match="min available version"):
        root.adapter.post(path, json={"min_decryption_version": 1})
    with own.escrow_client(openbao.root_token) as as_root, pytest.raises(KeyVersionRetiredError):
        as_root.decrypt_escrowed(old[0])
    own.admin.close()
