/**
 * The transparency log's Merkle tree, ported from RFC 9162 section 2.1 (SHA-256):
 * hashing and the verification of inclusion and consistency proofs, as the Python
 * reference `crypto/merkle.py` does it (docs/transparency-log.md 1 and 3). Sizes and
 * indices are bigint: the log's are uint64. Verifiers return nothing or throw ProofError.
 */

import { ProofError } from "./errors.js";
import { concat } from "./_internal/bytes.js";
import { SHA256_BYTES, equal, sha256 } from "./_internal/sodium.js";

/** RFC 9162 section 2.1.1: a leaf hash is HASH(0x00 ‖ leaf data). */
export const LEAF_PREFIX = 0x00;
/** RFC 9162 section 2.1.1: an interior node hash is HASH(0x01 ‖ left ‖ right). */
export const NODE_PREFIX = 0x01;
/** Every hash in the tree is one SHA-256 output. */
export const HASH_SIZE = SHA256_BYTES;
/** Tree sizes and indices travel as uint64. */
export const MAX_TREE_SIZE = (1n << 64n) - 1n;

/** RFC 9162 section 2.1.1: the hash of an empty list is the hash of an empty string. */
export function emptyRoot(): Uint8Array {
  return sha256(new Uint8Array(0));
}

/** RFC 9162 section 2.1.1: MTH({d(0)}) = HASH(0x00 ‖ d(0)). */
export function leafHash(data: Uint8Array): Uint8Array {
  return sha256(concat(Uint8Array.of(LEAF_PREFIX), data));
}

/** RFC 9162 section 2.1.1: HASH(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n])). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(concat(Uint8Array.of(NODE_PREFIX), left, right));
}

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

function popcount(n: bigint): number {
  let count = 0;
  for (let v = n; v > 0n; v >>= 1n) count += Number(v & 1n);
  return count;
}

/** RFC 9162 section 2.1.1: MTH(D[n]) of leaf data, computed recursively (small trees). */
export function treeHash(leaves: readonly Uint8Array[]): Uint8Array {
  const hashes = leaves.map(leafHash);
  const mth = (start: number, end: number): Uint8Array => {
    const n = end - start;
    if (n === 0) return emptyRoot();
    if (n === 1) return hashes[start] ?? emptyRoot();
    let k = 1;
    while (k * 2 < n) k *= 2;
    return nodeHash(mth(start, start + k), mth(start + k, end));
  };
  return mth(0, hashes.length);
}

/** Exact number of hashes in PATH(index, D[size]) (RFC 9162 section 2.1.3.1). */
export function inclusionProofSize(index: bigint, size: bigint): number {
  const inner = bitLength(index ^ (size - 1n));
  return inner + popcount(index >> BigInt(inner));
}

/** Exact number of hashes in PROOF(first, D[second]) for 0 < first < second. */
export function consistencyProofSize(first: bigint, second: bigint): number {
  const shift = bitLength(first & -first) - 1;
  const seed = first === 1n << BigInt(shift) ? 0 : 1;
  return seed + inclusionProofSize(first - 1n, second) - shift;
}

function checkHash(name: string, value: Uint8Array): void {
  if (value.length !== HASH_SIZE) {
    throw new ProofError(`${name} is ${String(value.length)} bytes, expected ${String(HASH_SIZE)}`);
  }
}

function checkPath(proof: readonly Uint8Array[]): void {
  proof.forEach((value, position) => {
    checkHash(`proof hash ${String(position)}`, value);
  });
}

function checkLength(kind: string, got: number, want: number, what: string): void {
  if (got > want) {
    throw new ProofError(
      `${kind} proof too long: ${String(got)} hashes, ${what} has ${String(want)}`,
    );
  }
  if (got < want) {
    throw new ProofError(
      `${kind} proof too short: ${String(got)} hashes, ${what} has ${String(want)}`,
    );
  }
}

function checkTreeSize(name: string, size: bigint): void {
  if (size < 0n || size > MAX_TREE_SIZE) {
    throw new ProofError(`${name} ${String(size)} is outside [0, 2**64)`);
  }
}

