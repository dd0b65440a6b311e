// The key bundle sealed under a passphrase (keystore.ts, docs/web.md). Argon2id runs at
// libsodium's INTERACTIVE cost here (about 0.15 s each), so the tests run it sparingly.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import * as sp from "../src/index.js";
import { KEYRING, holder, secrets } from "./fixtures.js";
import { h, hex } from "./helpers.js";

const PASSPHRASE = "correct horse battery staple";
const bundle: sp.KeyBundle = {
  keys: secrets("alice"),
  keyId: h(holder("alice").record_id),
  accountId: "account-0001",
  directoryPin: new sp.DirectoryPin(h(KEYRING.directory.signing_key)),
};
const options = { kdf: sp.KDF_INTERACTIVE };

describe("the sealed key bundle", () => {
  const blob = sp.sealKeyBundle(bundle, PASSPHRASE, options);

  test("seals and opens under the passphrase, with the documented header", () => {
    assert.equal(new TextDecoder().decode(blob.subarray(0, 16)), "SEALPOST-WEBKEYS");
    assert.equal(blob[16], 1);
    assert.equal(hex(blob.subarray(17, 21)), "00000002");
    assert.equal(hex(blob.subarray(21, 29)), "0000000004000000");
    // Header, then LP-framed secrets (8 + 32, 8 + 32), key id (8 + 32), account, pin (8 + 32), tag.
    assert.equal(blob.length, 69 + 8 * 5 + 32 * 4 + "account-0001".length + 16);
    assert.deepEqual(sp.keyBundleCost(blob), sp.KDF_INTERACTIVE);
    const opened = sp.openKeyBundle(blob, PASSPHRASE);
    assert.deepEqual(opened.keys.encryptionKey, bundle.keys.encryptionKey);
    assert.deepEqual(opened.keys.signingKey, bundle.keys.signingKey);
    assert.deepEqual(opened.keyId, bundle.keyId);
    assert.equal(opened.accountId, "account-0001");
    assert.deepEqual(opened.directoryPin.signingKey, bundle.directoryPin.signingKey);
    assert.equal(hex(blob).includes(holder("alice").x25519_secret), false);
  });

  test("a wrong passphrase and any altered byte fail alike", () => {
    assert.throws(() => sp.openKeyBundle(blob, "correct horse battery stable"), sp.DecryptionError);
    for (const offset of [17 + 3, 30, 50, 80, blob.length - 1]) {
      const altered = blob.slice();
      altered[offset] = (altered[offset] ?? 0) ^ 1;
      assert.throws(() => sp.openKeyBundle(altered, PASSPHRASE), sp.CryptoError, String(offset));
    }
  });

  test("the passphrase is normalised (NFC) and must be long enough for a new bundle", () => {
    const composed = sp.sealKeyBundle(bundle, "caf\u00e9 au lait", options);
    assert.equal(sp.openKeyBundle(composed, "cafe\u0301 au lait").accountId, "account-0001");
    assert.throws(() => sp.sealKeyBundle(bundle, "short", options), sp.WeakPassphraseError);
    assert.throws(() => sp.openKeyBundle(blob, ""), sp.WeakPassphraseError);
    assert.throws(() => {
      sp.checkNewPassphrase("\ud800abcdefgh");
    }, sp.WeakPassphraseError);
  });

  test("sealing twice gives different bytes (fresh salt and nonce)", () => {
    const again = sp.sealKeyBundle(bundle, PASSPHRASE, options);
    assert.notEqual(hex(again), hex(blob));
  });

  test("the header is checked before any key is derived", () => {
    const withByte = (offset: number, value: number): Uint8Array => {
      const copy = blob.slice();
      copy[offset] = value;
      return copy;
    };
    assert.throws(() => sp.openKeyBundle(withByte(0, 0x58), PASSPHRASE), sp.FormatError);
    assert.throws(() => sp.openKeyBundle(withByte(16, 0), PASSPHRASE), sp.VersionTooOldError);
    assert.throws(() => sp.openKeyBundle(withByte(16, 2), PASSPHRASE), sp.VersionTooNewError);
    assert.throws(() => sp.openKeyBundle(blob.subarray(0, 80), PASSPHRASE), sp.FormatError);
    // A planted bundle asking for 2 GiB of memory, or 1 pass, is refused without hashing.
    assert.throws(() => sp.openKeyBundle(withByte(25, 0x80), PASSPHRASE), sp.LimitError);
    assert.throws(() => sp.openKeyBundle(withByte(20, 1), PASSPHRASE), sp.LimitError);
    assert.throws(
      () => sp.sealKeyBundle(bundle, PASSPHRASE, { kdf: { opslimit: 1, memlimit: 1 << 26 } }),
      sp.LimitError,
    );
  });

  test("a bundle from before registration has no key id and no account", () => {
    const early = sp.sealKeyBundle(
      { ...bundle, keyId: new Uint8Array(0), accountId: "" },
      PASSPHRASE,
      options,
    );
    const opened = sp.openKeyBundle(early, PASSPHRASE);
    assert.equal(opened.keyId.length, 0);
    assert.equal(opened.accountId, "");
    assert.throws(
      () => sp.sealKeyBundle({ ...bundle, keyId: new Uint8Array(5) }, PASSPHRASE, options),
      sp.FormatError,
    );
  });
});

describe("errors", () => {
  test("the tree mirrors the reference's, and every error explains itself", () => {
    const tree: [new (m: string) => Error, new (m: string) => Error][] = [
      [sp.CryptoError, sp.SealpostError],
      [sp.DecryptionError, sp.CryptoError],
      [sp.SignatureError, sp.CryptoError],
      [sp.FormatError, sp.CryptoError],
      [sp.UnsupportedVersionError, sp.FormatError],
      [sp.VersionTooOldError, sp.UnsupportedVersionError],
      [sp.VersionTooNewError, sp.UnsupportedVersionError],
      [sp.LimitError, sp.CryptoError],
      [sp.KeyRecordError, sp.CryptoError],
      [sp.EnvelopeError, sp.CryptoError],
      [sp.ProofError, sp.CryptoError],
      [sp.ForkError, sp.ProofError],
      [sp.RollbackError, sp.ProofError],
      [sp.WeakPassphraseError, sp.SealpostError],
    ];
    for (const [child, parent] of tree) {
      const error = new child("what failed");
      assert.ok(error instanceof parent, child.name);
      assert.equal(error.name, child.name);
    }
    assert.equal(new sp.ProofError("x").explain(), "ProofError: x");
  });
});
