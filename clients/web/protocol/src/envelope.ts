/**
 * The sealed envelope, version 1: seal, verify, open, and the escrow review path
 * (docs/protocol.md 7).
 *
 * Parts are encrypted with XChaCha20-Poly1305 under a fresh data key (DEK), each with its
 * file name inside the ciphertext so the gateway never sees it; the DEK is sealed to each
 * recipient key and to the sender's own key; the sender's Ed25519 key signs the header
 * bytes as carried, every ciphertext and every sealed key. Pure: bytes in, bytes out,
 * with the clock and randomness injected.
 */

import { create, toBinary } from "@bufbuild/protobuf";

import * as domains from "./domains.js";
import { EnvelopeError, FormatError, KeyRecordError, LimitError } from "./errors.js";
import {
  EnvelopeHeaderSchema,
  EnvelopeSchema,
  PartMetadataSchema,
  SealedKeySchema,
  type Envelope,
  type EnvelopeHeader,
  type SealedKey,
} from "./gen/sealpost/v1/envelope_pb.js";
import { KEY_ID_BYTES, KeyPurpose, type VerifiedKey } from "./keyrecords.js";
import type { PrivateKeys } from "./keys.js";
import { DEFAULT_LIMITS, maxEnvelopeBytes, type Limits } from "./limits.js";
import { concat, decodeUtf8, isControl, sameBytes, toHex, utf8 } from "./_internal/bytes.js";
import { U64_BYTES, framed, framedSha256, lp, readU64, type Item } from "./_internal/framing.js";
import {
  AEAD_KEY_BYTES,
  AEAD_NONCE_BYTES,
  AEAD_TAG_BYTES,
  ED25519_SIGNATURE_BYTES,
  SEALED_BOX_OVERHEAD,
  X25519_SECRET_BYTES,
  aeadDecrypt,
  aeadEncrypt,
  blake2b,
  ed25519Verify,
  equal,
  randomBytes,
  sealWithEphemeral,
  type Random,
} from "./_internal/sodium.js";
import {
  CURRENT_VERSION,
  canonicalBytes,
  checkVersion,
  decodeMessage,
  encodedSize,
  parseCanonical,
  rejectUnknownFields,
} from "./_internal/wire.js";

export type { Envelope, SealedKey };

export const ENVELOPE_VERSION = CURRENT_VERSION;
export const MESSAGE_ID_BYTES = 16;
export const DEK_BYTES = AEAD_KEY_BYTES;
export const NONCE_BYTES = AEAD_NONCE_BYTES;
export const TAG_BYTES = AEAD_TAG_BYTES;
export const KEY_COMMITMENT_BYTES = 32;
export const SEALED_DEK_BYTES = SEALED_BOX_OVERHEAD + DEK_BYTES; // 80
export const SIGNATURE_BYTES = ED25519_SIGNATURE_BYTES;
/** The U64 length in front of the file name in each part's plaintext (7.5). */
export const FILENAME_LENGTH_BYTES = U64_BYTES;
/** The content type of a message's text (part 0, no file name; docs/protocol.md 7.3). */
export const TEXT_PLAIN = "text/plain; charset=utf-8";

/** Key purposes that may send and receive envelopes. */
const MESSAGE_PURPOSES: ReadonlySet<KeyPurpose> = new Set([
  KeyPurpose.RELATIVE_DEVICE,
  KeyPurpose.MAILBOX,
]);

// Code points refused in file names (7.5): path separators and the bidirectional
// embeddings, overrides and isolates that can disguise an extension.
const FILENAME_FORBIDDEN: ReadonlySet<number> = new Set([
  0x2f, 0x5c, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069,
]);

/** One plaintext part: the text or an attachment. Printing never shows content or name. */
export class Part {
  constructor(
    readonly contentType: string,
    readonly data: Uint8Array,
    /** Empty for the text; the attachment's name otherwise (travels encrypted). */
    readonly filename = "",
  ) {}

  toString(): string {
    return `Part(contentType=${JSON.stringify(this.contentType)}, size=${String(this.data.length)})`;
  }

