"""Bring a key server to the state Sealpost expects; safe to run again (idempotent).

With an administrator (or root) token: a dedicated transit mount whose audit
entries carry the derivation context in clear, the derived aes256-gcm96 escrow
key (not exportable, no plaintext backup, rotated on a schedule), the
least-privilege policies of deploy/openbao/policies/, a token role for
terminals, userpass logins for staff, and an EdDSA identity-token role whose
claims carry staff roles and institutions. An existing key or mount that does
not match is reported, never silently reused or replaced.

Every write is noted in an ``ActionJournal`` (escrow/actions.py): the bootstrap,
each staff login, each terminal token created or revoked becomes a
``KeyServerAction`` to record in the transparency log, so that the auditor can
match each change in the key server's audit log to it (spec P14).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from string import Template
from typing import Any, Final

from sealpost._internal.logs import get_logger
from sealpost.escrow._transport import (
    Connection,
    KeyServerConfig,
    data_of,
    get_int,
    get_str,
)
from sealpost.escrow.actions import ActionJournal, ActionKind, KeyServerAction
from sealpost.escrow.client import EscrowKeyRef, KeyInfo, parse_key_info
from sealpost.escrow.errors import BootstrapError, InvalidRequestError, NotFoundError
from sealpost.escrow.identity import (
    DEFAULT_USERPASS_MOUNT,
    INSTITUTION_ID,
    StaffRole,
    discover,
    valid_institution_scope,
)
from sealpost.escrow.signing import read_key_info

_log = get_logger("sealpost.escrow.bootstrap")

#: deploy/openbao/policies, next to the package (sealpost/escrow -> escrow -> repository).
POLICY_DIR: Final = Path(__file__).resolve().parent.parent / "deploy" / "openbao" / "policies"

#: One policy file per key-server role; the file stem is the role.
POLICY_ROLES: Final = (
    "terminal",
    "screener",
    "key-administrator",
    "gateway",
    "auditor",
    "escrow-auditor",
    "staff",
)

#: Key-server policies each staff role receives (all staff may issue their identity token).
STAFF_ROLE_POLICIES: Final[dict[StaffRole, tuple[str, ...]]] = {
    StaffRole.SCREENER: ("staff", "screener"),
    StaffRole.APPROVER: ("staff",),
    StaffRole.ADMINISTRATOR: ("staff", "key-administrator"),
    StaffRole.AUDITOR: ("staff", "auditor"),
    StaffRole.ESCROW_AUDITOR: ("staff", "escrow-auditor"),
}

#: Claims of staff identity tokens, filled from the entity (OpenBao token template syntax).
IDENTITY_TEMPLATE: Final = (
    '{"name": {{identity.entity.name}}, '
    '"roles": {{identity.entity.metadata.roles}}, '
    '"institutions": {{identity.entity.metadata.institutions}}}'
)

ESCROW_KEY_TYPE: Final = "aes256-gcm96"
#: Versions kept of each secret on the gateway's KV mount: older session-token keys go away.
GATEWAY_SECRETS_MAX_VERSIONS: Final = 5
IDENTITY_KEY_ALGORITHM: Final = "EdDSA"

_PREFIX = re.compile(r"[a-z][a-z0-9-]{0,30}")
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_MIN_PASSWORD = 12


def _seconds(period: timedelta) -> int:
    return int(period.total_seconds())


@dataclass(frozen=True)
class BootstrapSettings:
    """Names and lifetimes; every name derives from ``prefix`` ("sealpost-transit", ...)."""

    prefix: str = "sealpost"
    policy_dir: Path = POLICY_DIR
    #: ``iss`` of identity tokens; None keeps the server's own (its api_addr).
    issuer: str | None = None
    #: Each rotation starts a new key version, the unit that retention can shred.
    auto_rotate_period: timedelta = timedelta(days=30)
    identity_token_ttl: timedelta = timedelta(minutes=15)
    identity_key_rotation: timedelta = timedelta(hours=24)
    staff_login_ttl: timedelta = timedelta(hours=1)
    staff_login_max_ttl: timedelta = timedelta(hours=8)
    terminal_token_period: timedelta = timedelta(hours=24)
    userpass_mount: str = DEFAULT_USERPASS_MOUNT

    def __post_init__(self) -> None:
        if not _PREFIX.fullmatch(self.prefix):
            raise ValueError("prefix: lower-case letters, digits and '-', starting with a letter")

    @property
    def escrow_key(self) -> EscrowKeyRef:
        """The transit mount and key name of the escrow key."""
        return EscrowKeyRef(mount=f"{self.prefix}-transit", name=f"{self.prefix}-escrow")

    @property
    def triage_key(self) -> EscrowKeyRef:
        """The key that seals triage summaries and watch lists (docs/review.md, "Triage").

        On the escrow key's mount, so its audit devices log each use; a key of its own,
        so that opening a summary is never mistaken for a message's decrypt.
        """
        return EscrowKeyRef(mount=f"{self.prefix}-transit", name=f"{self.prefix}-triage")

    @property
    def gateway_secrets_mount(self) -> str:
        """The KV version 2 mount of the gateway's own secrets (its session-token key)."""
        return f"{self.prefix}-gateway"

    @property
    def identity_role(self) -> str:
        """The identity/oidc role (and named key) for staff tokens."""
        return f"{self.prefix}-staff"

    @property
    def audience(self) -> str:
        """The identity role's client_id: the ``aud`` the gateway checks."""
        return f"{self.prefix}-gateway"

    @property
    def terminal_token_role(self) -> str:
        """The token role that terminal tokens are created through."""
        return f"{self.prefix}-terminal"

    @property
    def gateway_token_role(self) -> str:
        """The token role that the gateway's periodic token is created through."""
        return f"{self.prefix}-gateway"

    @property
    def signing_mount(self) -> str:
        """The transit mount holding the directory and log keys (and nothing else)."""
        return f"{self.prefix}-signing"

    @property
    def signing_keys(self) -> tuple[str, str]:
        """The names of the directory key and the log key on ``signing_mount``."""
        return f"{self.prefix}-directory", f"{self.prefix}-log"

    def policy_name(self, role: str) -> str:
        """Key-server policy name for a policy role ("terminal" -> "sealpost-terminal")."""
        return f"{self.prefix}-{role}"


