// The keyring of tests/vectors/envelope-v1.json, verified, for tests beyond the vectors;
// and reference RFC 9162 proof generators (the library only verifies proofs).
import { create } from "@bufbuild/protobuf";

import * as sp from "../src/index.js";
import { SignedTreeHeadSchema, TreeHeadSchema } from "../src/gen/sealpost/v1/log_pb.js";
import { ed25519Sign } from "../src/_internal/sodium.js";
import { canonicalBytes } from "../src/_internal/wire.js";
import { h, loadVectors } from "./helpers.js";

interface Holder {
  purpose: string;
  x25519_secret: string;
  ed25519_seed: string;
  record: string;
  record_id: string;
}
interface Keyring {
  directory: Holder & { signing_key: string };
  keys: Record<string, Holder>;
  revocations: { of: string; revocation: string }[];
  valid: { name: string; envelope: string; message_id: string; envelope_digest: string }[];
}

export const KEYRING = loadVectors("envelope-v1.json") as Keyring;
/** The vectors' reference time: 2026-01-01T00:00:00Z. */
export const NOW = 1767225600000n;

export function holder(name: string): Holder {
  const entry = KEYRING.keys[name];
  if (entry === undefined) throw new Error(`no key ${name}`);
  return entry;
}

export function revocations(): sp.KeyRevocation[] {
  return KEYRING.revocations.map((r) => sp.parseKeyRevocation(h(r.revocation)));
}

export function directory(nowMs: bigint = NOW): sp.VerifiedKey {
  return sp.verifyDirectoryRecord(
    sp.parseKeyRecord(h(KEYRING.directory.record)),
    new sp.DirectoryPin(h(KEYRING.directory.signing_key)),
    { nowMs, revocations: revocations() },
  );
}

export function purposeOf(name: string): sp.KeyPurpose {
  const short = holder(name).purpose.replace("KEY_PURPOSE_", "") as keyof typeof sp.KeyPurpose;
  return sp.KeyPurpose[short];
}

export function verified(name: string, nowMs: bigint = NOW): sp.VerifiedKey {
  return sp.verifyKeyRecord(sp.parseKeyRecord(h(holder(name).record)), directory(nowMs), {
    nowMs,
    revocations: revocations(),
    purpose: purposeOf(name),
  });
}

export function secrets(name: string): sp.PrivateKeys {
  const entry = holder(name);
  return new sp.PrivateKeys(h(entry.x25519_secret), h(entry.ed25519_seed));
}

/** RFC 9162 section 2.1.3.1: PATH(m, D[n]) over leaf hashes, bottom-up. */
export function refPath(m: number, leaves: Uint8Array[]): Uint8Array[] {
  if (leaves.length <= 1) return [];
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  const mth = (part: Uint8Array[]): Uint8Array => sp.merkle.treeHash(part);
  if (m < k) return [...refPath(m, leaves.slice(0, k)), mth(leaves.slice(k))];
  return [...refPath(m - k, leaves.slice(k)), mth(leaves.slice(0, k))];
}

/** RFC 9162 section 2.1.4.1: PROOF(m, D[n]). */
export function refProof(m: number, leaves: Uint8Array[]): Uint8Array[] {
  const sub = (mm: number, part: Uint8Array[], whole: boolean): Uint8Array[] => {
    if (mm === part.length) return whole ? [] : [sp.merkle.treeHash(part)];
    let k = 1;
    while (k * 2 < part.length) k *= 2;
    if (mm <= k) return [...sub(mm, part.slice(0, k), whole), sp.merkle.treeHash(part.slice(k))];
    return [...sub(mm - k, part.slice(k), false), sp.merkle.treeHash(part.slice(0, k))];
  };
  return m === 0 || m === leaves.length ? [] : sub(m, leaves, true);
}

interface HeadVectors {
  log_key_id: string;
  log_public_key: string;
  log_seed: string;
}
const HEADS = loadVectors("merkle-tree-heads.json") as HeadVectors;

/** The test log key of merkle-tree-heads.json as a verified LOG record would carry it. */
export function logKey(
  notBefore = 1735689600n,
  notAfter = 1798761600n,
  purpose: sp.KeyPurpose = sp.KeyPurpose.LOG,
): sp.VerifiedKey {
  return new sp.VerifiedKey(
    h(HEADS.log_key_id),
    purpose,
    "log",
    new Uint8Array(0),
    h(HEADS.log_public_key),
    notBefore,
    notAfter,
    directory().id,
  );
}

/** A signed tree head over `leaves` by the test log key (or another seed). */
export function signHead(
  leaves: Uint8Array[],
  timestampMs: bigint,
  seed: Uint8Array = h(HEADS.log_seed),
): sp.SignedTreeHead {
  const treeHead = canonicalBytes(
    TreeHeadSchema,
    create(TreeHeadSchema, {
      version: 1,
      treeSize: BigInt(leaves.length),
      rootHash: sp.merkle.treeHash(leaves),
      timestampMs,
      logKeyId: h(HEADS.log_key_id),
    }),
  );
  return create(SignedTreeHeadSchema, {
    treeHead,
    signature: ed25519Sign(seed, sp.treeHeadSigningDigest(treeHead)),
  });
}