  toJSON(): { contentType: string; size: number } {
    return { contentType: this.contentType, size: this.data.length };
  }
}

/** A part as the signed header describes it, before decryption: never its file name. */
export interface PartInfo {
  readonly contentType: string;
  /** Bytes of the encrypted plaintext: file name length, file name and content. */
  readonly size: number;
  readonly nonce: Uint8Array;
}

/** The parsed signed header; `raw` holds the exact bytes that were signed. */
export interface Header {
  readonly version: number;
  readonly messageId: Uint8Array;
  readonly senderKeyId: Uint8Array;
  readonly recipientKeyIds: readonly Uint8Array[];
  /** The sender's clock when sealing, milliseconds since the epoch. */
  readonly createdAtMs: bigint;
  readonly parts: readonly PartInfo[];
  readonly keyCommitment: Uint8Array;
  readonly raw: Uint8Array;
}

/** An envelope whose version, limits, structure, sender, signature and time checked out. */
export interface VerifiedEnvelope {
  readonly header: Header;
  /** The envelope digest (7.8), for receipts and the transparency log. */
  readonly digest: Uint8Array;
}

/** A fully decrypted message: every part opened, or none is returned. */
export interface OpenedMessage {
  readonly header: Header;
  readonly parts: readonly Part[];
  readonly digest: Uint8Array;
}

/** What reading an envelope needs besides the envelope: the reference time and limits. */
export interface ReadOptions {
  /** The reference time (docs/protocol.md 5.6), milliseconds since the epoch. */
  readonly nowMs: bigint;
  readonly limits?: Limits;
}

// --- Building blocks (7.4, 7.5, 7.7, 7.8) ---

/** A part's AEAD plaintext, LP(UTF8(filename)) ‖ data, after the file name rules (7.5). */
export function encodePartPlaintext(part: Part, limits: Limits = DEFAULT_LIMITS): Uint8Array {
  return concat(lp(filenameBytes(part.filename, limits)), part.data);
}

/**
 * Split a decrypted part into file name and content; throw on any broken name rule, in the
 * order of 7.5 "Splitting on opening": the length fits, the limit, UTF-8, the characters.
 */
export function decodePartPlaintext(
  contentType: string,
  plaintext: Uint8Array,
  limits: Limits = DEFAULT_LIMITS,
): Part {
  if (plaintext.length < FILENAME_LENGTH_BYTES) {
    throw new FormatError("a part is shorter than its 8-byte file name length");
  }
  const size = readU64(plaintext, 0);
  if (size > BigInt(plaintext.length - FILENAME_LENGTH_BYTES)) {
    throw new FormatError("a part's file name length runs past the end of the part");
  }
  checkFilenameLength(Number(size), limits);
  const end = FILENAME_LENGTH_BYTES + Number(size);
  const filename = decodeUtf8(plaintext.subarray(FILENAME_LENGTH_BYTES, end));
  if (filename === undefined) throw new FormatError("file name is not valid UTF-8");
  checkFilenameCharacters(filename);
  return new Part(contentType, plaintext.slice(end), filename);
}

/** BLAKE2b-256 keyed with the DEK over Frame("sealpost/v1/envelope/key-commitment", message id). */
export function keyCommitment(dek: Uint8Array, messageId: Uint8Array): Uint8Array {
  if (dek.length !== DEK_BYTES) throw new EnvelopeError("a data key is 32 bytes");
  return blake2b(framed(domains.ENVELOPE_KEY_COMMITMENT, messageId), KEY_COMMITMENT_BYTES, dek);
}

/** Throw EnvelopeError unless `dek` is the key the sender committed to in `header` (7.4). */
export function verifyDekCommitment(header: Header, dek: Uint8Array): void {
  if (dek.length !== DEK_BYTES)
    throw new EnvelopeError("data key does not match the key commitment");
  if (!equal(keyCommitment(dek, header.messageId), header.keyCommitment)) {
    throw new EnvelopeError("data key does not match the key commitment");
  }
}