@dataclass(frozen=True)
class BootstrapResult:
    """What the gateway and the clients need to be configured, and what this run changed."""

    escrow_key: EscrowKeyRef
    key: KeyInfo
    policies: tuple[str, ...]
    issuer: str
    audience: str
    jwks_uri: str
    identity_role: str
    userpass_mount: str
    terminal_token_role: str
    #: Created or changed by this run; empty when the server was already in shape.
    changes: tuple[str, ...]
    #: The run as an action to record in the transparency log; empty when nothing changed.
    actions: tuple[KeyServerAction, ...] = ()


@dataclass(frozen=True)
class StaffUser:
    """A staff login and its identity entity."""

    username: str
    entity_id: str
    roles: frozenset[StaffRole]
    institutions: frozenset[str]
    policies: tuple[str, ...]
    #: The change as an action to record in the transparency log.
    action: KeyServerAction | None = None


@dataclass(frozen=True)
class ServiceToken:
    """A token for a machine (terminal, gateway); revocable by accessor."""

    name: str
    token: str = field(repr=False)
    accessor: str
    policies: tuple[str, ...]
    ttl_seconds: int
    institution_id: str | None = None
    #: The creation as an action to record in the transparency log.
    action: KeyServerAction | None = None


def render_policies(settings: BootstrapSettings) -> dict[str, str]:
    """Policy name -> HCL text, from one file per role in ``settings.policy_dir``."""
    found = {p.stem for p in settings.policy_dir.glob("*.hcl")}
    missing = set(POLICY_ROLES) - found
    unknown = found - set(POLICY_ROLES)
    if missing or unknown:
        raise BootstrapError(
            f"policy files must be exactly {', '.join(POLICY_ROLES)} "
            f"(missing {sorted(missing)}, unknown {sorted(unknown)})"
        )
    values = {
        "transit_mount": settings.escrow_key.mount,
        "escrow_key": settings.escrow_key.name,
        "triage_key": settings.triage_key.name,
        "oidc_role": settings.identity_role,
        "policy_prefix": settings.prefix,
        "signing_mount": settings.signing_mount,
        "directory_key": settings.signing_keys[0],
        "log_key": settings.signing_keys[1],
        "gateway_secrets_mount": settings.gateway_secrets_mount,
    }
    out: dict[str, str] = {}
    for role in POLICY_ROLES:
        text = (settings.policy_dir / f"{role}.hcl").read_text(encoding="utf-8")
        try:
            out[settings.policy_name(role)] = Template(text).substitute(values)
        except (KeyError, ValueError) as exc:
            raise BootstrapError(f"policy {role}.hcl has an unknown placeholder: {exc}") from None
    return out


