// Receipts, releases and the witness rule, on a small log signed with the test log key.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { create } from "@bufbuild/protobuf";

import * as sp from "../src/index.js";
import {
  ConsistencyProofSchema,
  InclusionProofSchema,
  LogEntrySchema,
  ReceiptSchema,
} from "../src/gen/sealpost/v1/log_pb.js";
import { KEYRING, logKey, refPath, refProof, signHead } from "./fixtures.js";
import { h } from "./helpers.js";

const vector = KEYRING.valid[0];
assert.ok(vector);
const MESSAGE_ID = h(vector.message_id);
const DIGEST = h(vector.envelope_digest);
const ACCEPTED = 1767225600123n;

function event(action: number, messageId: string, timeMs = ACCEPTED): Uint8Array {
  const extra: Record<string, string> =
    action === sp.LogAction.MESSAGE_ACCEPTED
      ? { envelope_digest: vector?.envelope_digest ?? "" }
      : {};
  return sp.encodeEvent(
    sp.makeLogEvent({
      action,
      actor: "relative:acc-0001",
      timeMs,
      subjects: [["message", messageId]],
      extra,
    }),
  );
}

const LEAVES = [
  event(sp.LogAction.CONTACT_APPROVED, "00"),
  event(sp.LogAction.MESSAGE_ACCEPTED, "aa".repeat(16)),
  event(sp.LogAction.MESSAGE_ACCEPTED, vector.message_id),
  event(sp.LogAction.MESSAGE_RELEASED, vector.message_id),
  event(sp.LogAction.MESSAGE_DELIVERED, vector.message_id),
];
const INDEX = 2;

function receipt(overrides: Partial<sp.Receipt> = {}, index = INDEX, leaves = LEAVES): sp.Receipt {
  return create(ReceiptSchema, {
    messageId: MESSAGE_ID,
    envelopeDigest: DIGEST,
    acceptedAtMs: ACCEPTED,
    entry: create(LogEntrySchema, {
      index: BigInt(index),
      leaf: leaves[index] ?? new Uint8Array(),
    }),
    treeHead: signHead(leaves, ACCEPTED + 500n),
    inclusionProof: create(InclusionProofSchema, {
      leafIndex: BigInt(index),
      treeSize: BigInt(leaves.length),
      path: refPath(index, leaves),
    }),
    ...overrides,
  });
}

const expect = { logKey: logKey(), messageId: MESSAGE_ID, envelopeDigest: DIGEST };