/** AEAD associated data of part `index`: binds it to this header and this position (7.5). */
export function partAssociatedData(headerBytes: Uint8Array, index: number): Uint8Array {
  return framed(domains.ENVELOPE_PART_AD, headerBytes, BigInt(index));
}

function* signedItems(
  headerBytes: Uint8Array,
  partCiphertexts: readonly Uint8Array[],
  sealedKeys: readonly SealedKey[],
): Generator<Item> {
  yield headerBytes;
  yield BigInt(partCiphertexts.length);
  yield* partCiphertexts;
  yield BigInt(sealedKeys.length);
  for (const sealed of sealedKeys) {
    yield sealed.keyId;
    yield sealed.sealedDek;
  }
}

/** The 32-byte digest the sender signs (7.7): header, counted ciphertexts, counted sealed keys. */
export function contentDigest(
  headerBytes: Uint8Array,
  partCiphertexts: readonly Uint8Array[],
  sealedKeys: readonly SealedKey[],
): Uint8Array {
  return framedSha256(
    domains.ENVELOPE_SIGNATURE,
    signedItems(headerBytes, partCiphertexts, sealedKeys),
  );
}

function digestOf(signed: Uint8Array, signature: Uint8Array): Uint8Array {
  return framedSha256(domains.ENVELOPE_DIGEST, [signed, signature]);
}

/**
 * The envelope digest naming it in receipts and the log (7.8); computed from the signed
 * content and the signature, never from a re-serialisation. Call it on verified envelopes.
 */
export function envelopeDigest(envelope: Envelope): Uint8Array {
  const signed = contentDigest(envelope.header, envelope.partCiphertexts, envelope.sealedKeys);
  return digestOf(signed, envelope.signature);
}

// --- Header and file name rules (7.2, 7.3, 7.5) ---

function checkContentType(value: string, limits: Limits): void {
  if (value.length === 0) throw new FormatError("a part has no content type");
  if (utf8(value).length > limits.maxContentTypeBytes) {
    throw new LimitError(
      `content type is longer than ${String(limits.maxContentTypeBytes)} bytes (maxContentTypeBytes)`,
    );
  }
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit < 0x20 || unit > 0x7e) throw new FormatError("content type is not printable ASCII");
  }
}

function checkFilenameLength(size: number, limits: Limits): void {
  if (size > limits.maxFilenameBytes) {
    throw new LimitError(
      `file name is longer than ${String(limits.maxFilenameBytes)} bytes (maxFilenameBytes)`,
    );
  }
}

function checkFilenameCharacters(value: string): void {
  if (value === "." || value === "..") throw new FormatError("file name is a directory reference");
  for (const ch of value) {
    const code = ch.codePointAt(0) ?? 0;
    if (FILENAME_FORBIDDEN.has(code) || isControl(code)) {
      throw new FormatError("file name contains a forbidden character");
    }
  }
}

/** The sender's side of the file name rules: UTF8(value), checked (7.5). */
function filenameBytes(value: string, limits: Limits): Uint8Array {
  const encoded = utf8(value); // FormatError for a lone surrogate
  checkFilenameLength(encoded.length, limits);
  checkFilenameCharacters(value);
  return encoded;
}

function checkRecipients(message: EnvelopeHeader, limits: Limits): Uint8Array[] {
  const recipients = message.recipientKeyIds;
  if (recipients.length === 0) throw new FormatError("envelope has no recipients");
  if (recipients.length > limits.maxRecipients) {
    throw new LimitError(
      `envelope has more than ${String(limits.maxRecipients)} recipients (maxRecipients)`,
    );
  }
  for (const keyId of recipients) {
    if (keyId.length !== KEY_ID_BYTES) throw new FormatError("recipient key id is not 32 bytes");
  }
  const seen = new Set(recipients.map(toHex));
  if (seen.size !== recipients.length || seen.has(toHex(message.senderKeyId))) {
    throw new FormatError("recipient key ids repeat or include the sender");
  }
  return recipients;
}

