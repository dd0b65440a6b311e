/** Byte-string helpers: hex, concatenation, strict UTF-8. No cryptography here. */

import { FormatError } from "../errors.js";

const encoder = new TextEncoder();
// fatal: invalid UTF-8 (overlong forms, encoded surrogates, above U+10FFFF) throws.
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** UTF-8 of a string; FormatError for a lone surrogate, which has no UTF-8 form. */
export function utf8(text: string): Uint8Array {
  if (!isWellFormed(text)) {
    throw new FormatError("text holds a lone surrogate and has no UTF-8 encoding");
  }
  return encoder.encode(text);
}

/** True when a JavaScript string has no lone surrogate (so it has a UTF-8 form). */
export function isWellFormed(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      i++;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) {
      return false;
    }
  }
  return true;
}

/** Strict UTF-8 decoding (RFC 3629); `undefined` for anything that is not valid UTF-8. */
export function decodeUtf8(data: Uint8Array): string | undefined {
  try {
    return strictDecoder.decode(data);
  } catch {
    return undefined;
  }
}

/** Lower-case hex of bytes. */
export function toHex(data: Uint8Array): string {
  let out = "";
  for (const byte of data) out += byte.toString(16).padStart(2, "0");
  return out;
}

/** Bytes from hex (either case); FormatError for anything else. */
export function fromHex(text: string): Uint8Array {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new FormatError("not a hex string");
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The concatenation of byte strings. */
export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const part of parts) size += part.length;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Plain (not constant-time) equality, for public values such as encodings. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True when a code point is in Unicode category Cc (C0 controls, DEL, C1 controls). */
export function isControl(codePoint: number): boolean {
  return codePoint <= 0x1f || (codePoint >= 0x7f && codePoint <= 0x9f);
}

/** True when a string holds a character of category Cc. */
export function hasControl(text: string): boolean {
  for (const ch of text) if (isControl(ch.codePointAt(0) ?? 0)) return true;
  return false;
}
