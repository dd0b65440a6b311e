"""Staff identity tokens: obtained from the key server, verified by the gateway without I/O.

Staff (screener, approver, administrator, auditor) log in to the key server
and ask ``identity/oidc`` for a short-lived identity token: an EdDSA (Ed25519)
signed JWT whose claims carry their roles and institution scope from the
staff entity's metadata. ``verify_staff_token`` is the gateway's pure check
against the published JWKS (RFC 7515 compact JWS, RFC 7519 claims, RFC 8037
OKP keys): one algorithm, strict base64url and JSON, every claim checked.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from sealpost.crypto.auth import (
    IDENTITY_KEY_BYTES,
    IDENTITY_SIGNATURE_BYTES,
    verify_identity_token_signature,
)
from sealpost.crypto.errors import SignatureError
from sealpost.escrow._transport import (
    NO_RETRY,
    Connection,
    KeyServerConfig,
    data_of,
    get_int,
    get_str,
)
from sealpost.escrow.errors import (
    AuthenticationFailedError,
    InvalidRequestError,
    MalformedTokenError,
    PermissionDeniedError,
    SecondFactorRequiredError,
    TokenClaimsError,
    TokenExpiredError,
    TokenNotYetValidError,
    TokenSignatureError,
    UnexpectedResponseError,
)

#: The one accepted JWS algorithm (RFC 8037 section 3.1): Ed25519 signatures.
ALGORITHM: Final = "EdDSA"
#: Refuse anything longer before parsing: identity tokens are well under 2 KiB.
MAX_TOKEN_CHARS: Final = 8192
#: Seconds of clock skew tolerated on exp, nbf and iat.
DEFAULT_LEEWAY_SECONDS: Final = 60
#: Longest accepted token lifetime (exp - iat); the key server issues 15-minute tokens.
DEFAULT_MAX_LIFETIME_SECONDS: Final = 3600
#: Default name of the key server's identity token role for staff.
DEFAULT_IDENTITY_ROLE: Final = "sealpost-staff"
#: Default userpass mount for staff logins.
DEFAULT_USERPASS_MOUNT: Final = "userpass"

_ALLOWED_HEADER: Final = frozenset({"alg", "kid", "typ"})
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
#: Institution ids: opaque, short, no separators (metadata carries them comma-joined).
INSTITUTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
#: The institution scope of national staff: every institution.
ALL_INSTITUTIONS: Final = "*"


def valid_institution_scope(value: str) -> bool:
    """True for an institution id or ``ALL_INSTITUTIONS``."""
    return value == ALL_INSTITUTIONS or INSTITUTION_ID.fullmatch(value) is not None


class StaffRole(StrEnum):
    """Staff roles (proto sealpost.v1.StaffRole), as carried in the token's ``roles`` claim."""

    SCREENER = "screener"
    APPROVER = "approver"
    ADMINISTRATOR = "administrator"
    AUDITOR = "auditor"
    ESCROW_AUDITOR = "escrow-auditor"


@dataclass(frozen=True)
class StaffIdentity:
    """What a verified identity token says about a staff member."""

    #: The key server's entity id (``sub``): stable across logins, named in the audit log.
    subject: str
    name: str
    roles: frozenset[StaffRole]
    institutions: frozenset[str]
    issued_at: int
    expires_at: int
    key_id: str


@dataclass(frozen=True)
class StaffSession:
    """A staff member's key-server login: the token decrypts (screeners) and issues identity."""

    username: str
    token: str = field(repr=False)
    entity_id: str
    policies: tuple[str, ...]
    ttl_seconds: int


@dataclass(frozen=True)
class OidcDiscovery:
    """The key server's OpenID configuration, as the gateway needs it."""

    issuer: str
    jwks_uri: str
    algorithms: tuple[str, ...]


# --- obtaining tokens (I/O) -------------------------------------------------------------


