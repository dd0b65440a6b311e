// tests/vectors/envelope-v1.json: every valid envelope opens for every opener and is
// reproduced byte for byte; every invalid one is refused with exactly its error class.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";

import { create } from "@bufbuild/protobuf";

import * as sp from "../src/index.js";
import { EnvelopeHeaderSchema } from "../src/gen/sealpost/v1/envelope_pb.js";
import { canonicalBytes, decodeMessage } from "../src/_internal/wire.js";
import { h, hex, loadVectors, nodeLp, nodeSha256, nodeU64, seededRandom } from "./helpers.js";

interface Holder {
  purpose: string;
  subject: string;
  x25519_secret: string;
  ed25519_seed: string;
  encryption_key: string;
  signing_key: string;
  record_body: string;
  record_id: string;
  record_signed_digest: string;
  record_signature: string;
  record: string;
}
interface VectorPart {
  content_type: string;
  filename: string;
  content: string;
  size: number;
  nonce: string;
  plaintext: string;
  associated_data: string;
  ciphertext: string;
}
interface Valid {
  name: string;
  sender: string;
  recipients: string[];
  openers: string[];
  now_ms: number;
  message_id: string;
  dek: string;
  key_commitment_input: string;
  key_commitment: string;
  header: string;
  parts: VectorPart[];
  sealed_keys: { key_id: string; sealed_dek: string; ephemeral_secret: string }[];
  content_digest: string;
  signature: string;
  envelope_digest: string;
  envelope: string;
}
interface Invalid {
  name: string;
  expected_error: string;
  sender: string;
  opener: string;
  opener_key_id_of: string;
  now_ms: number;
  limits: Record<string, number>;
  operation: string;
  envelope: string;
  dek?: string;
}
interface EnvelopeVectors {
  domains: Record<string, string>;
  default_limits: Record<string, number>;
  directory: Holder;
  keys: Record<string, Holder>;
  revocations: { of: string; revocation: string }[];
  valid: Valid[];
  invalid: Invalid[];
}

const V = loadVectors("envelope-v1.json") as EnvelopeVectors;
const counts = { valid: 0, invalid: 0 };

function holder(name: string): Holder {
  const entry = V.keys[name];
  assert.ok(entry, `no key ${name}`);
  return entry;
}

function secretKeys(name: string): sp.PrivateKeys {
  const entry = holder(name);
  const keys = new sp.PrivateKeys(h(entry.x25519_secret), h(entry.ed25519_seed));
  assert.equal(hex(keys.encryptionKey), entry.encryption_key);
  assert.equal(hex(keys.signingKey), entry.signing_key);
  return keys;
}

const revocations = (): sp.KeyRevocation[] =>
  V.revocations.map((r) => sp.parseKeyRevocation(h(r.revocation)));

function verified(name: string, nowMs: bigint): sp.VerifiedKey {
  const directory = sp.verifyDirectoryRecord(
    sp.parseKeyRecord(h(V.directory.record)),
    new sp.DirectoryPin(h(V.directory.signing_key)),
    { nowMs, revocations: revocations() },
  );
  const entry = holder(name);
  return sp.verifyKeyRecord(sp.parseKeyRecord(h(entry.record)), directory, {
    nowMs,
    revocations: revocations(),
    purpose: sp.KeyPurpose[entry.purpose.replace("KEY_PURPOSE_", "") as keyof typeof sp.KeyPurpose],
  });
}

const LIMIT_NAMES: Record<string, keyof sp.Limits> = {
  max_parts: "maxParts",
  max_part_bytes: "maxPartBytes",
  max_total_bytes: "maxTotalBytes",
  max_recipients: "maxRecipients",
  max_content_type_bytes: "maxContentTypeBytes",
  max_filename_bytes: "maxFilenameBytes",
  max_header_bytes: "maxHeaderBytes",
  max_clock_skew_ms: "maxClockSkewMs",
  max_age_ms: "maxAgeMs",
};

