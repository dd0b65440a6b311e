"""Every domain-separation string Sealpost hashes or signs under (docs/protocol.md, "Domains").

Each is ASCII and enters its input as the first, length-prefixed item, and each serves
exactly one purpose, so a digest or signature made for one use is never valid for another.
"""

from __future__ import annotations

from typing import Final

#: Associated data of each part's XChaCha20-Poly1305 encryption.
ENVELOPE_PART_AD: Final = b"sealpost/v1/envelope/part"
#: Key commitment: BLAKE2b keyed with the DEK over the message id.
ENVELOPE_KEY_COMMITMENT: Final = b"sealpost/v1/envelope/key-commitment"
#: The digest the sender's Ed25519 key signs: header, ciphertexts, sealed keys.
ENVELOPE_SIGNATURE: Final = b"sealpost/v1/envelope/signature"
#: The envelope digest quoted in receipts and the transparency log.
ENVELOPE_DIGEST: Final = b"sealpost/v1/envelope/digest"
#: A key record's id, a digest of its body.
KEY_RECORD_ID: Final = b"sealpost/v1/key-record/id"
#: The digest the directory key signs for a key record.
KEY_RECORD_SIGNATURE: Final = b"sealpost/v1/key-record/signature"
#: The digest the directory key signs for a revocation.
KEY_REVOCATION_SIGNATURE: Final = b"sealpost/v1/key-revocation/signature"
#: What the previous directory key signs when it hands over to the next one.
DIRECTORY_SUCCESSION_PREVIOUS: Final = b"sealpost/v1/directory-succession/previous"
#: What the next directory key signs when it takes over from the previous one.
DIRECTORY_SUCCESSION_NEXT: Final = b"sealpost/v1/directory-succession/next"
#: A succession's id, a digest of the serialised succession.
DIRECTORY_SUCCESSION_ID: Final = b"sealpost/v1/directory-succession/id"
#: Proof of possession of a signing key when registering it.
REGISTRATION: Final = b"sealpost/v1/registration"
#: Login: a device key signs a one-time challenge.
LOGIN: Final = b"sealpost/v1/login"
#: The mailbox secret keys, sealed to an institution key.
MAILBOX_SECRET: Final = b"sealpost/v1/mailbox-secret"
#: The digest the log key signs for a tree head (docs/transparency-log.md).
LOG_TREE_HEAD: Final = b"sealpost/v1/log/tree-head"
#: The digest naming an escrow blob in the transparency log (MESSAGE_ESCROWED).
LOG_ESCROW_DIGEST: Final = b"sealpost/v1/log/escrow-digest"
#: The draw of an escrow audit's sample from a tree head (crypto/sample.py).
ESCROW_AUDIT_SAMPLE: Final = b"sealpost/v1/escrow-audit/sample"
#: The digest a witness signs when it countersigns a tree head (docs/transparency-log.md).
LOG_COSIGNATURE: Final = b"sealpost/v1/log/cosignature"
#: The key id of a witness key that has no key record (an auditor's own Ed25519 key).
LOG_WITNESS_KEY_ID: Final = b"sealpost/v1/log/witness-key-id"
#: What the gateway keeps of a one-time device link code (crypto/auth.py).
DEVICE_LINK: Final = b"sealpost/v1/device-link"
#: A file of the relatives' web app, as a release manifest names it (crypto/webrelease.py).
WEB_APP_FILE: Final = b"sealpost/v1/web-app/file"
#: A release manifest of the web app, as the transparency log records it.
WEB_APP_RELEASE: Final = b"sealpost/v1/web-app/release"

#: Digest of a sealed triage watch list, named in the log entry that changed it.
LOG_WATCH_LIST_DIGEST: Final = b"sealpost/v1/log/watch-list-digest"
#: Key-server derivation context of a queued message's sealed triage summary.
TRIAGE_SUMMARY_CONTEXT: Final = b"sealpost/v1/triage/summary"
#: Key-server derivation context of a sealed triage watch list.
TRIAGE_WATCH_LIST_CONTEXT: Final = b"sealpost/v1/triage/watch-list"

ALL: Final = (
    ENVELOPE_PART_AD,
    ENVELOPE_KEY_COMMITMENT,
    ENVELOPE_SIGNATURE,
    ENVELOPE_DIGEST,
    KEY_RECORD_ID,
    KEY_RECORD_SIGNATURE,
    KEY_REVOCATION_SIGNATURE,
    DIRECTORY_SUCCESSION_PREVIOUS,
    DIRECTORY_SUCCESSION_NEXT,
    DIRECTORY_SUCCESSION_ID,
    REGISTRATION,
    LOGIN,
    MAILBOX_SECRET,
    LOG_TREE_HEAD,
    LOG_ESCROW_DIGEST,
    ESCROW_AUDIT_SAMPLE,
    LOG_COSIGNATURE,
    LOG_WITNESS_KEY_ID,
    WEB_APP_FILE,
    WEB_APP_RELEASE,
    DEVICE_LINK,
    LOG_WATCH_LIST_DIGEST,
    TRIAGE_SUMMARY_CONTEXT,
    TRIAGE_WATCH_LIST_CONTEXT,
)
