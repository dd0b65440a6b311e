/**
 * The Store in the browser's IndexedDB: one database, three object stores. Values are
 * structured clones (Uint8Array and bigint survive as they are).
 */

import { byTime, type DeviceRecord, type HistoryRecord, type Store } from "./store.js";

const DATABASE = "sealpost";
const VERSION = 1;
const SETTINGS = "settings"; // the device, the inbox cursor
const NOTICES = "notices"; // detainee id -> when the review notice was acknowledged
const HISTORY = "history"; // "sent:<id>" / "received:<id>" -> HistoryRecord

function done<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => {
      resolve(request.result);
    };
    request.onerror = () => {
      reject(request.error ?? new Error("IndexedDB request failed"));
    };
  });
}

function open(): Promise<IDBDatabase> {
  const request = indexedDB.open(DATABASE, VERSION);
  request.onupgradeneeded = () => {
    const db = request.result;
    for (const name of [SETTINGS, NOTICES, HISTORY]) {
      if (!db.objectStoreNames.contains(name)) db.createObjectStore(name);
    }
  };
  return done(request);
}

export class IndexedDbStore implements Store {
  #db: Promise<IDBDatabase> | undefined;

  private async store(name: string, mode: IDBTransactionMode): Promise<IDBObjectStore> {
    this.#db ??= open();
    return (await this.#db).transaction(name, mode).objectStore(name);
  }

  private async get(name: string, key: string): Promise<unknown> {
    return done((await this.store(name, "readonly")).get(key));
  }

  private async set(name: string, key: string, value: unknown): Promise<void> {
    await done((await this.store(name, "readwrite")).put(value, key));
  }

  async device(): Promise<DeviceRecord | undefined> {
    return (await this.get(SETTINGS, "device")) as DeviceRecord | undefined;
  }
  saveDevice(device: DeviceRecord): Promise<void> {
    return this.set(SETTINGS, "device", device);
  }
  async noticeAcknowledged(detaineeId: string): Promise<number | undefined> {
    return (await this.get(NOTICES, detaineeId)) as number | undefined;
  }
  acknowledgeNotice(detaineeId: string, atMs: number): Promise<void> {
    return this.set(NOTICES, detaineeId, atMs);
  }
  async history(): Promise<HistoryRecord[]> {
    const all = (await done((await this.store(HISTORY, "readonly")).getAll())) as HistoryRecord[];
    return all.sort(byTime);
  }
  put(record: HistoryRecord): Promise<void> {
    return this.set(HISTORY, `${record.kind}:${record.id}`, record);
  }
  async cursor(): Promise<string> {
    return ((await this.get(SETTINGS, "cursor")) as string | undefined) ?? "";
  }
  saveCursor(cursor: string): Promise<void> {
    return this.set(SETTINGS, "cursor", cursor);
  }
  /** Delete the whole database, not only its rows: nothing of it stays on the device. */
  async clear(): Promise<void> {
    if (this.#db !== undefined) (await this.#db).close();
    this.#db = undefined;
    await new Promise<void>((resolve, reject) => {
      const request = indexedDB.deleteDatabase(DATABASE);
      request.onsuccess = () => {
        resolve();
      };
      request.onerror = () => {
        reject(request.error ?? new Error("IndexedDB delete failed"));
      };
      request.onblocked = () => {
        resolve(); // another tab holds it open; it is deleted when that tab lets go
      };
    });
  }
}