def login_staff(
    config: KeyServerConfig,
    username: str,
    password: str,
    *,
    userpass_mount: str = DEFAULT_USERPASS_MOUNT,
    one_time_code: Callable[[], str] | None = None,
) -> StaffSession:
    """Log in with user name and password; AuthenticationFailedError if refused.

    A login under the key server's login MFA (a staff member enrolled with TOTP,
    ``KeyServerBootstrap.enroll_staff_totp``) answers with an MFA requirement instead of a
    token: ``one_time_code`` is then asked for the code of the person's authenticator
    app, and the login is validated with it (``sys/mfa/validate``, two-phase).
    SecondFactorRequiredError when a code is needed and there is no way to ask for one.
    """
    if not username or not password:
        raise AuthenticationFailedError("user name and password are required")
    operation = "userpass login"
    conn = Connection(config, None)
    try:
        answer = conn.call(
            operation,
            lambda c: c.adapter.post(
                f"/v1/auth/{userpass_mount}/login/{username}", json={"password": password}
            ),
        )
        auth = answer.get("auth") if isinstance(answer, dict) else None
        requirement = auth.get("mfa_requirement") if isinstance(auth, dict) else None
        if isinstance(requirement, dict):
            answer = _second_factor(conn, requirement, one_time_code)
            auth = answer.get("auth") if isinstance(answer, dict) else None
    except InvalidRequestError:
        raise AuthenticationFailedError(f"{operation}: refused") from None
    finally:
        conn.close()
    if not isinstance(auth, dict):
        raise UnexpectedResponseError(f"{operation}: the answer has no auth")
    policies = auth.get("policies")
    return StaffSession(
        username=username,
        token=get_str(auth, "client_token", operation),
        entity_id=get_str(auth, "entity_id", operation),
        policies=tuple(p for p in policies if isinstance(p, str))
        if isinstance(policies, list)
        else (),
        ttl_seconds=get_int(auth, "lease_duration", operation),
    )


def _second_factor(
    conn: Connection, requirement: dict[str, Any], one_time_code: Callable[[], str] | None
) -> Any:
    """Validate a login that needs MFA with a TOTP code: the second of the two phases."""
    operation = "login MFA"
    request_id = get_str(requirement, "mfa_request_id", operation)
    constraints = requirement.get("mfa_constraints")
    methods = [
        method.get("id")
        for constraint in (constraints.values() if isinstance(constraints, dict) else ())
        if isinstance(constraint, dict)
        for method in constraint.get("any") or ()
        if isinstance(method, dict) and method.get("type") == "totp"
    ]
    if not methods or not isinstance(methods[0], str):
        raise UnexpectedResponseError(f"{operation}: no TOTP method in the requirement")
    if one_time_code is None:
        raise SecondFactorRequiredError(
            "this login needs a one-time code from the authenticator app (SEALPOST_TOTP)"
        )
    code = one_time_code().strip()
    if not code.isdigit():
        raise AuthenticationFailedError(f"{operation}: the one-time code is digits only")
    try:
        return conn.call(
            operation,
            lambda c: c.adapter.post(
                "/v1/sys/mfa/validate",
                json={"mfa_request_id": request_id, "mfa_payload": {methods[0]: [code]}},
            ),
        )
    except (PermissionDeniedError, InvalidRequestError):
        raise AuthenticationFailedError(f"{operation}: the one-time code was refused") from None


def issue_identity_token(
    config: KeyServerConfig, token: str, *, role: str = DEFAULT_IDENTITY_ROLE
) -> str:
    """A signed identity token for the holder of ``token`` (identity/oidc/token/<role>)."""
    operation = "identity token"
    conn = Connection(config, token)
    try:
        answer = conn.call(operation, lambda c: c.adapter.get(f"/v1/identity/oidc/token/{role}"))
    finally:
        conn.close()
    return get_str(data_of(answer, operation), "token", operation)