function limitsOf(overrides: Record<string, number>): sp.Limits {
  const mapped: Partial<Record<keyof sp.Limits, number>> = {};
  for (const [name, value] of Object.entries(overrides)) {
    const key = LIMIT_NAMES[name];
    assert.ok(key, `unknown limit ${name}`);
    mapped[key] = value;
  }
  return sp.makeLimits(mapped);
}

/** The procedure of the file's description, for one vector and one opener. */
function run(
  vector: {
    sender: string;
    now_ms: number;
    envelope: string;
    limits?: Record<string, number>;
    dek?: string;
  },
  operation: string,
  opener: string,
  openerKeyOf: string,
): sp.Part[] {
  const nowMs = BigInt(vector.now_ms);
  const limits = limitsOf(vector.limits ?? {});
  const sender = verified(vector.sender, nowMs);
  const envelope = sp.parseEnvelope(h(vector.envelope), limits);
  if (operation === "decrypt_with_dek") {
    return [...sp.decryptWithDek(envelope, h(vector.dek ?? ""), sender, { nowMs, limits }).parts];
  }
  const keyId = h(holder(openerKeyOf).record_id);
  return [...sp.openEnvelope(envelope, secretKeys(opener), keyId, sender, { nowMs, limits }).parts];
}

describe("envelope-v1.json", () => {
  after(() => {
    console.log(
      `envelope-v1.json: ${String(counts.valid)} valid, ${String(counts.invalid)} invalid vectors pass`,
    );
  });

  test("the default limits and the domains are the reference's", () => {
    for (const [name, value] of Object.entries(V.default_limits)) {
      const key = LIMIT_NAMES[name];
      assert.ok(key);
      assert.equal(sp.DEFAULT_LIMITS[key], value, name);
    }
    const ours = Object.values(sp.domains).filter((d): d is Uint8Array => d instanceof Uint8Array);
    assert.deepEqual(new Set(ours.map(hex)), new Set(Object.values(V.domains)));
    assert.deepEqual(sp.domains.ALL.map(hex), Object.values(V.domains));
  });

  test("key records follow the document", () => {
    for (const entry of [V.directory, ...Object.values(V.keys)]) {
      const body = h(entry.record_body);
      assert.equal(hex(sp.keyRecordId(body)), entry.record_id);
      const independent = nodeSha256(
        nodeLp(Buffer.from("sealpost/v1/key-record/id")),
        nodeLp(body),
      );
      assert.equal(hex(independent), entry.record_id);
      assert.equal(hex(sp.keyRecordSignedDigest(body)), entry.record_signed_digest);
      const record = sp.parseKeyRecord(h(entry.record));
      assert.deepEqual(record.body, body);
      assert.equal(hex(record.signature), entry.record_signature);
    }
  });

  for (const vector of V.valid) {
    test(`valid: ${vector.name}`, () => {
      const expected = vector.parts.map((p) => [p.filename, p.content]);
      for (const opener of vector.openers) {
        const parts = run(vector, "open_envelope", opener, opener);
        assert.deepEqual(
          parts.map((p) => [p.filename, hex(p.data)]),
          expected,
          opener,
        );
        assert.deepEqual(
          parts.map((p) => p.contentType),
          vector.parts.map((p) => p.content_type),
        );
      }
      const escrowed = run({ ...vector, dek: vector.dek }, "decrypt_with_dek", "", "");
      assert.deepEqual(
        escrowed.map((p) => [p.filename, hex(p.data)]),
        expected,
      );

      // Every documented intermediate value.
      const envelope = sp.parseEnvelope(h(vector.envelope));
      assert.equal(hex(envelope.header), vector.header);
      const header = sp.parseHeader(envelope.header);
      assert.equal(hex(header.messageId), vector.message_id);
      assert.equal(
        hex(nodeLp(Buffer.from("sealpost/v1/envelope/key-commitment"))) +
          hex(nodeLp(h(vector.message_id))),
        vector.key_commitment_input,
      );
      assert.equal(hex(sp.keyCommitment(h(vector.dek), header.messageId)), vector.key_commitment);
      vector.parts.forEach((part, index) => {
        const encoded = sp.encodePartPlaintext(
          new sp.Part(part.content_type, h(part.content), part.filename),
        );
        assert.equal(hex(encoded), part.plaintext);
        assert.equal(hex(sp.partAssociatedData(envelope.header, index)), part.associated_data);
        assert.equal(hex(envelope.partCiphertexts[index] ?? new Uint8Array()), part.ciphertext);
        assert.equal(header.parts[index]?.size, part.size);
      });
      const digest = sp.contentDigest(
        envelope.header,
        envelope.partCiphertexts,
        envelope.sealedKeys,
      );
      assert.equal(hex(digest), vector.content_digest);
      assert.equal(hex(envelope.signature), vector.signature);
      assert.equal(hex(sp.envelopeDigest(envelope)), vector.envelope_digest);
      const independent = nodeSha256(
        nodeLp(Buffer.from("sealpost/v1/envelope/digest")),
        nodeLp(digest),
        nodeLp(envelope.signature),
      );
      assert.equal(hex(independent), vector.envelope_digest);
      assert.equal(hex(nodeU64(0)), "0000000000000000");

      // The header re-encodes canonically, byte for byte, with protobuf-es.
      const message = decodeMessage(EnvelopeHeaderSchema, h(vector.header), "header");
      assert.equal(
        hex(canonicalBytes(EnvelopeHeaderSchema, create(EnvelopeHeaderSchema, message))),
        vector.header,
      );
      assert.equal(hex(sp.serializeEnvelope(envelope)), vector.envelope);

      // Sealing again with the same inputs and the same random stream gives the same bytes.
      const now = BigInt(vector.now_ms);
      const resealed = sp.sealEnvelope(
        vector.parts.map((p) => new sp.Part(p.content_type, h(p.content), p.filename)),
        {
          senderKeys: secretKeys(vector.sender),
          senderKeyId: h(holder(vector.sender).record_id),
          recipients: vector.recipients.map((r) => verified(r, now)),
          nowMs: now,
          rng: seededRandom(`envelope/${vector.name}`),
        },
      );
      assert.equal(hex(sp.serializeEnvelope(resealed)), vector.envelope);
      counts.valid += 1;
    });
  }

  for (const vector of V.invalid) {
    test(`invalid: ${vector.name} -> ${vector.expected_error}`, () => {
      const expected = (sp as unknown as Record<string, unknown>)[vector.expected_error];
      assert.equal(typeof expected, "function", vector.expected_error);
      assert.throws(
        () => run(vector, vector.operation, vector.opener, vector.opener_key_id_of),
        (error: unknown) => {
          assert.ok(error instanceof sp.CryptoError, String(error));
          assert.equal(error.constructor, expected, `${error.name}: ${error.message}`);
          return true;
        },
      );
      counts.invalid += 1;
    });
  }

  test("the gateway's checks accept what only opening refuses (embedded names)", () => {
    const names = V.invalid.filter(
      (v) => v.name.includes("embedded-name") || v.name === "oversized-filename",
    );
    assert.ok(names.length >= 12);
    for (const vector of names) {
      const nowMs = BigInt(vector.now_ms);
      const limits = limitsOf(vector.limits);
      const envelope = sp.parseEnvelope(h(vector.envelope), limits);
      sp.verifyEnvelope(envelope, verified(vector.sender, nowMs), { nowMs, limits });
    }
  });

  test("the vectors cover every error class of the reference", () => {
    assert.deepEqual(
      new Set(V.invalid.map((v) => v.expected_error)),
      new Set([
        "VersionTooOldError",
        "VersionTooNewError",
        "FormatError",
        "SignatureError",
        "DecryptionError",
        "EnvelopeError",
        "KeyRecordError",
        "LimitError",
      ]),
    );
    assert.equal(V.valid.length, 4);
    assert.equal(V.invalid.length, 83);
  });
});
