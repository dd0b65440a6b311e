/**
 * Witness cosignatures of signed tree heads, and the rule a witness applies to each new
 * head (docs/transparency-log.md 5), as in the Python reference `crypto/cosignature.py`.
 *
 * A witness that has checked a head's signature and its consistency with every head it
 * saw before countersigns the exact TreeHead bytes, with the time it did so. The signed
 * digest commits to the witness's key id and the cosignature version too. Pure code.
 */

import * as domains from "./domains.js";
import {
  ForkError,
  FormatError,
  ProofError,
  SignatureError,
  VersionTooNewError,
  VersionTooOldError,
} from "./errors.js";
import type { ConsistencyProof, Cosignature } from "./gen/sealpost/v1/log_pb.js";
import { MAX_TIME_MS, verifyHeadConsistency, type VerifiedTreeHead } from "./logentry.js";
import { framedSha256 } from "./_internal/framing.js";
import {
  ED25519_PUBLIC_BYTES,
  ED25519_SIGNATURE_BYTES,
  ed25519PublicIsValid,
  ed25519Verify,
  equal,
} from "./_internal/sodium.js";

export type { Cosignature };

/** The cosignature format this code reads (Cosignature.version). */
export const COSIGNATURE_VERSION = 1;
/** The oldest format still accepted (0 is never valid). */
export const MIN_COSIGNATURE_VERSION = 1;
/** Witness key ids are 32 bytes, like key record ids. */
export const WITNESS_KEY_ID_BYTES = 32;
/** How far a newer head's timestamp may lie before the newest one's. */
export const DEFAULT_CLOCK_LEEWAY_MS = 60_000n;

/** A cosignature whose version, key id and signature have been checked. */
export interface VerifiedCosignature {
  readonly version: number;
  readonly witnessKeyId: Uint8Array;
  readonly cosignedAtMs: bigint;
}

/** The key id of a witness key without a key record: SHA-256(LP(domain) ‖ LP(public key)). */
export function witnessKeyId(publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== ED25519_PUBLIC_BYTES || !ed25519PublicIsValid(publicKey)) {
    throw new FormatError("a witness key is an Ed25519 public key of 32 bytes");
  }
  return framedSha256(domains.LOG_WITNESS_KEY_ID, [publicKey]);
}

/**
 * The 32 bytes a witness signs: SHA-256(LP(domain) ‖ U64(version) ‖ LP(witness key id) ‖
 * U64(cosigned_at_ms) ‖ LP(tree head bytes)).
 */
export function cosignatureDigest(
  treeHead: Uint8Array,
  witnessKeyIdBytes: Uint8Array,
  cosignedAtMs: bigint,
  version: number = COSIGNATURE_VERSION,
): Uint8Array {
  return framedSha256(domains.LOG_COSIGNATURE, [
    BigInt(version),
    witnessKeyIdBytes,
    cosignedAtMs,
    treeHead,
  ]);
}

/**
 * Check a cosignature of the exact TreeHead bytes by the witness key expected. Order of
 * docs/transparency-log.md 5: version, key id, fields, signature. The head itself is
 * checked separately (verifyTreeHead).
 */
export function verifyCosignature(
  cosignature: Cosignature,
  treeHead: Uint8Array,
  expected: { readonly witnessKeyId: Uint8Array; readonly publicKey: Uint8Array },
): VerifiedCosignature {
  if (cosignature.version < MIN_COSIGNATURE_VERSION) {
    throw new VersionTooOldError(
      `cosignature version ${String(cosignature.version)} is not accepted`,
    );
  }
  if (cosignature.version > COSIGNATURE_VERSION) {
    throw new VersionTooNewError(
      `cosignature version ${String(cosignature.version)} is newer than this code knows`,
    );
  }
  if (!equal(cosignature.witnessKeyId, expected.witnessKeyId)) {
    throw new SignatureError("cosignature is by another witness key than the one expected");
  }
  if (cosignature.witnessKeyId.length !== WITNESS_KEY_ID_BYTES) {
    throw new FormatError(
      `witness key id is ${String(cosignature.witnessKeyId.length)} bytes, expected 32`,
    );
  }
  if (cosignature.cosignedAtMs < 0n || cosignature.cosignedAtMs > MAX_TIME_MS) {
    throw new FormatError(
      `cosignature time ${String(cosignature.cosignedAtMs)} is outside [0, 2**63)`,
    );
  }
  if (cosignature.signature.length !== ED25519_SIGNATURE_BYTES) {
    throw new SignatureError("cosignature is not an Ed25519 signature (64 bytes)");
  }
  const digest = cosignatureDigest(
    treeHead,
    cosignature.witnessKeyId,
    cosignature.cosignedAtMs,
    cosignature.version,
  );
  ed25519Verify(expected.publicKey, digest, cosignature.signature);
  return {
    version: cosignature.version,
    witnessKeyId: cosignature.witnessKeyId,
    cosignedAtMs: cosignature.cosignedAtMs,
  };
}

/** How a verified head relates to the newest head a client or witness holds. */
export type Successor = "newer" | "same" | "older";

/**
 * How `head` relates to `newest` (the witness rule, docs/transparency-log.md 5); ForkError
 * when both cannot be of one history. `proof` is the consistency proof from the smaller
 * tree to the larger (unused when the sizes are equal). A newer head whose timestamp lies
 * more than `clockLeewayMs` before the newest one's is refused too.
 */
export function checkSuccessor(
  newest: VerifiedTreeHead,
  head: VerifiedTreeHead,
  proof: ConsistencyProof | undefined,
  clockLeewayMs: bigint = DEFAULT_CLOCK_LEEWAY_MS,
): Successor {
  if (head.treeSize === newest.treeSize) {
    if (!equal(head.rootHash, newest.rootHash)) {
      throw new ForkError(
        `two signed heads of size ${String(head.treeSize)} carry different roots: ` +
          "the log key signed two histories",
      );
    }
    return "same";
  }
  if (proof === undefined) {
    throw new ProofError("a consistency proof is needed between heads of different sizes");
  }
  const [small, large] = newest.treeSize < head.treeSize ? [newest, head] : [head, newest];
  try {
    verifyHeadConsistency(small, large, proof);
  } catch (cause) {
    if (!(cause instanceof ProofError)) throw cause;
    throw new ForkError(
      `the head of size ${String(large.treeSize)} does not extend the head of size ` +
        `${String(small.treeSize)}: ${cause.message}`,
      { cause },
    );
  }
  if (large === newest) return "older";
  if (head.timestampMs + clockLeewayMs < newest.timestampMs) {
    throw new ForkError(
      `the head of size ${String(head.treeSize)} was signed at ${String(head.timestampMs)}, ` +
        `before the smaller head of size ${String(newest.treeSize)} (${String(newest.timestampMs)})`,
    );
  }
  return "newer";
}
