"""Device link codes (crypto/auth.py): typed by hand, kept only as digests."""

from __future__ import annotations

import re

import pytest

from sealpost.crypto import auth, domains
from sealpost.crypto.errors import FormatError


def test_a_code_is_sixteen_base32_characters_in_groups_of_four() -> None:
    code = auth.new_device_link_code()
    assert re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){3}", code)
    assert auth.new_device_link_code() != code


def test_a_code_holds_all_its_random_bits() -> None:
    assert auth.new_device_link_code(lambda n: b"\x00" * n) == "AAAA-AAAA-AAAA-AAAA"
    assert auth.new_device_link_code(lambda n: b"\xff" * n) == "7777-7777-7777-7777"
    one = auth.new_device_link_code(lambda n: b"\x00" * (n - 1) + b"\x01")
    assert one == "AAAA-AAAA-AAAA-AAAB"


def test_case_spaces_and_dashes_do_not_matter() -> None:
    code = auth.new_device_link_code()
    digest = auth.device_link_digest(code)
    assert auth.device_link_digest(code.lower()) == digest
    assert auth.device_link_digest(code.replace("-", " ")) == digest
    assert auth.device_link_digest(code.replace("-", "")) == digest
    assert digest != auth.device_link_digest(auth.new_device_link_code())


def test_the_digest_is_domain_separated() -> None:
    assert domains.DEVICE_LINK in domains.ALL
    import hashlib  # noqa: PLC0415

    code = "AAAA-AAAA-AAAA-AAAA"
    assert auth.device_link_digest(code) != hashlib.sha256(b"AAAAAAAAAAAAAAAA").digest()


@pytest.mark.parametrize(
    "typed",
    ["", "AAAA-AAAA-AAAA", "AAAA-AAAA-AAAA-AAA1", "AAAA-AAAA-AAAA-AAAAA", "ÄAAA-AAAA-AAAA-AAAA"],
)
def test_anything_else_is_refused(typed: str) -> None:
    with pytest.raises(FormatError):
        auth.device_link_digest(typed)
