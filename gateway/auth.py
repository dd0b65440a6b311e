"""Authentication: turn a call's credentials into a Principal.

Three kinds of credentials (SPEC section 2):

- relatives sign a one-time challenge with their device key and receive a
  short-lived session token (``sp1.`` prefix), authenticated with the
  gateway's token key (keyed BLAKE2b), carried as ``authorization: Bearer``;
- institution terminals present a client certificate on the terminal port
  (mutual TLS); the certificate's fingerprint must be a registered, unrevoked
  terminal, which binds the call to one institution;
- staff present an identity token (EdDSA JWT) issued by the key server's
  identity/oidc, verified against its published keys (JWKS).
"""

from __future__ import annotations

import base64
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from sealpost.crypto import auth as crypto_auth
from sealpost.crypto.errors import SignatureError
from sealpost.escrow import identity
from sealpost.escrow.errors import EscrowError, TokenSignatureError
from sealpost.gateway import principals
from sealpost.gateway.errors import Unauthenticated, Unavailable
from sealpost.gateway.principals import Principal, Role

TOKEN_PREFIX: Final = "sp1."  # noqa: S105 - a format marker, not a secret
TOKEN_VERSION: Final = 1
TOKEN_TTL_MS: Final = 15 * 60 * 1000
_TOKEN_HEAD = struct.Struct(">BQ32s")  # version, expires_at_ms, key_id

