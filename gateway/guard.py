"""Admits API calls: authenticates the caller, then authorises against the table.

Terminals are recognised by their client certificate on the terminal port,
relatives by a session token, staff by a key-server identity token; anyone
else is anonymous. Revocation of a terminal or a device key takes effect on
the next call: nothing is cached.
"""

from __future__ import annotations

import asyncio
from typing import Any

from grpc import aio
from sqlalchemy import Connection

from sealpost.gateway import auth, authz, pki, principals, store
from sealpost.gateway.authz import RULES, Target
from sealpost.gateway.errors import Unauthenticated
from sealpost.gateway.principals import ANONYMOUS, Principal
from sealpost.gateway.services.context import CALLER, Context


class Guard:
    """The gateway's authentication and authorisation."""

    def __init__(self, ctx: Context) -> None:
        """Guard calls with the shared context."""
        self.ctx = ctx

    async def admit(
        self, method: str, request: Any, context: aio.ServicerContext[Any, Any]
    ) -> Principal:
        """Authenticate, authorise, and remember the caller for the handler.

        A method open to anyone (the directory, sign-in) is not refused for a stale or
        unusable credential: the caller is then simply anonymous, which is all such a
        method needs, so a client whose session expired can sign in again.
        """
        rule = RULES[method]
        lookups = rule.target not in (Target.NONE, Target.OWN, Target.NATIONAL)
        certificates = list(context.auth_context().get("x509_pem_cert", ()))
        if certificates and lookups and method not in authz.PUBLIC_METHODS:
            # A terminal's certificate and the call's scope, in one read transaction.
            def admit_terminal(connection: Connection) -> Principal:
                principal = self._terminal(connection, certificates[0])
                authz.authorize(method, principal, request, store.Scopes(connection))
                return principal

            principal = await self.ctx.db.aread(admit_terminal)
            CALLER.set(principal)
            return principal
        try:
            principal = await self.authenticate(context)
        except Unauthenticated:
            if method not in authz.PUBLIC_METHODS:
                raise
            principal = ANONYMOUS
        if not lookups:
            authz.authorize(method, principal, request, _NoLookups())
        else:
            await self.ctx.db.aread(
                lambda c: authz.authorize(method, principal, request, store.Scopes(c))
            )
        CALLER.set(principal)
        return principal

    async def authenticate(self, context: aio.ServicerContext[Any, Any]) -> Principal:
        """The caller of this call."""
        certificates = list(context.auth_context().get("x509_pem_cert", ()))
        if certificates:
            return await self.ctx.db.aread(lambda c: self._terminal(c, certificates[0]))
        metadata = dict(context.invocation_metadata() or ())
        token = auth.bearer_token(metadata)
        if token is None:
            return ANONYMOUS
        if token.startswith(auth.TOKEN_PREFIX):
            session = auth.verify_session_token(
                self.ctx.directory.keys.token_key, token, self.ctx.clock()
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


class _NoLookups:
    """A resolver for rules that need none; any lookup is a bug."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected scope lookup {name}")
