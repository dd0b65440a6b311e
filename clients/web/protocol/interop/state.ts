/**
 * What the interop device keeps between its commands, in one folder: its key bundle sealed
 * under a passphrase with the library's keystore (as the web app keeps it in IndexedDB),
 * and the record of each message it sent (message id, envelope digest, the entry the
 * gateway named at acceptance and the receipt it proved), so that receipts can be checked
 * again later (docs/transparency-log.md 6, "A receipt").
 */

import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { fromBinary, toBinary } from "@bufbuild/protobuf";

import * as sp from "../src/index.js";
import { LogEntrySchema, ReceiptSchema } from "../src/gen/sealpost/v1/log_pb.js";

/** The sealed key bundle (docs/web.md, "The key bundle"). */
const BUNDLE_FILE = "device.keys";
/** The messages sent: JSON, no secret in it (ids, digests, log entries, proofs). */
const SENT_FILE = "sent.json";
const SENT_FORMAT = 1;

/** One message this device sent, as it remembers it. */
export interface SentRecord {
  readonly messageId: Uint8Array;
  readonly envelopeDigest: Uint8Array;
  readonly detaineeId: string;
  /** The entry SendMessageResponse named: a later proof must be about this one. */
  readonly acceptedEntry: sp.LogEntry;
  /** The receipt with its signed tree head and inclusion proof, once proven. */
  readonly receipt: sp.Receipt | undefined;
}

interface SentJson {
  messageId: string;
  envelopeDigest: string;
  detaineeId: string;
  acceptedEntry: string;
  receipt: string;
}

function writePrivate(path: string, data: string | Uint8Array): void {
  const partial = `${path}.partial`;
  writeFileSync(partial, data, { mode: 0o600 });
  chmodSync(partial, 0o600);
  renameSync(partial, path);
}

function base64(data: Uint8Array): string {
  return Buffer.from(data).toString("base64");
}

function unbase64(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text, "base64"));
}

/** The device's folder: its sealed key bundle and its sent records. */
export class DeviceState {
  constructor(
    readonly folder: string,
    private readonly passphrase: string,
  ) {}

  get bundlePath(): string {
    return join(this.folder, BUNDLE_FILE);
  }

  get sentPath(): string {
    return join(this.folder, SENT_FILE);
  }

  hasBundle(): boolean {
    return existsSync(this.bundlePath);
  }

  /** Seal the bundle under the passphrase and write it (owner-only). */
  saveBundle(bundle: sp.KeyBundle): void {
    writePrivate(this.bundlePath, sp.sealKeyBundle(bundle, this.passphrase));
  }

  /** Open the bundle: DecryptionError for a wrong passphrase or an altered file. */
  openBundle(): sp.KeyBundle {
    if (!this.hasBundle()) {
      throw new Error(`no device here (${this.bundlePath}): run "register" first`);
    }
    return sp.openKeyBundle(Uint8Array.from(readFileSync(this.bundlePath)), this.passphrase);
  }

  /** Every message sent, oldest first. */
  sent(): SentRecord[] {
    if (!existsSync(this.sentPath)) return [];
    const document = JSON.parse(readFileSync(this.sentPath, "utf8")) as {
      format?: unknown;
      sent?: SentJson[];
    };
    if (document.format !== SENT_FORMAT || !Array.isArray(document.sent)) {
      throw new sp.FormatError("the sent records are not in a format this code reads");
    }
    return document.sent.map((item) => ({
      messageId: sp.fromHex(item.messageId),
      envelopeDigest: sp.fromHex(item.envelopeDigest),
      detaineeId: item.detaineeId,
      acceptedEntry: fromBinary(LogEntrySchema, unbase64(item.acceptedEntry)),
      receipt: item.receipt === "" ? undefined : fromBinary(ReceiptSchema, unbase64(item.receipt)),
    }));
  }

  /** Add or replace the record of one message (by message id). */
  recordSent(record: SentRecord): void {
    const id = sp.toHex(record.messageId);
    const kept = this.sent().filter((r) => sp.toHex(r.messageId) !== id);
    kept.push(record);
    const sent: SentJson[] = kept.map((r) => ({
      messageId: sp.toHex(r.messageId),
      envelopeDigest: sp.toHex(r.envelopeDigest),
      detaineeId: r.detaineeId,
      acceptedEntry: base64(toBinary(LogEntrySchema, r.acceptedEntry)),
      receipt: r.receipt === undefined ? "" : base64(toBinary(ReceiptSchema, r.receipt)),
    }));
    writePrivate(this.sentPath, JSON.stringify({ format: SENT_FORMAT, sent }, null, 2) + "\n");
  }
}