class KeyServerBootstrap:
    """Bootstrap and provisioning with an administrator token (never used by the services)."""

    def __init__(
        self,
        config: KeyServerConfig,
        admin_token: str,
        settings: BootstrapSettings = BootstrapSettings(),
    ) -> None:
        self.config = config
        self.settings = settings
        self._conn = Connection(config, admin_token)
        self._changes: list[str] = []
        self.journal = ActionJournal(self._conn)

    def __repr__(self) -> str:
        return f"KeyServerBootstrap(prefix={self.settings.prefix!r})"

    def close(self) -> None:
        """Close the HTTP session."""
        self._conn.close()

    # --- requests ----------------------------------------------------------------------------

    def _get(self, operation: str, path: str) -> dict[str, Any] | None:
        """GET ``path``; None on 404."""
        try:
            answer = self._conn.call(operation, lambda c: c.adapter.get(path))
        except NotFoundError:
            return None
        return answer if isinstance(answer, dict) else None

    def _post(self, operation: str, path: str, body: dict[str, Any] | None = None) -> Any:
        self.journal.wrote(path)
        return self._conn.call(operation, lambda c: c.adapter.post(path, json=body or {}))

    def take_actions(self) -> list[KeyServerAction]:
        """The actions made through this client and not yet taken, to record them."""
        return self.journal.take()

    def _last_action(self) -> KeyServerAction | None:
        return self.journal.actions[-1] if self.journal.actions else None

    def _changed(self, what: str) -> None:
        self._changes.append(what)
        _log.info("key server changed", reason=what)

    # --- bootstrap ---------------------------------------------------------------------------

    def run(self) -> BootstrapResult:
        """Create or check everything; report what changed."""
        self._changes = []
        s = self.settings
        before = len(self.journal.actions)
        with self.journal.action(ActionKind.BOOTSTRAP, s.prefix):
            self._ensure_mount(s.escrow_key.mount, "transit", "sys/mounts", "Sealpost escrow key")
            self._ensure_context_in_clear()
            key = self._ensure_escrow_key()
            self._ensure_triage_key()
            self._ensure_mount(
                s.signing_mount, "transit", "sys/mounts", "Sealpost directory and log keys"
            )
            for name in s.signing_keys:
                self._ensure_signing_key(name)
            self._ensure_gateway_secrets()
            policies = self._ensure_policies()
            self._ensure_mount(s.userpass_mount, "userpass", "sys/auth", "Sealpost staff logins")
            self._ensure_token_role(s.terminal_token_role, "terminal")
            self._ensure_token_role(s.gateway_token_role, "gateway")
            self._ensure_identity()
        found = discover(self.config)
        return BootstrapResult(
            escrow_key=s.escrow_key,
            key=key,
            policies=tuple(policies),
            issuer=found.issuer,
            audience=s.audience,
            jwks_uri=found.jwks_uri,
            identity_role=s.identity_role,
            userpass_mount=s.userpass_mount,
            terminal_token_role=s.terminal_token_role,
            changes=tuple(self._changes),
            actions=tuple(self.journal.actions[before:]),
        )

    def _ensure_mount(self, path: str, kind: str, base: str, description: str) -> None:
        mounts = data_of(self._read_mounts(base), base)
        existing = mounts.get(f"{path}/")
        if existing is None:
            self._post(
                f"enable {kind}", f"/v1/{base}/{path}", {"type": kind, "description": description}
            )
            self._changed(f"enabled {kind} at {path}/")
        elif not isinstance(existing, dict) or existing.get("type") != kind:
            raise BootstrapError(f"{path}/ is mounted but is not {kind}")

    def _read_mounts(self, base: str) -> Any:
        return self._conn.call(f"read {base}", lambda c: c.adapter.get(f"/v1/{base}"))

    def _ensure_context_in_clear(self) -> None:
        """Audit entries of the escrow mount show the context (message id) unhashed (spec P6)."""
        mount = self.settings.escrow_key.mount
        tune = data_of(self._get("read mount tuning", f"/v1/sys/mounts/{mount}/tune"), "tune")
        keys = tune.get("audit_non_hmac_request_keys") or []
        if not isinstance(keys, list):
            raise BootstrapError("unexpected audit_non_hmac_request_keys on the escrow mount")
        if "context" not in keys:
            self._post(
                "tune mount",
                f"/v1/sys/mounts/{mount}/tune",
                {"audit_non_hmac_request_keys": [*keys, "context"]},
            )
            self._changed(f"{mount}/ logs the derivation context in clear")

    def _ensure_escrow_key(self) -> KeyInfo:
        ref = self.settings.escrow_key
        operation = "read escrow key"
        answer = self._get(operation, ref.key_path)
        if answer is None:
            self._post(
                "create escrow key",
                ref.key_path,
                {
                    "type": ESCROW_KEY_TYPE,
                    "derived": True,
                    "exportable": False,
                    "allow_plaintext_backup": False,
                },
            )
            self._changed(f"created escrow key {ref.mount}/{ref.name}")
            answer = self._get(operation, ref.key_path)
        data = data_of(answer, operation)
        info = parse_key_info(data, operation)
        unsafe = [
            what
            for what, bad in (
                (f"type is not {ESCROW_KEY_TYPE}", info.key_type != ESCROW_KEY_TYPE),
                ("not derived", not info.derived),
                ("exportable", info.exportable),
                ("plaintext backup allowed", info.allow_plaintext_backup),
                ("deletion allowed", info.deletion_allowed),
                ("convergent encryption", data.get("convergent_encryption") is True),
            )
            if bad
        ]
        if unsafe:
            raise BootstrapError(f"existing escrow key refused: {', '.join(unsafe)}")
        wanted = self.settings.auto_rotate_period
        if info.auto_rotate_period != wanted:
            self._post(
                "configure escrow key",
                f"{ref.key_path}/config",
                {"auto_rotate_period": f"{_seconds(wanted)}s"},
            )
            self._changed(f"escrow key rotates every {_seconds(wanted)}s")
            info = parse_key_info(data_of(self._get(operation, ref.key_path), operation), operation)
        return info

    def _ensure_triage_key(self) -> None:
        """A derived key of its own for triage seals: not exportable, no plaintext backup."""
        ref = self.settings.triage_key
        operation = "read triage key"
        answer = self._get(operation, ref.key_path)
        if answer is None:
            self._post(
                "create triage key",
                ref.key_path,
                {
                    "type": ESCROW_KEY_TYPE,
                    "derived": True,
                    "exportable": False,
                    "allow_plaintext_backup": False,
                },
            )
            self._changed(f"created triage key {ref.mount}/{ref.name}")
            answer = self._get(operation, ref.key_path)
        info = parse_key_info(data_of(answer, operation), operation)
        if not info.derived or info.exportable or info.allow_plaintext_backup:
            raise BootstrapError(
                "existing triage key refused: it must be derived, not exportable, "
                "without plaintext backup"
            )

    def _ensure_signing_key(self, name: str) -> None:
        """An Ed25519 key that signs at the key server: not exportable, never deleted."""
        mount = self.settings.signing_mount
        path = f"/v1/{mount}/keys/{name}"
        operation = f"read signing key {name}"
        if self._get(operation, path) is None:
            self._post(
                f"create signing key {name}",
                path,
                {"type": "ed25519", "exportable": False, "allow_plaintext_backup": False},
            )
            self._changed(f"created signing key {mount}/{name}")
        info = read_key_info(self._conn, mount, name)
        if info.unsafe():
            raise BootstrapError(
                f"existing signing key {mount}/{name} refused: {', '.join(info.unsafe())}"
            )

    def _ensure_gateway_secrets(self) -> None:
        """The gateway's KV v2 mount: few versions kept, every write check-and-set."""
        mount = self.settings.gateway_secrets_mount
        existing = data_of(self._read_mounts("sys/mounts"), "sys/mounts").get(f"{mount}/")
        if existing is None:
            self._post(
                "enable kv",
                f"/v1/sys/mounts/{mount}",
                {"type": "kv", "options": {"version": "2"}, "description": "Sealpost gateway"},
            )
            self._changed(f"enabled kv at {mount}/")
        elif not isinstance(existing, dict) or existing.get("type") != "kv":
            raise BootstrapError(f"{mount}/ is mounted but is not kv")
        elif (existing.get("options") or {}).get("version") != "2":
            raise BootstrapError(f"{mount}/ is mounted but is not kv version 2")
        wanted = {"max_versions": GATEWAY_SECRETS_MAX_VERSIONS, "cas_required": True}
        self._ensure_same(
            "gateway secrets config",
            f"/v1/{mount}/config",
            wanted,
            lambda d: {k: d.get(k) for k in wanted},
        )

    def _ensure_policies(self) -> list[str]:
        names = []
        for name, text in render_policies(self.settings).items():
            current = self._get("read policy", f"/v1/sys/policies/acl/{name}")
            current_text = current.get("data", {}).get("policy") if current else None
            if current_text != text:
                self._post("write policy", f"/v1/sys/policies/acl/{name}", {"policy": text})
                self._changed(f"policy {name} written")
            names.append(name)
        return names

    def _ensure_same(
        self,
        operation: str,
        path: str,
        wanted: dict[str, Any],
        normalise: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> None:
        current = self._get(f"read {operation}", path)
        if current is None or normalise(data_of(current, operation)) != normalise(wanted):
            self._post(operation, path, wanted)
            self._changed(f"{operation} {path.removeprefix('/v1/')}")

    def _ensure_token_role(self, role: str, policy_role: str) -> None:
        """A token role for services: periodic (renewed while they run), orphan, one policy."""
        s = self.settings
        wanted = {
            "allowed_policies": [s.policy_name(policy_role)],
            "orphan": True,
            "renewable": True,
            "token_type": "service",
            "token_period": _seconds(s.terminal_token_period),
            "token_no_default_policy": True,
        }
        self._ensure_same(
            "token role",
            f"/v1/auth/token/roles/{role}",
            wanted,
            lambda d: {k: d.get(k) for k in wanted},
        )

    def _ensure_identity(self) -> None:
        s = self.settings
        if s.issuer is not None:
            current = self._get("read identity config", "/v1/identity/oidc/config")
            if current is None or data_of(current, "identity config").get("issuer") != s.issuer:
                self._post("identity config", "/v1/identity/oidc/config", {"issuer": s.issuer})
                self._changed("identity token issuer set")
        key = {
            "algorithm": IDENTITY_KEY_ALGORITHM,
            "allowed_client_ids": [s.audience],
            "rotation_period": _seconds(s.identity_key_rotation),
            "verification_ttl": _seconds(s.identity_key_rotation),
        }
        self._ensure_same(
            "identity key",
            f"/v1/identity/oidc/key/{s.identity_role}",
            key,
            lambda d: {k: d.get(k) for k in key},
        )
        role = {
            "key": s.identity_role,
            "client_id": s.audience,
            "template": IDENTITY_TEMPLATE,
            "ttl": _seconds(s.identity_token_ttl),
        }
        self._ensure_same(
            "identity role",
            f"/v1/identity/oidc/role/{s.identity_role}",
            role,
            lambda d: {k: d.get(k) for k in role},
        )

    # --- provisioning --------------------------------------------------------------------------

    def create_staff_user(
        self,
        username: str,
        password: str,
        roles: Iterable[StaffRole | str],
        institutions: Iterable[str],
    ) -> StaffUser:
        """Create or update a staff login, its entity (roles, institutions) and its policies.

        Policies sit on the entity, so changing a person's roles changes both their
        key-server capabilities and their identity-token claims. Screener and auditor
        are never combined: who checks the decrypts must not make them.
        """
        s = self.settings
        if not _USERNAME.fullmatch(username):
            raise InvalidRequestError("user name: lower-case letters, digits, '.', '_', '-'")
        if len(password) < _MIN_PASSWORD:
            raise InvalidRequestError(f"passwords have at least {_MIN_PASSWORD} characters")
        try:
            role_set = frozenset(StaffRole(r) for r in roles)
        except ValueError:
            raise InvalidRequestError("unknown staff role") from None
        if not role_set:
            raise InvalidRequestError("a staff member has at least one role")
        if {StaffRole.SCREENER, StaffRole.AUDITOR} <= role_set:
            raise InvalidRequestError("screener and auditor roles are never combined")
        if StaffRole.ESCROW_AUDITOR in role_set and role_set & {
            StaffRole.SCREENER,
            StaffRole.AUDITOR,
        }:
            # Its decrypts must be told apart from a screener's, and the auditor policy
            # denies every decrypt (a deny wins over the escrow audit's allow).
            raise InvalidRequestError(
                "the escrow-auditor role is never combined with screener or auditor"
            )
        institution_set = frozenset(institutions)
        if not all(valid_institution_scope(i) for i in institution_set):
            raise InvalidRequestError("malformed institution id")
        policies = tuple(
            sorted({s.policy_name(p) for r in role_set for p in STAFF_ROLE_POLICIES[r]})
        )
        with self.journal.action(ActionKind.STAFF_CHANGE, username):
            entity_id = self._write_staff(username, password, role_set, institution_set, policies)
        return StaffUser(
            username, entity_id, role_set, institution_set, policies, self._last_action()
        )

    def list_staff_users(self) -> list[StaffUser]:
        """Every staff login with its roles, institutions and policies, sorted by name."""
        s = self.settings
        operation = "list staff logins"
        try:
            answer = self._conn.call(
                operation, lambda c: c.adapter.list(f"/v1/auth/{s.userpass_mount}/users")
            )
        except NotFoundError:
            return []
        names = data_of(answer, operation).get("keys") or []
        users = []
        for name in sorted(n for n in names if isinstance(n, str)):
            entity = self._get("read staff entity", f"/v1/identity/entity/name/{name}")
            found = entity.get("data") if entity else None
            data: dict[str, Any] = found if isinstance(found, dict) else {}
            meta = data.get("metadata")
            metadata: dict[str, Any] = meta if isinstance(meta, dict) else {}
            roles = frozenset(
                StaffRole(r)
                for r in str(metadata.get("roles", "")).split(",")
                if r in {x.value for x in StaffRole}
            )
            institutions = frozenset(filter(None, str(metadata.get("institutions", "")).split(",")))
            listed = data.get("policies")
            policies: list[Any] = listed if isinstance(listed, list) else []
            users.append(
                StaffUser(
                    name,
                    str(data.get("id", "")),
                    roles,
                    institutions,
                    tuple(sorted(str(p) for p in policies)),
                )
            )
        return users

    def remove_staff_user(self, username: str) -> KeyServerAction | None:
        """Delete a staff login and its entity: its policies and claims are gone at once.

        Key-server tokens it holds lose every capability (their policies sat on the entity);
        identity tokens already issued expire within their lifetime (15 minutes by default).
        """
        if not _USERNAME.fullmatch(username):
            raise InvalidRequestError("user name: lower-case letters, digits, '.', '_', '-'")
        s = self.settings
        if self._get("read staff entity", f"/v1/identity/entity/name/{username}") is None:
            raise NotFoundError(f"no staff login {username}")
        with self.journal.action(ActionKind.STAFF_CHANGE, username):
            self._delete("delete staff login", f"/v1/auth/{s.userpass_mount}/users/{username}")
            self._delete("delete staff entity", f"/v1/identity/entity/name/{username}")
        return self._last_action()

    def enroll_staff_totp(self, username: str, *, reset: bool = False) -> str:
        """Require a TOTP code at this person's login; the otpauth URL for their app (secret).

        One TOTP method for all staff (issuer: the prefix), one login enforcement listing
        the enrolled identities (``<prefix>-staff-mfa``): others sign in as before. With
        ``reset`` an existing secret is destroyed first (a lost phone).
        """
        if not _USERNAME.fullmatch(username):
            raise InvalidRequestError("user name: lower-case letters, digits, '.', '_', '-'")
        entity = self._get("read staff entity", f"/v1/identity/entity/name/{username}")
        data = entity.get("data") if entity else None
        if not isinstance(data, dict):
            raise NotFoundError(f"no staff login {username}")
        entity_id = get_str(data, "id", "read staff entity")
        with self.journal.action(ActionKind.STAFF_CHANGE, username):
            method_id = self._totp_method()
            if reset:
                self._post(
                    "reset staff TOTP",
                    "/v1/identity/mfa/method/totp/admin-destroy",
                    {"method_id": method_id, "entity_id": entity_id},
                )
            answer = self._post(
                "enrol staff TOTP",
                "/v1/identity/mfa/method/totp/admin-generate",
                {"method_id": method_id, "entity_id": entity_id},
            )
            url = get_str(data_of(answer, "enrol staff TOTP"), "url", "enrol staff TOTP")
            self._enforce_mfa(method_id, entity_id)
        return url

    def _totp_method(self) -> str:
        """The staff TOTP method's id, created the first time (issuer: the prefix)."""
        issuer = self.settings.prefix
        try:
            listed = self._conn.call(
                "list TOTP methods", lambda c: c.adapter.list("/v1/identity/mfa/method/totp")
            )
            ids = data_of(listed, "list TOTP methods").get("keys") or []
        except NotFoundError:
            ids = []
        for method_id in ids:
            found = self._get("read TOTP method", f"/v1/identity/mfa/method/totp/{method_id}")
            config = found.get("data") if found else None
            if isinstance(config, dict) and config.get("issuer") == issuer:
                return str(method_id)
        answer = self._post(
            "create TOTP method",
            "/v1/identity/mfa/method/totp",
            {"issuer": issuer, "period": 30, "digits": 6, "algorithm": "SHA1", "key_size": 20},
        )
        return get_str(data_of(answer, "create TOTP method"), "method_id", "create TOTP method")

    def _enforce_mfa(self, method_id: str, entity_id: str) -> None:
        path = f"/v1/identity/mfa/login-enforcement/{self.settings.prefix}-staff-mfa"
        current = self._get("read login enforcement", path)
        data = current.get("data") if current else None
        entities = set(data.get("identity_entity_ids") or []) if isinstance(data, dict) else set()
        if entity_id in entities:
            return
        self._post(
            "write login enforcement",
            path,
            {"mfa_method_ids": [method_id], "identity_entity_ids": sorted(entities | {entity_id})},
        )

    def _delete(self, operation: str, path: str) -> Any:
        self.journal.wrote(path)
        return self._conn.call(operation, lambda c: c.adapter.delete(path))

    def _write_staff(
        self,
        username: str,
        password: str,
        role_set: frozenset[StaffRole],
        institution_set: frozenset[str],
        policies: tuple[str, ...],
    ) -> str:
        s = self.settings
        self._post(
            "write staff login",
            f"/v1/auth/{s.userpass_mount}/users/{username}",
            {
                "password": password,
                "token_policies": [],
                "token_no_default_policy": True,
                "token_ttl": _seconds(s.staff_login_ttl),
                "token_max_ttl": _seconds(s.staff_login_max_ttl),
            },
        )
        self._post(
            "write staff entity",
            f"/v1/identity/entity/name/{username}",
            {
                "metadata": {
                    "roles": ",".join(sorted(r.value for r in role_set)),
                    "institutions": ",".join(sorted(institution_set)),
                },
                "policies": list(policies),
            },
        )
        operation = "read staff entity"
        entity = data_of(self._get(operation, f"/v1/identity/entity/name/{username}"), operation)
        entity_id = get_str(entity, "id", operation)
        accessor = self._auth_accessor(s.userpass_mount)
        aliases = entity.get("aliases") or []
        if not any(isinstance(a, dict) and a.get("mount_accessor") == accessor for a in aliases):
            self._post(
                "write staff alias",
                "/v1/identity/entity-alias",
                {"name": username, "canonical_id": entity_id, "mount_accessor": accessor},
            )
        return entity_id

    def _auth_accessor(self, mount: str) -> str:
        mounts = data_of(self._read_mounts("sys/auth"), "sys/auth")
        entry = mounts.get(f"{mount}/")
        if not isinstance(entry, dict):
            raise BootstrapError(f"auth method {mount}/ is not enabled; run the bootstrap first")
        return get_str(entry, "accessor", "sys/auth")

    def create_terminal_token(self, institution_id: str) -> ServiceToken:
        """A periodic, orphan token with the terminal policy, named after its institution."""
        if not INSTITUTION_ID.fullmatch(institution_id):
            raise InvalidRequestError("malformed institution id")
        s = self.settings
        policy = s.policy_name("terminal")
        with self.journal.action(ActionKind.TERMINAL_TOKEN_CREATED, institution_id):
            answer = self._post(
                "create terminal token",
                f"/v1/auth/token/create/{s.terminal_token_role}",
                {
                    "policies": [policy],
                    "display_name": f"terminal-{institution_id}",
                    "meta": {"institution_id": institution_id},
                },
            )
        token = self._service_token(answer, f"terminal-{institution_id}", institution_id)
        return dataclasses.replace(token, action=self._last_action())

    def create_gateway_token(self) -> ServiceToken:
        """A periodic, orphan token with only the gateway policy (which denies the escrow key).

        The gateway renews it while it runs (gateway/custody.py); a gateway that stops
        for longer than the period needs a new one.
        """
        s = self.settings
        answer = self._post(
            "create gateway token",
            f"/v1/auth/token/create/{s.gateway_token_role}",
            {"policies": [s.policy_name("gateway")], "display_name": "gateway"},
        )
        return self._service_token(answer, "gateway", None)

    def revoke_token(self, accessor: str, *, target: str = "") -> KeyServerAction | None:
        """Revoke a token by its accessor (a lost terminal, a retired gateway).

        Returns the revocation as an action to record; ``target`` names the token for
        people (the accessor itself is HMAC-ed in the audit log).
        """
        with self.journal.action(ActionKind.TERMINAL_TOKEN_REVOKED, target or "token"):
            self._post("revoke token", "/v1/auth/token/revoke-accessor", {"accessor": accessor})
        return self._last_action()

    @staticmethod
    def _service_token(answer: Any, name: str, institution_id: str | None) -> ServiceToken:
        operation = f"create {name} token"
        auth = answer.get("auth") if isinstance(answer, dict) else None
        if not isinstance(auth, dict):
            raise BootstrapError(f"{operation}: the answer has no auth")
        policies = auth.get("policies")
        return ServiceToken(
            name=name,
            token=get_str(auth, "client_token", operation),
            accessor=get_str(auth, "accessor", operation),
            policies=tuple(p for p in policies if isinstance(p, str))
            if isinstance(policies, list)
            else (),
            ttl_seconds=get_int(auth, "lease_duration", operation),
            institution_id=institution_id,
        )


def bootstrap(
    config: KeyServerConfig,
    admin_token: str,
    settings: BootstrapSettings = BootstrapSettings(),
) -> BootstrapResult:
    """Run the bootstrap once and close the connection."""
    runner = KeyServerBootstrap(config, admin_token, settings)
    try:
        return runner.run()
    finally:
        runner.close()