/** RFC 9162 section 2.1.3.2 steps 1 to 4: the root an inclusion proof leads to. */
export function rootFromInclusionProof(
  leaf: Uint8Array,
  index: bigint,
  size: bigint,
  proof: readonly Uint8Array[],
): Uint8Array {
  checkTreeSize("tree size", size);
  if (index < 0n || index >= size) {
    // step 1
    throw new ProofError(
      `leaf index ${String(index)} is out of range for tree size ${String(size)}`,
    );
  }
  checkHash("leaf hash", leaf);
  checkPath(proof);
  const want = inclusionProofSize(index, size);
  checkLength(
    "inclusion",
    proof.length,
    want,
    `leaf ${String(index)} in a tree of size ${String(size)}`,
  );
  let fn = index; // step 2
  let sn = size - 1n;
  let r = leaf; // step 3
  for (const p of proof) {
    // step 4
    if (sn === 0n) throw new ProofError("inclusion proof too long"); // 4a
    if ((fn & 1n) === 1n || fn === sn) {
      // 4b
      r = nodeHash(p, r);
      while (fn !== 0n && (fn & 1n) === 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n; // 4c
    sn >>= 1n;
  }
  if (sn !== 0n) throw new ProofError("inclusion proof too short"); // step 5, first half
  return r;
}

/** RFC 9162 section 2.1.3.2: throw ProofError unless `proof` puts the leaf hash in `root`. */
export function verifyInclusion(
  leaf: Uint8Array,
  index: bigint,
  size: bigint,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): void {
  checkHash("root hash", root);
  const computed = rootFromInclusionProof(leaf, index, size, proof);
  if (!equal(computed, root)) {
    // step 5
    throw new ProofError(
      `inclusion proof for leaf ${String(index)} in a tree of size ${String(size)} does not lead ` +
        "to the expected root (wrong leaf, index, size, path or root)",
    );
  }
}

/** RFC 9162 section 2.1.4.2 steps 1 to 6 for 0 < first < second: the (fr, sr) a proof yields. */
function rootsFromConsistencyProof(
  firstSize: bigint,
  secondSize: bigint,
  firstRoot: Uint8Array,
  proof: readonly Uint8Array[],
): [Uint8Array, Uint8Array] {
  const want = consistencyProofSize(firstSize, secondSize);
  checkLength(
    "consistency",
    proof.length,
    want,
    `a proof from size ${String(firstSize)} to ${String(secondSize)}`,
  );
  const path = [...proof];
  if (path.length === 0) throw new ProofError("consistency proof is empty"); // step 1
  if ((firstSize & (firstSize - 1n)) === 0n) path.unshift(firstRoot); // step 2
  let fn = firstSize - 1n; // step 3
  let sn = secondSize - 1n;
  while ((fn & 1n) === 1n) {
    // step 4
    fn >>= 1n;
    sn >>= 1n;
  }
  const [seed, ...rest] = path;
  if (seed === undefined) throw new ProofError("consistency proof is empty");
  let fr = seed; // step 5
  let sr = seed;
  for (const c of rest) {
    // step 6
    if (sn === 0n) throw new ProofError("consistency proof too long"); // 6a
    if ((fn & 1n) === 1n || fn === sn) {
      // 6b
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn !== 0n && (fn & 1n) === 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n; // 6c
    sn >>= 1n;
  }
  if (sn !== 0n) throw new ProofError("consistency proof too short"); // step 7, last condition
  return [fr, sr];
}

/**
 * RFC 9162 section 2.1.4.2: throw ProofError unless the first tree is a prefix of the
 * second. Sizes 0 and equal sizes, which the RFC's algorithm leaves out, need an empty
 * proof (docs/transparency-log.md 3).
 */
export function verifyConsistency(
  firstSize: bigint,
  secondSize: bigint,
  firstRoot: Uint8Array,
  secondRoot: Uint8Array,
  proof: readonly Uint8Array[],
): void {
  checkTreeSize("first size", firstSize);
  checkTreeSize("second size", secondSize);
  checkHash("first root", firstRoot);
  checkHash("second root", secondRoot);
  checkPath(proof);
  if (firstSize > secondSize) {
    throw new ProofError(
      `first size ${String(firstSize)} exceeds second size ${String(secondSize)}`,
    );
  }
  if (firstSize === secondSize) {
    checkLength("consistency", proof.length, 0, "a proof between equal sizes");
    if (!equal(firstRoot, secondRoot)) {
      throw new ProofError(`two different roots for the same tree size ${String(firstSize)}`);
    }
    return;
  }
  if (firstSize === 0n) {
    checkLength("consistency", proof.length, 0, "a proof from the empty tree");
    if (!equal(firstRoot, emptyRoot())) {
      throw new ProofError("first root is not the empty tree's hash for tree size 0");
    }
    return;
  }
  const [fr, sr] = rootsFromConsistencyProof(firstSize, secondSize, firstRoot, proof);
  // Step 7: both computed roots must match the ones given.
  if (!equal(fr, firstRoot)) {
    throw new ProofError(
      `consistency proof does not lead to the first root (size ${String(firstSize)}): ` +
        "wrong first root, sizes or path",
    );
  }
  if (!equal(sr, secondRoot)) {
    throw new ProofError(
      `consistency proof does not lead to the second root (size ${String(secondSize)}): ` +
        "wrong second root, sizes or path",
    );
  }
}
