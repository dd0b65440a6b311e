/**
 * Key records: directory-signed public keys, their ids, validity and revocation
 * (docs/protocol.md 5). A client pins the directory's Ed25519 key and trusts every other
 * key only through a record the directory signed; nothing is trusted by name. Pure:
 * bytes, a pin or a verified directory, and a reference time.
 */

import * as domains from "./domains.js";
import { FormatError, KeyRecordError, LimitError } from "./errors.js";
import {
  KeyPurpose,
  KeyRecordBodySchema,
  KeyRecordSchema,
  KeyRevocationBodySchema,
  KeyRevocationSchema,
  type KeyRecord,
  type KeyRecordBody,
  type KeyRevocation,
  type KeyRevocationBody,
} from "./gen/sealpost/v1/keys_pb.js";
import { hasControl, utf8 } from "./_internal/bytes.js";
import { framedSha256 } from "./_internal/framing.js";
import {
  ED25519_SIGNATURE_BYTES,
  X25519_PUBLIC_BYTES,
  ed25519PublicIsValid,
  ed25519Verify,
  equal,
  x25519IsLowOrder,
} from "./_internal/sodium.js";
import {
  CURRENT_VERSION,
  checkVersion,
  decodeMessage,
  parseCanonical,
  rejectUnknownFields,
} from "./_internal/wire.js";

export { KeyPurpose };
export type { KeyRecord, KeyRevocation };

export const KEY_RECORD_VERSION = CURRENT_VERSION;
/** A key id is a SHA-256 digest. */
export const KEY_ID_BYTES = 32;
/** UTF-8 bytes of a record's subject (an opaque account, detainee or institution id). */
export const MAX_SUBJECT_BYTES = 128;
/** UTF-8 bytes of a revocation's reason. */
export const MAX_REASON_BYTES = 512;
/** Bytes of a serialised KeyRecord or KeyRevocation, checked before parsing. */
export const MAX_RECORD_BYTES = 2048;

/** Purposes whose records carry an X25519 encryption key; the others carry none. */
const PURPOSES_WITH_ENCRYPTION: ReadonlySet<KeyPurpose> = new Set([
  KeyPurpose.RELATIVE_DEVICE,
  KeyPurpose.MAILBOX,
  KeyPurpose.INSTITUTION,
]);
const KNOWN_PURPOSES: ReadonlySet<KeyPurpose> = new Set([
  KeyPurpose.DIRECTORY,
  KeyPurpose.RELATIVE_DEVICE,
  KeyPurpose.MAILBOX,
  KeyPurpose.INSTITUTION,
  KeyPurpose.LOG,
]);

/** The directory's Ed25519 public key as a client pins it (shipped with the app). */
export class DirectoryPin {
  readonly signingKey: Uint8Array;
  constructor(signingKey: Uint8Array) {
    if (signingKey.length !== 32) throw new FormatError("a directory pin is 32 bytes");
    this.signingKey = signingKey.slice();
  }
}

/** A key record that verified: signed by the directory, in its window, not revoked. */
export class VerifiedKey {
  constructor(
    /** The record id: SHA-256 over the domain and the exact body bytes. */
    readonly id: Uint8Array,
    readonly purpose: KeyPurpose,
    /** An opaque account, detainee or institution id; never a name. */
    readonly subject: string,
    /** X25519 public key; empty for directory and log keys. */
    readonly encryptionKey: Uint8Array,
    /** Ed25519 public key. */
    readonly signingKey: Uint8Array,
    /** Validity window in seconds since the Unix epoch: notBefore <= t < notAfter. */
    readonly notBefore: bigint,
    readonly notAfter: bigint,
    /** Id of the directory record that signed this one; empty for the directory itself. */
    readonly issuerKeyId: Uint8Array,
  ) {}

  /** True when `timeMs` (milliseconds since the epoch) lies in the validity window. */
  validAt(timeMs: bigint): boolean {
    return this.notBefore * 1000n <= timeMs && timeMs < this.notAfter * 1000n;
  }
}

/** A revocation the directory signed. */
export interface VerifiedRevocation {
  readonly keyId: Uint8Array;
  /** Seconds since the Unix epoch from which the key is no longer valid. */
  readonly revokedAt: bigint;
  readonly reason: string;
  readonly issuerKeyId: Uint8Array;
}

/** A record's id: SHA-256(Frame("sealpost/v1/key-record/id", body)). */
export function keyRecordId(body: Uint8Array): Uint8Array {
  return framedSha256(domains.KEY_RECORD_ID, [body]);
}

/** What the directory key signs for a record. */
export function keyRecordSignedDigest(body: Uint8Array): Uint8Array {
  return framedSha256(domains.KEY_RECORD_SIGNATURE, [body]);
}

/** What the directory key signs for a revocation. */
export function keyRevocationSignedDigest(body: Uint8Array): Uint8Array {
  return framedSha256(domains.KEY_REVOCATION_SIGNATURE, [body]);
}

