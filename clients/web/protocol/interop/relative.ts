/**
 * A relative's device in Node.js, over the gateway's browser port: the interop driver of
 * tests/integration/test_web_interop.py (docs/web.md, "The interop test").
 *
 *     node dist/interop/relative.js <command> [options]
 *
 *     register --name NAME                    new keys, a new account; seals the key bundle
 *     login                                   sign a challenge, get a session token
 *     contact --detainee ID [--relationship]  ask to correspond with a detainee
 *     send --detainee ID --text TEXT [--attach FILE]...
 *                                             seal, send, prove the receipt from the log
 *     receipts                                verify every kept receipt again
 *     inbox [--after CURSOR] [--acknowledge]  replies, verified and opened
 *     refused-send --detainee ID              the sends the gateway must refuse
 *     bench-send --detainee ID [--runs N]     time seal + send + proof of 1 KiB and 2 MiB
 *
 * Environment: SEALPOST_WEB_URL (the browser port, https://host:port), SEALPOST_INTEROP_DIR
 * (the device's folder), SEALPOST_INTEROP_PASSPHRASE (seals the key bundle),
 * SEALPOST_DIRECTORY_KEY (hex, for register: later it comes from the bundle),
 * SEALPOST_INTEROP_EXPIRED_TOKEN (refused-send: an expired token to try), and
 * NODE_EXTRA_CA_CERTS (the gateway's CA, so that fetch trusts its certificate).
 *
 * Every step prints one JSON line on standard output. A failure prints a line with
 * "error" (the library's error class, or "ConnectError" with the Connect code) and exits 1.
 */

import { readFileSync } from "node:fs";
import { basename, extname } from "node:path";
import { parseArgs } from "node:util";

import { Code, ConnectError } from "@connectrpc/connect";

import * as sp from "../src/index.js";
import { ContactStatus, DeliveryStatus } from "../src/gen/sealpost/v1/common_pb.js";
import { BrowserPort, nowMs, type Trust } from "./device.js";
import { DeviceState } from "./state.js";

/** Attachment types by file extension: photos and PDF documents (SPEC section 7). */
const ATTACHMENT_TYPES: Readonly<Record<string, string>> = {
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".png": "image/png",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".heic": "image/heic",
  ".pdf": "application/pdf",
};

/** A failure of the command's own making (usage, environment), not of the protocol. */
class UsageError extends Error {}

function emit(step: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ step, ...fields }, (_key, value: unknown) =>
    typeof value === "bigint"
      ? value <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(value)
        : String(value)
      : value,
  );
  process.stdout.write(line + "\n");
}

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === "") throw new UsageError(`set ${name}`);
  return value;
}

