// tests/vectors/directory-succession-v1.json: hand-overs of the directory key (5.7) made by
// the Python reference. Every valid chain verifies with the same current directory and the
// same predecessors; every broken one fails with exactly the reference's error and message.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";

import * as sp from "../src/index.js";
import { DirectorySuccessionSchema } from "../src/gen/sealpost/v1/keys_pb.js";
import { decodeMessage } from "../src/_internal/wire.js";
import { h, hex, loadVectors, nodeLp, nodeSha256 } from "./helpers.js";

interface RecordEntry {
  record: string;
  id: string;
  signing_key: string;
}
interface SuccessionEntry {
  description: string;
  succession: string;
  id: string;
  previous_digest: string;
  next_digest: string;
  previous_id?: string;
  next_id?: string;
  effective_at?: number;
  error?: string;
  message?: string;
}
interface DirectoryCase {
  name: string;
  record: string;
  pin: string;
  successions: string[];
  now_ms: number;
  id?: string;
  predecessors?: string[];
  error?: string;
  message?: string;
}
interface RecordCase {
  name: string;
  directory_case: string;
  record: string;
  purpose: string;
  revocations: string[];
  now_ms: number;
  issuer_key_id?: string;
  error?: string;
  message?: string;
}
interface SuccessionVectors {
  domains: Record<string, string>;
  max_successions: number;
  max_succession_bytes: number;
  directories: Record<string, RecordEntry>;
  key_records: Record<string, RecordEntry>;
  revocations: Record<string, string>;
  pins: Record<string, string>;
  successions_table: Record<string, SuccessionEntry>;
  directory_cases: DirectoryCase[];
  record_cases: RecordCase[];
}

const FILE = "directory-succession-v1.json";
const V = loadVectors(FILE) as SuccessionVectors;
const counts = { valid: 0, invalid: 0 };

function lookup<T>(table: Record<string, T>, name: string): T {
  const value = table[name];
  assert.ok(value !== undefined, `no ${name} in ${FILE}`);
  return value;
}

function recordBytes(name: string): Uint8Array {
  return h((V.directories[name] ?? lookup(V.key_records, name)).record);
}

function succession(name: string): sp.DirectorySuccession {
  return sp.parseSuccession(h(lookup(V.successions_table, name).succession));
}

function directoryOf(c: DirectoryCase): sp.VerifiedKey {
  return sp.verifyDirectoryRecord(
    sp.parseKeyRecord(recordBytes(c.record)),
    new sp.DirectoryPin(h(lookup(V.pins, c.pin))),
    { nowMs: BigInt(c.now_ms), successions: c.successions.map(succession) },
  );
}

function errorClass(name: string): unknown {
  const value = (sp as unknown as Record<string, unknown>)[name];
  assert.equal(typeof value, "function", name);
  return value;
}

/** Throws exactly the reference's class (not a subclass or parent) with its message. */
function throwsLikeReference(action: () => unknown, name?: string, message?: string): void {
  assert.ok(name !== undefined && message !== undefined, "an invalid case names its error");
  const expected = errorClass(name);
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof sp.CryptoError, String(error));
    assert.equal(error.constructor, expected, `${error.name}: ${error.message}`);
    assert.equal(error.message, message);
    return true;
  });
}