function checkText(value: string, what: string, maxBytes: number, allowEmpty: boolean): void {
  const size = utf8(value).length;
  if (size === 0 && !allowEmpty) throw new FormatError(`${what} is empty`);
  if (size > maxBytes) throw new FormatError(`${what} is longer than ${String(maxBytes)} bytes`);
  if (hasControl(value)) throw new FormatError(`${what} contains control characters`);
}

/** Shape rules of 5.2; FormatError on the first broken one. */
function checkBody(body: KeyRecordBody): void {
  checkVersion(body.version, "key record body");
  if (!KNOWN_PURPOSES.has(body.purpose)) {
    throw new FormatError(`key record purpose ${String(body.purpose)} is not known`);
  }
  checkText(body.subject, "key record subject", MAX_SUBJECT_BYTES, false);
  if (!ed25519PublicIsValid(body.signingKey)) {
    throw new FormatError("key record signing key is not a valid Ed25519 public key");
  }
  if (PURPOSES_WITH_ENCRYPTION.has(body.purpose)) {
    if (body.encryptionKey.length !== X25519_PUBLIC_BYTES) {
      throw new FormatError("key record encryption key is not 32 bytes");
    }
    if (x25519IsLowOrder(body.encryptionKey)) {
      throw new FormatError("key record encryption key has small order");
    }
  } else if (body.encryptionKey.length > 0) {
    throw new FormatError("directory and log records carry no encryption key");
  }
  if (!(0n <= body.notBefore && body.notBefore < body.notAfter)) {
    throw new FormatError("key record validity window is empty or negative");
  }
  if (body.purpose === KeyPurpose.DIRECTORY) {
    if (body.issuerKeyId.length > 0) {
      throw new FormatError("a directory record is self-signed and names no issuer");
    }
  } else if (body.issuerKeyId.length !== KEY_ID_BYTES) {
    throw new FormatError("key record issuer id is not 32 bytes");
  }
}

function checkSize(size: number, what: string): void {
  if (size > MAX_RECORD_BYTES) {
    throw new LimitError(`${what} is larger than ${String(MAX_RECORD_BYTES)} bytes`);
  }
}

/** Parse a serialised KeyRecord (not verified); FormatError, LimitError or version errors. */
export function parseKeyRecord(data: Uint8Array): KeyRecord {
  checkSize(data.length, "key record");
  const record = decodeMessage(KeyRecordSchema, data, "key record");
  checkVersion(record.version, "key record");
  rejectUnknownFields(KeyRecordSchema, record, "key record");
  return record;
}

/** Parse a serialised KeyRevocation (not verified). */
export function parseKeyRevocation(data: Uint8Array): KeyRevocation {
  checkSize(data.length, "key revocation");
  const revocation = decodeMessage(KeyRevocationSchema, data, "key revocation");
  checkVersion(revocation.version, "key revocation");
  rejectUnknownFields(KeyRevocationSchema, revocation, "key revocation");
  return revocation;
}

/** Step 1 of 5.3 and 5.4: versions, size, canonical body, shape, signature length. */
function readRecord(record: KeyRecord): KeyRecordBody {
  checkVersion(record.version, "key record");
  rejectUnknownFields(KeyRecordSchema, record, "key record");
  checkSize(record.body.length, "key record body");
  const body = parseCanonical(KeyRecordBodySchema, record.body, "key record body");
  checkBody(body);
  if (body.version !== record.version) {
    throw new FormatError("key record body version differs from the record version");
  }
  if (record.signature.length !== ED25519_SIGNATURE_BYTES) {
    throw new FormatError("key record signature is not 64 bytes");
  }
  return body;
}

function checkRevocationBody(body: KeyRevocationBody): void {
  checkVersion(body.version, "key revocation body");
  if (body.keyId.length !== KEY_ID_BYTES) throw new FormatError("revoked key id is not 32 bytes");
  if (body.revokedAt < 0n) throw new FormatError("revocation time is negative");
  checkText(body.reason, "revocation reason", MAX_REASON_BYTES, true);
  if (body.issuerKeyId.length !== KEY_ID_BYTES) {
    throw new FormatError("revocation issuer id is not 32 bytes");
  }
}

function readRevocation(revocation: KeyRevocation): KeyRevocationBody {
  checkVersion(revocation.version, "key revocation");
  rejectUnknownFields(KeyRevocationSchema, revocation, "key revocation");
  checkSize(revocation.body.length, "key revocation body");
  const body = parseCanonical(KeyRevocationBodySchema, revocation.body, "key revocation body");
  checkRevocationBody(body);
  if (body.version !== revocation.version) {
    throw new FormatError("key revocation body version differs from the revocation version");
  }
  if (revocation.signature.length !== ED25519_SIGNATURE_BYTES) {
    throw new FormatError("key revocation signature is not 64 bytes");
  }
  return body;
}