function checkPartSize(size: bigint, limits: Limits): void {
  if (size < BigInt(FILENAME_LENGTH_BYTES)) {
    throw new FormatError("a part is shorter than its 8-byte file name length");
  }
  if (size > BigInt(limits.maxPartBytes)) {
    throw new LimitError(
      `a part is larger than ${String(limits.maxPartBytes)} bytes (maxPartBytes)`,
    );
  }
}

function checkTotalSize(total: bigint, limits: Limits): void {
  if (total > BigInt(limits.maxTotalBytes)) {
    throw new LimitError(
      `parts together are larger than ${String(limits.maxTotalBytes)} bytes (maxTotalBytes)`,
    );
  }
}

function checkParts(message: EnvelopeHeader, limits: Limits): PartInfo[] {
  if (message.parts.length === 0) throw new FormatError("envelope has no parts");
  if (message.parts.length > limits.maxParts) {
    throw new LimitError(`envelope has more than ${String(limits.maxParts)} parts (maxParts)`);
  }
  let total = 0n;
  const parts: PartInfo[] = [];
  for (const meta of message.parts) {
    checkContentType(meta.contentType, limits);
    if (meta.nonce.length !== NONCE_BYTES) throw new FormatError("part nonce is not 24 bytes");
    checkPartSize(meta.size, limits);
    total += meta.size;
    checkTotalSize(total, limits);
    parts.push({ contentType: meta.contentType, size: Number(meta.size), nonce: meta.nonce });
  }
  return parts;
}

/** Apply the header rules in the documented order (7.10 steps 5 to 8). */
function headerFromMessage(message: EnvelopeHeader, raw: Uint8Array, limits: Limits): Header {
  checkVersion(message.version, "envelope header");
  if (message.messageId.length !== MESSAGE_ID_BYTES)
    throw new FormatError("message id is not 16 bytes");
  if (message.senderKeyId.length !== KEY_ID_BYTES) {
    throw new FormatError("sender key id is not 32 bytes");
  }
  if (message.keyCommitment.length !== KEY_COMMITMENT_BYTES) {
    throw new FormatError("key commitment is not 32 bytes");
  }
  if (message.createdAtMs <= 0n) throw new FormatError("created_at_ms is not a positive time");
  const recipientKeyIds = checkRecipients(message, limits);
  const parts = checkParts(message, limits);
  return {
    version: message.version,
    messageId: message.messageId,
    senderKeyId: message.senderKeyId,
    recipientKeyIds,
    createdAtMs: message.createdAtMs,
    parts,
    keyCommitment: message.keyCommitment,
    raw,
  };
}

/** Parse and check signed header bytes (canonical encoding, version, shapes, limits). */
export function parseHeader(headerBytes: Uint8Array, limits: Limits = DEFAULT_LIMITS): Header {
  if (headerBytes.length === 0) throw new FormatError("envelope has no header");
  if (headerBytes.length > limits.maxHeaderBytes) {
    throw new LimitError(
      `header is larger than ${String(limits.maxHeaderBytes)} bytes (maxHeaderBytes)`,
    );
  }
  const message = parseCanonical(EnvelopeHeaderSchema, headerBytes, "envelope header");
  return headerFromMessage(message, headerBytes, limits);
}

/**
 * Parse serialised envelope bytes (7.10 steps 2, 1 and 3: size before anything is parsed,
 * version, no unknown fields); no cryptography.
 */
export function parseEnvelope(data: Uint8Array, limits: Limits = DEFAULT_LIMITS): Envelope {
  const max = maxEnvelopeBytes(limits);
  if (data.length > max) throw new LimitError(`envelope is larger than ${String(max)} bytes`);
  const envelope = decodeMessage(EnvelopeSchema, data, "envelope");
  checkVersion(envelope.version, "envelope");
  rejectUnknownFields(EnvelopeSchema, envelope, "envelope");
  return envelope;
}

/** The bytes of an envelope, as sent to the gateway. */
export function serializeEnvelope(envelope: Envelope): Uint8Array {
  return toBinary(EnvelopeSchema, envelope);
}

// --- Verification (7.10) ---

