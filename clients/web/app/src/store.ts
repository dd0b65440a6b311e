/**
 * What the app keeps on the device, behind one small interface: the key bundle sealed
 * under the passphrase (the library's keystore), the device's own key record, the review
 * notice acknowledgements, and the history. The history keeps envelopes, never plaintext:
 * a sent message as the envelope this device sealed (it carries a copy of its key sealed
 * to this device), a reply as the envelope it arrived in; both open only with the keys in
 * the sealed bundle. Ids, times, delivery states and receipts are kept as they are: the
 * gateway knows them too, and they open nothing.
 *
 * `IndexedDbStore` is the browser's; `MemoryStore` is the same in memory, for tests.
 */

import type { DeliveryStatus, WithholdReason } from "@sealpost/protocol/gen/common_pb";

/** One message this device sent. */
export interface SentRecord {
  readonly kind: "sent";
  /** Hex message id: the record's key. */
  readonly id: string;
  readonly detaineeId: string;
  /** The serialised envelope, as sent. */
  readonly envelope: Uint8Array;
  readonly envelopeDigest: Uint8Array;
  /** The LogEntry the gateway named at acceptance (serialised). */
  readonly acceptedEntry: Uint8Array;
  readonly acceptedAtMs: bigint;
  /** The proven Receipt (serialised), once its inclusion proof has verified. */
  readonly receipt: Uint8Array | undefined;
  /** The last delivery status seen. */
  readonly status: DeliveryStatus;
  /**
   * The reason category of a withholding, with the status, where the gateway told it;
   * absent on records kept before the app asked for it.
   */
  readonly withholdReason?: WithholdReason;
}

/** One reply received. */
export interface ReceivedRecord {
  readonly kind: "received";
  readonly id: string;
  readonly detaineeId: string;
  readonly envelope: Uint8Array;
  /** The sender's mailbox KeyRecord (serialised), verified again when the reply is opened. */
  readonly senderKey: Uint8Array;
  readonly acceptedAtMs: bigint;
  readonly cursor: string;
}

export type HistoryRecord = SentRecord | ReceivedRecord;

/** The device: its sealed key bundle and its own key record (public). */
export interface DeviceRecord {
  readonly bundle: Uint8Array;
  /** The KeyRecord the gateway issued for this device (serialised). */
  readonly keyRecord: Uint8Array;
  readonly displayName: string;
}

export interface Store {
  device(): Promise<DeviceRecord | undefined>;
  saveDevice(device: DeviceRecord): Promise<void>;
  /** When the review notice was acknowledged for a contact (ms), or undefined. */
  noticeAcknowledged(detaineeId: string): Promise<number | undefined>;
  acknowledgeNotice(detaineeId: string, atMs: number): Promise<void>;
  history(): Promise<HistoryRecord[]>;
  put(record: HistoryRecord): Promise<void>;
  /** Where the inbox was last read (StreamInbox's cursor). */
  cursor(): Promise<string>;
  saveCursor(cursor: string): Promise<void>;
  /** Remove everything the app keeps on this device. */
  clear(): Promise<void>;
}

/** Everything in memory: for tests, with the same behaviour as the IndexedDB store. */
export class MemoryStore implements Store {
  #device: DeviceRecord | undefined;
  readonly #notices = new Map<string, number>();
  readonly #history = new Map<string, HistoryRecord>();
  #cursor = "";

  device(): Promise<DeviceRecord | undefined> {
    return Promise.resolve(this.#device);
  }
  saveDevice(device: DeviceRecord): Promise<void> {
    this.#device = device;
    return Promise.resolve();
  }
  noticeAcknowledged(detaineeId: string): Promise<number | undefined> {
    return Promise.resolve(this.#notices.get(detaineeId));
  }
  acknowledgeNotice(detaineeId: string, atMs: number): Promise<void> {
    this.#notices.set(detaineeId, atMs);
    return Promise.resolve();
  }
  history(): Promise<HistoryRecord[]> {
    return Promise.resolve([...this.#history.values()].sort(byTime));
  }
  put(record: HistoryRecord): Promise<void> {
    this.#history.set(`${record.kind}:${record.id}`, record);
    return Promise.resolve();
  }
  cursor(): Promise<string> {
    return Promise.resolve(this.#cursor);
  }
  saveCursor(cursor: string): Promise<void> {
    this.#cursor = cursor;
    return Promise.resolve();
  }
  clear(): Promise<void> {
    this.#device = undefined;
    this.#notices.clear();
    this.#history.clear();
    this.#cursor = "";
    return Promise.resolve();
  }
}

export function byTime(a: HistoryRecord, b: HistoryRecord): number {
  return a.acceptedAtMs < b.acceptedAtMs ? -1 : a.acceptedAtMs > b.acceptedAtMs ? 1 : 0;
}