function verifyRevocationWith(
  revocation: KeyRevocation,
  issuerId: Uint8Array,
  issuerSigningKey: Uint8Array,
): VerifiedRevocation {
  const body = readRevocation(revocation);
  if (!equal(body.issuerKeyId, issuerId)) {
    throw new KeyRecordError("revocation is not issued by this directory");
  }
  ed25519Verify(issuerSigningKey, keyRevocationSignedDigest(revocation.body), revocation.signature);
  return {
    keyId: body.keyId,
    revokedAt: body.revokedAt,
    reason: body.reason,
    issuerKeyId: body.issuerKeyId,
  };
}

/** Check a revocation's version, shape and the directory's signature; throw otherwise. */
export function verifyRevocation(
  revocation: KeyRevocation,
  directory: VerifiedKey,
): VerifiedRevocation {
  if (directory.purpose !== KeyPurpose.DIRECTORY) {
    throw new KeyRecordError("revocations are verified against the directory record");
  }
  return verifyRevocationWith(revocation, directory.id, directory.signingKey);
}

/** 5.5: every revocation parses; those naming this record must verify, and revoke from revokedAt. */
function checkRevocations(
  recordId: Uint8Array,
  revocations: Iterable<KeyRevocation>,
  issuerId: Uint8Array,
  issuerSigningKey: Uint8Array,
  nowMs: bigint,
): void {
  for (const revocation of revocations) {
    const body = readRevocation(revocation);
    if (!equal(body.keyId, recordId)) continue; // about another key: not this record's business
    const verified = verifyRevocationWith(revocation, issuerId, issuerSigningKey);
    if (verified.revokedAt * 1000n <= nowMs) throw new KeyRecordError("key record is revoked");
  }
}

/** What every record verification takes besides the record. */
export interface KeyRecordCheck {
  /** The reference time in milliseconds since the epoch (5.6). */
  readonly nowMs: bigint;
  /** Every revocation the directory published; malformed ones fail the verification. */
  readonly revocations?: Iterable<KeyRevocation>;
}

function verifyAgainst(
  record: KeyRecord,
  directory: VerifiedKey | DirectoryPin,
  purpose: KeyPurpose,
  check: KeyRecordCheck,
): VerifiedKey {
  const body = readRecord(record);
  if (body.purpose !== purpose) {
    throw new KeyRecordError("key record has the wrong purpose for this use");
  }
  const recordId = keyRecordId(record.body);
  let issuerId: Uint8Array;
  let issuerSigningKey: Uint8Array;
  if (body.purpose === KeyPurpose.DIRECTORY) {
    if (!(directory instanceof DirectoryPin)) {
      throw new KeyRecordError("a directory record is verified against the pinned key");
    }
    if (!equal(body.signingKey, directory.signingKey)) {
      throw new KeyRecordError("directory record does not carry the pinned key");
    }
    issuerId = recordId;
    issuerSigningKey = body.signingKey;
  } else {
    if (!(directory instanceof VerifiedKey) || directory.purpose !== KeyPurpose.DIRECTORY) {
      throw new KeyRecordError("a key record is verified against the verified directory record");
    }
    if (!equal(body.issuerKeyId, directory.id)) {
      throw new KeyRecordError("key record is not issued by this directory");
    }
    issuerId = directory.id;
    issuerSigningKey = directory.signingKey;
  }
  ed25519Verify(issuerSigningKey, keyRecordSignedDigest(record.body), record.signature);
  if (check.nowMs < body.notBefore * 1000n) throw new KeyRecordError("key record is not yet valid");
  if (check.nowMs >= body.notAfter * 1000n) throw new KeyRecordError("key record has expired");
  checkRevocations(recordId, check.revocations ?? [], issuerId, issuerSigningKey, check.nowMs);
  return new VerifiedKey(
    recordId,
    body.purpose,
    body.subject,
    body.encryptionKey,
    body.signingKey,
    body.notBefore,
    body.notAfter,
    body.issuerKeyId,
  );
}

/**
 * Verify the self-signed directory record against the pinned key, in the order of 5.3:
 * format, purpose, pin, signature, validity window, revocations. Throws on the first failure.
 */
export function verifyDirectoryRecord(
  record: KeyRecord,
  pin: DirectoryPin,
  check: KeyRecordCheck,
): VerifiedKey {
  return verifyAgainst(record, pin, KeyPurpose.DIRECTORY, check);
}

/**
 * Verify a device, mailbox, institution or log record against the *verified* directory
 * record, in the order of 5.4: format, purpose, issuer, signature, window, revocations.
 */
export function verifyKeyRecord(
  record: KeyRecord,
  directory: VerifiedKey,
  check: KeyRecordCheck & { readonly purpose: KeyPurpose },
): VerifiedKey {
  return verifyAgainst(record, directory, check.purpose, check);
}

/**
 * Check that a verified record names the subject the caller expected (an account id,
 * detainee id or institution id); KeyRecordError otherwise. Subjects are opaque ids, so
 * this is the check that binds a key to whom the client meant (docs/protocol.md 6.4).
 */
export function expectSubject(key: VerifiedKey, subject: string): void {
  if (key.subject !== subject) {
    throw new KeyRecordError("key record belongs to another subject than the one expected");
  }
}
