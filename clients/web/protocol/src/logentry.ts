/**
 * Transparency-log leaves, signed tree heads and receipts: canonical encodings and their
 * verifiers (docs/transparency-log.md 2, 4 and 6), as in the Python reference
 * `crypto/logentry.py` and the relative SDK's `receipts.py`. Pure: no I/O, no clock.
 */

import { create } from "@bufbuild/protobuf";

import * as domains from "./domains.js";
import {
  FormatError,
  KeyRecordError,
  LimitError,
  ProofError,
  SignatureError,
  VersionTooNewError,
  VersionTooOldError,
} from "./errors.js";
import {
  TreeHeadSchema,
  type ConsistencyProof,
  type InclusionProof,
  type LogEntry,
  type Receipt,
  type SignedTreeHead,
} from "./gen/sealpost/v1/log_pb.js";
import { KeyPurpose, type VerifiedKey } from "./keyrecords.js";
import * as merkle from "./merkle.js";
import {
  concat,
  decodeUtf8,
  fromHex,
  hasControl,
  isWellFormed,
  sameBytes,
  toHex,
} from "./_internal/bytes.js";
import { framedSha256 } from "./_internal/framing.js";
import { ed25519Verify, equal } from "./_internal/sodium.js";
import { canonicalBytes, decodeMessage } from "./_internal/wire.js";

export type { ConsistencyProof, InclusionProof, LogEntry, Receipt, SignedTreeHead };

// --------------------------------------------------------------------------- leaves

/** The leaf encoding this code writes; the first byte of every leaf. */
export const LOG_EVENT_VERSION = 1;
/** The oldest leaf encoding still accepted (0 is never valid). */
export const MIN_LOG_EVENT_VERSION = 1;

export const MAX_ACTOR_BYTES = 128;
export const MAX_SUBJECTS = 16;
export const MAX_SUBJECT_KIND_BYTES = 32;
export const MAX_SUBJECT_ID_BYTES = 128;
export const MAX_EXTRA_FIELDS = 16;
export const MAX_EXTRA_KEY_BYTES = 32;
export const MAX_EXTRA_VALUE_BYTES = 256;
/** Time is milliseconds since the Unix epoch and must fit the proto's int64. */
export const MAX_TIME_MS = (1n << 63n) - 1n;
/** The largest leaf the limits allow (7,439 bytes); longer input is refused before parsing. */
export const MAX_LEAF_BYTES =
  1 +
  2 +
  8 +
  2 +
  MAX_ACTOR_BYTES +
  1 +
  MAX_SUBJECTS * (2 + MAX_SUBJECT_KIND_BYTES + 2 + MAX_SUBJECT_ID_BYTES) +
  1 +
  MAX_EXTRA_FIELDS * (2 + MAX_EXTRA_KEY_BYTES + 2 + MAX_EXTRA_VALUE_BYTES);

/** The extra field a "message accepted" event carries: SHA-256 of the envelope, hex. */
export const ENVELOPE_DIGEST_FIELD = "envelope_digest";
export const MESSAGE_SUBJECT = "message";
/** The extra field of a "message escrowed" event. */
export const ESCROW_DIGEST_FIELD = "escrow_digest";

const NAME = /^[a-z][a-z0-9_]*$/;
const LOWER_HEX = /^(?:[0-9a-f]{2})+$/;

/** What a log event records. The codes are part of leaf version 1 and never change. */
export const LogAction = {
  MESSAGE_ACCEPTED: 0x0101,
  MESSAGE_ESCROWED: 0x0102,
  MESSAGE_QUEUED: 0x0103,
  MESSAGE_RELEASED: 0x0104,
  MESSAGE_WITHHELD: 0x0105,
  MESSAGE_DELIVERED: 0x0106,
  MESSAGE_REJECTED: 0x0107,
  REVIEW_GRANTED: 0x0201,
  VERDICT_RECORDED: 0x0202,
  RETROSPECTIVE_REQUESTED: 0x0203,
  RETROSPECTIVE_APPROVED: 0x0204,
  RETROSPECTIVE_REJECTED: 0x0205,
  DETAINEE_INTAKE: 0x0301,
  DETAINEE_TRANSFERRED: 0x0302,
  DETAINEE_RELEASED: 0x0303,
  DETAINEE_REGIME_CHANGED: 0x0304,
  SCREENING_ORDER_CREATED: 0x0305,
  SCREENING_ORDER_ENDED: 0x0306,
  CONTACT_APPROVED: 0x0401,
  CONTACT_REJECTED: 0x0402,
  CONTACT_REVOKED: 0x0403,
  CORRESPONDENT_VERIFIED: 0x0404,
  CORRESPONDENT_REVOKED: 0x0405,
  ESCROW_KEY_ROTATED: 0x0501,
  RETENTION_APPLIED: 0x0502,
  KEY_RECORD_PUBLISHED: 0x0503,
  KEY_REVOKED: 0x0504,
  TERMINAL_CERTIFICATE_ISSUED: 0x0505,
  TERMINAL_CERTIFICATE_REVOKED: 0x0506,
  INSTITUTION_CREATED: 0x0601,
  REGIME_POLICY_CHANGED: 0x0602,
  ADMIN_ACTION: 0x0603,
} as const;

