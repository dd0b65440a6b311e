// tests/vectors/merkle-*.json and cosignature-v1.json: trees, proofs, leaves, tree heads
// and cosignatures; every broken case is refused with its error (ProofError for proofs).
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";

import { create } from "@bufbuild/protobuf";

import * as sp from "../src/index.js";
import { CosignatureSchema, SignedTreeHeadSchema } from "../src/gen/sealpost/v1/log_pb.js";
import { h, hex, loadVectors, nodeSha256 } from "./helpers.js";

interface InclusionCase {
  description: string;
  leaf_hash: string;
  leaf_index: number;
  tree_size: number;
  path: string[];
  root: string;
  valid: boolean;
}
interface ConsistencyCase {
  description: string;
  first_size: number;
  second_size: number;
  first_root: string;
  second_root: string;
  path: string[];
  valid: boolean;
}
interface Tree {
  name: string;
  leaves: string[];
  roots: { tree_size: number; root: string }[];
  inclusion: InclusionCase[];
  consistency: ConsistencyCase[];
}
interface LeafVectors {
  actions: Record<string, number>;
  valid: {
    description: string;
    encoding: string;
    leaf_hash: string;
    event: {
      action: string;
      action_code: number;
      actor: string;
      time_ms: number | string;
      subjects: [string, string][];
      extra: Record<string, string>;
      version: number;
    };
  }[];
  invalid: { description: string; encoding: string; error: string }[];
}
interface HeadVectors {
  log_key_id: string;
  log_public_key: string;
  log_seed: string;
  signature_domain: string;
  valid: {
    description: string;
    tree_head: string;
    signature: string;
    signing_digest: string;
    tree_size: number;
    root: string;
    timestamp_ms: number;
  }[];
  invalid: { description: string; tree_head: string; signature: string; error: string }[];
}
interface CosignatureCase {
  description: string;
  version: number;
  witness_key_id: string;
  expected_witness_key_id: string;
  cosigned_at_ms: number;
  signature: string;
  public_key: string;
  tree_head: string;
  digest?: string;
  error?: string;
}
interface CosignatureVectors {
  cosignature_domain: string;
  witness_key_id_domain: string;
  witness_public_key: string;
  witness_key_id: string;
  witness_seed: string;
  valid: CosignatureCase[];
  invalid: CosignatureCase[];
}

const counts = new Map<string, { valid: number; invalid: number }>();
function count(file: string, valid: boolean): void {
  const entry = counts.get(file) ?? { valid: 0, invalid: 0 };
  if (valid) entry.valid += 1;
  else entry.invalid += 1;
  counts.set(file, entry);
}

function errorClass(name: string): unknown {
  const value = (sp as unknown as Record<string, unknown>)[name];
  assert.equal(typeof value, "function", name);
  return value;
}

function throwsExactly(action: () => unknown, name: string): void {
  const expected = errorClass(name);
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof sp.CryptoError, String(error));
    assert.equal(error.constructor, expected, `${error.name}: ${error.message}`);
    return true;
  });
}

/** The RFC 9162 definitions, recursively, for an independent check of roots and paths. */
function refMth(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return nodeSha256();
  if (leaves.length === 1) return nodeSha256(Uint8Array.of(0), leaves[0] ?? new Uint8Array());
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeSha256(Uint8Array.of(1), refMth(leaves.slice(0, k)), refMth(leaves.slice(k)));
}

describe("merkle-trees.json", () => {
  const trees = (loadVectors("merkle-trees.json") as { trees: Tree[] }).trees;
  assert.deepEqual(
    trees.map((t) => t.name),
    ["ct-8", "sealpost-70"],
  );
  for (const tree of trees) {
    const leaves = tree.leaves.map(h);
    test(`${tree.name}: roots`, () => {
      for (const { tree_size: size, root } of tree.roots) {
        assert.equal(hex(sp.merkle.treeHash(leaves.slice(0, size))), root);
        assert.equal(hex(refMth(leaves.slice(0, size))), root);
      }
    });
    for (const [index, c] of tree.inclusion.entries()) {
      test(`${tree.name} inclusion ${String(index)}: ${c.description}`, () => {
        const verify = (): void => {
          sp.merkle.verifyInclusion(
            h(c.leaf_hash),
            BigInt(c.leaf_index),
            BigInt(c.tree_size),
            c.path.map(h),
            h(c.root),
          );
        };
        if (c.valid) {
          verify();
          assert.equal(
            sp.merkle.inclusionProofSize(BigInt(c.leaf_index), BigInt(c.tree_size)),
            c.path.length,
          );
        } else {
          throwsExactly(verify, "ProofError");
        }
        count("merkle-trees.json", c.valid);
      });
    }
    for (const [index, c] of tree.consistency.entries()) {
      test(`${tree.name} consistency ${String(index)}: ${c.description}`, () => {
        const verify = (): void => {
          sp.merkle.verifyConsistency(
            BigInt(c.first_size),
            BigInt(c.second_size),
            h(c.first_root),
            h(c.second_root),
            c.path.map(h),
          );
        };
        if (c.valid) verify();
        else throwsExactly(verify, "ProofError");
        count("merkle-trees.json", c.valid);
      });
    }
  }
});

