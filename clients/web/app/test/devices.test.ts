// Devices and notices with the committed keyring of tests/vectors/envelope-v1.json (real
// records, the real library) and a fake gateway: every listed record is verified and must
// be this account's; a device revoked by the directory is told so at unlock; revoking this
// device signs it out; a refused link code, address or revocation is named by the table.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";

import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import * as sp from "@sealpost/protocol";
import { DeviceSchema, type Device } from "@sealpost/protocol/gen/relative_pb";

import { AppError } from "../src/errors.js";
import { Port, type Trust, type VerifiedDevice } from "../src/port.js";
import { Session, type Gateway } from "../src/session.js";
import { MemoryStore } from "../src/store.js";
import { APP } from "./helpers.js";

interface Holder {
  x25519_secret: string;
  ed25519_seed: string;
  record: string;
  subject: string;
}
const KEYRING = JSON.parse(
  readFileSync(join(APP, "..", "..", "..", "tests", "vectors", "envelope-v1.json"), "utf8"),
) as {
  directory: Holder & { signing_key: string };
  keys: Record<string, Holder>;
  revocations: { of: string; revocation: string }[];
};
/** The keyring's reference time, 2026-01-01T00:00:00Z: every record but carol's is valid. */
const NOW = 1767225600000n;
const PASSPHRASE = "correct horse battery";

function holder(name: string): Holder {
  const key = KEYRING.keys[name];
  if (key === undefined) throw new Error(name);
  return key;
}
const record = (name: string): sp.KeyRecord => sp.parseKeyRecord(sp.fromHex(holder(name).record));
const REVOKED_DAVE = sp.parseKeyRevocation(
  sp.fromHex(KEYRING.revocations.find((r) => r.of === "dave-revoked")?.revocation ?? ""),
);

let pin: sp.DirectoryPin;
let trust: Trust;

function verified(name: string): sp.VerifiedKey {
  return sp.verifyKeyRecord(record(name), trust.directory, {
    nowMs: NOW,
    purpose: sp.KeyPurpose.RELATIVE_DEVICE,
  });
}

/** A Port whose RelativeService answers ListDevices with `devices`. */
function portListing(devices: Device[]): Port {
  const port = new Port("http://127.0.0.1:9");
  Object.defineProperty(port, "relative", {
    value: { listDevices: () => Promise.resolve({ devices }) },
  });
  return port;
}

/** The gateway's side for devices and notices; records every call. */
class FakeGateway {
  readonly calls: string[] = [];
  revocations: sp.KeyRevocation[] = [];
  listed: VerifiedDevice[] = [];
  refuse: Code | undefined;
  token: string | undefined;

  trust(): Promise<Trust> {
    return Promise.resolve({ ...trust, revocations: this.revocations });
  }
  register(
    _keys: sp.PrivateKeys,
    _name: string,
    _pin: sp.DirectoryPin,
    linkCode?: string,
  ): Promise<never> {
    this.calls.push(`register:${linkCode ?? ""}`);
    return Promise.reject(new ConnectError("no", this.refuse ?? Code.PermissionDenied));
  }
  deviceRecord(): sp.VerifiedKey {
    return verified("alice");
  }
  login(): Promise<bigint> {
    this.calls.push("login");
    return Promise.resolve(NOW + 900_000n);
  }
  devices(_trust: Trust, accountId: string): Promise<VerifiedDevice[]> {
    this.calls.push(`devices:${accountId}`);
    return Promise.resolve(this.listed);
  }
  get relative(): unknown {
    const answer = (name: string, reply: unknown) => (request: unknown) => {
      this.calls.push(
        `${name}:${JSON.stringify(request, (_k, v: unknown) => (v instanceof Uint8Array ? sp.toHex(v) : v))}`,
      );
      if (this.refuse !== undefined) return Promise.reject(new ConnectError("no", this.refuse));
      return Promise.resolve(reply);
    };
    return {
      revokeDevice: answer("revokeDevice", {}),
      setNotifications: answer("setNotifications", {}),
      getNotifications: answer("getNotifications", { email: "a@example.nl", language: "tr" }),
      createDeviceLink: answer("createDeviceLink", {
        code: "ABCD-EFGH-JKLM-NPQR",
        expiresAt: { seconds: 1767226200n, nanos: 0 },
      }),
    };
  }
}

