"""The transit signer's checks of what the key server answers (a plain fake in its place)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from sealpost.crypto.keys import SigningSeed, verify_signature
from sealpost.escrow.errors import UnexpectedResponseError
from sealpost.escrow.signing import SigningKeyError, TransitSigner

KEY = SigningSeed(bytes(range(32)))
OTHER = SigningSeed(bytes(range(1, 33)))


class FakeKeyServer:
    """Answers key reads and signing requests as the transit engine would."""

    def __init__(self, **key: Any) -> None:
        self.key = {
            "type": "ed25519",
            "exportable": False,
            "allow_plaintext_backup": False,
            "deletion_allowed": False,
            "latest_version": 1,
            "keys": {"1": {"public_key": base64.b64encode(KEY.signing_key).decode()}},
            **key,
        }
        self.signer = KEY
        self.prefix = "vault:v1:"
        self.requests: list[dict[str, Any]] = []

    def call(self, operation: str, fn: Callable[[Any], Any], *, retry: bool = True) -> Any:
        return fn(self)

    @property
    def adapter(self) -> FakeKeyServer:
        return self

    def get(self, path: str) -> Any:
        return {"data": self.key}

    def post(self, path: str, json: dict[str, Any]) -> Any:
        self.requests.append(json)
        signature = self.signer.sign(base64.b64decode(json["input"]))
        return {"data": {"signature": self.prefix + base64.b64encode(signature).decode()}}


def signer(server: FakeKeyServer) -> TransitSigner:
    return TransitSigner(server, "sealpost-signing", "sealpost-log", 1)  # type: ignore[arg-type]


def test_a_signature_of_the_key_is_returned() -> None:
    server = FakeKeyServer()
    signature = signer(server).sign(b"digest" * 5)
    verify_signature(KEY.signing_key, b"digest" * 5, signature)
    assert server.requests[0]["key_version"] == 1


def test_a_signature_by_another_key_is_refused() -> None:
    server = FakeKeyServer()
    server.signer = OTHER
    with pytest.raises(SigningKeyError, match="does not verify"):
        signer(server).sign(b"digest")


def test_a_signature_of_another_version_is_refused() -> None:
    server = FakeKeyServer()
    server.prefix = "vault:v2:"
    with pytest.raises(SigningKeyError, match="version 1"):
        signer(server).sign(b"digest")


@pytest.mark.parametrize(
    ("setting", "value", "reason"),
    [
        ("exportable", True, "exportable"),
        ("allow_plaintext_backup", True, "plaintext backup"),
        ("deletion_allowed", True, "deletion"),
        ("type", "ecdsa-p256", "type"),
    ],
)
def test_an_unsafe_key_is_refused(setting: str, value: object, reason: str) -> None:
    with pytest.raises(SigningKeyError, match=reason):
        signer(FakeKeyServer(**{setting: value}))


def test_a_missing_version_or_public_key_is_refused() -> None:
    with pytest.raises(SigningKeyError, match="no version 1"):
        signer(
            FakeKeyServer(
                keys={"2": {"public_key": base64.b64encode(KEY.signing_key).decode()}},
                latest_version=2,
            )
        )
    with pytest.raises(UnexpectedResponseError):
        signer(FakeKeyServer(keys={"1": {"public_key": "bm90IGEga2V5"}}))


def test_the_signer_shows_no_secret_and_names_its_key() -> None:
    text = repr(signer(FakeKeyServer()))
    assert "sealpost-signing/sealpost-log v1" in text
    assert KEY.signing_key.hex() in text
