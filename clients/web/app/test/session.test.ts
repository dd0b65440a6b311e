// The session's refusals, with a fake gateway and the in-memory store: what must be
// refused happens before anything is sealed or sent, and the keys stay sealed at rest.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";

import { create } from "@bufbuild/protobuf";
import * as sp from "@sealpost/protocol";
import { ContactStatus } from "@sealpost/protocol/gen/common_pb";
import { KeyRecordSchema } from "@sealpost/protocol/gen/keys_pb";
import { ContactSchema, type Contact } from "@sealpost/protocol/gen/relative_pb";

import { AppError } from "../src/errors.js";
import { Session, type Gateway } from "../src/session.js";
import { MemoryStore } from "../src/store.js";

const PIN = new sp.DirectoryPin(new Uint8Array(32).fill(7));
const PASSPHRASE = "correct horse battery";
const JPEG = Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4]);

/** A gateway that answers what the refusals need, and records every call it gets. */
class FakeGateway {
  readonly calls: string[] = [];
  contactList: Contact[] = [];
  token: string | undefined;

  trust(): Promise<never> {
    this.calls.push("trust");
    return Promise.resolve({ directory: {}, log: {}, revocations: [] } as never);
  }
  register(keys: sp.PrivateKeys): Promise<never> {
    this.calls.push("register");
    assert.ok(keys.encryptionKey.length === 32);
    return Promise.resolve({
      accountId: "a-1",
      record: create(KeyRecordSchema, {}),
      verified: { id: new Uint8Array(32).fill(1) },
    } as never);
  }
  deviceRecord(): never {
    this.calls.push("deviceRecord");
    return {} as never;
  }
  login(): Promise<bigint> {
    this.calls.push("login");
    return Promise.resolve(BigInt(Date.now()) + 900_000n);
  }
  contacts(): Promise<Contact[]> {
    this.calls.push("contacts");
    return Promise.resolve(this.contactList);
  }
  get relative(): never {
    this.calls.push("relative");
    throw new Error("no call may reach the gateway here");
  }
}

function session(store: MemoryStore, gateway: FakeGateway, pin = PIN): Session {
  return new Session(store, gateway as unknown as Gateway, pin);
}

async function rejectsWith(promise: Promise<unknown>, key: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => error instanceof AppError && error.key === key);
}

describe("session", () => {
  before(async () => {
    await sp.ready();
  });

  test("a weak passphrase is refused before any key is made or sent", async () => {
    const gateway = new FakeGateway();
    await assert.rejects(
      session(new MemoryStore(), gateway).register("Fatima", "short"),
      sp.WeakPassphraseError,
    );
    assert.deepEqual(gateway.calls, []);
  });

  test("signing up keeps the keys sealed; only the passphrase opens them", async () => {
    const store = new MemoryStore();
    const gateway = new FakeGateway();
    const first = session(store, gateway);
    await first.register("Fatima El Amrani", PASSPHRASE);
    assert.ok(first.unlocked);
    const device = await store.device();
    assert.ok(device !== undefined);
    assert.equal(new TextDecoder().decode(device.bundle.slice(0, 16)), "SEALPOST-WEBKEYS");
    await rejectsWith(first.register("Again", PASSPHRASE), "error.deviceExists");

    const later = session(store, new FakeGateway());
    await rejectsWith(later.unlock("wrong passphrase"), "error.wrongPassphrase");
    assert.ok(!later.unlocked);
    await later.unlock(PASSPHRASE);
    assert.equal(later.accountId, "a-1");
  });

  test("a deployment that pins another directory key is refused at unlock", async () => {
    const store = new MemoryStore();
    await session(store, new FakeGateway()).register("Fatima", PASSPHRASE);
    const other = new sp.DirectoryPin(new Uint8Array(32).fill(8));
    const gateway = new FakeGateway();
    await rejectsWith(session(store, gateway, other).unlock(PASSPHRASE), "error.pinChanged");
    assert.deepEqual(gateway.calls, []);
  });

  test("nothing is sent before the review notice is acknowledged for that contact", async () => {
    const store = new MemoryStore();
    const gateway = new FakeGateway();
    const s = session(store, gateway);
    await s.register("Fatima", PASSPHRASE);
    gateway.calls.length = 0;
    await rejectsWith(s.send("d-1001", "Hallo papa", []), "error.noticeFirst");
    assert.deepEqual(gateway.calls, []);

    await s.acknowledgeNotice("d-1001");
    assert.ok((await store.noticeAcknowledged("d-1001")) !== undefined);
    assert.equal(await store.noticeAcknowledged("d-2002"), undefined); // per contact
    await rejectsWith(s.send("d-2002", "Hallo", []), "error.noticeFirst");
  });

  test("a refused file stops the send before the gateway is asked anything", async () => {
    const gateway = new FakeGateway();
    const s = session(new MemoryStore(), gateway);
    await s.register("Fatima", PASSPHRASE);
    await s.acknowledgeNotice("d-1001");
    gateway.calls.length = 0;
    await rejectsWith(s.send("d-1001", "kijk", [{ name: "virus.exe", data: JPEG }]), "file.type");
    await rejectsWith(
      s.send("d-1001", "kijk", [{ name: "foto.png", data: JPEG }]),
      "file.mismatch",
    );
    await rejectsWith(s.send("d-1001", "   ", []), "error.emptyMessage");
    assert.deepEqual(gateway.calls, []);
  });

  test("a contact that is not approved gets nothing sealed", async () => {
    const gateway = new FakeGateway();
    const s = session(new MemoryStore(), gateway);
    await s.register("Fatima", PASSPHRASE);
    await s.acknowledgeNotice("d-1001");
    gateway.contactList = [
      create(ContactSchema, { detaineeId: "d-1001", status: ContactStatus.REQUESTED }),
    ];
    await rejectsWith(
      s.send("d-1001", "Hallo", [{ name: "foto.jpg", data: JPEG }]),
      "error.notApproved",
    );
    gateway.contactList = [
      create(ContactSchema, {
        detaineeId: "d-1001",
        status: ContactStatus.APPROVED,
        deliverable: false,
      }),
    ];
    await rejectsWith(s.send("d-1001", "Hallo", []), "error.mailboxClosed");
    assert.ok(!gateway.calls.includes("relative"));
  });

  test("signing out forgets the keys; deleting removes everything", async () => {
    const store = new MemoryStore();
    const s = session(store, new FakeGateway());
    await s.register("Fatima", PASSPHRASE);
    await s.acknowledgeNotice("d-1001");
    s.signOut();
    assert.ok(!s.unlocked);
    await rejectsWith(s.send("d-1001", "Hallo", []), "error.locked");
    assert.ok(await s.hasDevice());
    await s.deleteAll();
    assert.ok(!(await s.hasDevice()));
    assert.equal(await store.noticeAcknowledged("d-1001"), undefined);
    await rejectsWith(s.unlock(PASSPHRASE), "error.noDevice");
  });
});