export type LogActionName = keyof typeof LogAction;
export type LogActionCode = (typeof LogAction)[LogActionName];

const ACTION_NAMES: ReadonlyMap<number, LogActionName> = new Map(
  (Object.entries(LogAction) as [LogActionName, LogActionCode][]).map(([name, code]) => [
    code,
    name,
  ]),
);

/** The name of an action code, or undefined for a code version 1 does not define. */
export function logActionName(code: number): LogActionName | undefined {
  return ACTION_NAMES.get(code);
}

/** One transparency-log event: who did what to which subjects, when, with a few fields. */
export interface LogEvent {
  readonly version: number;
  readonly action: LogActionCode;
  readonly actor: string;
  readonly timeMs: bigint;
  /** (kind, id) pairs, in the order given. */
  readonly subjects: readonly (readonly [string, string])[];
  /** Extra fields, sorted by key. */
  readonly extra: ReadonlyMap<string, string>;
}

/** What makeLogEvent takes: the extra fields in any order. */
export interface LogEventInit {
  readonly action: number;
  readonly actor: string;
  readonly timeMs: bigint;
  readonly subjects?: readonly (readonly [string, string])[];
  readonly extra?: Readonly<Record<string, string>> | ReadonlyMap<string, string>;
  readonly version?: number;
}

function checkLeafVersion(version: number): void {
  if (version < MIN_LOG_EVENT_VERSION) {
    throw new VersionTooOldError(`log leaf version ${String(version)} is not accepted`);
  }
  if (version > LOG_EVENT_VERSION) {
    throw new VersionTooNewError(
      `log leaf version ${String(version)} is newer than this code knows`,
    );
  }
}

function utf8Length(text: string): number {
  return new TextEncoder().encode(text).length;
}

function checkText(what: string, value: string, limit: number, allowEmpty = false): void {
  if (!isWellFormed(value)) throw new FormatError(`${what} is not valid Unicode text`);
  const size = utf8Length(value);
  if (size > limit) {
    throw new LimitError(`${what} is ${String(size)} bytes, at most ${String(limit)} allowed`);
  }
  if (size === 0 && !allowEmpty) throw new FormatError(`${what} is empty`);
  if (hasControl(value)) throw new FormatError(`${what} contains a control character`);
}

function checkName(what: string, value: string, limit: number): void {
  checkText(what, value, limit);
  if (!NAME.test(value)) {
    throw new FormatError(
      `${what} ${JSON.stringify(value)} is not a lower-case name ([a-z][a-z0-9_]*)`,
    );
  }
}