/** Steps 10 to 12: one ciphertext per part, sealed keys in order, a 64-byte signature. */
function checkStructure(envelope: Envelope, header: Header): void {
  if (envelope.partCiphertexts.length !== header.parts.length) {
    throw new FormatError("number of ciphertexts differs from the header's parts");
  }
  header.parts.forEach((info, index) => {
    if (envelope.partCiphertexts[index]?.length !== info.size + TAG_BYTES) {
      throw new FormatError("a ciphertext's length differs from its part size");
    }
  });
  const expectedIds = [...header.recipientKeyIds, header.senderKeyId];
  if (envelope.sealedKeys.length !== expectedIds.length) {
    throw new FormatError("sealed keys do not match the recipients and the sender");
  }
  envelope.sealedKeys.forEach((sealed, index) => {
    const expected = expectedIds[index];
    if (expected === undefined || !sameBytes(sealed.keyId, expected)) {
      throw new FormatError("sealed keys do not match the recipients and the sender");
    }
    if (sealed.sealedDek.length !== SEALED_DEK_BYTES) {
      throw new FormatError("a sealed data key is not 80 bytes");
    }
  });
  if (envelope.signature.length !== SIGNATURE_BYTES) {
    throw new FormatError("signature is not 64 bytes");
  }
}

/** Steps 16 to 18. */
function checkTime(header: Header, sender: VerifiedKey, nowMs: bigint, limits: Limits): void {
  if (header.createdAtMs > nowMs + BigInt(limits.maxClockSkewMs)) {
    throw new LimitError("envelope is dated too far in the future (maxClockSkewMs)");
  }
  if (header.createdAtMs < nowMs - BigInt(limits.maxAgeMs)) {
    throw new LimitError("envelope is older than the maximum age (maxAgeMs)");
  }
  if (!sender.validAt(header.createdAtMs)) {
    throw new KeyRecordError("sender key was not valid when the envelope was created");
  }
}

/**
 * Check everything but the plaintext, in the order of 7.10: what the gateway does before
 * accepting a message, and the first half of every opening. `sender` is the verified key
 * record the header must name. Throws on the first failing check.
 */
export function verifyEnvelope(
  envelope: Envelope,
  sender: VerifiedKey,
  options: ReadOptions,
): VerifiedEnvelope {
  const limits = options.limits ?? DEFAULT_LIMITS;
  checkVersion(envelope.version, "envelope");
  const max = maxEnvelopeBytes(limits);
  if (encodedSize(EnvelopeSchema, envelope) > max) {
    throw new LimitError(`envelope is larger than ${String(max)} bytes`);
  }
  rejectUnknownFields(EnvelopeSchema, envelope, "envelope");
  const header = parseHeader(envelope.header, limits);
  if (header.version !== envelope.version) {
    throw new FormatError("header version differs from the envelope version");
  }
  checkStructure(envelope, header);
  if (!equal(header.senderKeyId, sender.id)) {
    throw new EnvelopeError("envelope is not from the expected sender key");
  }
  if (!MESSAGE_PURPOSES.has(sender.purpose)) {
    throw new KeyRecordError("sender key record is not a device or mailbox key");
  }
  const signed = contentDigest(envelope.header, envelope.partCiphertexts, envelope.sealedKeys);
  ed25519Verify(sender.signingKey, signed, envelope.signature);
  checkTime(header, sender, options.nowMs, limits);
  return { header, digest: digestOf(signed, envelope.signature) };
}

// --- Opening (7.11, 7.12) ---

function openSealedDek(
  envelope: Envelope,
  header: Header,
  keys: PrivateKeys,
  keyId: Uint8Array,
): Uint8Array {
  const addressed =
    sameBytes(keyId, header.senderKeyId) ||
    header.recipientKeyIds.some((id) => sameBytes(id, keyId));
  const sealed = envelope.sealedKeys.find((s) => sameBytes(s.keyId, keyId));
  if (!addressed || sealed === undefined) {
    throw new EnvelopeError("envelope is not addressed to this key");
  }
  const dek = keys.openSealed(sealed.sealedDek);
  verifyDekCommitment(header, dek);
  return dek;
}

