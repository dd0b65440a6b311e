/**
 * Envelope limits in one place (docs/protocol.md 8, "Limits"), with the defaults every
 * Sealpost component shares. Exceeding one throws LimitError naming the limit.
 */

const KIB = 1024;
const MIB = 1024 * KIB;
const MINUTE_MS = 60 * 1000;
const DAY_MS = 24 * 60 * MINUTE_MS;

// Bytes a serialised Envelope adds around its parts, per item (docs/protocol.md 8).
const PART_FRAMING = 16 + 6; // AEAD tag, tag byte, length varint of up to 5 bytes
const SEALED_KEY_FRAMING = 118; // SealedKey with 32-byte id and 80-byte sealed DEK, framed
const FIXED_FRAMING = 2 + 6 + 66; // version, header tag and length, 64-byte signature framed

/** Bounds on one envelope; sizes in bytes, times in milliseconds. */
export interface Limits {
  /** Parts per message (the text and its attachments). */
  readonly maxParts: number;
  /** Encrypted plaintext bytes of one part: 8-byte name length, file name and content. */
  readonly maxPartBytes: number;
  /** Those bytes for all parts together. */
  readonly maxTotalBytes: number;
  /** Recipient keys, not counting the sender's own copy. */
  readonly maxRecipients: number;
  /** UTF-8 bytes of a part's content type. */
  readonly maxContentTypeBytes: number;
  /** UTF-8 bytes of a part's file name (encrypted with the part; checked on seal and open). */
  readonly maxFilenameBytes: number;
  /** Bytes of the serialised header. */
  readonly maxHeaderBytes: number;
  /** How far created_at_ms may lie after the reference time. */
  readonly maxClockSkewMs: number;
  /** How far created_at_ms may lie before the reference time. */
  readonly maxAgeMs: number;
}

/** The limits every component uses unless configured otherwise. */
export const DEFAULT_LIMITS: Limits = Object.freeze({
  maxParts: 20,
  maxPartBytes: 16 * MIB,
  maxTotalBytes: 25 * MIB,
  maxRecipients: 16,
  maxContentTypeBytes: 255,
  maxFilenameBytes: 255,
  maxHeaderBytes: 64 * KIB,
  maxClockSkewMs: 5 * MINUTE_MS,
  maxAgeMs: 7 * DAY_MS,
});

/** Default limits with some replaced; refuses nonsensical configurations at once. */
export function makeLimits(overrides: Partial<Limits> = {}): Limits {
  const limits: Limits = Object.freeze({ ...DEFAULT_LIMITS, ...overrides });
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`Limits.${name} must be a non-negative integer`);
    }
  }
  if (Math.min(limits.maxParts, limits.maxRecipients, limits.maxContentTypeBytes) < 1) {
    throw new RangeError("Limits allow no parts, recipients or content types");
  }
  if (limits.maxPartBytes > limits.maxTotalBytes) {
    throw new RangeError("Limits.maxPartBytes exceeds maxTotalBytes");
  }
  if (limits.maxTotalBytes >= 2 ** 32) {
    throw new RangeError("Limits.maxTotalBytes must stay below 4 GiB");
  }
  return limits;
}

/** The largest serialised Envelope the other limits allow; checked before parsing. */
export function maxEnvelopeBytes(limits: Limits): number {
  return (
    limits.maxTotalBytes +
    limits.maxParts * PART_FRAMING +
    limits.maxHeaderBytes +
    (limits.maxRecipients + 1) * SEALED_KEY_FRAMING +
    FIXED_FRAMING
  );
}