STAFF_ROLE_MAP: Final = {
    identity.StaffRole.SCREENER: Role.SCREENER,
    identity.StaffRole.APPROVER: Role.APPROVER,
    identity.StaffRole.ADMINISTRATOR: Role.ADMINISTRATOR,
    identity.StaffRole.AUDITOR: Role.AUDITOR,
    identity.StaffRole.ESCROW_AUDITOR: Role.ESCROW_AUDITOR,
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise Unauthenticated("malformed session token") from exc


@dataclass(frozen=True)
class SessionToken:
    """What a relative's session token says."""

    account_id: str
    key_id: bytes
    expires_at_ms: int


@dataclass(frozen=True, repr=False)
class TokenKeys:
    """The session-token keys in use: the newest makes tokens; it and the one before verify.

    Keeping the previous key lets a token made just before a rotation live out its
    15 minutes; a key older than that verifies nothing.
    """

    current: bytes
    previous: bytes | None = None

    def token_keys(self) -> TokenKeys:
        """Fixed keys are their own source (the file-kept key of a single host)."""
        return self

    def __repr__(self) -> str:
        """Never show secrets."""
        return "TokenKeys(<secret>)"


class TokenKeySource(Protocol):
    """Where the gateway finds its session-token keys now (a file, or the key server)."""

    def token_keys(self) -> TokenKeys:
        """The keys in use at this moment; cheap (no call to another server)."""
        ...


def issue_session_token(keys: TokenKeys, session: SessionToken) -> str:
    """A bearer token for ``session``, authenticated with the newest token key."""
    payload = _TOKEN_HEAD.pack(TOKEN_VERSION, session.expires_at_ms, session.key_id)
    payload += session.account_id.encode()
    mac = crypto_auth.session_token_mac(keys.current, payload)
    return f"{TOKEN_PREFIX}{_b64(payload)}.{_b64(mac)}"


def _mac_verifies(keys: TokenKeys, payload: bytes, mac: bytes) -> bool:
    """Whether the newest or the previous key made ``mac``; both are always tried."""
    verified = False
    for key in (keys.current, keys.previous):
        if key is None:
            continue
        try:
            crypto_auth.verify_session_token_mac(key, payload, mac)
            verified = True
        except SignatureError:
            pass
    return verified


def verify_session_token(keys: TokenKeys, token: str, now_ms: int) -> SessionToken:
    """The session of a valid, unexpired token; Unauthenticated otherwise."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 512:
        raise Unauthenticated("not a session token")
    body, _, mac_text = token[len(TOKEN_PREFIX) :].partition(".")
    payload, mac = _unb64(body), _unb64(mac_text)
    if not _mac_verifies(keys, payload, mac):
        raise Unauthenticated("session token does not verify")
    if len(payload) <= _TOKEN_HEAD.size:
        raise Unauthenticated("malformed session token")
    version, expires_at_ms, key_id = _TOKEN_HEAD.unpack_from(payload)
    if version != TOKEN_VERSION:
        raise Unauthenticated("unsupported session token version")
    if now_ms >= expires_at_ms:
        raise Unauthenticated("session expired: sign in again")
    return SessionToken(payload[_TOKEN_HEAD.size :].decode(), key_id, expires_at_ms)


class JwksCache:
    """The key server's published identity-token keys, refreshed when stale or on a new kid.

    Of a key-server cluster every node publishes the same keys (they live in the
    replicated storage): a fetch tries the nodes in turn, starting with the one that
    answered last.
    """

    def __init__(
        self,
        address: str,
        *,
        max_age_seconds: float = 300.0,
        fetch: Callable[[str], Mapping[str, object]] | None = None,
    ) -> None:
        """Fetch from ``address``/v1/identity/oidc/.well-known/keys (no credentials needed).

        ``address`` may name several nodes, separated by commas.
        """
        self._urls = [
            f"{a.strip().rstrip('/')}/v1/identity/oidc/.well-known/keys"
            for a in address.split(",")
            if a.strip()
        ]
        self._current = 0
        self._max_age = max_age_seconds
        self._fetch = fetch or self._http_fetch
        self._keys: Mapping[str, object] | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    @staticmethod
    def _http_fetch(url: str) -> Mapping[str, object]:
        import json  # noqa: PLC0415

        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - configured URL
                document: Mapping[str, object] = json.load(response)
                return document
        except (OSError, urllib.error.URLError, ValueError) as exc:
            raise Unavailable("the key server's identity keys cannot be fetched") from exc

    def _fetch_any(self) -> Mapping[str, object]:
        """The JWKS from the first node that answers, starting with the last one that did."""
        failure: Unavailable | None = None
        for step in range(len(self._urls)):
            index = (self._current + step) % len(self._urls)
            try:
                document = self._fetch(self._urls[index])
            except Unavailable as exc:
                failure = failure or exc
                continue
            self._current = index
            return document
        raise failure or Unavailable("no key server address is configured")

    def keys(self, *, refresh: bool = False) -> Mapping[str, object]:
        """The JWKS document; refetched when older than the maximum age or on request."""
        with self._lock:
            stale = time.monotonic() - self._fetched_at > self._max_age
            # A refresh for an unknown kid is allowed at most every few seconds.
            throttled = refresh and time.monotonic() - self._fetched_at < 5
            if self._keys is None or stale or (refresh and not throttled):
                self._keys = self._fetch_any()
                self._fetched_at = time.monotonic()
            return self._keys


@dataclass(frozen=True)
class StaffVerifier:
    """Verifies staff identity tokens against the key server's JWKS."""

    jwks: JwksCache
    issuer: str
    audience: str

    def principal(self, token: str, now_s: int) -> Principal:
        """The staff principal of a valid token; Unauthenticated otherwise."""
        try:
            verified = identity.verify_staff_token(
                token, self.jwks.keys(), self.issuer, self.audience, now_s
            )
        except TokenSignatureError:
            # Perhaps the key server rotated its signing key: fetch the keys again (throttled).
            verified = self._retry_with_fresh_keys(token, now_s)
        except EscrowError as exc:
            raise Unauthenticated(f"staff token refused: {exc.explain()}") from exc
        roles = frozenset(STAFF_ROLE_MAP[r] for r in verified.roles)
        return principals.staff(verified.name, roles, verified.institutions, verified.subject)

    def _retry_with_fresh_keys(self, token: str, now_s: int) -> identity.StaffIdentity:
        try:
            return identity.verify_staff_token(
                token, self.jwks.keys(refresh=True), self.issuer, self.audience, now_s
            )
        except EscrowError as exc:
            raise Unauthenticated(f"staff token refused: {exc.explain()}") from exc


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``authorization: Bearer <token>`` header's value, if present."""
    value = authorization
    if not isinstance(value, str):
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("authorization must be 'Bearer <token>'")
    return token.strip()
