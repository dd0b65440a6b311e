// Sending and receiving through the session with the committed keyring of
// tests/vectors/envelope-v1.json (real keys, real records, the real library) and a fake
// gateway: what is sealed opens for the detainee's mailbox, the device keeps only
// envelopes, its history reads back, and replies are verified, kept and acknowledged.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";

import { create } from "@bufbuild/protobuf";
import * as sp from "@sealpost/protocol";
import { ContactStatus, DeliveryStatus, WithholdReason } from "@sealpost/protocol/gen/common_pb";
import { LogEntrySchema, ReceiptSchema } from "@sealpost/protocol/gen/log_pb";
import {
  ContactSchema,
  StreamInboxResponseSchema,
  type StreamInboxResponse,
} from "@sealpost/protocol/gen/relative_pb";

import type { Trust } from "../src/port.js";
import { Session, type Gateway } from "../src/session.js";
import { MemoryStore } from "../src/store.js";
import { APP } from "./helpers.js";

interface Holder {
  x25519_secret: string;
  ed25519_seed: string;
  record: string;
}
const KEYRING = JSON.parse(
  readFileSync(join(APP, "..", "..", "..", "tests", "vectors", "envelope-v1.json"), "utf8"),
) as { directory: Holder & { signing_key: string }; keys: Record<string, Holder> };
/** The keyring's reference time, 2026-01-01T00:00:00Z: every record is valid then. */
const NOW = 1767225600000n;
const PASSPHRASE = "correct horse battery";

const record = (name: string): sp.KeyRecord =>
  sp.parseKeyRecord(sp.fromHex(KEYRING.keys[name]?.record ?? ""));
const secrets = (name: string): sp.PrivateKeys => {
  const key = KEYRING.keys[name];
  if (key === undefined) throw new Error(name);
  return new sp.PrivateKeys(sp.fromHex(key.x25519_secret), sp.fromHex(key.ed25519_seed));
};

let pin: sp.DirectoryPin;
let trust: Trust;
let alice: sp.VerifiedKey;
let mailbox: sp.VerifiedKey;
const DETAINEE = "detainee-0001";

function verify(name: string, purpose: sp.KeyPurpose): sp.VerifiedKey {
  return sp.verifyKeyRecord(record(name), trust.directory, {
    nowMs: NOW,
    revocations: [],
    purpose,
  });
}

/** The gateway's side, as far as the session needs it; every envelope sent is kept. */
class FakeGateway {
  readonly sent: sp.Envelope[] = [];
  readonly acknowledged: string[] = [];
  replies: StreamInboxResponse[] = [];
  approved = new Set([DETAINEE]);
  token: string | undefined;
  /** What GetMessageStatus answers, and the hex ids it was asked about. */
  status: { status: DeliveryStatus; withholdReason: WithholdReason } = {
    status: DeliveryStatus.DELIVERED,
    withholdReason: WithholdReason.UNSPECIFIED,
  };
  readonly asked: string[] = [];

  trust(): Promise<Trust> {
    return Promise.resolve(trust);
  }
  deviceRecord(): sp.VerifiedKey {
    return alice;
  }
  login(): Promise<bigint> {
    return Promise.resolve(NOW + 900_000n);
  }
  contacts(): Promise<unknown[]> {
    return Promise.resolve([
      create(ContactSchema, {
        detaineeId: DETAINEE,
        status: ContactStatus.APPROVED,
        deliverable: true,
      }),
    ]);
  }
  mailbox(): sp.VerifiedKey {
    return mailbox;
  }
  verifyReceipt(): Promise<{ leafIndex: bigint }> {
    return Promise.resolve({ leafIndex: 41n });
  }
  approvedDetainees(): Promise<Set<string>> {
    return Promise.resolve(this.approved);
  }
  async *inbox(): AsyncIterable<StreamInboxResponse> {
    for (const reply of this.replies) yield await Promise.resolve(reply);
  }
  get relative(): unknown {
    return {
      sendMessage: ({ envelope }: { envelope: sp.Envelope }) => {
        this.sent.push(envelope);
        const messageId = sp.messageIdOf(envelope);
        return Promise.resolve({
          receipt: create(ReceiptSchema, {
            messageId,
            envelopeDigest: sp.envelopeDigest(envelope),
            acceptedAtMs: NOW,
            entry: create(LogEntrySchema, { index: 41n }),
            treeHead: {},
            inclusionProof: {},
          }),
        });
      },
      acknowledgeMessage: ({ messageId }: { messageId: Uint8Array }) => {
        this.acknowledged.push(sp.toHex(messageId));
        return Promise.resolve({});
      },
      getMessageStatus: ({ messageId }: { messageId: Uint8Array }) => {
        this.asked.push(sp.toHex(messageId));
        return Promise.resolve(this.status);
      },
    };
  }
}

