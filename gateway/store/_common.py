"""What the subject modules share."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """A random opaque id such as ``acct-3f9c...`` (64 bits of randomness, hex)."""
    return f"{prefix}-{secrets.token_hex(8)}"