async function signedIn(gateway: FakeGateway, name = "alice"): Promise<Session> {
  const store = new MemoryStore();
  await store.saveDevice({
    bundle: sp.sealKeyBundle(
      {
        keys: new sp.PrivateKeys(
          sp.fromHex(holder(name).x25519_secret),
          sp.fromHex(holder(name).ed25519_seed),
        ),
        keyId: sp.keyRecordId(record(name).body),
        accountId: holder(name).subject,
        directoryPin: pin,
      },
      PASSPHRASE,
      { kdf: sp.KDF_INTERACTIVE },
    ),
    keyRecord: sp.fromHex(holder(name).record),
    displayName: "Laptop",
  });
  const session = new Session(store, gateway as unknown as Gateway, pin, () => NOW);
  await session.unlock(PASSPHRASE);
  return session;
}

async function rejectsWith(promise: Promise<unknown>, key: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => error instanceof AppError && error.key === key);
}

describe("devices", () => {
  before(async () => {
    await sp.ready();
    pin = new sp.DirectoryPin(sp.fromHex(KEYRING.directory.signing_key));
    const directory = sp.verifyDirectoryRecord(
      sp.parseKeyRecord(sp.fromHex(KEYRING.directory.record)),
      pin,
      { nowMs: NOW, revocations: [] },
    );
    trust = { directory, log: directory, revocations: [] };
  });

  test("each listed record is verified at its own start, revoked and expired ones too", async () => {
    const listed = await portListing([
      create(DeviceSchema, { keyRecord: record("carol-expired") }),
      create(DeviceSchema, {
        keyRecord: record("carol-expired"),
        revokedAt: { seconds: 1748000000n, nanos: 500_000_000 },
      }),
    ]).devices(trust, "account-0003");
    assert.equal(listed.length, 2);
    assert.equal(listed[0]?.revokedAtMs, undefined);
    assert.equal(listed[0]?.addedAtMs, 1704067200000n);
    assert.equal(listed[1]?.revokedAtMs, 1748000000500n);
  });

  test("a record of another account, or one not signed by the directory, is refused", async () => {
    await assert.rejects(
      portListing([
        create(DeviceSchema, { keyRecord: record("alice") }),
        create(DeviceSchema, { keyRecord: record("bob") }),
      ]).devices(trust, "account-0001"),
      sp.KeyRecordError,
    );
    const forged = record("alice");
    forged.signature = forged.signature.slice();
    forged.signature[0] = (forged.signature[0] ?? 0) ^ 1;
    await assert.rejects(
      portListing([create(DeviceSchema, { keyRecord: forged })]).devices(trust, "account-0001"),
      sp.CryptoError,
    );
    await assert.rejects(
      portListing([create(DeviceSchema, {})]).devices(trust, "account-0001"),
      sp.KeyRecordError,
    );
  });

  test("the list marks this device and names it; the gateway keeps no names", async () => {
    const gateway = new FakeGateway();
    const session = await signedIn(gateway);
    gateway.listed = [
      { key: verified("alice"), addedAtMs: 1n, revokedAtMs: undefined },
      { key: verified("bob"), addedAtMs: 2n, revokedAtMs: 3n },
    ];
    const [own, other] = await session.devices();
    assert.ok(gateway.calls.includes("devices:account-0001"));
    assert.deepEqual([own?.thisDevice, own?.name, own?.revokedAtMs], [true, "Laptop", undefined]);
    assert.deepEqual([other?.thisDevice, other?.name, other?.revokedAtMs], [false, undefined, 3n]);
  });

  test("revoking another device keeps this one signed in; revoking this one signs out", async () => {
    const gateway = new FakeGateway();
    const session = await signedIn(gateway);
    const bob = sp.toHex(verified("bob").id);
    assert.equal(await session.revokeDevice(bob), false);
    assert.ok(session.unlocked);
    assert.ok(gateway.calls.includes(`revokeDevice:{"keyId":"${bob}"}`));
    assert.equal(await session.revokeDevice(sp.toHex(verified("alice").id)), true);
    assert.ok(!session.unlocked);
  });

  test("a revocation the gateway refuses is named by the table", async () => {
    const gateway = new FakeGateway();
    const session = await signedIn(gateway);
    gateway.refuse = Code.FailedPrecondition;
    await rejectsWith(session.revokeDevice("00".repeat(32)), "error.alreadyRevoked");
    gateway.refuse = Code.NotFound;
    await rejectsWith(session.revokeDevice("00".repeat(32)), "error.noSuchDevice");
    assert.ok(session.unlocked);
  });

  test("a device the directory revoked is told so at unlock, before it signs in", async () => {
    const gateway = new FakeGateway();
    gateway.revocations = [REVOKED_DAVE];
    await rejectsWith(signedIn(gateway, "dave-revoked"), "error.deviceRevoked");
    assert.ok(!gateway.calls.includes("login"));
    // Someone else's revocation is not this device's business.
    const other = new FakeGateway();
    other.revocations = [REVOKED_DAVE];
    assert.ok((await signedIn(other)).unlocked);
  });

  test("a link code is asked for and given as it comes", async () => {
    const session = await signedIn(new FakeGateway());
    assert.deepEqual(await session.linkDevice(), {
      code: "ABCD-EFGH-JKLM-NPQR",
      expiresAtMs: 1767226200000n,
    });
  });
});