async function signedIn(gateway: FakeGateway, store = new MemoryStore()): Promise<Session> {
  await store.saveDevice({
    bundle: sp.sealKeyBundle(
      { keys: secrets("alice"), keyId: alice.id, accountId: alice.subject, directoryPin: pin },
      PASSPHRASE,
      { kdf: sp.KDF_INTERACTIVE },
    ),
    keyRecord: sp.fromHex(KEYRING.keys["alice"]?.record ?? ""),
    displayName: "Alice",
  });
  const session = new Session(store, gateway as unknown as Gateway, pin, () => NOW);
  await session.unlock(PASSPHRASE);
  return session;
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

describe("history", () => {
  before(async () => {
    await sp.ready();
    pin = new sp.DirectoryPin(sp.fromHex(KEYRING.directory.signing_key));
    const directory = sp.verifyDirectoryRecord(
      sp.parseKeyRecord(sp.fromHex(KEYRING.directory.record)),
      pin,
      {
        nowMs: NOW,
        revocations: [],
      },
    );
    trust = { directory, log: directory, revocations: [] };
    alice = verify("alice", sp.KeyPurpose.RELATIVE_DEVICE);
    mailbox = verify("mailbox", sp.KeyPurpose.MAILBOX);
  });

  test("a sent message opens for the mailbox, is kept only sealed, and reads back", async () => {
    const gateway = new FakeGateway();
    const store = new MemoryStore();
    const session = await signedIn(gateway, store);
    await session.acknowledgeNotice(DETAINEE);
    const text = "مرحبا يا أبي — tot zondag";
    const photo = Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, ...new TextEncoder().encode("a photo")]);
    const result = await session.send(DETAINEE, text, [{ name: "foto.jpg", data: photo }]);
    assert.equal(result.proven, true);
    assert.equal(result.leafIndex, 41n);

    const [envelope] = gateway.sent;
    assert.ok(envelope !== undefined);
    const opened = sp.openEnvelope(envelope, secrets("mailbox"), mailbox.id, alice, { nowMs: NOW });
    assert.equal(sp.messageText(opened.parts), text);
    assert.deepEqual(sp.attachments(opened.parts)[0]?.data, photo);

    const history = await store.history();
    assert.equal(history.length, 1);
    const kept = history[0];
    assert.ok(kept?.kind === "sent" && kept.receipt !== undefined);
    for (const secret of [text, "foto.jpg", "a photo"]) {
      assert.ok(
        !contains(kept.envelope, new TextEncoder().encode(secret)),
        `${secret} kept in the clear`,
      );
    }

    const [shown] = await session.conversation(DETAINEE);
    assert.equal(shown?.text, text);
    assert.equal(shown.attachments[0]?.name, "foto.jpg");
    assert.equal(shown.proven, true);
    assert.equal(await session.refreshSent(), 1);
    assert.equal((await session.conversation(DETAINEE))[0]?.status, DeliveryStatus.DELIVERED);
  });

  test("a withholding's told reason is kept with the status, and followed until delivered", async () => {
    const gateway = new FakeGateway();
    const store = new MemoryStore();
    const session = await signedIn(gateway, store);
    await session.acknowledgeNotice(DETAINEE);
    const { id } = await session.send(DETAINEE, "tot zondag", []);
    const shown = async (): Promise<[DeliveryStatus | undefined, WithholdReason | undefined]> => {
      const [message] = await session.conversation(DETAINEE);
      return [message?.status, message?.withholdReason];
    };
    assert.deepEqual(await shown(), [DeliveryStatus.PENDING, WithholdReason.UNSPECIFIED]);

    gateway.status = {
      status: DeliveryStatus.NOT_DELIVERED,
      withholdReason: WithholdReason.PUBLIC_ORDER,
    };
    assert.equal(await session.refreshSent(), 1);
    assert.deepEqual(await shown(), [DeliveryStatus.NOT_DELIVERED, WithholdReason.PUBLIC_ORDER]);
    const [kept] = await store.history();
    assert.ok(kept?.kind === "sent");
    assert.equal(kept.withholdReason, WithholdReason.PUBLIC_ORDER);
    // Not delivered is asked about again (a complaint may release it); nothing changed.
    assert.equal(await session.refreshSent(), 0);
    assert.deepEqual(gateway.asked, [id, id]);

    // Released after a complaint: pending again, and no reason with it, whatever is sent.
    gateway.status = {
      status: DeliveryStatus.PENDING,
      withholdReason: WithholdReason.PUBLIC_ORDER,
    };
    assert.equal(await session.refreshSent(), 1);
    assert.deepEqual(await shown(), [DeliveryStatus.PENDING, WithholdReason.UNSPECIFIED]);
    gateway.status = {
      status: DeliveryStatus.DELIVERED,
      withholdReason: WithholdReason.UNSPECIFIED,
    };
    assert.equal(await session.refreshSent(), 1);
    assert.deepEqual(await shown(), [DeliveryStatus.DELIVERED, WithholdReason.UNSPECIFIED]);
    // Delivered is settled: not asked about again.
    assert.equal(await session.refreshSent(), 0);
    assert.equal(gateway.asked.length, 4);
  });

  test("a record kept before reasons were asked for reads as no reason, then learns it", async () => {
    const gateway = new FakeGateway();
    const store = new MemoryStore();
    const session = await signedIn(gateway, store);
    await session.acknowledgeNotice(DETAINEE);
    await session.send(DETAINEE, "oud bericht", []);
    const [kept] = await store.history();
    assert.ok(kept?.kind === "sent");
    assert.ok(!("withholdReason" in kept));
    await store.put({ ...kept, status: DeliveryStatus.NOT_DELIVERED });
    assert.equal((await session.conversation(DETAINEE))[0]?.withholdReason, 0);
    gateway.status = {
      status: DeliveryStatus.NOT_DELIVERED,
      withholdReason: WithholdReason.VICTIM_PROTECTION,
    };
    assert.equal(await session.refreshSent(), 1);
    assert.equal(
      (await session.conversation(DETAINEE))[0]?.withholdReason,
      WithholdReason.VICTIM_PROTECTION,
    );
  });

  function reply(
    from: string,
    detaineeId: string,
    text: string,
    cursor: string,
  ): StreamInboxResponse {
    const envelope = sp.sealEnvelope([sp.textPart(text)], {
      senderKeys: secrets(from),
      senderKeyId: verify(from, sp.KeyPurpose.MAILBOX).id,
      recipients: [alice],
      nowMs: NOW,
    });
    return create(StreamInboxResponseSchema, {
      cursor,
      envelope,
      senderKey: record(from),
      detaineeId,
      acceptedAtMs: NOW,
    });
  }

  test("a reply is verified, kept sealed, acknowledged, and the cursor moves past it", async () => {
    const gateway = new FakeGateway();
    const store = new MemoryStore();
    const session = await signedIn(gateway, store);
    gateway.replies = [reply("mailbox", DETAINEE, "شكرا يا ابنتي", "c-1")];
    assert.equal(await session.fetchInbox(), 1);
    assert.equal(await store.cursor(), "c-1");
    assert.equal(gateway.acknowledged.length, 1);
    const [shown] = await session.conversation(DETAINEE);
    assert.equal(shown?.direction, "received");
    assert.equal(shown.text, "شكرا يا ابنتي");
  });

  test("a reply that does not verify is neither kept, acknowledged nor passed", async () => {
    const gateway = new FakeGateway();
    const store = new MemoryStore();
    const session = await signedIn(gateway, store);
    // Signed by the mailbox, but claimed to come from a detainee the record does not name.
    gateway.replies = [reply("mailbox", "detainee-0002", "nep", "c-9")];
    gateway.approved = new Set([DETAINEE, "detainee-0002"]);
    await assert.rejects(session.fetchInbox(), sp.KeyRecordError);
    assert.deepEqual(
      [await store.cursor(), gateway.acknowledged, await store.history()],
      ["", [], []],
    );
  });
});
