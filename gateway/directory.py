"""The gateway's key directory: it signs key records and revocations with the directory key.

The directory record is self-signed and published by GetDirectory; the SDK
pins its key. Every other record the gateway hands out is signed by it and
also recorded in the transparency log, so a substituted key would be visible
to anyone who checks the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection

from sealpost.crypto import keyrecords
from sealpost.crypto.errors import KeyRecordError
from sealpost.crypto.keyrecords import VerifiedKey
from sealpost.crypto.logentry import LogAction
from sealpost.gateway import store, translog
from sealpost.gateway.errors import ConfigError, FailedPrecondition
from sealpost.gateway.keystore import GatewayKeys
from sealpost.v1 import keys_pb2

DIRECTORY_SUBJECT: Final = "sealpost-directory"
LOG_SUBJECT: Final = "sealpost-log"
_DAY_S: Final = 24 * 3600
#: How long records stay valid, by purpose (seconds).
VALIDITY_S: Final[dict[keys_pb2.KeyPurpose.ValueType, int]] = {
    keys_pb2.KEY_PURPOSE_DIRECTORY: 20 * 365 * _DAY_S,
    keys_pb2.KEY_PURPOSE_LOG: 20 * 365 * _DAY_S,
    keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE: 2 * 365 * _DAY_S,
    keys_pb2.KEY_PURPOSE_MAILBOX: 5 * 365 * _DAY_S,
    keys_pb2.KEY_PURPOSE_INSTITUTION: 2 * 365 * _DAY_S,
}
#: Records are valid from a little before their issue, to allow for clock differences.
BACKDATE_S: Final = 300


@dataclass(frozen=True)
class Directory:
    """The verified directory and log records, and the keys to issue more."""

    keys: GatewayKeys
    directory_record: keys_pb2.KeyRecord
    directory: VerifiedKey
    log_record: keys_pb2.KeyRecord
    log: VerifiedKey
    #: Every hand-over of the directory key, oldest first (GetDirectory returns them).
    successions: tuple[keys_pb2.DirectorySuccession, ...] = ()

    def issue(
        self,
        *,
        purpose: keys_pb2.KeyPurpose.ValueType,
        subject: str,
        encryption_key: bytes,
        signing_key: bytes,
        now_ms: int,
    ) -> tuple[keys_pb2.KeyRecord, VerifiedKey]:
        """A new record signed by the directory, and its verified form."""
        now_s = now_ms // 1000
        record = keyrecords.issue_key_record(
            purpose=purpose,
            subject=subject,
            encryption_key=encryption_key,
            signing_key=signing_key,
            not_before=now_s - BACKDATE_S,
            not_after=now_s + VALIDITY_S[purpose],
            directory_keys=self.keys.directory,
            directory_key_id=self.directory.id,
        )
        return record, self.verify(record, purpose=purpose, now_ms=now_ms)

    def verify(
        self,
        record: keys_pb2.KeyRecord,
        *,
        purpose: keys_pb2.KeyPurpose.ValueType,
        now_ms: int,
        revocations: list[keys_pb2.KeyRevocation] | None = None,
    ) -> VerifiedKey:
        """Verify a record against this directory (raises crypto errors)."""
        return keyrecords.verify_key_record(
            record,
            self.directory,
            now_ms=now_ms,
            revocations=revocations or (),
            purpose=purpose,
        )

    def revoke(self, key_id: bytes, reason: str, now_ms: int) -> keys_pb2.KeyRevocation:
        """A signed revocation of ``key_id`` effective now."""
        return keyrecords.issue_revocation(
            key_id=key_id,
            revoked_at=now_ms // 1000,
            reason=reason,
            directory_keys=self.keys.directory,
            directory_key_id=self.directory.id,
        )


#: What the subject of a record of each purpose is, as the log names it.
OWNER_KINDS: Final[dict[keys_pb2.KeyPurpose.ValueType, str]] = {
    keys_pb2.KEY_PURPOSE_DIRECTORY: "directory",
    keys_pb2.KEY_PURPOSE_LOG: "log",
    keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE: "account",
    keys_pb2.KEY_PURPOSE_MAILBOX: "detainee",
    keys_pb2.KEY_PURPOSE_INSTITUTION: "institution",
}


def purpose_name(purpose: keys_pb2.KeyPurpose.ValueType) -> str:
    """``relative_device``, ``mailbox`` ...: a purpose as the log names it."""
    return keys_pb2.KeyPurpose.Name(purpose).removeprefix("KEY_PURPOSE_").lower()


def publish(
    connection: Connection,
    record: keys_pb2.KeyRecord,
    verified: VerifiedKey,
    actor: str,
    now_ms: int,
    *,
    institution: str = "",
    succeeds: bytes = b"",
    succession: bytes = b"",
) -> None:
    """Store a record and log its publication: the key id (a digest of the body), purpose, owner.

    Every record the directory signs goes through here, so the key records, too, can
    be recomputed from the log. ``institution`` is the one that holds a mailbox key;
    ``succeeds`` the directory record a new directory record takes over from, and
    ``succession`` the id of the hand-over both keys signed.
    AlreadyExists for a record stored before.
    """
    store.add_key_record(connection, verified, record.SerializeToString(deterministic=True), now_ms)
    if verified.purpose in (keys_pb2.KEY_PURPOSE_DIRECTORY, keys_pb2.KEY_PURPOSE_LOG):
        scope = translog.PUBLIC
    elif verified.purpose == keys_pb2.KEY_PURPOSE_INSTITUTION:
        scope = frozenset({verified.subject})
    elif verified.purpose == keys_pb2.KEY_PURPOSE_MAILBOX:
        if not institution:
            raise ValueError("a mailbox key is published by the institution that holds it")
        scope = frozenset({institution})
    else:
        scope = translog.NATIONAL
    store.log(
        connection,
        LogAction.KEY_RECORD_PUBLISHED,
        actor,
        now_ms,
        [(OWNER_KINDS[verified.purpose], verified.subject), ("key", verified.id.hex())],
        scope=scope,
        purpose=purpose_name(verified.purpose),
        **({"succeeds": succeeds.hex(), "succession": succession.hex()} if succeeds else {}),
    )


def _own_record(
    connection: Connection, purpose: keys_pb2.KeyPurpose.ValueType, subject: str
) -> keys_pb2.KeyRecord | None:
    raw = store.latest_record(connection, purpose, subject)
    return None if raw is None else keys_pb2.KeyRecord.FromString(raw)


def published_directory_key(connection: Connection) -> bytes | None:
    """The signing key of the newest published directory record (None before the first)."""
    record = _own_record(connection, keys_pb2.KEY_PURPOSE_DIRECTORY, DIRECTORY_SUBJECT)
    if record is None:
        return None
    return keys_pb2.KeyRecordBody.FromString(record.body).signing_key


def _new_directory_record(keys: GatewayKeys, now_ms: int) -> keys_pb2.KeyRecord:
    now_s = now_ms // 1000
    return keyrecords.issue_directory_record(
        keys.directory,
        subject=DIRECTORY_SUBJECT,
        not_before=now_s - BACKDATE_S,
        not_after=now_s + VALIDITY_S[keys_pb2.KEY_PURPOSE_DIRECTORY],
    )


def load_or_create(connection: Connection, keys: GatewayKeys, now_ms: int) -> Directory:
    """The directory and log records for ``keys``, created on first start.

    A directory record is issued when there is none, or when the published one carries
    this key but has expired. A published record of another key is never replaced here
    (every client pins it): ConfigError, pointing at ``rotate_directory``.
    """
    pin = keyrecords.DirectoryPin(keys.directory.signing_key)
    successions = tuple(store.successions(connection))
    record = _own_record(connection, keys_pb2.KEY_PURPOSE_DIRECTORY, DIRECTORY_SUBJECT)
    directory: VerifiedKey | None = None
    if record is not None:
        if keys_pb2.KeyRecordBody.FromString(record.body).signing_key != pin.signing_key:
            raise ConfigError(
                [
                    "the directory key is not the one the published directory record carries; "
                    "every client pins that one. Replace it with `sealpost gateway "
                    "rotate-directory-key` (docs/operations.md, section 17)"
                ]
            )
        try:
            directory = keyrecords.verify_directory_record(
                record, pin, now_ms=now_ms, successions=successions
            )
        except KeyRecordError:
            directory = None  # expired: issue a new one below
    if record is None or directory is None:
        record = _new_directory_record(keys, now_ms)
        directory = keyrecords.verify_directory_record(
            record, pin, now_ms=now_ms, successions=successions
        )
        publish(connection, record, directory, store.GATEWAY_ACTOR, now_ms)
    partial = Directory(keys, record, directory, record, directory, successions)
    log_record = _own_record(connection, keys_pb2.KEY_PURPOSE_LOG, LOG_SUBJECT)
    log: VerifiedKey | None = None
    if log_record is not None:
        try:
            log = partial.verify(log_record, purpose=keys_pb2.KEY_PURPOSE_LOG, now_ms=now_ms)
        except KeyRecordError:
            log = None
        if log is not None and log.signing_key != keys.log.signing_key:
            log = None
    if log_record is None or log is None:
        log_record, log = partial.issue(
            purpose=keys_pb2.KEY_PURPOSE_LOG,
            subject=LOG_SUBJECT,
            encryption_key=b"",
            signing_key=keys.log.signing_key,
            now_ms=now_ms,
        )
        publish(connection, log_record, log, store.GATEWAY_ACTOR, now_ms)
    return Directory(keys, record, directory, log_record, log, successions)


def rotate_directory(
    connection: Connection, current: Directory, keys: GatewayKeys, actor: str, now_ms: int
) -> Directory:
    """Hand the directory over to ``keys.directory``: a succession both keys sign.

    The new directory record is published (KEY_RECORD_PUBLISHED, with the succession's
    digest) and the succession kept for GetDirectory. Records the old key signed stay
    valid under the new one; the log key is kept. FailedPrecondition when ``keys`` holds
    the current directory key. Call with the log's size row locked (one hand-over when
    several gateways notice the same new key).
    """
    if keys.directory.signing_key == current.directory.signing_key:
        raise FailedPrecondition("the directory key is already the current one")
    record = _new_directory_record(keys, now_ms)
    succession = keyrecords.issue_succession(
        current.keys.directory,
        current.directory_record,
        keys.directory,
        record,
        effective_at=now_ms // 1000,
    )
    successions = (*current.successions, succession)
    pin = keyrecords.DirectoryPin(keys.directory.signing_key)
    directory = keyrecords.verify_directory_record(
        record, pin, now_ms=now_ms, successions=successions
    )
    raw = succession.SerializeToString(deterministic=True)
    digest = keyrecords.succession_id(raw)
    store.add_succession(connection, digest, current.directory.id, directory.id, raw, now_ms)
    publish(
        connection,
        record,
        directory,
        actor,
        now_ms,
        succeeds=current.directory.id,
        succession=digest,
    )
    return Directory(keys, record, directory, current.log_record, current.log, successions)


def withdraw(
    connection: Connection,
    gateway_directory: Directory,
    row: store.KeyRecordRow,
    reason: str,
    actor: str,
    now_ms: int,
    *,
    scope: translog.Scope = translog.NATIONAL,
) -> keys_pb2.KeyRevocation:
    """Revoke a stored record, keep the signed revocation and log it (KEY_REVOKED).

    Every revocation goes through here, an administrator's or a relative's of their own
    device. The directory and log keys are replaced, never revoked (FailedPrecondition).
    """
    if row.purpose in (keys_pb2.KEY_PURPOSE_DIRECTORY, keys_pb2.KEY_PURPOSE_LOG):
        raise FailedPrecondition("the directory and log keys are replaced, not revoked")
    revocation = gateway_directory.revoke(row.id, reason, now_ms)
    store.revoke_key(connection, row.id, revocation.SerializeToString(deterministic=True), now_ms)
    store.log(
        connection,
        LogAction.KEY_REVOKED,
        actor,
        now_ms,
        [("key", row.id.hex())],
        scope=scope,
        reason=reason,
    )
    return revocation