/** Decrypt and split every part; the first failure throws, so no partial result escapes. */
function decryptParts(envelope: Envelope, header: Header, dek: Uint8Array, limits: Limits): Part[] {
  return header.parts.map((info, index) => {
    const ciphertext = envelope.partCiphertexts[index] ?? new Uint8Array(0);
    const associated = partAssociatedData(header.raw, index);
    const plaintext = aeadDecrypt(dek, info.nonce, ciphertext, associated);
    return decodePartPlaintext(info.contentType, plaintext, limits);
  });
}

/**
 * Verify the envelope, open the DEK sealed to `keyId` and check its commitment (7.11 steps
 * 1 to 4): what an institution terminal escrows. `keys` are the secret keys of record `keyId`.
 */
export function openDek(
  envelope: Envelope,
  keys: PrivateKeys,
  keyId: Uint8Array,
  sender: VerifiedKey,
  options: ReadOptions,
): Uint8Array {
  const verified = verifyEnvelope(envelope, sender, options);
  return openSealedDek(envelope, verified.header, keys, keyId);
}

/**
 * The review path (7.12): verify the envelope, check a DEK from the key server's escrow
 * against the commitment, then decrypt every part.
 */
export function decryptWithDek(
  envelope: Envelope,
  dek: Uint8Array,
  sender: VerifiedKey,
  options: ReadOptions,
): OpenedMessage {
  const limits = options.limits ?? DEFAULT_LIMITS;
  const verified = verifyEnvelope(envelope, sender, options);
  verifyDekCommitment(verified.header, dek);
  const parts = decryptParts(envelope, verified.header, dek, limits);
  return { header: verified.header, parts, digest: verified.digest };
}

/**
 * Open an envelope addressed to `keyId` (7.11): a reply to this device, or the device's
 * own sent copy (`keyId` is then the sender's). Verify, open the DEK, check the commitment,
 * decrypt every part. Any failure throws; no plaintext is returned unless every part opened.
 */
export function openEnvelope(
  envelope: Envelope,
  keys: PrivateKeys,
  keyId: Uint8Array,
  sender: VerifiedKey,
  options: ReadOptions,
): OpenedMessage {
  const limits = options.limits ?? DEFAULT_LIMITS;
  const verified = verifyEnvelope(envelope, sender, options);
  const dek = openSealedDek(envelope, verified.header, keys, keyId);
  const parts = decryptParts(envelope, verified.header, dek, limits);
  return { header: verified.header, parts, digest: verified.digest };
}

// --- Sealing (7.9) ---

/** What sealing needs besides the parts. */
export interface SealOptions {
  readonly senderKeys: PrivateKeys;
  /** The id of the sender's verified key record. */
  readonly senderKeyId: Uint8Array;
  /** Verified device or mailbox records, valid at `nowMs`. */
  readonly recipients: readonly VerifiedKey[];
  /** The sender's clock, milliseconds since the epoch; becomes created_at_ms. */
  readonly nowMs: bigint;
  /** Randomness; libsodium's randombytes_buf unless a test injects a stream. */
  readonly rng?: Random;
  readonly limits?: Limits;
}

function checkPartsToSeal(parts: readonly Part[], limits: Limits): Uint8Array[] {
  if (parts.length > limits.maxParts) {
    throw new LimitError(`envelope has more than ${String(limits.maxParts)} parts (maxParts)`);
  }
  let total = 0n;
  return parts.map((part) => {
    checkContentType(part.contentType, limits);
    const name = filenameBytes(part.filename, limits);
    const size = BigInt(FILENAME_LENGTH_BYTES + name.length + part.data.length);
    checkPartSize(size, limits);
    total += size;
    checkTotalSize(total, limits);
    return name;
  });
}

/**
 * Encrypt `parts` for `recipients` and the sender's own key, and sign (7.9).
 *
 * Recipient records, part metadata and sizes are checked before any randomness is drawn;
 * then `rng` is drawn in the documented order: message id, DEK, one nonce per part, one
 * ephemeral secret per sealed key. The header is checked with the reader's rules.
 */