describe("receipts", () => {
  test("a receipt proves acceptance of this device's own envelope", () => {
    const sent = create(LogEntrySchema, { index: 2n, leaf: LEAVES[INDEX] ?? new Uint8Array() });
    const verified = sp.verifyReceipt(receipt(), { ...expect, sentEntry: sent });
    assert.equal(verified.leafIndex, 2n);
    assert.equal(verified.head.treeSize, 5n);
    assert.equal(verified.acceptedAtMs, ACCEPTED);
    assert.equal(sp.eventMessageId(verified.event), vector.message_id);
  });

  test("every way a receipt can fail to prove it is refused", () => {
    const other = Uint8Array.from(MESSAGE_ID);
    other[0] = (other[0] ?? 0) ^ 1;
    const cases: [string, () => unknown, typeof sp.CryptoError][] = [
      [
        "another message id",
        () => sp.verifyReceipt(receipt(), { ...expect, messageId: other }),
        sp.ProofError,
      ],
      [
        "another digest",
        () => sp.verifyReceipt(receipt({ envelopeDigest: new Uint8Array(32) }), expect),
        sp.ProofError,
      ],
      ["no entry", () => sp.verifyReceipt(receipt({ entry: undefined }), expect), sp.ProofError],
      [
        "no proof",
        () => sp.verifyReceipt(receipt({ inclusionProof: undefined }), expect),
        sp.ProofError,
      ],
      ["no head", () => sp.verifyReceipt(receipt({ treeHead: undefined }), expect), sp.ProofError],
      [
        "a head by another key",
        () =>
          sp.verifyReceipt(
            receipt({ treeHead: signHead(LEAVES, ACCEPTED, new Uint8Array(32).fill(1)) }),
            expect,
          ),
        sp.SignatureError,
      ],
      [
        "the entry of another message",
        () => sp.verifyReceipt(receipt({}, 1), expect),
        sp.ProofError,
      ],
      [
        "a release instead of an acceptance",
        () => sp.verifyReceipt(receipt({}, 3), expect),
        sp.ProofError,
      ],
      [
        "another acceptance time",
        () => sp.verifyReceipt(receipt({ acceptedAtMs: ACCEPTED + 1n }), expect),
        sp.ProofError,
      ],
      [
        "an entry that is not in the tree",
        () =>
          sp.verifyReceipt(
            receipt({
              entry: create(LogEntrySchema, {
                index: 2n,
                leaf: event(sp.LogAction.MESSAGE_ACCEPTED, vector.message_id, ACCEPTED + 1n),
              }),
            }),
            expect,
          ),
        sp.ProofError,
      ],
      [
        "not the entry named at acceptance",
        () =>
          sp.verifyReceipt(receipt(), {
            ...expect,
            sentEntry: create(LogEntrySchema, {
              index: 7n,
              leaf: LEAVES[INDEX] ?? new Uint8Array(),
            }),
          }),
        sp.ProofError,
      ],
      [
        "a key that is not the log's",
        () =>
          sp.verifyReceipt(receipt(), {
            ...expect,
            logKey: logKey(1n, 2n ** 40n, sp.KeyPurpose.MAILBOX),
          }),
        sp.KeyRecordError,
      ],
      [
        "a head signed outside the log key's validity",
        () => sp.verifyReceipt(receipt(), { ...expect, logKey: logKey(1n, 1767225600n) }),
        sp.KeyRecordError,
      ],
    ];
    for (const [name, action, error] of cases) {
      assert.throws(action, (e: unknown) => e instanceof error && e.constructor === error, name);
    }
  });

  test("a release is proven by its own entry", () => {
    const head = sp.verifyTreeHead(signHead(LEAVES, ACCEPTED), logKey().signingKey, logKey().id);
    const proof = (index: number): sp.InclusionProof =>
      create(InclusionProofSchema, {
        leafIndex: BigInt(index),
        treeSize: 5n,
        path: refPath(index, LEAVES),
      });
    const entry = (index: number): sp.LogEntry =>
      create(LogEntrySchema, { index: BigInt(index), leaf: LEAVES[index] ?? new Uint8Array() });
    sp.verifyRelease(entry(3), proof(3), head, MESSAGE_ID);
    assert.throws(() => sp.verifyRelease(entry(4), proof(4), head, MESSAGE_ID), sp.ProofError);
    assert.throws(() => sp.verifyRelease(entry(3), proof(4), head, MESSAGE_ID), sp.ProofError);
  });
});

describe("the witness rule", () => {
  const head = (leaves: Uint8Array[], timestampMs: bigint): sp.VerifiedTreeHead =>
    sp.verifyTreeHead(signHead(leaves, timestampMs), logKey().signingKey, logKey().id);
  const proof = (first: number, second: number): sp.ConsistencyProof =>
    create(ConsistencyProofSchema, {
      firstSize: BigInt(first),
      secondSize: BigInt(second),
      path: refProof(first, LEAVES.slice(0, second)),
    });

  test("newer, same and older heads of one history", () => {
    const three = head(LEAVES.slice(0, 3), 1000n);
    const five = head(LEAVES, 2000n);
    assert.equal(sp.checkSuccessor(three, five, proof(3, 5)), "newer");
    assert.equal(sp.checkSuccessor(five, three, proof(3, 5)), "older");
    assert.equal(sp.checkSuccessor(five, head(LEAVES, 3000n), undefined), "same");
    sp.verifyHeadConsistency(three, five, proof(3, 5));
  });

  test("a fork, a broken proof or a head signed back in time is a ForkError", () => {
    const five = head(LEAVES, 2000n);
    const forked = [...LEAVES.slice(0, 4), event(sp.LogAction.MESSAGE_WITHHELD, vector.message_id)];
    assert.throws(() => sp.checkSuccessor(five, head(forked, 2000n), undefined), sp.ForkError);
    const three = head(LEAVES.slice(0, 3), 1000n);
    assert.throws(() => sp.checkSuccessor(three, head(forked, 2000n), proof(3, 5)), sp.ForkError);
    assert.throws(
      () => sp.checkSuccessor(head(LEAVES.slice(0, 3), 100_000n), five, proof(3, 5)),
      sp.ForkError,
    );
    assert.throws(() => sp.checkSuccessor(three, five, undefined), sp.ProofError);
    assert.throws(() => {
      sp.verifyHeadConsistency(three, five, proof(2, 5));
    }, sp.ProofError);
  });
});