function compareUtf8(a: string, b: string): number {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function isMap(value: object): value is ReadonlyMap<string, string> {
  return value instanceof Map;
}

/** The hex id of the first `message` subject, if any. */
export function eventMessageId(event: LogEvent): string | undefined {
  return event.subjects.find(([kind]) => kind === MESSAGE_SUBJECT)?.[1];
}

/**
 * A validated event: extra fields sorted, every limit and rule of the leaf encoding
 * checked (docs/transparency-log.md 2), so that an event that exists can be encoded.
 */
export function makeLogEvent(init: LogEventInit): LogEvent {
  const version = init.version ?? LOG_EVENT_VERSION;
  checkLeafVersion(version);
  const name = logActionName(init.action);
  if (name === undefined) throw new FormatError(`unknown log action ${String(init.action)}`);
  const subjects = (init.subjects ?? []).map(([kind, id]) => [kind, id] as const);
  const extra = init.extra ?? {};
  const entries: [string, string][] = isMap(extra) ? [...extra.entries()] : Object.entries(extra);
  entries.sort(([a], [b]) => compareUtf8(a, b));
  const event: LogEvent = {
    version,
    action: LogAction[name],
    actor: init.actor,
    timeMs: init.timeMs,
    subjects,
    extra: new Map(entries),
  };
  if (event.timeMs < 0n || event.timeMs > MAX_TIME_MS) {
    throw new LimitError(`time_ms ${String(event.timeMs)} is outside [0, 2**63)`);
  }
  checkText("actor", event.actor, MAX_ACTOR_BYTES);
  if (subjects.length > MAX_SUBJECTS) {
    throw new LimitError(
      `${String(subjects.length)} subjects, at most ${String(MAX_SUBJECTS)} allowed`,
    );
  }
  const seen = new Set(subjects.map(([kind, id]) => JSON.stringify([kind, id])));
  if (seen.size !== subjects.length) throw new FormatError("the same subject appears twice");
  for (const [kind, id] of subjects) {
    checkName("subject kind", kind, MAX_SUBJECT_KIND_BYTES);
    checkText(`${kind} id`, id, MAX_SUBJECT_ID_BYTES);
    if (kind === MESSAGE_SUBJECT && !LOWER_HEX.test(id)) {
      throw new FormatError("a message id must be lower-case hex");
    }
  }
  if (entries.length !== event.extra.size) throw new FormatError("an extra key appears twice");
  if (event.extra.size > MAX_EXTRA_FIELDS) {
    throw new LimitError(
      `${String(event.extra.size)} extra fields, at most ${String(MAX_EXTRA_FIELDS)} allowed`,
    );
  }
  for (const [key, value] of event.extra) {
    checkName("extra key", key, MAX_EXTRA_KEY_BYTES);
    checkText(`extra field ${key}`, value, MAX_EXTRA_VALUE_BYTES, true);
  }
  if (event.action === LogAction.MESSAGE_ACCEPTED) {
    // The acceptance event is what a receipt proves: the message and the envelope's
    // digest, nothing of the content.
    if (eventMessageId(event) === undefined) {
      throw new FormatError("a message-accepted event needs a message subject");
    }
    const digest = event.extra.get(ENVELOPE_DIGEST_FIELD) ?? "";
    if (digest.length !== 2 * merkle.HASH_SIZE || !LOWER_HEX.test(digest)) {
      throw new FormatError("a message-accepted event needs a hex SHA-256 envelope_digest");
    }
  }
  return event;
}

function packText(out: number[], text: string): void {
  const raw = new TextEncoder().encode(text);
  out.push(raw.length >> 8, raw.length & 0xff, ...raw);
}

/** The canonical leaf bytes of a validated event (docs/transparency-log.md 2). */
export function encodeEvent(event: LogEvent): Uint8Array {
  const head = new Uint8Array(11);
  const view = new DataView(head.buffer);
  view.setUint8(0, event.version);
  view.setUint16(1, event.action, false);
  view.setBigUint64(3, event.timeMs, false);
  const out: number[] = [];
  packText(out, event.actor);
  out.push(event.subjects.length);
  for (const [kind, id] of event.subjects) {
    packText(out, kind);
    packText(out, id);
  }
  out.push(event.extra.size);
  for (const [key, value] of event.extra) {
    packText(out, key);
    packText(out, value);
  }
  return concat(head, Uint8Array.from(out));
}

class LeafReader {
  private pos = 0;
  constructor(private readonly data: Uint8Array) {}

  take(count: number, what: string): Uint8Array {
    if (this.pos + count > this.data.length)
      throw new FormatError(`log leaf is truncated in ${what}`);
    const chunk = this.data.subarray(this.pos, this.pos + count);
    this.pos += count;
    return chunk;
  }

  byte(what: string): number {
    return this.take(1, what)[0] ?? 0;
  }

  text(what: string, limit: number): string {
    const size = this.take(2, `the length of ${what}`);
    const length = ((size[0] ?? 0) << 8) | (size[1] ?? 0);
    if (length > limit) {
      throw new LimitError(`${what} is ${String(length)} bytes, at most ${String(limit)} allowed`);
    }
    const text = decodeUtf8(this.take(length, what));
    if (text === undefined) throw new FormatError(`${what} is not valid UTF-8`);
    return text;
  }

  atEnd(): boolean {
    return this.pos === this.data.length;
  }
}

/** Parse canonical leaf bytes; refuse anything `encodeEvent` would not produce. */
export function decodeEvent(data: Uint8Array): LogEvent {
  const first = data[0];
  if (first === undefined) throw new FormatError("log leaf is empty");
  checkLeafVersion(first);
  if (data.length > MAX_LEAF_BYTES) {
    throw new LimitError(
      `log leaf is ${String(data.length)} bytes, at most ${String(MAX_LEAF_BYTES)} allowed`,
    );
  }
  const reader = new LeafReader(data);
  const head = reader.take(11, "the header");
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const actionCode = view.getUint16(1, false);
  const timeMs = view.getBigUint64(3, false);
  if (logActionName(actionCode) === undefined) {
    throw new FormatError(`unknown log action code 0x${actionCode.toString(16).padStart(4, "0")}`);
  }
  const actor = reader.text("actor", MAX_ACTOR_BYTES);
  const subjectCount = reader.byte("the subject count");
  if (subjectCount > MAX_SUBJECTS) {
    throw new LimitError(
      `${String(subjectCount)} subjects, at most ${String(MAX_SUBJECTS)} allowed`,
    );
  }
  const subjects: [string, string][] = [];
  for (let i = 0; i < subjectCount; i++) {
    const kind = reader.text("subject kind", MAX_SUBJECT_KIND_BYTES);
    subjects.push([kind, reader.text("subject id", MAX_SUBJECT_ID_BYTES)]);
  }
  const extraCount = reader.byte("the extra field count");
  if (extraCount > MAX_EXTRA_FIELDS) {
    throw new LimitError(
      `${String(extraCount)} extra fields, at most ${String(MAX_EXTRA_FIELDS)} allowed`,
    );
  }
  const extra = new Map<string, string>();
  let previous: string | undefined;
  for (let i = 0; i < extraCount; i++) {
    const key = reader.text("extra key", MAX_EXTRA_KEY_BYTES);
    if (previous !== undefined && compareUtf8(key, previous) <= 0) {
      throw new FormatError("extra keys are not in strictly increasing order");
    }
    previous = key;
    extra.set(key, reader.text(`extra field ${key}`, MAX_EXTRA_VALUE_BYTES));
  }
  if (!reader.atEnd()) throw new FormatError("log leaf has trailing bytes");
  const event = makeLogEvent({
    version: first,
    action: actionCode,
    actor,
    timeMs,
    subjects,
    extra,
  });
  // One byte string per event: anything that would re-encode differently is refused.
  if (!sameBytes(encodeEvent(event), data))
    throw new FormatError("log leaf is not in canonical form");
  return event;
}

/** The digest naming a stored escrow blob in the log: SHA-256(LP(domain) ‖ LP(blob)). */
export function escrowDigest(blob: Uint8Array): Uint8Array {
  return framedSha256(domains.LOG_ESCROW_DIGEST, [blob]);
}

// --------------------------------------------------------------------------- tree heads

/** The tree-head format this code reads (TreeHead.version). */
export const TREE_HEAD_VERSION = 1;
export const MIN_TREE_HEAD_VERSION = 1;
/** Key ids are SHA-256 digests of a key record body. */
export const LOG_KEY_ID_BYTES = 32;

/** A tree head whose signature, encoding and log key have been checked. */
export interface VerifiedTreeHead {
  readonly version: number;
  readonly treeSize: bigint;
  readonly rootHash: Uint8Array;
  readonly timestampMs: bigint;
  readonly logKeyId: Uint8Array;
  /** The exact TreeHead bytes that were signed (what a witness cosigns). */
  readonly raw: Uint8Array;
}

/** The 32 bytes the log key signs: SHA-256(LP("sealpost/v1/log/tree-head") ‖ LP(tree_head)). */
export function treeHeadSigningDigest(treeHead: Uint8Array): Uint8Array {
  return framedSha256(domains.LOG_TREE_HEAD, [treeHead]);
}

function checkHeadFields(rootHash: Uint8Array, timestampMs: bigint, logKeyId: Uint8Array): void {
  if (rootHash.length !== merkle.HASH_SIZE) {
    throw new FormatError(`root hash is ${String(rootHash.length)} bytes, expected 32`);
  }
  if (timestampMs < 0n || timestampMs > MAX_TIME_MS) {
    throw new FormatError(`tree head timestamp ${String(timestampMs)} is outside [0, 2**63)`);
  }
  if (logKeyId.length !== LOG_KEY_ID_BYTES) {
    throw new FormatError(`log key id is ${String(logKeyId.length)} bytes, expected 32`);
  }
}

/**
 * Check a signed tree head against the log key (public key and key record id) and return
 * the head it commits to. Order of docs/transparency-log.md 6: parse, canonical bytes,
 * version, key id, fields, signature.
 */
export function verifyTreeHead(
  sth: SignedTreeHead,
  logPublicKey: Uint8Array,
  logKeyId: Uint8Array,
): VerifiedTreeHead {
  const body = sth.treeHead;
  const head = decodeMessage(TreeHeadSchema, body, "tree head");
  const canonical = canonicalBytes(
    TreeHeadSchema,
    create(TreeHeadSchema, {
      version: head.version,
      treeSize: head.treeSize,
      rootHash: head.rootHash,
      timestampMs: head.timestampMs,
      logKeyId: head.logKeyId,
    }),
  );
  if (!sameBytes(canonical, body)) {
    throw new FormatError("tree head is not in canonical form (field order, unknown fields)");
  }
  if (head.version < MIN_TREE_HEAD_VERSION) {
    throw new VersionTooOldError(`tree head version ${String(head.version)} is not accepted`);
  }
  if (head.version > TREE_HEAD_VERSION) {
    throw new VersionTooNewError(
      `tree head version ${String(head.version)} is newer than this code knows`,
    );
  }
  if (!equal(head.logKeyId, logKeyId)) {
    throw new SignatureError("tree head is signed by another log key than the one expected");
  }
  checkHeadFields(head.rootHash, head.timestampMs, head.logKeyId);
  ed25519Verify(logPublicKey, treeHeadSigningDigest(body), sth.signature);
  return {
    version: head.version,
    treeSize: head.treeSize,
    rootHash: head.rootHash,
    timestampMs: head.timestampMs,
    logKeyId: head.logKeyId,
    raw: body,
  };
}

/** Throw ProofError unless leaf `index` with bytes `leaf` is in the verified head's tree. */
export function verifyEntryInclusion(
  leaf: Uint8Array,
  index: bigint,
  proof: InclusionProof,
  head: VerifiedTreeHead,
): void {
  if (proof.treeSize !== head.treeSize) {
    throw new ProofError(
      `inclusion proof is for tree size ${String(proof.treeSize)}, the head has ${String(head.treeSize)}`,
    );
  }
  if (proof.leafIndex !== index) {
    throw new ProofError(
      `inclusion proof is for leaf ${String(proof.leafIndex)}, the entry is ${String(index)}`,
    );
  }
  merkle.verifyInclusion(merkle.leafHash(leaf), index, head.treeSize, proof.path, head.rootHash);
}

/** Throw ProofError unless `second` extends `first` (an append-only log). */
export function verifyHeadConsistency(
  first: VerifiedTreeHead,
  second: VerifiedTreeHead,
  proof: ConsistencyProof,
): void {
  if (proof.firstSize !== first.treeSize || proof.secondSize !== second.treeSize) {
    throw new ProofError(
      `consistency proof is for sizes ${String(proof.firstSize)} -> ${String(proof.secondSize)}, ` +
        `the heads have ${String(first.treeSize)} -> ${String(second.treeSize)}`,
    );
  }
  merkle.verifyConsistency(
    first.treeSize,
    second.treeSize,
    first.rootHash,
    second.rootHash,
    proof.path,
  );
}

// --------------------------------------------------------------------------- receipts

/** What a receipt is checked against: values this device computed or was given itself. */
export interface ReceiptExpectation {
  /** The log's key record, verified against the pinned directory (purpose LOG). */
  readonly logKey: VerifiedKey;
  /** The message id this device sealed. */
  readonly messageId: Uint8Array;
  /** The envelope digest this device computed before sending (envelopeDigest). */
  readonly envelopeDigest: Uint8Array;
  /**
   * The entry the gateway named when it accepted the message (SendMessageResponse's
   * receipt): a proof fetched later must be about that same entry.
   */
  readonly sentEntry?: LogEntry | undefined;
}

/** A receipt whose inclusion proof checked out: the gateway cannot quietly drop the message. */
export interface VerifiedReceipt {
  readonly messageId: Uint8Array;
  readonly envelopeDigest: Uint8Array;
  /** When the gateway accepted the message, milliseconds since the epoch. */
  readonly acceptedAtMs: bigint;
  /** The acceptance entry's position in the log. */
  readonly leafIndex: bigint;
  readonly event: LogEvent;
  /** The signed tree head the entry is proven into (keep the newest one seen). */
  readonly head: VerifiedTreeHead;
}

/**
 * Check that a receipt proves acceptance of this device's own envelope in the signed log
 * (docs/transparency-log.md 6, "A receipt"): same message id and envelope digest as
 * computed locally, a head signed by the log key, the entry included, a MESSAGE_ACCEPTED
 * leaf about this message and digest, at the receipt's acceptance time; then the same
 * entry as at acceptance, and a head signed while the log key was valid.
 *
 * Throws ProofError, or the tree head's and the leaf's own errors (SignatureError,
 * FormatError, version errors), or KeyRecordError for a key that is not the log's.
 */
export function verifyReceipt(receipt: Receipt, expected: ReceiptExpectation): VerifiedReceipt {
  const { logKey, messageId, envelopeDigest } = expected;
  if (logKey.purpose !== KeyPurpose.LOG) {
    throw new KeyRecordError("the key given is not the transparency log's key");
  }
  if (!equal(receipt.messageId, messageId)) throw new ProofError("receipt is for another message");
  if (!equal(receipt.envelopeDigest, envelopeDigest)) {
    throw new ProofError("receipt names another envelope digest");
  }
  const entry = receipt.entry;
  if (entry === undefined) throw new ProofError("receipt carries no log entry");
  if (receipt.treeHead === undefined || receipt.inclusionProof === undefined) {
    throw new ProofError("receipt carries no signed tree head and inclusion proof");
  }
  const head = verifyTreeHead(receipt.treeHead, logKey.signingKey, logKey.id);
  verifyEntryInclusion(entry.leaf, entry.index, receipt.inclusionProof, head);
  const event = decodeEvent(entry.leaf);
  if (event.action !== LogAction.MESSAGE_ACCEPTED) {
    throw new ProofError(
      `receipt's log entry records ${logActionName(event.action) ?? "?"}, not MESSAGE_ACCEPTED`,
    );
  }
  if (eventMessageId(event) !== toHex(messageId)) {
    throw new ProofError("receipt's log entry is about another message");
  }
  const logged = fromHex(event.extra.get(ENVELOPE_DIGEST_FIELD) ?? "");
  if (!equal(logged, envelopeDigest)) {
    throw new ProofError("receipt's log entry names another envelope digest");
  }
  if (event.timeMs !== receipt.acceptedAtMs) {
    throw new ProofError("receipt's acceptance time differs from its log entry");
  }
  const sent = expected.sentEntry;
  if (sent !== undefined && (sent.index !== entry.index || !equal(sent.leaf, entry.leaf))) {
    throw new ProofError("the proof is about another log entry than the one sent");
  }
  if (!logKey.validAt(head.timestampMs)) {
    throw new KeyRecordError("the tree head was signed outside the log key's validity");
  }
  return {
    messageId,
    envelopeDigest,
    acceptedAtMs: receipt.acceptedAtMs,
    leafIndex: entry.index,
    event,
    head,
  };
}

/**
 * Check that `entry` is the release of `messageId`, included in the verified head: what a
 * terminal checks before it hands a message over (docs/terminal.md, "Proven releases").
 */
export function verifyRelease(
  entry: LogEntry,
  proof: InclusionProof,
  head: VerifiedTreeHead,
  messageId: Uint8Array,
): LogEvent {
  verifyEntryInclusion(entry.leaf, entry.index, proof, head);
  const event = decodeEvent(entry.leaf);
  if (event.action !== LogAction.MESSAGE_RELEASED) {
    throw new ProofError(
      `the release entry records ${logActionName(event.action) ?? "?"}, not MESSAGE_RELEASED`,
    );
  }
  if (eventMessageId(event) !== toHex(messageId)) {
    throw new ProofError("the release entry is about another message");
  }
  return event;
}