/** The Connect code as the protocol spells it: "permission_denied", "unauthenticated". */
function connectCode(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

function describe(error: unknown): Record<string, string> {
  if (error instanceof ConnectError) {
    const cause = error.cause instanceof Error ? (error.cause.cause ?? error.cause) : undefined;
    return {
      error: "ConnectError",
      code: connectCode(error.code),
      message: error.rawMessage,
      ...(cause instanceof Error ? { cause: cause.message } : {}),
    };
  }
  if (error instanceof sp.SealpostError) return { error: error.name, message: error.explain() };
  if (error instanceof Error) return { error: error.name, message: error.message };
  return { error: "Error", message: String(error) };
}

function attachment(path: string): sp.Part {
  const type = ATTACHMENT_TYPES[extname(path).toLowerCase()];
  if (type === undefined) {
    throw new UsageError(`${basename(path)}: only photos and PDF documents can be attached`);
  }
  return new sp.Part(type, Uint8Array.from(readFileSync(path)), basename(path));
}

function base64(data: Uint8Array): string {
  return Buffer.from(data).toString("base64");
}

/** The device's folder, its port, and (after register) its opened key bundle. */
class Device {
  readonly state = new DeviceState(env("SEALPOST_INTEROP_DIR"), env("SEALPOST_INTEROP_PASSPHRASE"));
  readonly port = new BrowserPort(env("SEALPOST_WEB_URL"));
  #bundle: sp.KeyBundle | undefined;

  get bundle(): sp.KeyBundle {
    this.#bundle ??= this.state.openBundle();
    return this.#bundle;
  }

  async trust(): Promise<Trust> {
    return this.port.trust(this.bundle.directoryPin);
  }

  async login(): Promise<void> {
    const { expiresAtMs } = await this.port.login(this.bundle);
    emit("login", { accountId: this.bundle.accountId, expiresAtMs });
  }
}

async function register(device: Device, name: string): Promise<void> {
  if (device.state.hasBundle()) throw new UsageError("this folder already holds a device");
  const pin = new sp.DirectoryPin(sp.fromHex(env("SEALPOST_DIRECTORY_KEY")));
  const keys = sp.PrivateKeys.generate();
  const { accountId, record } = await device.port.register(keys, name, pin);
  device.state.saveBundle({ keys, keyId: record.id, accountId, directoryPin: pin });
  emit("register", {
    accountId,
    keyId: sp.toHex(record.id),
    subject: record.subject,
    signingKey: sp.toHex(record.signingKey),
    encryptionKey: sp.toHex(record.encryptionKey),
  });
}

async function contact(device: Device, detaineeId: string, relationship: string): Promise<void> {
  await device.login();
  const reply = await device.port.relative.requestContact({ detaineeId, relationship });
  const made = reply.contact;
  if (made === undefined) throw new sp.FormatError("the gateway sent no contact");
  emit("contact", {
    contactId: made.contactId,
    detaineeId: made.detaineeId,
    status: ContactStatus[made.status],
  });
}

async function send(
  device: Device,
  detaineeId: string,
  text: string,
  files: readonly string[],
): Promise<void> {
  const parts = [sp.textPart(text), ...files.map(attachment)];
  await device.login();
  const trust = await device.trust();
  const { contact: found, mailbox } = await device.port.contact(detaineeId, trust);
  if (mailbox === undefined) {
    throw new UsageError(`the contact is ${ContactStatus[found.status]}, not approved`);
  }
  const bundle = device.bundle;
  const envelope = sp.sealEnvelope(parts, {
    senderKeys: bundle.keys,
    senderKeyId: bundle.keyId,
    recipients: [mailbox],
    nowMs: nowMs(),
  });
  const messageId = sp.messageIdOf(envelope);
  const envelopeDigest = sp.envelopeDigest(envelope);
  const { receipt } = await device.port.relative.sendMessage({ envelope });
  if (receipt?.entry === undefined) throw new sp.ProofError("the gateway sent no receipt entry");
  if (
    sp.toHex(receipt.messageId) !== sp.toHex(messageId) ||
    sp.toHex(receipt.envelopeDigest) !== sp.toHex(envelopeDigest)
  ) {
    throw new sp.ProofError("the gateway acknowledged another envelope");
  }
  const sentEntry = receipt.entry;
  const expected = { messageId, envelopeDigest, sentEntry };
  // Accepted, so kept before anything else can fail.
  device.state.recordSent({
    messageId,
    envelopeDigest,
    detaineeId,
    acceptedEntry: sentEntry,
    receipt: undefined,
  });
  emit("send", {
    messageId: sp.toHex(messageId),
    envelopeDigest: sp.toHex(envelopeDigest),
    acceptedAtMs: receipt.acceptedAtMs,
    leafIndex: sentEntry.index,
    parts: parts.length,
  });
  // The answer normally carries its head and proof (one head per batch of sends); only
  // without them does the device ask GetReceiptProof.
  const provenAtSend = receipt.treeHead !== undefined && receipt.inclusionProof !== undefined;
  const proven = provenAtSend
    ? { receipt, verified: await device.port.verifyReceipt(receipt, expected, trust) }
    : await device.port.proveReceipt(expected, trust);
  device.state.recordSent({
    messageId,
    envelopeDigest,
    detaineeId,
    acceptedEntry: sentEntry,
    receipt: proven.receipt,
  });
  const head = proven.verified.head;
  emit("receipt", {
    messageId: sp.toHex(messageId),
    leafIndex: proven.verified.leafIndex,
    treeSize: head.treeSize,
    rootHash: sp.toHex(head.rootHash),
    headTimestampMs: head.timestampMs,
    provenAtSend,
  });
  // A later check asks GetReceiptProof: the same entry, in the newest stored head.
  const later = await device.port.proveReceipt(expected, trust);
  emit("receipt-later", {
    leafIndex: later.verified.leafIndex,
    treeSize: later.verified.head.treeSize,
  });
  const newest = await device.port.newestHeadCovering(proven.verified, sentEntry, trust);
  emit("log", { treeSize: newest.treeSize, consistentWith: head.treeSize, included: true });
}

async function receipts(device: Device): Promise<boolean> {
  const trust = await device.trust();
  let allGood = true;
  const records = device.state.sent();
  if (records.length > 0) await device.login(); // GetKeyRecords needs a session
  for (const record of records) {
    const messageId = sp.toHex(record.messageId);
    if (record.receipt === undefined) {
      emit("receipt-check", { messageId, ok: false, error: "ProofError", message: "not proven" });
      allGood = false;
      continue;
    }
    try {
      const verified = await device.port.verifyReceipt(
        record.receipt,
        {
          messageId: record.messageId,
          envelopeDigest: record.envelopeDigest,
          sentEntry: record.acceptedEntry,
        },
        trust,
      );
      emit("receipt-check", { messageId, ok: true, treeSize: verified.head.treeSize });
    } catch (error) {
      if (!(error instanceof sp.SealpostError)) throw error;
      emit("receipt-check", { messageId, ok: false, ...describe(error) });
      allGood = false;
    }
  }
  emit("receipts", { checked: records.length, ok: allGood });
  return allGood;
}

async function inbox(device: Device, after: string, acknowledge: boolean): Promise<void> {
  await device.login();
  const trust = await device.trust();
  let count = 0;
  for await (const { item, message } of device.port.inbox(device.bundle, trust, after)) {
    const messageId = message.header.messageId;
    emit("reply", {
      cursor: item.cursor,
      messageId: sp.toHex(messageId),
      detaineeId: item.detaineeId,
      acceptedAtMs: item.acceptedAtMs,
      senderKeyId: sp.toHex(message.header.senderKeyId),
      text: sp.messageText(message.parts),
      attachments: sp.attachments(message.parts).map((part) => ({
        contentType: part.contentType,
        filename: part.filename,
        data: base64(part.data),
      })),
    });
    if (acknowledge) {
      await device.port.relative.acknowledgeMessage({ messageId });
      const { status } = await device.port.relative.getMessageStatus({ messageId });
      emit("acknowledged", { messageId: sp.toHex(messageId), status: DeliveryStatus[status] });
    }
    count += 1;
  }
  emit("inbox", { replies: count });
}

/**
 * A message sealed by this device, sent without a token, with a forged one and with an
 * expired one (when given): the browser port must refuse each, and accept nothing.
 */
async function refusedSend(device: Device, detaineeId: string): Promise<void> {
  await device.login();
  const token = device.port.token ?? "";
  const trust = await device.trust();
  const { mailbox } = await device.port.contact(detaineeId, trust);
  if (mailbox === undefined) throw new UsageError("the contact is not approved");
  const bundle = device.bundle;
  const envelope = sp.sealEnvelope([sp.textPart("niet verstuurd")], {
    senderKeys: bundle.keys,
    senderKeyId: bundle.keyId,
    recipients: [mailbox],
    nowMs: nowMs(),
  });
  const messageId = sp.messageIdOf(envelope);
  // The MAC's first character carries six bits of it: changing it always changes the MAC.
  const macAt = token.lastIndexOf(".") + 1;
  const forged =
    token.slice(0, macAt) + (token[macAt] === "A" ? "B" : "A") + token.slice(macAt + 1);
  const attempts: [string, string | undefined][] = [
    ["no token", undefined],
    ["forged token", forged],
  ];
  const expired = process.env["SEALPOST_INTEROP_EXPIRED_TOKEN"];
  if (expired !== undefined && expired !== "") attempts.push(["expired token", expired]);
  for (const [attempt, tried] of attempts) {
    device.port.token = tried;
    try {
      await device.port.relative.sendMessage({ envelope });
      emit("refused", { attempt, messageId: sp.toHex(messageId), code: "ok" });
    } catch (error) {
      if (!(error instanceof ConnectError)) throw error;
      emit("refused", { attempt, messageId: sp.toHex(messageId), ...describe(error) });
    }
  }
  device.port.token = token;
  try {
    const { status } = await device.port.relative.getMessageStatus({ messageId });
    emit("status", { messageId: sp.toHex(messageId), code: "ok", status: DeliveryStatus[status] });
  } catch (error) {
    if (!(error instanceof ConnectError)) throw error;
    emit("status", { messageId: sp.toHex(messageId), ...describe(error) });
  }
}

/** Random bytes behind a JPEG's signature, as a photo of that size would start. */
function jpegLike(size: number): Uint8Array {
  const data = sp.randomBytes(size);
  data.set([0xff, 0xd8, 0xff, 0xe0]);
  return data;
}

/** Median milliseconds to seal, send and prove a 1 KiB text and a 2 MiB photo (bench/). */
async function benchSend(device: Device, detaineeId: string, runs: number): Promise<void> {
  await device.login();
  const trust = await device.trust();
  const { mailbox } = await device.port.contact(detaineeId, trust);
  if (mailbox === undefined) throw new UsageError("the contact is not approved");
  const bundle = device.bundle;
  const cases: Record<string, sp.Part[]> = {
    "1 KiB text": [sp.textPart("x".repeat(1024))],
    "2 MiB photo": [
      sp.textPart("Hier is de foto van zondag."),
      new sp.Part("image/jpeg", jpegLike(2 * 1024 * 1024), "foto.jpg"),
    ],
  };
  const results: Record<string, { median_ms: number; runs: number }> = {};
  for (const [label, parts] of Object.entries(cases)) {
    const times: number[] = [];
    for (let run = 0; run <= runs; run++) {
      const started = performance.now();
      const envelope = sp.sealEnvelope(parts, {
        senderKeys: bundle.keys,
        senderKeyId: bundle.keyId,
        recipients: [mailbox],
        nowMs: nowMs(),
      });
      const { receipt } = await device.port.relative.sendMessage({ envelope });
      if (receipt?.entry === undefined) throw new sp.ProofError("no receipt entry");
      const expected = {
        messageId: sp.messageIdOf(envelope),
        envelopeDigest: sp.envelopeDigest(envelope),
        sentEntry: receipt.entry,
      };
      if (receipt.treeHead !== undefined && receipt.inclusionProof !== undefined) {
        await device.port.verifyReceipt(receipt, expected, trust);
      } else {
        await device.port.proveReceipt(expected, trust);
      }
      if (run > 0) times.push(performance.now() - started); // the first warms up
    }
    times.sort((a, b) => a - b);
    results[label] = { median_ms: times[Math.floor(times.length / 2)] ?? 0, runs };
  }
  emit("bench-send", { results });
}

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      name: { type: "string" },
      detainee: { type: "string" },
      relationship: { type: "string", default: "" },
      text: { type: "string", default: "" },
      attach: { type: "string", multiple: true, default: [] },
      after: { type: "string", default: "" },
      acknowledge: { type: "boolean", default: false },
      runs: { type: "string", default: "10" },
    },
    strict: true,
  });
  const required = (value: string | undefined, option: string): string => {
    if (value === undefined || value === "")
      throw new UsageError(`${command ?? ""} needs ${option}`);
    return value;
  };
  await sp.ready();
  const device = new Device();
  switch (command) {
    case "register":
      await register(device, required(values.name, "--name"));
      return 0;
    case "login":
      await device.login();
      return 0;
    case "contact":
      await contact(device, required(values.detainee, "--detainee"), values.relationship);
      return 0;
    case "send":
      await send(device, required(values.detainee, "--detainee"), values.text, values.attach);
      return 0;
    case "receipts":
      return (await receipts(device)) ? 0 : 1;
    case "inbox":
      await inbox(device, values.after, values.acknowledge);
      return 0;
    case "refused-send":
      await refusedSend(device, required(values.detainee, "--detainee"));
      return 0;
    case "bench-send":
      await benchSend(device, required(values.detainee, "--detainee"), Number(values.runs));
      return 0;
    default:
      throw new UsageError(
        "usage: relative.js register|login|contact|send|receipts|inbox|refused-send|bench-send",
      );
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    emit("error", describe(error));
    process.exitCode = error instanceof UsageError ? 2 : 1;
  },
);