describe("merkle-leaves.json", () => {
  const document = loadVectors("merkle-leaves.json") as LeafVectors;
  test("the action codes are version 1's", () => {
    assert.deepEqual(document.actions, { ...sp.LogAction });
  });
  for (const c of document.valid) {
    test(`valid leaf: ${c.description}`, () => {
      const data = h(c.encoding);
      const event = sp.decodeEvent(data);
      assert.equal(sp.logActionName(event.action), c.event.action);
      assert.equal(event.action, c.event.action_code);
      assert.equal(event.actor, c.event.actor);
      assert.equal(event.timeMs, BigInt(c.event.time_ms));
      assert.deepEqual(event.subjects, c.event.subjects);
      assert.deepEqual(Object.fromEntries(event.extra), c.event.extra);
      assert.equal(hex(sp.encodeEvent(event)), c.encoding);
      assert.equal(hex(sp.merkle.leafHash(data)), c.leaf_hash);
      // Building the same event from its fields, extra fields in any order, gives the bytes.
      const rebuilt = sp.makeLogEvent({
        action: c.event.action_code,
        actor: c.event.actor,
        timeMs: BigInt(c.event.time_ms),
        subjects: c.event.subjects,
        extra: Object.fromEntries(Object.entries(c.event.extra).reverse()),
      });
      assert.equal(hex(sp.encodeEvent(rebuilt)), c.encoding);
      count("merkle-leaves.json", true);
    });
  }
  for (const c of document.invalid) {
    test(`invalid leaf: ${c.description} -> ${c.error}`, () => {
      throwsExactly(() => sp.decodeEvent(h(c.encoding)), c.error);
      count("merkle-leaves.json", false);
    });
  }
});

describe("merkle-tree-heads.json", () => {
  const document = loadVectors("merkle-tree-heads.json") as HeadVectors;
  const publicKey = h(document.log_public_key);
  const keyId = h(document.log_key_id);
  test("the log key and the domain are the document's", () => {
    assert.equal(document.signature_domain, "sealpost/v1/log/tree-head");
    assert.equal(
      hex(sp.domains.LOG_TREE_HEAD),
      Buffer.from(document.signature_domain).toString("hex"),
    );
  });
  for (const c of document.valid) {
    test(`valid head: ${c.description}`, () => {
      const sth = create(SignedTreeHeadSchema, {
        treeHead: h(c.tree_head),
        signature: h(c.signature),
      });
      const head = sp.verifyTreeHead(sth, publicKey, keyId);
      assert.equal(head.treeSize, BigInt(c.tree_size));
      assert.equal(hex(head.rootHash), c.root);
      assert.equal(head.timestampMs, BigInt(c.timestamp_ms));
      assert.equal(hex(sp.treeHeadSigningDigest(sth.treeHead)), c.signing_digest);
      count("merkle-tree-heads.json", true);
    });
  }
  for (const c of document.invalid) {
    test(`invalid head: ${c.description} -> ${c.error}`, () => {
      const sth = create(SignedTreeHeadSchema, {
        treeHead: h(c.tree_head),
        signature: h(c.signature),
      });
      throwsExactly(() => sp.verifyTreeHead(sth, publicKey, keyId), c.error);
      count("merkle-tree-heads.json", false);
    });
  }
});

describe("cosignature-v1.json", () => {
  const document = loadVectors("cosignature-v1.json") as CosignatureVectors;
  const verify = (c: CosignatureCase): sp.VerifiedCosignature =>
    sp.verifyCosignature(
      create(CosignatureSchema, {
        version: c.version,
        witnessKeyId: h(c.witness_key_id),
        cosignedAtMs: BigInt(c.cosigned_at_ms),
        signature: h(c.signature),
      }),
      h(c.tree_head),
      { witnessKeyId: h(c.expected_witness_key_id), publicKey: h(c.public_key) },
    );
  test("domains and the auditor's witness key id are the document's", () => {
    assert.equal(
      hex(sp.domains.LOG_COSIGNATURE),
      Buffer.from(document.cosignature_domain).toString("hex"),
    );
    assert.equal(
      hex(sp.domains.LOG_WITNESS_KEY_ID),
      Buffer.from(document.witness_key_id_domain).toString("hex"),
    );
    assert.equal(hex(sp.witnessKeyId(h(document.witness_public_key))), document.witness_key_id);
  });
  for (const c of document.valid) {
    test(`valid cosignature: ${c.description}`, () => {
      const verified = verify(c);
      assert.equal(verified.cosignedAtMs, BigInt(c.cosigned_at_ms));
      assert.equal(hex(verified.witnessKeyId), c.witness_key_id);
      const digest = sp.cosignatureDigest(
        h(c.tree_head),
        h(c.witness_key_id),
        BigInt(c.cosigned_at_ms),
      );
      assert.equal(hex(digest), c.digest);
      count("cosignature-v1.json", true);
    });
  }
  for (const c of document.invalid) {
    test(`invalid cosignature: ${c.description} -> ${String(c.error)}`, () => {
      throwsExactly(() => verify(c), c.error ?? "");
      count("cosignature-v1.json", false);
    });
  }
});

after(() => {
  for (const [file, { valid, invalid }] of counts) {
    console.log(`${file}: ${String(valid)} valid, ${String(invalid)} invalid cases pass`);
  }
});