def _public_get(config: KeyServerConfig, path: str, operation: str) -> dict[str, Any]:
    conn = Connection(config, None, retry=NO_RETRY)
    try:
        answer = conn.call(operation, lambda c: c.adapter.get(path))
    finally:
        conn.close()
    if not isinstance(answer, dict):
        raise UnexpectedResponseError(f"{operation}: the answer is not a JSON object")
    return answer


def fetch_jwks(config: KeyServerConfig) -> dict[str, Any]:
    """The published verification keys (unauthenticated ``.well-known/keys``)."""
    return _public_get(config, "/v1/identity/oidc/.well-known/keys", "identity JWKS")


def discover(config: KeyServerConfig) -> OidcDiscovery:
    """Issuer and JWKS address from ``.well-known/openid-configuration``."""
    operation = "identity discovery"
    answer = _public_get(config, "/v1/identity/oidc/.well-known/openid-configuration", operation)
    algorithms = answer.get("id_token_signing_alg_values_supported")
    return OidcDiscovery(
        issuer=get_str(answer, "issuer", operation),
        jwks_uri=get_str(answer, "jwks_uri", operation),
        algorithms=tuple(a for a in algorithms if isinstance(a, str))
        if isinstance(algorithms, list)
        else (),
    )


# --- verification (pure) ----------------------------------------------------------------