describe("signing up with a link code", () => {
  test("a refused code is the one answer for wrong, used and expired", async () => {
    const gateway = new FakeGateway();
    const session = new Session(new MemoryStore(), gateway as unknown as Gateway, pin);
    await rejectsWith(
      session.register("Telefoon", PASSPHRASE, " abcd-efgh-jklm-npqr "),
      "error.linkCode",
    );
    assert.deepEqual(gateway.calls, ["register:abcd-efgh-jklm-npqr"]);
    assert.ok(!(await session.hasDevice()));
  });

  test("without a link code a refusal is not called a bad code", async () => {
    const gateway = new FakeGateway();
    const session = new Session(new MemoryStore(), gateway as unknown as Gateway, pin);
    await assert.rejects(session.register("Telefoon", PASSPHRASE), ConnectError);
    assert.deepEqual(gateway.calls, ["register:"]);
  });

  test("an empty code is refused before any key is made or sent", async () => {
    const gateway = new FakeGateway();
    const session = new Session(new MemoryStore(), gateway as unknown as Gateway, pin);
    await rejectsWith(session.register("Telefoon", PASSPHRASE, "  "), "error.linkCodeRequired");
    assert.deepEqual(gateway.calls, []);
  });
});

describe("notices by e-mail", () => {
  test("saved with its language, read back, and removed with an empty address", async () => {
    const gateway = new FakeGateway();
    const session = await signedIn(gateway);
    await session.setNotifications("  fatima@example.nl ", "ar");
    assert.deepEqual(await session.notifications(), { email: "a@example.nl", language: "tr" });
    await session.removeNotifications();
    const sent = gateway.calls.filter((c) => c.startsWith("setNotifications"));
    assert.deepEqual(sent, [
      'setNotifications:{"email":"fatima@example.nl","language":"ar"}',
      'setNotifications:{"email":"","language":""}',
    ]);
  });

  test("an empty address is not sent; a refused one is the field's error", async () => {
    const gateway = new FakeGateway();
    const session = await signedIn(gateway);
    await rejectsWith(session.setNotifications(" ", "nl"), "error.emailRequired");
    assert.ok(!gateway.calls.some((c) => c.startsWith("setNotifications")));
    gateway.refuse = Code.InvalidArgument;
    await rejectsWith(session.setNotifications("niet-een-adres", "nl"), "error.email");
  });
});