export function sealEnvelope(parts: readonly Part[], options: SealOptions): Envelope {
  const limits = options.limits ?? DEFAULT_LIMITS;
  const rng = options.rng ?? randomBytes;
  for (const recipient of options.recipients) {
    if (!MESSAGE_PURPOSES.has(recipient.purpose)) {
      throw new KeyRecordError("a recipient key record is not a device or mailbox key");
    }
    if (!recipient.validAt(options.nowMs)) {
      throw new KeyRecordError("a recipient key record is not valid now");
    }
  }
  const names = checkPartsToSeal(parts, limits);
  const messageId = rng(MESSAGE_ID_BYTES);
  const dek = rng(DEK_BYTES);
  const headerMessage = create(EnvelopeHeaderSchema, {
    version: ENVELOPE_VERSION,
    messageId,
    senderKeyId: options.senderKeyId,
    recipientKeyIds: options.recipients.map((r) => r.id),
    createdAtMs: options.nowMs,
    parts: parts.map((part, index) =>
      create(PartMetadataSchema, {
        contentType: part.contentType,
        size: BigInt(FILENAME_LENGTH_BYTES + (names[index]?.length ?? 0) + part.data.length),
        nonce: rng(NONCE_BYTES),
      }),
    ),
    keyCommitment: keyCommitment(dek, messageId),
  });
  const headerBytes = canonicalBytes(EnvelopeHeaderSchema, headerMessage);
  const header = parseHeader(headerBytes, limits); // the reader's rules, on what we send
  const ciphertexts = parts.map((part, index) => {
    const name = names[index] ?? new Uint8Array(0);
    const nonce = header.parts[index]?.nonce ?? new Uint8Array(0);
    const plaintext = concat(lp(name), part.data);
    return aeadEncrypt(dek, nonce, plaintext, partAssociatedData(headerBytes, index));
  });
  const targets: [Uint8Array, Uint8Array][] = [
    ...options.recipients.map((r): [Uint8Array, Uint8Array] => [r.id, r.encryptionKey]),
    [options.senderKeyId, options.senderKeys.encryptionKey],
  ];
  const sealedKeys = targets.map(([keyId, publicKey]) =>
    create(SealedKeySchema, {
      keyId,
      sealedDek: sealWithEphemeral(publicKey, dek, rng(X25519_SECRET_BYTES)),
    }),
  );
  const signed = contentDigest(headerBytes, ciphertexts, sealedKeys);
  return create(EnvelopeSchema, {
    version: ENVELOPE_VERSION,
    header: headerBytes,
    partCiphertexts: ciphertexts,
    sealedKeys,
    signature: options.senderKeys.sign(signed),
  });
}

/** The message id of an envelope this device sealed, read from its own header. */
export function messageIdOf(envelope: Envelope, limits: Limits = DEFAULT_LIMITS): Uint8Array {
  return parseHeader(envelope.header, limits).messageId;
}

// --- The text and the attachments (docs/protocol.md 7.3) ---

/** The text of a message as its part 0: UTF-8, no file name, content type TEXT_PLAIN. */
export function textPart(text: string): Part {
  return new Part(TEXT_PLAIN, utf8(text));
}

function isTextPart(part: Part | undefined): part is Part {
  if (part === undefined) return false;
  const base = part.contentType.split(";")[0]?.trim().toLowerCase();
  return part.filename === "" && base === "text/plain";
}

/**
 * The text of an opened message: part 0 when it is an unnamed text/plain part (7.3, "Text
 * and attachments"), otherwise the empty string. FormatError when it is not valid UTF-8:
 * the text is refused, never repaired.
 */
export function messageText(parts: readonly Part[]): string {
  const first = parts[0];
  if (!isTextPart(first)) return "";
  const text = decodeUtf8(first.data);
  if (text === undefined) throw new FormatError("the text of the message is not valid UTF-8");
  return text;
}

/** The attachments of an opened message: every part after the text (all, if it has none). */
export function attachments(parts: readonly Part[]): Part[] {
  return isTextPart(parts[0]) ? parts.slice(1) : [...parts];
}
