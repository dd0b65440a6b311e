"""Mailbox secret keys sealed to an institution key (docs/protocol.md, "Mailbox keys").

The terminal that provisions a mailbox wraps its X25519 secret and Ed25519 seed to the
institution's X25519 key; the gateway stores the wrap but cannot open it. A transfer
re-wraps the same secrets to the new institution.
"""

from __future__ import annotations

import hmac
from typing import Final

from sealpost.crypto import _sodium, domains
from sealpost.crypto._framing import framed, unframe
from sealpost.crypto._sodium import Random
from sealpost.crypto._wire import CURRENT_VERSION, check_version
from sealpost.crypto.errors import FormatError, KeyRecordError
from sealpost.crypto.keyrecords import INSTITUTION, MAILBOX, MAX_SUBJECT_BYTES, VerifiedKey
from sealpost.crypto.keys import PrivateKeys

MAILBOX_WRAP_VERSION: Final = CURRENT_VERSION
#: Largest wrap: version byte, sealed-box overhead, four length prefixes, domain, subject, keys.
MAX_WRAPPED_BYTES: Final = (
    1 + _sodium.SEALED_BOX_OVERHEAD + 4 * 8 + len(domains.MAILBOX_SECRET) + MAX_SUBJECT_BYTES + 64
)


def wrap_mailbox_secret(
    mailbox_keys: PrivateKeys,
    *,
    detainee_id: str,
    institution: VerifiedKey,
    rng: Random = _sodium.random_bytes,
) -> bytes:
    """``0x01 || sealed box`` of the mailbox secrets, to the institution's X25519 key."""
    if institution.purpose != INSTITUTION:
        raise KeyRecordError("mailbox secrets are wrapped to an institution key")
    subject = detainee_id.encode("utf-8")
    if not subject or len(subject) > MAX_SUBJECT_BYTES:
        raise FormatError("detainee id is empty or too long")
    plaintext = framed(
        domains.MAILBOX_SECRET, subject, mailbox_keys.x25519_secret, mailbox_keys.ed25519_seed
    )
    sealed = _sodium.seal_with_ephemeral(
        institution.encryption_key, plaintext, rng(_sodium.X25519_SECRET_BYTES)
    )
    return bytes([MAILBOX_WRAP_VERSION]) + sealed


def unwrap_mailbox_secret(
    wrapped: bytes, *, institution_keys: PrivateKeys, mailbox: VerifiedKey
) -> PrivateKeys:
    """Open a wrap and check it holds the secrets of the verified ``mailbox`` record."""
    if mailbox.purpose != MAILBOX:
        raise KeyRecordError("the wrapped secret must belong to a mailbox key record")
    if not wrapped:
        raise FormatError("wrapped mailbox secret is empty")
    check_version(wrapped[0], "wrapped mailbox secret")
    if len(wrapped) > MAX_WRAPPED_BYTES:
        raise FormatError("wrapped mailbox secret is too long")
    plaintext = institution_keys.open_sealed(wrapped[1:])
    subject, x25519_secret, ed25519_seed = unframe(plaintext, domains.MAILBOX_SECRET, 3)
    keys = PrivateKeys(x25519_secret=x25519_secret, ed25519_seed=ed25519_seed)
    if not hmac.compare_digest(subject, mailbox.subject.encode("utf-8")):
        raise KeyRecordError("wrapped secret is for another detainee")
    if not (
        hmac.compare_digest(keys.encryption_key, mailbox.encryption_key)
        and hmac.compare_digest(keys.signing_key, mailbox.signing_key)
    ):
        raise KeyRecordError("wrapped secret does not match the mailbox key record")
    return keys