def _b64url_decode(text: str, what: str) -> bytes:
    """Strict unpadded base64url (RFC 7515 section 2): canonical encodings only."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise MalformedTokenError(f"{what} is not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MalformedTokenError(f"{what} is not base64url") from None
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != text:
        raise MalformedTokenError(f"{what} is not canonical base64url")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise MalformedTokenError("duplicate JSON member")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise MalformedTokenError(f"JSON constant {name} is not allowed")


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise MalformedTokenError(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise MalformedTokenError(f"{what} is not a JSON object")
    return value


def _verification_key(jwks: Mapping[str, object], kid: str) -> bytes:
    """The Ed25519 public key for ``kid``; exactly one OKP/Ed25519 signing key must match."""
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise TokenSignatureError("the JWKS has no keys")
    matches = [k for k in keys if isinstance(k, dict) and k.get("kid") == kid]
    if not matches:
        raise TokenSignatureError("unknown key id (kid)")
    if len(matches) > 1:
        raise TokenSignatureError("ambiguous key id (kid) in the JWKS")
    jwk = matches[0]
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise TokenSignatureError("the key is not an Ed25519 (OKP) key")
    if jwk.get("alg", ALGORITHM) != ALGORITHM or jwk.get("use", "sig") != "sig":
        raise TokenSignatureError("the key is not for EdDSA signatures")
    if "d" in jwk:
        raise TokenSignatureError("the JWKS publishes private key material")
    x = jwk.get("x")
    if not isinstance(x, str):
        raise TokenSignatureError("the key has no public value")
    try:
        public = _b64url_decode(x, "key")
    except MalformedTokenError:
        raise TokenSignatureError("the key's public value is not base64url") from None
    if len(public) != IDENTITY_KEY_BYTES:
        raise TokenSignatureError("the key's public value has the wrong size")
    return public


def _int_claim(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TokenClaimsError(f"claim {name!r} must be an integer NumericDate")
    return value


def _list_claim(claims: dict[str, Any], name: str) -> list[str]:
    """A comma-joined string (entity metadata) or a list of strings; no empty or repeated items."""
    value = claims.get(name)
    if isinstance(value, str):
        items = value.split(",") if value else []
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = list(value)
    else:
        raise TokenClaimsError(f"claim {name!r} is missing or not a list")
    if any(not item for item in items) or len(set(items)) != len(items):
        raise TokenClaimsError(f"claim {name!r} has empty or repeated items")
    return items


def _check_times(
    claims: dict[str, Any], now: int, leeway: int, max_lifetime: int
) -> tuple[int, int]:
    """RFC 7519 sections 4.1.4-4.1.6, with ``leeway`` seconds of clock skew."""
    exp = _int_claim(claims, "exp")
    iat = _int_claim(claims, "iat")
    nbf = _int_claim(claims, "nbf") if "nbf" in claims else None
    if exp <= iat or exp - iat > max_lifetime:
        raise TokenClaimsError("token lifetime is out of bounds")
    if now >= exp + leeway:
        raise TokenExpiredError("token has expired")
    if iat > now + leeway or (nbf is not None and nbf > now + leeway):
        raise TokenNotYetValidError("token is not valid yet")
    return iat, exp


def _verify_signature(parts: list[str], jwks: Mapping[str, object]) -> str:
    """Check header and signature (RFC 7515 section 5.2); the key id used."""
    header = _json_object(_b64url_decode(parts[0], "header"), "header")
    signature = _b64url_decode(parts[2], "signature")
    # RFC 8725 section 3.1: the algorithm is fixed here, never taken from the token.
    if header.get("alg") != ALGORITHM:
        raise TokenSignatureError("only EdDSA tokens are accepted")
    if not set(header) <= _ALLOWED_HEADER:
        raise TokenSignatureError("the header carries parameters that are not accepted")
    if header.get("typ", "JWT") != "JWT":
        raise TokenSignatureError("the token type is not JWT")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenSignatureError("the header names no key id (kid)")
    public = _verification_key(jwks, kid)
    if len(signature) != IDENTITY_SIGNATURE_BYTES:
        raise TokenSignatureError("signature has the wrong size")
    try:
        verify_identity_token_signature(public, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)
    except SignatureError:
        raise TokenSignatureError("signature does not verify") from None
    return kid


def _staff_claims(claims: dict[str, Any]) -> tuple[str, str, frozenset[StaffRole], frozenset[str]]:
    """Subject, name, roles (known ones only, at least one) and institution ids."""
    subject = claims.get("sub")
    name = claims.get("name")
    if not isinstance(subject, str) or not subject or not isinstance(name, str) or not name:
        raise TokenClaimsError("subject (sub) or name is missing")
    role_names = _list_claim(claims, "roles")
    if not role_names:
        raise TokenClaimsError("the token carries no staff role")
    if not set(role_names) <= {r.value for r in StaffRole}:
        raise TokenClaimsError("the token carries an unknown role")
    institutions = _list_claim(claims, "institutions")
    if not all(valid_institution_scope(i) for i in institutions):
        raise TokenClaimsError("the token carries a malformed institution id")
    roles = frozenset(StaffRole(r) for r in role_names)
    return subject, name, roles, frozenset(institutions)


def verify_staff_token(
    token: str,
    jwks: Mapping[str, object],
    issuer: str,
    audience: str,
    now: int,
    *,
    leeway: int = DEFAULT_LEEWAY_SECONDS,
    max_lifetime: int = DEFAULT_MAX_LIFETIME_SECONDS,
) -> StaffIdentity:
    """Verify an identity token at time ``now`` (Unix seconds); TokenError subclasses if refused."""
    if len(token) > MAX_TOKEN_CHARS:
        raise MalformedTokenError("token is too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedTokenError("token is not a compact JWS (three parts)")
    kid = _verify_signature(parts, jwks)
    claims = _json_object(_b64url_decode(parts[1], "payload"), "payload")
    if claims.get("iss") != issuer:
        raise TokenClaimsError("issuer (iss) is not the expected one")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or audience not in audiences:
        raise TokenClaimsError("audience (aud) does not include this service")
    issued_at, expires_at = _check_times(claims, now, leeway, max_lifetime)
    subject, name, roles, institutions = _staff_claims(claims)
    return StaffIdentity(
        subject=subject,
        name=name,
        roles=roles,
        institutions=institutions,
        issued_at=issued_at,
        expires_at=expires_at,
        key_id=kid,
    )
