"""Session tokens (gateway/auth.py): only the gateway's own, unexpired, current-version tokens.

Forged tokens here have the right form and length, so each one reaches the check it is
meant to fail (the MAC, the expiry, the version), not an earlier parse error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from collections.abc import Callable

import pytest

from sealpost.gateway import auth
from sealpost.gateway.auth import (
    SessionToken,
    TokenKeys,
    issue_session_token,
    verify_session_token,
)
from sealpost.gateway.errors import Unauthenticated

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
NOW = 1_760_000_000_000
ACCOUNT = "acct-7f3a9c"
KEY_ID = bytes.fromhex("aa" * 16 + "bb" * 16)
SESSION = SessionToken(ACCOUNT, KEY_ID, NOW + auth.TOKEN_TTL_MS)
#: The token's personalisation, written out here rather than read from the code.
PERSON = b"sealpost-token1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _payload(version: int, expires_at_ms: int, key_id: bytes, account_id: str) -> bytes:
    """The token body as docs and code define it: version, expiry, key id, then the account."""
    return struct.pack(">BQ32s", version, expires_at_ms, key_id) + account_id.encode()


def _mac(payload: bytes, key: bytes = KEY, person: bytes = PERSON) -> bytes:
    """Keyed, personalised BLAKE2b-256, computed with hashlib, apart from the code under test."""
    return hashlib.blake2b(payload, digest_size=32, key=key, person=person).digest()


def _token(payload: bytes, mac: bytes) -> str:
    return f"sp1.{_b64(payload)}.{_b64(mac)}"


def _split(token: str) -> tuple[bytes, bytes]:
    body, mac = token.removeprefix("sp1.").split(".")
    return _unb64(body), _unb64(mac)


def _refused(token: str, now_ms: int = NOW, key: bytes = KEY) -> str:
    """The message of the Unauthenticated error ``token`` gets; fails if anything else happens."""
    with pytest.raises(Unauthenticated) as refused:
        verify_session_token(TokenKeys(key), token, now_ms)
    assert type(refused.value) is Unauthenticated
    return str(refused.value)


# --------------------------------------------------------------------------- the happy path


def test_an_issued_token_verifies_to_its_session() -> None:
    token = issue_session_token(TokenKeys(KEY), SESSION)
    assert token.startswith("sp1.")
    assert verify_session_token(TokenKeys(KEY), token, NOW) == SESSION
    # One millisecond before it expires, it still verifies.
    assert verify_session_token(TokenKeys(KEY), token, SESSION.expires_at_ms - 1) == SESSION


def test_the_token_is_exactly_the_documented_format() -> None:
    """A known answer: the MAC is keyed BLAKE2b-256 personalised "sealpost-token1"."""
    token = issue_session_token(TokenKeys(KEY), SESSION)
    payload = _payload(1, SESSION.expires_at_ms, KEY_ID, ACCOUNT)
    assert token == _token(payload, _mac(payload))


def test_a_token_built_apart_from_the_code_verifies() -> None:
    payload = _payload(1, NOW + 1000, KEY_ID, "acct-other")
    session = verify_session_token(TokenKeys(KEY), _token(payload, _mac(payload)), NOW)
    assert session == SessionToken("acct-other", KEY_ID, NOW + 1000)


# --------------------------------------------------------------------------- forged MACs


def test_a_well_formed_token_with_a_wrong_mac_is_refused() -> None:
    payload, mac = _split(issue_session_token(TokenKeys(KEY), SESSION))
    for position in (0, 15, 31):
        forged = bytearray(mac)
        forged[position] ^= 0x01
        token = _token(payload, bytes(forged))
        assert len(token) == len(issue_session_token(TokenKeys(KEY), SESSION))
        assert _refused(token) == "session token does not verify"


def test_a_token_made_with_another_key_is_refused() -> None:
    payload = _payload(1, NOW + 1000, KEY_ID, ACCOUNT)
    assert _refused(_token(payload, _mac(payload, key=OTHER_KEY))) == (
        "session token does not verify"
    )
    assert _refused(issue_session_token(TokenKeys(KEY), SESSION), key=OTHER_KEY) == (
        "session token does not verify"
    )


@pytest.mark.parametrize("person", [b"", b"sealpost-token2", b"sealpost-review"])
def test_a_mac_for_another_purpose_is_refused(person: bytes) -> None:
    """The same key under another personalisation (or none) does not make a session token."""
    payload = _payload(1, NOW + 1000, KEY_ID, ACCOUNT)
    assert _refused(_token(payload, _mac(payload, person=person))) == (
        "session token does not verify"
    )


def test_a_truncated_or_missing_mac_is_refused() -> None:
    payload, mac = _split(issue_session_token(TokenKeys(KEY), SESSION))
    assert _refused(_token(payload, mac[:31])) == "session token does not verify"
    assert _refused(_token(payload, b"")) == "session token does not verify"
    assert _refused(f"sp1.{_b64(payload)}") == "session token does not verify"


TAMPERINGS: dict[str, Callable[[bytes], bytes]] = {
    "account id": lambda p: p[:41] + b"acct-victim",
    "account id, one character": lambda p: p[:-1] + b"b",
    "key id": lambda p: p[:9] + bytes(32) + p[41:],
    "key id, one bit": lambda p: p[:9] + bytes([p[9] ^ 1]) + p[10:],
    "expiry": lambda p: p[:1] + struct.pack(">Q", NOW + 10 * auth.TOKEN_TTL_MS) + p[9:],
    "version": lambda p: bytes([2]) + p[1:],
}


@pytest.mark.parametrize("tamper", sorted(TAMPERINGS))
def test_a_tampered_field_under_the_original_mac_is_refused(tamper: str) -> None:
    payload, mac = _split(issue_session_token(TokenKeys(KEY), SESSION))
    changed = TAMPERINGS[tamper](payload)
    assert changed != payload
    assert _refused(_token(changed, mac)) == "session token does not verify"


def test_the_mac_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    constant_time = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return constant_time(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    payload, mac = _split(issue_session_token(TokenKeys(KEY), SESSION))
    forged = bytes([mac[0] ^ 1]) + mac[1:]
    assert _refused(_token(payload, forged)) == "session token does not verify"
    assert compared == [(forged, mac)]


# --------------------------------------------------------------------------- expiry


def test_an_expired_token_is_refused() -> None:
    token = issue_session_token(TokenKeys(KEY), SESSION)
    assert _refused(token, now_ms=SESSION.expires_at_ms) == "session expired: sign in again"
    assert _refused(token, now_ms=SESSION.expires_at_ms + 1) == "session expired: sign in again"
    payload = _payload(1, NOW - 1, KEY_ID, ACCOUNT)
    assert _refused(_token(payload, _mac(payload))) == "session expired: sign in again"


def test_a_token_expired_long_ago_is_refused() -> None:
    payload = _payload(1, 0, KEY_ID, ACCOUNT)
    assert _refused(_token(payload, _mac(payload))) == "session expired: sign in again"


# --------------------------------------------------------------------------- versions


@pytest.mark.parametrize("version", [0, 2, 255])
def test_a_correctly_signed_token_of_another_version_is_refused(version: int) -> None:
    payload = _payload(version, NOW + 1000, KEY_ID, ACCOUNT)
    assert _refused(_token(payload, _mac(payload))) == "unsupported session token version"


# --------------------------------------------------------------------------- form


def test_a_correctly_signed_token_without_an_account_is_refused() -> None:
    payload = _payload(1, NOW + 1000, KEY_ID, "")
    assert _refused(_token(payload, _mac(payload))) == "malformed session token"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "Bearer sp1.x.y",
        "sp2." + issue_session_token(TokenKeys(KEY), SESSION).removeprefix("sp1."),
        "SP1." + issue_session_token(TokenKeys(KEY), SESSION).removeprefix("sp1."),
        "sp1." + "A" * 600,
    ],
)
def test_what_is_not_a_session_token_is_refused(token: str) -> None:
    assert _refused(token) == "not a session token"


def test_a_body_that_is_not_base64_is_refused() -> None:
    assert _refused("sp1.A.AAAA") == "malformed session token"
    assert _refused("sp1.AAAA.A") == "malformed session token"


# --------------------------------------------------------------------------- the header


def test_bearer_token_reads_the_authorization_header() -> None:
    assert auth.bearer_token(None) is None
    assert auth.bearer_token("Bearer sp1.a.b") == "sp1.a.b"
    assert auth.bearer_token("bearer  sp1.a.b ") == "sp1.a.b"
    for value in ("Basic dXNlcjpwdw==", "Bearer", "sp1.a.b"):
        with pytest.raises(Unauthenticated, match="authorization must be 'Bearer <token>'"):
            auth.bearer_token(value)


def test_a_token_made_before_a_rotation_verifies_until_the_next() -> None:
    before = issue_session_token(TokenKeys(KEY), SESSION)
    rotated = TokenKeys(OTHER_KEY, previous=KEY)
    assert verify_session_token(rotated, before, NOW) == SESSION
    after = issue_session_token(rotated, SESSION)
    assert after != before
    assert verify_session_token(rotated, after, NOW) == SESSION
    # Two rotations on, the first key verifies nothing; nor does the previous key alone.
    third = bytes(range(2, 34))
    with pytest.raises(Unauthenticated, match="does not verify"):
        verify_session_token(TokenKeys(third, previous=OTHER_KEY), before, NOW)
    with pytest.raises(Unauthenticated, match="does not verify"):
        verify_session_token(TokenKeys(KEY), after, NOW)


def test_token_keys_never_show_themselves() -> None:
    keys = TokenKeys(KEY, previous=OTHER_KEY)
    assert KEY.hex() not in repr(keys)
    assert OTHER_KEY.hex() not in str(keys)
