// Sealing and opening beyond the vectors: fresh randomness, the sender's own copy, the
// refusals on the sealing side, and that nothing secret is printed.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import * as sp from "../src/index.js";
import { NOW, secrets, verified, holder } from "./fixtures.js";
import { h, hex } from "./helpers.js";

const TEXT = "Hallo papa, مرحبا — tot zondag! 👶";
const PHOTO = Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9]);

function seal(parts: sp.Part[], recipients = ["mailbox"], sender = "alice"): sp.Envelope {
  return sp.sealEnvelope(parts, {
    senderKeys: secrets(sender),
    senderKeyId: h(holder(sender).record_id),
    recipients: recipients.map((r) => verified(r)),
    nowMs: NOW,
  });
}

describe("sealing and opening", () => {
  test("the recipient and the sender's own sent copy open the same parts", () => {
    const envelope = seal([sp.textPart(TEXT), new sp.Part("image/jpeg", PHOTO, "foto-👶.jpg")]);
    const bytes = sp.serializeEnvelope(envelope);
    const alice = verified("alice");
    for (const opener of ["mailbox", "alice"]) {
      const opened = sp.openEnvelope(
        sp.parseEnvelope(bytes),
        secrets(opener),
        h(holder(opener).record_id),
        alice,
        { nowMs: NOW },
      );
      assert.equal(sp.messageText(opened.parts), TEXT);
      const [photo] = sp.attachments(opened.parts);
      assert.equal(photo?.filename, "foto-👶.jpg");
      assert.deepEqual(photo.data, PHOTO);
      assert.deepEqual(opened.digest, sp.envelopeDigest(envelope));
      assert.deepEqual(opened.header.messageId, sp.messageIdOf(envelope));
    }
    // The file name never travels in the clear.
    assert.equal(hex(bytes).includes(hex(new TextEncoder().encode("foto-👶"))), false);
  });

  test("two seals of one message differ (fresh message id, DEK, nonces)", () => {
    const a = seal([sp.textPart("x")]);
    const b = seal([sp.textPart("x")]);
    assert.notDeepEqual(sp.messageIdOf(a), sp.messageIdOf(b));
    assert.notDeepEqual(a.partCiphertexts[0], b.partCiphertexts[0]);
  });

  test("a key the envelope is not addressed to is refused; a wrong secret cannot open", () => {
    const envelope = seal([sp.textPart("for the mailbox")]);
    const alice = verified("alice");
    assert.throws(
      () =>
        sp.openEnvelope(envelope, secrets("bob"), h(holder("bob").record_id), alice, {
          nowMs: NOW,
        }),
      sp.EnvelopeError,
    );
    assert.throws(
      () =>
        sp.openEnvelope(envelope, secrets("bob"), h(holder("mailbox").record_id), alice, {
          nowMs: NOW,
        }),
      sp.DecryptionError,
    );
  });

  test("the escrow path checks the DEK against the commitment", () => {
    const envelope = seal([sp.textPart("reviewed")]);
    const alice = verified("alice");
    const dek = sp.openDek(envelope, secrets("mailbox"), h(holder("mailbox").record_id), alice, {
      nowMs: NOW,
    });
    const opened = sp.decryptWithDek(envelope, dek, alice, { nowMs: NOW });
    assert.equal(sp.messageText(opened.parts), "reviewed");
    const other = dek.slice();
    other[0] = (other[0] ?? 0) ^ 1;
    assert.throws(
      () => sp.decryptWithDek(envelope, other, alice, { nowMs: NOW }),
      sp.EnvelopeError,
    );
    assert.throws(
      () => sp.decryptWithDek(envelope, dek.slice(1), alice, { nowMs: NOW }),
      sp.EnvelopeError,
    );
  });

  test("sealing refuses recipients that are not message keys or not valid now", () => {
    assert.throws(() => seal([sp.textPart("x")], ["institution"]), sp.KeyRecordError);
    const mailbox = verified("mailbox");
    assert.throws(
      () =>
        sp.sealEnvelope([sp.textPart("x")], {
          senderKeys: secrets("alice"),
          senderKeyId: h(holder("alice").record_id),
          recipients: [mailbox],
          nowMs: mailbox.notAfter * 1000n,
        }),
      sp.KeyRecordError,
    );
  });

  test("sealing applies the file name and content type rules before drawing randomness", () => {
    const refusals: [sp.Part, typeof sp.CryptoError][] = [
      [new sp.Part("image/jpeg", PHOTO, "../etc"), sp.FormatError],
      [new sp.Part("image/jpeg", PHOTO, ".."), sp.FormatError],
      [new sp.Part("image/jpeg", PHOTO, "a/b.jpg"), sp.FormatError],
      [new sp.Part("image/jpeg", PHOTO, "a\\b.jpg"), sp.FormatError],
      [new sp.Part("image/jpeg", PHOTO, "gpj.\u202eexe"), sp.FormatError],
      [new sp.Part("image/jpeg", PHOTO, "tab\there"), sp.FormatError],
      [new sp.Part("image/jpeg", PHOTO, "bad\ud800.jpg"), sp.FormatError],
      [new sp.Part("image/jpeg", PHOTO, "x".repeat(256)), sp.LimitError],
      [new sp.Part("image/jpég", PHOTO, "a.jpg"), sp.FormatError],
      [new sp.Part("", PHOTO, "a.jpg"), sp.FormatError],
    ];
    for (const [part, error] of refusals) {
      let drawn = 0;
      assert.throws(
        () =>
          sp.sealEnvelope([part], {
            senderKeys: secrets("alice"),
            senderKeyId: h(holder("alice").record_id),
            recipients: [verified("mailbox")],
            nowMs: NOW,
            rng: (size) => {
              drawn += size;
              return new Uint8Array(size);
            },
          }),
        (e: unknown) => e instanceof error && e.constructor === error,
        part.toString(),
      );
      assert.equal(drawn, 0);
    }
    // Right-to-left marks are allowed, and so are names in any script.
    seal([new sp.Part("application/pdf", PHOTO, "\u200fوثيقة.pdf")]);
  });

  test("sealing enforces the part and size limits", () => {
    const limits = sp.makeLimits({ maxParts: 1, maxPartBytes: 16, maxTotalBytes: 20 });
    const options = {
      senderKeys: secrets("alice"),
      senderKeyId: h(holder("alice").record_id),
      recipients: [verified("mailbox")],
      nowMs: NOW,
      limits,
    };
    assert.throws(
      () => sp.sealEnvelope([sp.textPart("a"), sp.textPart("b")], options),
      sp.LimitError,
    );
    assert.throws(() => sp.sealEnvelope([sp.textPart("123456789")], options), sp.LimitError);
    sp.sealEnvelope([sp.textPart("12345678")], options);
  });

  test("a time outside the clock limits is refused on reading", () => {
    const envelope = seal([sp.textPart("x")]);
    const alice = verified("alice");
    const day = 86_400_000n;
    assert.throws(
      () => sp.verifyEnvelope(envelope, alice, { nowMs: NOW - 301_000n }),
      sp.LimitError,
    );
    assert.throws(
      () => sp.verifyEnvelope(envelope, alice, { nowMs: NOW + 8n * day }),
      sp.LimitError,
    );
    sp.verifyEnvelope(envelope, alice, { nowMs: NOW + 7n * day });
  });

  test("parts and keys print without content, names or secrets", () => {
    const part = new sp.Part("image/jpeg", PHOTO, "geheim.jpg");
    assert.equal(String(part), 'Part(contentType="image/jpeg", size=9)');
    assert.equal(JSON.stringify(part).includes("geheim"), false);
    const keys = secrets("alice");
    const secretHex = [holder("alice").x25519_secret, holder("alice").ed25519_seed];
    for (const printed of [String(keys), JSON.stringify(keys), JSON.stringify({ keys })]) {
      for (const secret of secretHex) assert.equal(printed.includes(secret), false);
    }
    assert.deepEqual(keys.exportSecrets().x25519Secret, h(holder("alice").x25519_secret));
  });

  test("text that is not valid UTF-8 is refused, not repaired", () => {
    assert.throws(
      () => sp.messageText([new sp.Part(sp.TEXT_PLAIN, Uint8Array.of(0xff))]),
      sp.FormatError,
    );
    assert.throws(() => sp.textPart("\udc00"), sp.FormatError);
  });
});

describe("text and attachments", () => {
  const photo = new sp.Part("image/jpeg", PHOTO, "foto.jpg");
  test("part 0 is the text when it is unnamed text/plain; the rest are attachments", () => {
    assert.equal(sp.messageText([sp.textPart("hoi"), photo]), "hoi");
    assert.deepEqual(sp.attachments([sp.textPart("hoi"), photo]), [photo]);
    assert.equal(sp.messageText([sp.textPart(""), photo]), "");
    assert.equal(sp.messageText([photo, sp.textPart("not the text")]), "");
    assert.equal(sp.attachments([photo, sp.textPart("x")]).length, 2);
    const named = new sp.Part(sp.TEXT_PLAIN, new TextEncoder().encode("a file"), "notes.txt");
    assert.equal(sp.messageText([named]), "");
  });
});
