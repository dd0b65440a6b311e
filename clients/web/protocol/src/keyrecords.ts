/**
 * Key records: directory-signed public keys, their ids, validity and revocation
 * (docs/protocol.md 5). A client pins the directory's Ed25519 key and trusts every other
 * key only through a record the directory signed; nothing is trusted by name. Pure:
 * bytes, a pin or a verified directory, and a reference time.
 */

import * as domains from "./domains.js";
import { FormatError, KeyRecordError, LimitError } from "./errors.js";
import {
  DirectorySuccessionBodySchema,
  DirectorySuccessionSchema,
  KeyPurpose,
  KeyRecordBodySchema,
  KeyRecordSchema,
  KeyRevocationBodySchema,
  KeyRevocationSchema,
  type DirectorySuccession,
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
export type { DirectorySuccession, KeyRecord, KeyRevocation };

export const KEY_RECORD_VERSION = CURRENT_VERSION;
export const DIRECTORY_SUCCESSION_VERSION = CURRENT_VERSION;
/** Hand-overs a client follows in one chain; a directory key rotates yearly at most. */
export const MAX_SUCCESSIONS = 64;
/** Bytes of a serialised DirectorySuccession: two records and two signatures. */
export const MAX_SUCCESSION_BYTES = 5120;
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
    /**
     * For a directory: the directories it succeeded, by successions both keys signed
     * (oldest first). Records and revocations they signed verify under this one (5.7).
     */
    readonly predecessors: readonly VerifiedKey[] = [],
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

/** A directory record id and its signing key: who may sign records and revocations. */
type Issuer = readonly [id: Uint8Array, signingKey: Uint8Array];

/** A directory and the ones it succeeded (5.7), as issuers. */
function issuersOf(directory: VerifiedKey): readonly Issuer[] {
  return [...directory.predecessors, directory].map((d) => [d.id, d.signingKey] as const);
}

/** The signing key of the directory `issuerId` names; every id is compared, in constant time. */
function issuerKey(issuers: readonly Issuer[], issuerId: Uint8Array): Uint8Array | undefined {
  let found: Uint8Array | undefined;
  for (const [id, signingKey] of issuers) {
    if (equal(id, issuerId)) found = signingKey;
  }
  return found;
}

function verifyRevocationWith(
  revocation: KeyRevocation,
  issuers: readonly Issuer[],
): VerifiedRevocation {
  const body = readRevocation(revocation);
  const issuerSigningKey = issuerKey(issuers, body.issuerKeyId);
  if (issuerSigningKey === undefined) {
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
  return verifyRevocationWith(revocation, issuersOf(directory));
}

/** 5.5: every revocation parses; those naming this record must verify, and revoke from revokedAt. */
function checkRevocations(
  recordId: Uint8Array,
  revocations: Iterable<KeyRevocation>,
  issuers: readonly Issuer[],
  nowMs: bigint,
): void {
  for (const revocation of revocations) {
    const body = readRevocation(revocation);
    if (!equal(body.keyId, recordId)) continue; // about another key: not this record's business
    const verified = verifyRevocationWith(revocation, issuers);
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
  let issuers: readonly Issuer[];
  let issuerSigningKey: Uint8Array;
  if (body.purpose === KeyPurpose.DIRECTORY) {
    if (!(directory instanceof DirectoryPin)) {
      throw new KeyRecordError("a directory record is verified against the pinned key");
    }
    if (!equal(body.signingKey, directory.signingKey)) {
      throw new KeyRecordError("directory record does not carry the pinned key");
    }
    issuers = [[recordId, body.signingKey]];
    issuerSigningKey = body.signingKey;
  } else {
    if (!(directory instanceof VerifiedKey) || directory.purpose !== KeyPurpose.DIRECTORY) {
      throw new KeyRecordError("a key record is verified against the verified directory record");
    }
    issuers = issuersOf(directory);
    const found = issuerKey(issuers, body.issuerKeyId);
    if (found === undefined) {
      throw new KeyRecordError("key record is not issued by this directory");
    }
    issuerSigningKey = found;
  }
  ed25519Verify(issuerSigningKey, keyRecordSignedDigest(record.body), record.signature);
  if (check.nowMs < body.notBefore * 1000n) throw new KeyRecordError("key record is not yet valid");
  if (check.nowMs >= body.notAfter * 1000n) throw new KeyRecordError("key record has expired");
  checkRevocations(recordId, check.revocations ?? [], issuers, check.nowMs);
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

/** What the directory record's verification takes besides the record and the pin. */
export interface DirectoryRecordCheck extends KeyRecordCheck {
  /**
   * Every hand-over of the directory key, oldest first, the last one ending at the record
   * (`GetDirectoryResponse.successions`, 5.7); none while the first directory key serves.
   */
  readonly successions?: readonly DirectorySuccession[];
}

/** Parse a serialised DirectorySuccession (not verified); FormatError or LimitError if bad. */
export function parseSuccession(data: Uint8Array): DirectorySuccession {
  if (data.length > MAX_SUCCESSION_BYTES) {
    throw new LimitError(
      `directory succession is larger than ${String(MAX_SUCCESSION_BYTES)} bytes`,
    );
  }
  const succession = decodeMessage(DirectorySuccessionSchema, data, "directory succession");
  checkVersion(succession.version, "directory succession");
  rejectUnknownFields(DirectorySuccessionSchema, succession, "directory succession");
  return succession;
}

/** A succession's id: SHA-256(Frame("sealpost/v1/directory-succession/id", succession)). */
export function successionId(succession: Uint8Array): Uint8Array {
  return framedSha256(domains.DIRECTORY_SUCCESSION_ID, [succession]);
}

/** What the previous and the next directory key sign for a succession (in that order). */
export function directorySuccessionDigests(body: Uint8Array): [Uint8Array, Uint8Array] {
  return [
    framedSha256(domains.DIRECTORY_SUCCESSION_PREVIOUS, [body]),
    framedSha256(domains.DIRECTORY_SUCCESSION_NEXT, [body]),
  ];
}

/** A directory record inside a succession, checked against its own key (self-signed). */
function directoryKeyOf(recordBytes: Uint8Array, what: string): VerifiedKey {
  const record = parseKeyRecord(recordBytes);
  const body = readRecord(record);
  if (body.purpose !== KeyPurpose.DIRECTORY) {
    throw new KeyRecordError(`the ${what} record of a succession is not a directory record`);
  }
  return verifyAgainst(record, new DirectoryPin(body.signingKey), KeyPurpose.DIRECTORY, {
    nowMs: body.notBefore * 1000n,
  });
}

/** A succession that verified: who handed over to whom, and when (seconds since the epoch). */
export interface VerifiedSuccession {
  readonly previous: VerifiedKey;
  readonly next: VerifiedKey;
  readonly effectiveAt: bigint;
}

/**
 * Check a succession (5.7 step 1): versions and format, both records self-signed
 * directory records, two different keys, and both keys signed the hand-over.
 */
export function verifySuccession(succession: DirectorySuccession): VerifiedSuccession {
  checkVersion(succession.version, "directory succession");
  rejectUnknownFields(DirectorySuccessionSchema, succession, "directory succession");
  if (succession.body.length > MAX_SUCCESSION_BYTES) {
    throw new LimitError(
      `directory succession body is larger than ${String(MAX_SUCCESSION_BYTES)} bytes`,
    );
  }
  const body = parseCanonical(
    DirectorySuccessionBodySchema,
    succession.body,
    "directory succession body",
  );
  checkVersion(body.version, "directory succession body");
  if (body.version !== succession.version) {
    throw new FormatError("directory succession body version differs from its version");
  }
  const previous = directoryKeyOf(body.previousRecord, "previous");
  const next = directoryKeyOf(body.nextRecord, "next");
  if (equal(previous.signingKey, next.signingKey)) {
    throw new KeyRecordError("a directory succession hands over to the same key");
  }
  const [previousDigest, nextDigest] = directorySuccessionDigests(succession.body);
  ed25519Verify(previous.signingKey, previousDigest, succession.previousSignature);
  ed25519Verify(next.signingKey, nextDigest, succession.nextSignature);
  return { previous, next, effectiveAt: body.effectiveAt };
}

/**
 * Verify the current directory record against the pinned key, through its successions
 * (5.3 and 5.7). Without successions the record must carry the pinned key. With them
 * (oldest first, each handing over to the next, the last to `record`) the pin may be any
 * key of the chain, and the result carries the earlier directories as `predecessors`.
 * Order: each succession (5.7 step 1) and the links between them, then the record as in
 * 5.3 against its own key (format, purpose, signature, window, revocations), then that
 * the chain ends at it, then the pin. Throws on the first failure.
 */
export function verifyDirectoryRecord(
  record: KeyRecord,
  pin: DirectoryPin,
  check: DirectoryRecordCheck,
): VerifiedKey {
  const successions = check.successions ?? [];
  if (successions.length > MAX_SUCCESSIONS) {
    throw new LimitError(`more than ${String(MAX_SUCCESSIONS)} directory successions`);
  }
  const chain: VerifiedKey[] = [];
  let expectedNext: Uint8Array | undefined;
  for (const succession of successions) {
    const { previous, next } = verifySuccession(succession);
    const last = chain.at(-1);
    if (last !== undefined && !equal(previous.id, last.id)) {
      throw new KeyRecordError("the directory successions do not follow one another");
    }
    if (last === undefined) chain.push(previous);
    chain.push(next);
    expectedNext = next.id;
  }
  const body = readRecord(record);
  const current = verifyAgainst(record, new DirectoryPin(body.signingKey), KeyPurpose.DIRECTORY, {
    nowMs: check.nowMs,
    revocations: check.revocations ?? [],
  });
  if (expectedNext !== undefined && !equal(expectedNext, current.id)) {
    throw new KeyRecordError("the directory successions do not end at the current directory");
  }
  const known = chain.length > 0 ? chain : [current];
  if (!known.some((d) => equal(d.signingKey, pin.signingKey))) {
    throw new KeyRecordError("directory record does not carry the pinned key");
  }
  return new VerifiedKey(
    current.id,
    current.purpose,
    current.subject,
    current.encryptionKey,
    current.signingKey,
    current.notBefore,
    current.notAfter,
    current.issuerKeyId,
    chain.slice(0, -1),
  );
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
