/**
 * Length-prefixed framing and domain-separated SHA-256 (docs/protocol.md 1, "Framing").
 *
 * Every digest, signed message and associated-data string is LP(domain) ‖ item ‖ item ...:
 * byte strings enter as LP(x) = U64(len(x)) ‖ x and integers as U64(n), big-endian, so
 * no two different inputs frame to the same bytes.
 */

import { FormatError } from "../errors.js";
import { concat, sameBytes } from "./bytes.js";
import { sha256Chunks } from "./sodium.js";

/** One framed item: byte strings are length-prefixed, integers (bigint) are 8 bytes. */
export type Item = Uint8Array | bigint;

export const U64_BYTES = 8;
const U64_MAX = (1n << 64n) - 1n;

/** U64(n): 8 bytes, big-endian, unsigned. */
export function u64(value: bigint | number): Uint8Array {
  const n = BigInt(value);
  if (n < 0n || n > U64_MAX) throw new FormatError("a U64 is outside [0, 2**64)");
  const out = new Uint8Array(U64_BYTES);
  new DataView(out.buffer).setBigUint64(0, n, false);
  return out;
}

/** Read U64 at `offset`. */
export function readU64(data: Uint8Array, offset: number): bigint {
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getBigUint64(offset, false);
}

/** LP(x): the length of x as U64, then x. */
export function lp(data: Uint8Array): Uint8Array {
  return concat(u64(data.length), data);
}

function* chunks(domain: Uint8Array, items: Iterable<Item>): Generator<Uint8Array> {
  yield u64(domain.length);
  yield domain;
  for (const item of items) {
    if (typeof item === "bigint") {
      yield u64(item);
    } else {
      yield u64(item.length);
      yield item;
    }
  }
}

/** Frame(domain, items...) as one byte string (associated data and small inputs). */
export function framed(domain: Uint8Array, ...items: Item[]): Uint8Array {
  return concat(...chunks(domain, items));
}

/** SHA-256(Frame(domain, items...)), streamed so that large parts are never copied. */
export function framedSha256(domain: Uint8Array, items: Iterable<Item>): Uint8Array {
  return sha256Chunks(chunks(domain, items));
}

/** Split Frame(domain, b1, ..., b_count) back into byte items; FormatError otherwise. */
export function unframe(data: Uint8Array, domain: Uint8Array, count: number): Uint8Array[] {
  const items: Uint8Array[] = [];
  let offset = 0;
  for (let i = 0; i <= count; i++) {
    if (data.length - offset < U64_BYTES) throw new FormatError("framed data is truncated");
    const size = readU64(data, offset);
    offset += U64_BYTES;
    if (size > BigInt(data.length - offset)) throw new FormatError("framed data is truncated");
    items.push(data.subarray(offset, offset + Number(size)));
    offset += Number(size);
  }
  if (offset !== data.length) throw new FormatError("framed data has trailing bytes");
  const [first, ...rest] = items;
  if (first === undefined || !sameBytes(first, domain)) {
    throw new FormatError("framed data has the wrong domain");
  }
  return rest;
}
