"""Staff command lines sign in under the key server's naming prefix (SEALPOST_KEY_PREFIX)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealpost.clients._cli import StaffOptions, key_prefix
from sealpost.escrow import identity


@pytest.mark.parametrize(("prefix", "role"), [(None, "sealpost-staff"), ("pi", "pi-staff")])
def test_the_identity_token_comes_from_the_prefixed_role(
    monkeypatch: pytest.MonkeyPatch, prefix: str | None, role: str
) -> None:
    if prefix is None:
        monkeypatch.delenv("SEALPOST_KEY_PREFIX", raising=False)
    else:
        monkeypatch.setenv("SEALPOST_KEY_PREFIX", prefix)
    monkeypatch.setenv("SEALPOST_PASSWORD", "a password for the test")
    monkeypatch.delenv("SEALPOST_STAFF_TOKEN", raising=False)
    asked: list[str] = []

    def login(
        _config: object, user: str, password: str, *, one_time_code: object = None
    ) -> identity.StaffSession:
        assert (user, password) == ("jansen", "a password for the test")
        assert callable(one_time_code)  # asked only if the key server wants a code
        return identity.StaffSession("jansen", "key-server-token", "entity-1", (), 3600)

    def issue(_config: object, token: str, *, role: str) -> str:
        assert token == "key-server-token"
        asked.append(role)
        return "identity-token"

    monkeypatch.setattr(identity, "login_staff", login)
    monkeypatch.setattr(identity, "issue_identity_token", issue)
    options = StaffOptions("127.0.0.1:1", Path("ca.pem"), "http://127.0.0.1:8200", "jansen")
    assert options.token() == "identity-token"
    assert options.key_server_token() == "key-server-token"
    assert asked == [role]  # signed in once, under the prefix's role
    assert key_prefix() == (prefix or "sealpost")
