"""Admits API calls: authenticates the caller, then authorises against the table.

Terminals are recognised by their client certificate on the terminal port,
relatives by a session token, staff by a key-server identity token; anyone
else is anonymous. Revocation of a terminal or a device key takes effect on
the next call: nothing is cached.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from sqlalchemy import Connection

from sealpost.crypto.errors import LimitError
from sealpost.crypto.logentry import LogAction
from sealpost.gateway import auth, authz, pki, principals, store, translog
from sealpost.gateway.authz import RULES, Target
from sealpost.gateway.calls import Credentials
from sealpost.gateway.errors import PermissionDenied, Unauthenticated
from sealpost.gateway.principals import ANONYMOUS, STAFF_ROLES, Principal, Role
from sealpost.gateway.ratelimit import PUBLIC_KINDS
from sealpost.gateway.services.context import CALLER, Context


class Guard:
    """The gateway's authentication and authorisation."""

    def __init__(self, ctx: Context) -> None:
        """Guard calls with the shared context."""
        self.ctx = ctx
        self._staff_seen: dict[str, tuple[str, str, str]] = {}

    async def admit(self, method: str, request: Any, credentials: Credentials) -> Principal:
        """Authenticate, authorise, and remember the caller for the handler.

        A method open to anyone (the directory, sign-in) is not refused for a stale or
        unusable credential: the caller is then simply anonymous, which is all such a
        method needs, so a client whose session expired can sign in again.
        """
        rule = RULES[method]
        lookups = rule.target not in (Target.NONE, Target.OWN, Target.NATIONAL)
        certificate = credentials.certificate_pem
        if certificate and lookups and method not in authz.PUBLIC_METHODS:
            # A terminal's certificate and the call's scope, in one read transaction.
            def admit_terminal(connection: Connection) -> Principal:
                principal = self._terminal(connection, certificate)
                authz.authorize(method, principal, request, store.Scopes(connection))
                return principal

            principal = await self.ctx.db.aread(admit_terminal)
            CALLER.set(principal)
            return principal
        try:
            principal = await self.authenticate(credentials)
        except Unauthenticated:
            if method not in authz.PUBLIC_METHODS:
                raise
            principal = ANONYMOUS
        self._limit_public(method, principal, credentials.peer)
        if not lookups:
            authz.authorize(method, principal, request, _NoLookups())
        else:
            await self.ctx.db.aread(
                lambda c: authz.authorize(method, principal, request, store.Scopes(c))
            )
        if principal.roles & STAFF_ROLES:
            await self._record_staff(principal)
        CALLER.set(principal)
        return principal

    def _limit_public(self, method: str, principal: Principal, peer: str) -> None:
        """Count a public call against its client address's bucket and the gateway's.

        Registration and sign-in count for everyone; the directory only for callers who
        are not signed in. Terminals are not counted: they are known by certificate.
        """
        kind = PUBLIC_KINDS.get(method)
        limits = self.ctx.public_limits
        if kind is None or limits is None or principal.has(Role.TERMINAL):
            return
        if kind == "directory" and not principal.has(Role.ANONYMOUS):
            return
        limits.take(kind, peer)

    async def _record_staff(self, principal: Principal) -> None:
        """Log a staff member's roles and institutions before the first call that uses them.

        The identity token decides what a staff member may do; recording each new set of
        roles in the transparency log lets an auditor check every staff action in the log
        against the roles its author held then (docs/audit.md). Seen sets are remembered
        in this process, so only a change costs a write.
        """
        fact = staff_fact(principal)
        if self._staff_seen.get(principal.staff_name) == fact:
            return
        now = self.ctx.clock()

        def record(connection: Connection) -> None:
            row = store.staff_member(connection, principal.staff_name)
            if row is not None and (row.subject, row.roles, row.institutions) == fact:
                return
            subject, roles, institutions = fact
            appended = store.log(
                connection,
                LogAction.ADMIN_ACTION,
                principal.actor,
                now,
                [("staff", principal.staff_name)],
                # National staff act everywhere: every auditor needs to see their roles.
                scope=translog.PUBLIC if principal.national else principal.institutions,
                operation=STAFF_ROLES_OPERATION,
                roles=roles,
                institutions=institutions,
                key_server_entity=subject,
            )
            store.record_staff(
                connection, principal.staff_name, subject, roles, institutions, now, appended.index
            )

        try:
            await self.ctx.write(record)
        except LimitError as exc:
            raise PermissionDenied(
                "your identity token names more institutions than can be recorded"
            ) from exc
        self._staff_seen[principal.staff_name] = fact

    async def authenticate(self, credentials: Credentials) -> Principal:
        """The caller of this call."""
        certificate = credentials.certificate_pem
        if certificate:
            return await self.ctx.db.aread(lambda c: self._terminal(c, certificate))
        token = auth.bearer_token(credentials.authorization)
        if token is None:
            return ANONYMOUS
        if token.startswith(auth.TOKEN_PREFIX):
            session = auth.verify_session_token(
                self.ctx.directory.keys.tokens.token_keys(), token, self.ctx.clock()
            )
            await self.ctx.db.aread(lambda c: self._device_usable(c, session.key_id))
            return principals.relative(session.account_id, session.key_id)
        if self.ctx.staff is None:
            raise Unauthenticated("staff sign-in is not configured on this gateway")
        staff = self.ctx.staff
        return await asyncio.to_thread(staff.principal, token, self.ctx.clock() // 1000)

    def _terminal(self, connection: Connection, certificate: bytes) -> Principal:
        row = store.terminal_by_fingerprint(connection, pki.fingerprint(certificate))
        if row is None:
            raise Unauthenticated("this terminal certificate is not registered")
        if row.revoked_at_ms is not None:
            raise Unauthenticated("this terminal certificate has been revoked")
        if row.expires_at_ms <= self.ctx.clock():
            raise Unauthenticated("this terminal certificate has expired")
        return principals.terminal(row.id, row.institution_id)

    def _device_usable(self, connection: Connection, key_id: bytes) -> None:
        row = store.key_record(connection, key_id)
        if row is None or row.revoked_at_ms is not None:
            raise Unauthenticated("this device has been revoked: register it again")


#: The ADMIN_ACTION operation that records a staff member's roles and institutions.
STAFF_ROLES_OPERATION: Final = "staff_roles"


def staff_fact(principal: Principal) -> tuple[str, str, str]:
    """(key-server subject, roles, institutions) as recorded: sorted, comma-separated."""
    roles = ",".join(sorted(role.value for role in principal.roles & STAFF_ROLES))
    return principal.staff_subject, roles, ",".join(sorted(principal.institutions))


class _NoLookups:
    """A resolver for rules that need none; any lookup is a bug."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected scope lookup {name}")
