// Key records, revocations, registration and login beyond the vectors.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { create, toBinary } from "@bufbuild/protobuf";

import * as sp from "../src/index.js";
import { KeyRevocationSchema } from "../src/gen/sealpost/v1/keys_pb.js";
import { KEYRING, NOW, directory, holder, revocations, secrets, verified } from "./fixtures.js";
import { h, nodeLp, nodeSha256, nodeU64 } from "./helpers.js";

describe("key records", () => {
  test("the directory record must carry the pinned key", () => {
    const record = sp.parseKeyRecord(h(KEYRING.directory.record));
    assert.throws(
      () =>
        sp.verifyDirectoryRecord(record, new sp.DirectoryPin(new Uint8Array(32).fill(7)), {
          nowMs: NOW,
        }),
      sp.KeyRecordError,
    );
    assert.throws(() => new sp.DirectoryPin(new Uint8Array(31)), sp.FormatError);
  });

  test("a record is accepted only for its own purpose and only against the directory", () => {
    const record = sp.parseKeyRecord(h(holder("alice").record));
    assert.throws(
      () => sp.verifyKeyRecord(record, directory(), { nowMs: NOW, purpose: sp.KeyPurpose.MAILBOX }),
      sp.KeyRecordError,
    );
    const mailbox = verified("mailbox");
    assert.throws(
      () =>
        sp.verifyKeyRecord(record, mailbox, { nowMs: NOW, purpose: sp.KeyPurpose.RELATIVE_DEVICE }),
      sp.KeyRecordError,
    );
  });

  test("a revocation counts from its time on, and a broken one fails the verification", () => {
    const [revocation] = revocations();
    assert.ok(revocation);
    const body = sp.verifyRevocation(revocation, directory());
    const record = sp.parseKeyRecord(h(holder("dave-revoked").record));
    const at = body.revokedAt * 1000n;
    const check = (nowMs: bigint, list: sp.KeyRevocation[]): sp.VerifiedKey =>
      sp.verifyKeyRecord(record, directory(nowMs), {
        nowMs,
        revocations: list,
        purpose: sp.KeyPurpose.RELATIVE_DEVICE,
      });
    check(at - 1n, [revocation]);
    assert.throws(() => check(at, [revocation]), sp.KeyRecordError);
    check(at, []);
    // A revocation of this record with a broken signature is never skipped.
    const forged = create(KeyRevocationSchema, {
      ...revocation,
      signature: revocation.signature.slice(),
    });
    forged.signature[0] = (forged.signature[0] ?? 0) ^ 1;
    assert.throws(() => check(at - 1n, [forged]), sp.SignatureError);
    // A malformed revocation of any key fails the verification too.
    const malformed = create(KeyRevocationSchema, {
      ...revocation,
      body: revocation.body.slice(1),
    });
    assert.throws(
      () =>
        sp.verifyKeyRecord(sp.parseKeyRecord(h(holder("alice").record)), directory(), {
          nowMs: NOW,
          revocations: [malformed],
          purpose: sp.KeyPurpose.RELATIVE_DEVICE,
        }),
      sp.FormatError,
    );
    assert.equal(
      sp.parseKeyRevocation(toBinary(KeyRevocationSchema, revocation)).body.length,
      revocation.body.length,
    );
  });

  test("a verified record names its subject; the client checks it is the one it asked for", () => {
    const mailbox = verified("mailbox");
    sp.expectSubject(mailbox, mailbox.subject);
    assert.throws(() => {
      sp.expectSubject(mailbox, "d-9999");
    }, sp.KeyRecordError);
    assert.equal(mailbox.validAt(mailbox.notBefore * 1000n), true);
    assert.equal(mailbox.validAt(mailbox.notAfter * 1000n), false);
  });
});

describe("registration and login", () => {
  const alice = secrets("alice");
  const name = "Fatima El Amrani";

  test("the registration digest is the documented frame", () => {
    const digest = sp.registrationDigest(
      sp.KeyPurpose.RELATIVE_DEVICE,
      name,
      alice.encryptionKey,
      alice.signingKey,
    );
    const independent = nodeSha256(
      nodeLp(Buffer.from("sealpost/v1/registration")),
      nodeU64(2),
      nodeLp(Buffer.from(name, "utf8")),
      nodeLp(alice.encryptionKey),
      nodeLp(alice.signingKey),
    );
    assert.deepEqual(digest, independent);
  });

  test("a proof binds purpose, label and both keys", () => {
    const proof = sp.signRegistration(alice, sp.KeyPurpose.RELATIVE_DEVICE, name);
    sp.verifyRegistration(
      proof,
      sp.KeyPurpose.RELATIVE_DEVICE,
      name,
      alice.encryptionKey,
      alice.signingKey,
    );
    const bob = secrets("bob");
    const refusals: [() => void, typeof sp.CryptoError][] = [
      [
        () => {
          sp.verifyRegistration(
            proof,
            sp.KeyPurpose.RELATIVE_DEVICE,
            "Another",
            alice.encryptionKey,
            alice.signingKey,
          );
        },
        sp.SignatureError,
      ],
      [
        () => {
          sp.verifyRegistration(
            proof,
            sp.KeyPurpose.MAILBOX,
            name,
            alice.encryptionKey,
            alice.signingKey,
          );
        },
        sp.SignatureError,
      ],
      [
        () => {
          sp.verifyRegistration(
            proof,
            sp.KeyPurpose.RELATIVE_DEVICE,
            name,
            bob.encryptionKey,
            alice.signingKey,
          );
        },
        sp.SignatureError,
      ],
      [
        () => {
          sp.verifyRegistration(
            proof,
            sp.KeyPurpose.DIRECTORY,
            name,
            alice.encryptionKey,
            alice.signingKey,
          );
        },
        sp.FormatError,
      ],
      [
        () => {
          sp.verifyRegistration(
            proof,
            sp.KeyPurpose.RELATIVE_DEVICE,
            name,
            new Uint8Array(32),
            alice.signingKey,
          );
        },
        sp.FormatError,
      ],
      [
        () => {
          sp.verifyRegistration(
            proof,
            sp.KeyPurpose.RELATIVE_DEVICE,
            name,
            alice.encryptionKey,
            new Uint8Array(32),
          );
        },
        sp.FormatError,
      ],
    ];
    for (const [action, error] of refusals)
      assert.throws(action, (e: unknown) => e instanceof error && e.constructor === error);
  });

  test("login signs the record id and the challenge; only device keys log in", () => {
    const record = verified("alice");
    const challenge = new Uint8Array(32).fill(9);
    const signature = sp.signLogin(alice, record.id, challenge);
    sp.verifyLogin(signature, record, challenge);
    assert.deepEqual(
      sp.loginDigest(record.id, challenge),
      nodeSha256(nodeLp(Buffer.from("sealpost/v1/login")), nodeLp(record.id), nodeLp(challenge)),
    );
    assert.throws(() => {
      sp.verifyLogin(signature, record, new Uint8Array(32));
    }, sp.SignatureError);
    assert.throws(() => {
      sp.verifyLogin(signature, verified("mailbox"), challenge);
    }, sp.KeyRecordError);
    assert.throws(() => sp.signLogin(alice, record.id, new Uint8Array(16)), sp.FormatError);
  });

  test("the session token travels as an authorization bearer header", () => {
    assert.deepEqual(sp.bearerHeader("abc.DEF-123"), ["authorization", "Bearer abc.DEF-123"]);
    for (const bad of ["", "two words", "line\nbreak"])
      assert.throws(() => sp.bearerHeader(bad), sp.FormatError);
  });
});
