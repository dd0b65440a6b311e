// Shared by the tests: the committed vectors, a seeded random stream, hex.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

import { ready } from "../src/index.js";

/** tests/vectors/ at the top of the repository (tests run from dist/test/). */
export const VECTORS = new URL("../../../../../tests/vectors/", import.meta.url);

/** A vector file; integers of 16 digits or more come as strings, so BigInt() keeps them exact. */
export function loadVectors(name: string): unknown {
  const text = readFileSync(new URL(name, VECTORS), "utf8");
  return JSON.parse(text.replace(/(:\s*)(-?\d{16,})(?=\s*[,}\]])/g, '$1"$2"'));
}

export function h(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, "hex"));
}

export function hex(data: Uint8Array): string {
  return Buffer.from(data).toString("hex");
}

function u64(n: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(BigInt(n));
  return out;
}

function lp(data: Uint8Array): Buffer {
  return Buffer.concat([u64(data.length), data]);
}

/**
 * The vectors' deterministic stream (tests/vectors/generate_envelope_vectors.py,
 * SeededRandom): block i is SHA-256(LP("sealpost/test-vectors/rng") ‖ LP(seed) ‖ U64(i)).
 * Computed with Node's own SHA-256, independently of the library.
 */
export function seededRandom(seed: string): (size: number) => Uint8Array {
  let counter = 0;
  let buffer = Buffer.alloc(0);
  return (size: number) => {
    while (buffer.length < size) {
      const block = Buffer.concat([
        lp(Buffer.from("sealpost/test-vectors/rng")),
        lp(Buffer.from(seed)),
        u64(counter),
      ]);
      buffer = Buffer.concat([buffer, createHash("sha256").update(block).digest()]);
      counter += 1;
    }
    const out = Uint8Array.from(buffer.subarray(0, size));
    buffer = buffer.subarray(size);
    return out;
  };
}

/** Node's SHA-256, to recompute documented values without the library. */
export function nodeSha256(...parts: Uint8Array[]): Uint8Array {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return Uint8Array.from(hash.digest());
}

export { lp as nodeLp, u64 as nodeU64 };

await ready();