describe(FILE, () => {
  after(() => {
    console.log(
      `${FILE}: ${String(counts.valid)} valid, ${String(counts.invalid)} invalid cases pass`,
    );
  });

  test("the domains and limits are the reference's", () => {
    for (const [name, text] of Object.entries(V.domains)) {
      const ours = (sp.domains as unknown as Record<string, unknown>)[name];
      assert.ok(ours instanceof Uint8Array, name);
      assert.equal(Buffer.from(ours).toString("ascii"), text);
    }
    assert.equal(Object.keys(V.domains).length, 3);
    assert.equal(sp.MAX_SUCCESSIONS, V.max_successions);
    assert.equal(sp.MAX_SUCCESSION_BYTES, V.max_succession_bytes);
  });

  test("the file covers every kind of broken chain", () => {
    const invalid = V.directory_cases.filter((c) => c.error !== undefined);
    assert.deepEqual(
      new Set(invalid.map((c) => c.error)),
      new Set(["SignatureError", "KeyRecordError", "LimitError", "VersionTooNewError"]),
    );
    assert.equal(V.directory_cases.length - invalid.length, 5);
    assert.equal(invalid.length, 14);
    assert.equal(V.record_cases.length, 12);
  });

  for (const [name, entry] of Object.entries(V.successions_table)) {
    test(`succession ${name}: id and digests, then ${entry.error ?? "verifies"}`, () => {
      const wire = h(entry.succession);
      assert.equal(hex(sp.successionId(wire)), entry.id);
      const independent = nodeSha256(
        nodeLp(Buffer.from("sealpost/v1/directory-succession/id")),
        nodeLp(wire),
      );
      assert.equal(hex(independent), entry.id);
      // Read without the checks, so that a refused version still shows its digests.
      const { body } = decodeMessage(DirectorySuccessionSchema, wire, "directory succession");
      const [previous, next] = sp.directorySuccessionDigests(body);
      assert.equal(hex(previous), entry.previous_digest);
      assert.equal(hex(next), entry.next_digest);
      if (entry.error !== undefined) {
        throwsLikeReference(
          () => sp.verifySuccession(sp.parseSuccession(wire)),
          entry.error,
          entry.message,
        );
        return;
      }
      const verified = sp.verifySuccession(sp.parseSuccession(wire));
      assert.equal(hex(verified.previous.id), entry.previous_id);
      assert.equal(hex(verified.next.id), entry.next_id);
      assert.equal(verified.effectiveAt, BigInt(entry.effective_at ?? -1));
    });
  }

  for (const c of V.directory_cases) {
    if (c.error === undefined) {
      test(`valid: ${c.name}`, () => {
        const current = directoryOf(c);
        assert.equal(hex(current.id), c.id);
        assert.equal(hex(current.id), lookup(V.directories, c.record).id);
        assert.deepEqual(
          current.predecessors.map((p) => hex(p.id)),
          c.predecessors,
        );
        for (const p of current.predecessors) assert.deepEqual(p.predecessors, []);
        counts.valid += 1;
      });
    } else {
      test(`invalid: ${c.name} -> ${c.error}`, () => {
        throwsLikeReference(() => directoryOf(c), c.error, c.message);
        counts.invalid += 1;
      });
    }
  }

  for (const c of V.record_cases) {
    test(`record ${c.name} -> ${c.error ?? "verifies"}`, () => {
      const directoryCase = V.directory_cases.find((d) => d.name === c.directory_case);
      assert.ok(directoryCase && directoryCase.error === undefined, c.directory_case);
      const verify = (): sp.VerifiedKey =>
        sp.verifyKeyRecord(sp.parseKeyRecord(recordBytes(c.record)), directoryOf(directoryCase), {
          nowMs: BigInt(c.now_ms),
          revocations: c.revocations.map((r) => sp.parseKeyRevocation(h(lookup(V.revocations, r)))),
          purpose: sp.KeyPurpose.RELATIVE_DEVICE,
        });
      assert.equal(c.purpose, "KEY_PURPOSE_RELATIVE_DEVICE");
      if (c.error !== undefined) {
        throwsLikeReference(verify, c.error, c.message);
        counts.invalid += 1;
        return;
      }
      assert.equal(hex(verify().issuerKeyId), c.issuer_key_id);
      counts.valid += 1;
    });
  }

  test("a revocation an earlier key signed verifies under the current directory", () => {
    const chain = V.directory_cases.find((c) => c.name === "A-B-C, pinned C");
    assert.ok(chain);
    const current = directoryOf(chain);
    const revocation = sp.parseKeyRevocation(h(lookup(V.revocations, "A-revokes-device-by-B")));
    const verified = sp.verifyRevocation(revocation, current);
    assert.equal(hex(verified.issuerKeyId), lookup(V.directories, "A").id);
    const alone = V.directory_cases.find((c) => c.name === "C alone, pinned C");
    assert.ok(alone);
    assert.throws(() => sp.verifyRevocation(revocation, directoryOf(alone)), sp.KeyRecordError);
  });

  test("an oversized succession is refused before parsing", () => {
    const wire = h(lookup(V.successions_table, "A->B").succession);
    const padded = new Uint8Array(V.max_succession_bytes + 1);
    padded.set(wire);
    assert.throws(() => sp.parseSuccession(padded), sp.LimitError);
    assert.throws(() => sp.parseSuccession(Uint8Array.of(0xff, 0xff)), sp.FormatError);
  });
});
