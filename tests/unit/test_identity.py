"""verify_staff_token: the happy path and every refusal, with locally signed tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealpost.crypto._sodium import ed25519_public_from_seed, ed25519_sign
from sealpost.escrow.errors import (
    MalformedTokenError,
    TokenClaimsError,
    TokenError,
    TokenExpiredError,
    TokenNotYetValidError,
    TokenSignatureError,
)
from sealpost.escrow.identity import (
    DEFAULT_LEEWAY_SECONDS,
    MAX_TOKEN_CHARS,
    StaffRole,
    verify_staff_token,
)

SEED = bytes(range(32))
OTHER_SEED = bytes(range(1, 33))
PUBLIC = ed25519_public_from_seed(SEED)
KID = "3b1f0c1e-key-1"
ISSUER = "http://127.0.0.1:8200/v1/identity/oidc"
AUDIENCE = "sealpost-gateway"
NOW = 1_800_000_000
LEEWAY = DEFAULT_LEEWAY_SECONDS


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def enc(obj: Any) -> str:
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


def jwk(public: bytes = PUBLIC, kid: str = KID, **extra: Any) -> dict[str, Any]:
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": "EdDSA",
        "use": "sig",
        "kid": kid,
        "x": b64u(public),
        **extra,
    }


def jwks(*keys: dict[str, Any]) -> dict[str, Any]:
    return {"keys": list(keys) if keys else [jwk()]}


def claims(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "9433d3c1-2c4b-81ff-e495-9d3d4fd033ec",
        "name": "alice",
        "namespace": "root",
        "iat": NOW - 10,
        "exp": NOW + 890,
        "roles": "screener,approver",
        "institutions": "pi-a,pi-b",
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not ...}


def sign_parts(header_part: str, payload_part: str, seed: bytes = SEED) -> str:
    signing_input = f"{header_part}.{payload_part}"
    return f"{signing_input}.{b64u(ed25519_sign(seed, signing_input.encode()))}"


def token(
    payload: dict[str, Any] | None = None, header: dict[str, Any] | None = None, seed: bytes = SEED
) -> str:
    head = {"alg": "EdDSA", "kid": KID} if header is None else header
    return sign_parts(enc(head), enc(claims() if payload is None else payload), seed)


def verify(tok: str, keys: dict[str, Any] | None = None, now: int = NOW) -> Any:
    return verify_staff_token(tok, keys or jwks(), ISSUER, AUDIENCE, now)


# --- accepted -----------------------------------------------------------------------------


def test_valid_token_gives_identity() -> None:
    ident = verify(token())
    assert ident.subject == "9433d3c1-2c4b-81ff-e495-9d3d4fd033ec"
    assert ident.name == "alice"
    assert ident.roles == frozenset({StaffRole.SCREENER, StaffRole.APPROVER})
    assert ident.institutions == frozenset({"pi-a", "pi-b"})
    assert ident.expires_at == NOW + 890
    assert ident.issued_at == NOW - 10
    assert ident.key_id == KID


def test_list_forms_and_audience_lists_are_accepted() -> None:
    tok = token(claims(roles=["auditor"], institutions=[], aud=["other", AUDIENCE]))
    ident = verify(tok)
    assert ident.roles == frozenset({StaffRole.AUDITOR})
    assert ident.institutions == frozenset()


def test_national_scope_is_accepted() -> None:
    ident = verify(token(claims(roles="auditor", institutions="*")))
    assert ident.institutions == frozenset({"*"})


def test_right_key_is_picked_among_several() -> None:
    other = jwk(ed25519_public_from_seed(OTHER_SEED), kid="next")
    assert verify(token(), jwks(other, jwk())).key_id == KID


def test_typ_jwt_header_is_accepted() -> None:
    assert verify(token(header={"alg": "EdDSA", "kid": KID, "typ": "JWT"})).name == "alice"


def test_clock_skew_within_leeway_is_accepted() -> None:
    tok = token(claims(iat=NOW + LEEWAY, exp=NOW + LEEWAY + 600, nbf=NOW + LEEWAY))
    assert verify(tok).name == "alice"
    assert verify(token(), now=NOW + 890 + LEEWAY - 1).name == "alice"


# --- signature and algorithm --------------------------------------------------------------


def test_flipped_signature_bit_is_refused() -> None:
    head, body, sig = token().split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
    raw[5] ^= 0x01
    with pytest.raises(TokenSignatureError, match="does not verify"):
        verify(f"{head}.{body}.{b64u(bytes(raw))}")


def test_token_signed_by_another_key_is_refused() -> None:
    with pytest.raises(TokenSignatureError, match="does not verify"):
        verify(token(seed=OTHER_SEED))


def test_payload_changed_after_signing_is_refused() -> None:
    head, _body, sig = token().split(".")
    forged = enc(claims(roles="screener,administrator"))
    with pytest.raises(TokenSignatureError, match="does not verify"):
        verify(f"{head}.{forged}.{sig}")


def test_alg_none_is_refused() -> None:
    tok = f"{enc({'alg': 'none', 'kid': KID})}.{enc(claims())}."
    with pytest.raises(TokenSignatureError, match="only EdDSA"):
        verify(tok)


def test_hs256_with_public_key_as_secret_is_refused() -> None:
    signing_input = f"{enc({'alg': 'HS256', 'kid': KID})}.{enc(claims())}"
    mac = hmac.new(PUBLIC, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(TokenSignatureError, match="only EdDSA"):
        verify(f"{signing_input}.{b64u(mac)}")


@pytest.mark.parametrize("alg", ["RS256", "ES256", "eddsa", "EdDSA ", "Ed25519", None, 1])
def test_other_algorithms_are_refused(alg: object) -> None:
    header = {"kid": KID} if alg is None else {"alg": alg, "kid": KID}
    with pytest.raises(TokenSignatureError, match="only EdDSA"):
        verify(token(header=header))


def test_unknown_kid_is_refused() -> None:
    with pytest.raises(TokenSignatureError, match="unknown key id"):
        verify(token(header={"alg": "EdDSA", "kid": "not-published"}))


def test_missing_kid_is_refused() -> None:
    with pytest.raises(TokenSignatureError, match="no key id"):
        verify(token(header={"alg": "EdDSA"}))


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (jwk(kty="RSA"), "not an Ed25519"),
        (jwk(crv="X25519"), "not an Ed25519"),
        (jwk(alg="RS256"), "not for EdDSA"),
        (jwk(use="enc"), "not for EdDSA"),
        (jwk(d=b64u(SEED)), "private key"),
        (jwk(x=b64u(PUBLIC[:31])), "wrong size"),
        (jwk(x="not base64!"), "not base64url"),
        (jwk(x=None), "no public value"),
    ],
)
def test_unacceptable_jwk_is_refused(key: dict[str, Any], message: str) -> None:
    with pytest.raises(TokenSignatureError, match=message):
        verify(token(), jwks(key))


def test_duplicate_kid_in_jwks_is_refused() -> None:
    other = jwk(ed25519_public_from_seed(OTHER_SEED))
    with pytest.raises(TokenSignatureError, match="ambiguous"):
        verify(token(), jwks(jwk(), other))


@pytest.mark.parametrize("keys", [{}, {"keys": "x"}, {"keys": [1, "a"]}])
def test_malformed_jwks_is_refused(keys: dict[str, Any]) -> None:
    with pytest.raises(TokenSignatureError):
        verify_staff_token(token(), keys, ISSUER, AUDIENCE, NOW)


@pytest.mark.parametrize(
    "extra",
    [{"jku": "https://evil/keys"}, {"jwk": jwk()}, {"crit": ["x"]}, {"x5u": "https://evil"}],
)
def test_key_bearing_or_critical_header_parameters_are_refused(extra: dict[str, Any]) -> None:
    with pytest.raises(TokenSignatureError, match="not accepted"):
        verify(token(header={"alg": "EdDSA", "kid": KID, **extra}))


def test_other_typ_is_refused() -> None:
    with pytest.raises(TokenSignatureError, match="type"):
        verify(token(header={"alg": "EdDSA", "kid": KID, "typ": "at+jwt"}))


def test_short_signature_is_refused() -> None:
    head, body, _sig = token().split(".")
    with pytest.raises(TokenSignatureError, match="wrong size"):
        verify(f"{head}.{body}.{b64u(bytes(63))}")


# --- time ---------------------------------------------------------------------------------


def test_expired_token_is_refused() -> None:
    with pytest.raises(TokenExpiredError):
        verify(token(), now=NOW + 890 + LEEWAY)


def test_not_yet_valid_nbf_is_refused() -> None:
    with pytest.raises(TokenNotYetValidError):
        verify(token(claims(nbf=NOW + LEEWAY + 1)))


def test_issued_in_the_future_is_refused() -> None:
    with pytest.raises(TokenNotYetValidError):
        verify(token(claims(iat=NOW + LEEWAY + 1, exp=NOW + 900)))


@pytest.mark.parametrize(
    "over",
    [
        {"exp": ...},
        {"iat": ...},
        {"exp": "1800000890"},
        {"exp": True},
        {"exp": 1800000890.5},
        {"nbf": "soon"},
    ],
)
def test_malformed_time_claims_are_refused(over: dict[str, Any]) -> None:
    with pytest.raises(TokenClaimsError, match="NumericDate"):
        verify(token(claims(**over)))


@pytest.mark.parametrize("over", [{"exp": NOW - 10}, {"exp": NOW - 20}, {"exp": NOW + 3600}])
def test_lifetime_out_of_bounds_is_refused(over: dict[str, Any]) -> None:
    with pytest.raises(TokenClaimsError, match="lifetime"):
        verify(token(claims(**over)))


# --- claims -------------------------------------------------------------------------------


@pytest.mark.parametrize("iss", [ISSUER + "/", "http://evil/v1/identity/oidc", None, ...])
def test_wrong_issuer_is_refused(iss: object) -> None:
    with pytest.raises(TokenClaimsError, match="issuer"):
        verify(token(claims(iss=iss)))


@pytest.mark.parametrize("aud", ["other-service", ["a", "b"], [], None, ..., 7])
def test_wrong_audience_is_refused(aud: object) -> None:
    with pytest.raises(TokenClaimsError, match="audience"):
        verify(token(claims(aud=aud)))


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"roles": "screener,root"}, "unknown role"),
        ({"roles": "Screener"}, "unknown role"),
        ({"roles": ""}, "no staff role"),
        ({"roles": []}, "no staff role"),
        ({"roles": "screener,"}, "empty or repeated"),
        ({"roles": "screener,screener"}, "empty or repeated"),
        ({"roles": ...}, "missing or not a list"),
        ({"roles": {"screener": True}}, "missing or not a list"),
        ({"roles": ["screener", 3]}, "missing or not a list"),
        ({"institutions": "pi-a,PI B"}, "malformed institution"),
        ({"institutions": "pi-a,**"}, "malformed institution"),
        ({"institutions": "-pi"}, "malformed institution"),
        ({"institutions": ...}, "missing or not a list"),
        ({"sub": ""}, "subject"),
        ({"sub": ...}, "subject"),
        ({"name": 5}, "subject"),
    ],
)
def test_unacceptable_staff_claims_are_refused(over: dict[str, Any], message: str) -> None:
    with pytest.raises(TokenClaimsError, match=message):
        verify(token(claims(**over)))


DUPLICATE_ALG = b'{"alg":"EdDSA","alg":"none","kid":"k"}'


# --- malformed ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tok",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        f"{enc({'alg': 'EdDSA', 'kid': KID})}=.{enc(claims())}.AAAA",
        f"{enc({'alg': 'EdDSA', 'kid': KID})}.{enc(claims())}.+/+/",
        f"{enc({'alg': 'EdDSA', 'kid': KID})}.{enc(claims())}.A",
        f"{b64u(b'not json')}.{enc(claims())}.AAAA",
        f"{enc(['alg', 'EdDSA'])}.{enc(claims())}.AAAA",
        f"{b64u(bytes([0xFF, 0xFE]))}.{enc(claims())}.AAAA",
        f"{b64u(DUPLICATE_ALG)}.{enc(claims())}.AAAA",
    ],
)
def test_malformed_tokens_are_refused(tok: str) -> None:
    with pytest.raises(MalformedTokenError):
        verify(tok)


def test_non_canonical_base64url_is_refused() -> None:
    head, body, sig = token().split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # 64 bytes take 86 characters; the last one carries 4 unused bits that must be zero.
    last = alphabet[alphabet.index(sig[-1]) | 1]
    assert base64.urlsafe_b64decode(sig[:-1] + last + "==") == base64.urlsafe_b64decode(sig + "==")
    with pytest.raises(MalformedTokenError, match="canonical"):
        verify(f"{head}.{body}.{sig[:-1]}{last}")


def test_signed_payload_that_is_not_json_is_refused() -> None:
    tok = sign_parts(enc({"alg": "EdDSA", "kid": KID}), b64u(b"[1, 2"))
    with pytest.raises(MalformedTokenError, match="payload"):
        verify(tok)


@pytest.mark.parametrize("payload", [b"[1, 2]", b'{"exp": NaN}', b'{"a": 1, "a": 2}'])
def test_signed_payload_that_is_not_a_strict_object_is_refused(payload: bytes) -> None:
    with pytest.raises(MalformedTokenError):
        verify(sign_parts(enc({"alg": "EdDSA", "kid": KID}), b64u(payload)))


def test_overlong_token_is_refused_before_parsing() -> None:
    with pytest.raises(MalformedTokenError, match="too long"):
        verify("a" * (MAX_TOKEN_CHARS + 1))


# --- properties ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_only_ever_raises_token_error(text: str) -> None:
    with pytest.raises(TokenError):
        verify(text)


VALID = token()
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.="


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(VALID) - 1), st.sampled_from(_ALPHABET))
def test_any_single_character_change_is_refused(position: int, char: str) -> None:
    if VALID[position] == char:
        return
    with pytest.raises(TokenError):
        verify(VALID[:position] + char + VALID[position + 1 :])
