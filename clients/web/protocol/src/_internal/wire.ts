/**
 * Strict protobuf reading for the artefacts the protocol verifies (docs/protocol.md 3).
 *
 * Messages are @bufbuild/protobuf messages and are written with its `toBinary`, which
 * emits fields in field-number order, omits proto3 defaults and uses minimal varints:
 * the canonical encoding. Reading goes through this module instead of `fromBinary`,
 * because a verifier must see exactly what the Python reference (upb) sees:
 *
 * - a known field number with another wire type is an unknown field, never a misread
 *   value (protobuf-es would read it as the declared type);
 * - every unknown field is kept in `$unknown`, at any depth, so that the version can be
 *   checked before unknown fields are refused, in the documented order;
 * - malformed bytes (truncation, a varint longer than 10 bytes, field number 0, wire
 *   types 6 and 7, an unmatched group, invalid UTF-8 in a string) are a FormatError.
 *
 * Signed bytes are then held to the canonical encoding by re-serialising the parsed
 * message and comparing; nothing is ever re-serialised in order to verify a signature.
 */

import { create, toBinary, ScalarType } from "@bufbuild/protobuf";
import type { DescField, DescMessage, MessageShape, UnknownField } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";

import { FormatError, VersionTooNewError, VersionTooOldError } from "../errors.js";
import { decodeUtf8, sameBytes } from "./bytes.js";

/** The only wire version this code reads and writes, for every artefact. */
export const CURRENT_VERSION = 1;

/** Refuse versions other than 1: VersionTooOldError below, VersionTooNewError above. */
export function checkVersion(version: number | bigint, what: string): void {
  if (version < CURRENT_VERSION) {
    throw new VersionTooOldError(
      `${what} version ${String(version)} is not supported (expected 1)`,
    );
  }
  if (version > CURRENT_VERSION) {
    throw new VersionTooNewError(`${what} version ${String(version)} is newer than this code (1)`);
  }
}

const VARINT = WireType.Varint;
const I64 = WireType.Bit64;
const LEN = WireType.LengthDelimited;
const SGROUP = WireType.StartGroup;
const EGROUP = WireType.EndGroup;
const I32 = WireType.Bit32;
const WIRE_TYPES: readonly WireType[] = [VARINT, I64, LEN, SGROUP, EGROUP, I32];
const MAX_DEPTH = 100;
const U64_MASK = (1n << 64n) - 1n;

class Reader {
  pos = 0;
  constructor(
    readonly buf: Uint8Array,
    readonly what: string,
  ) {}

  fail(reason: string): never {
    throw new FormatError(`${this.what} does not parse: ${reason}`);
  }

  atEnd(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): bigint {
    let result = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) this.fail("truncated varint");
      const byte = this.buf[this.pos++] ?? 0;
      result |= BigInt(byte & 0x7f) << BigInt(7 * i);
      if ((byte & 0x80) === 0) return result & U64_MASK;
    }
    return this.fail("varint longer than 10 bytes");
  }

  tag(): [number, WireType] {
    const start = this.pos;
    const tag = this.varint();
    if (this.pos - start > 5 || tag > 0xffffffffn) this.fail("tag overflows 32 bits");
    const fieldNo = Number(tag >> 3n);
    const wireType = WIRE_TYPES[Number(tag & 7n)];
    if (fieldNo === 0) this.fail("field number 0");
    if (wireType === undefined) this.fail(`wire type ${String(tag & 7n)}`);
    return [fieldNo, wireType];
  }

  take(size: number): Uint8Array {
    if (size > this.buf.length - this.pos) this.fail("truncated field");
    const out = this.buf.subarray(this.pos, this.pos + size);
    this.pos += size;
    return out;
  }

  lengthDelimited(): Uint8Array {
    const size = this.varint();
    if (size > BigInt(this.buf.length - this.pos)) this.fail("length runs past the end");
    return this.take(Number(size));
  }

  /** Skip one field's payload (after its tag); return the payload as protobuf-es keeps it. */
  skip(wireType: WireType, fieldNo: number, depth: number): Uint8Array {
    const start = this.pos;
    switch (wireType) {
      case VARINT:
        this.varint();
        break;
      case I64:
        this.take(8);
        break;
      case I32:
        this.take(4);
        break;
      case LEN:
        this.lengthDelimited();
        break;
      case SGROUP:
        if (depth >= MAX_DEPTH) this.fail("groups nested too deeply");
        for (;;) {
          if (this.atEnd()) this.fail("unterminated group");
          const [no, type] = this.tag();
          if (type === EGROUP) {
            if (no !== fieldNo) this.fail("mismatched end of group");
            break;
          }
          this.skip(type, no, depth + 1);
        }
        break;
      default:
        this.fail("unexpected end of group");
    }
    return this.buf.subarray(start, this.pos);
  }
}

type Fields = Record<string, unknown> & { $unknown?: UnknownField[] };

function expectedWireType(scalar: ScalarType): WireType {
  switch (scalar) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return LEN;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return I64;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return I32;
    default:
      return VARINT;
  }
}

function readScalar(reader: Reader, scalar: ScalarType): unknown {
  switch (scalar) {
    case ScalarType.STRING: {
      const text = decodeUtf8(reader.lengthDelimited());
      return text ?? reader.fail("string field holds invalid UTF-8");
    }
    case ScalarType.BYTES:
      return reader.lengthDelimited().slice();
    case ScalarType.INT32:
      return Number(BigInt.asIntN(32, reader.varint()));
    case ScalarType.UINT32:
      return Number(BigInt.asUintN(32, reader.varint()));
    case ScalarType.SINT32: {
      const v = BigInt.asUintN(32, reader.varint());
      return Number(BigInt.asIntN(32, (v >> 1n) ^ -(v & 1n)));
    }
    case ScalarType.INT64:
      return BigInt.asIntN(64, reader.varint());
    case ScalarType.UINT64:
      return reader.varint();
    case ScalarType.SINT64: {
      const v = reader.varint();
      return BigInt.asIntN(64, (v >> 1n) ^ -(v & 1n));
    }
    case ScalarType.BOOL:
      return reader.varint() !== 0n;
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
    case ScalarType.FLOAT: {
      const b = reader.take(4);
      const view = new DataView(b.buffer, b.byteOffset, 4);
      if (scalar === ScalarType.FLOAT) return view.getFloat32(0, true);
      return scalar === ScalarType.FIXED32 ? view.getUint32(0, true) : view.getInt32(0, true);
    }
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
    case ScalarType.DOUBLE: {
      const b = reader.take(8);
      const view = new DataView(b.buffer, b.byteOffset, 8);
      if (scalar === ScalarType.DOUBLE) return view.getFloat64(0, true);
      return scalar === ScalarType.FIXED64 ? view.getBigUint64(0, true) : view.getBigInt64(0, true);
    }
  }
}

function readField(
  reader: Reader,
  field: DescField,
  wireType: WireType,
  target: Fields,
  depth: number,
): boolean {
  const name = field.localName;
  switch (field.fieldKind) {
    case "scalar":
      if (field.oneof !== undefined || field.longAsString) return false;
      if (wireType !== expectedWireType(field.scalar)) return false;
      target[name] = readScalar(reader, field.scalar);
      return true;
    case "enum":
      if (field.oneof !== undefined || wireType !== VARINT) return false;
      target[name] = readScalar(reader, ScalarType.INT32);
      return true;
    case "message": {
      if (field.oneof !== undefined || field.delimitedEncoding || wireType !== LEN) return false;
      const existing = target[name] as Fields | undefined;
      const child = existing ?? (create(field.message) as unknown as Fields);
      readInto(field.message, reader.lengthDelimited(), child, reader.what, depth + 1);
      target[name] = child;
      return true;
    }
    case "list": {
      const items = target[name] as unknown[];
      if (field.listKind === "message") {
        if (field.delimitedEncoding || wireType !== LEN) return false;
        const child = create(field.message) as unknown as Fields;
        readInto(field.message, reader.lengthDelimited(), child, reader.what, depth + 1);
        items.push(child);
        return true;
      }
      const scalar = field.listKind === "enum" ? ScalarType.INT32 : field.scalar;
      if (field.listKind === "scalar" && field.longAsString) return false;
      const expected = expectedWireType(scalar);
      if (wireType === expected) {
        items.push(readScalar(reader, scalar));
        return true;
      }
      if (wireType === LEN && expected !== LEN) {
        const packed = new Reader(reader.lengthDelimited(), reader.what);
        while (!packed.atEnd()) items.push(readScalar(packed, scalar));
        return true;
      }
      return false;
    }
    case "map":
      return false;
  }
}

function readInto(
  desc: DescMessage,
  bytes: Uint8Array,
  target: Fields,
  what: string,
  depth: number,
): void {
  if (depth > MAX_DEPTH) throw new FormatError(`${what} does not parse: nested too deeply`);
  const reader = new Reader(bytes, what);
  while (!reader.atEnd()) {
    const [fieldNo, wireType] = reader.tag();
    const field = desc.fields.find((f) => f.number === fieldNo);
    const start = reader.pos;
    if (field !== undefined && readField(reader, field, wireType, target, depth)) continue;
    // Unknown to this code, or a known number with another wire type: upb keeps both
    // as unknown fields, and so do we (refused later, after the version check).
    reader.pos = start;
    const data = reader.skip(wireType, fieldNo, depth);
    (target.$unknown ??= []).push({
      no: fieldNo,
      wireType,
      data: data.slice(),
    });
  }
}

/** Parse `bytes` as `schema`, keeping unknown fields; FormatError for malformed bytes. */
export function decodeMessage<Desc extends DescMessage>(
  schema: Desc,
  bytes: Uint8Array,
  what: string,
): MessageShape<Desc> {
  const message = create(schema);
  readInto(schema, bytes, message as unknown as Fields, what, 0);
  return message;
}

function hasUnknown(desc: DescMessage, message: Fields): boolean {
  if (message.$unknown !== undefined && message.$unknown.length > 0) return true;
  for (const field of desc.fields) {
    const value = message[field.localName];
    if (field.fieldKind === "message" && value !== undefined) {
      if (hasUnknown(field.message, value as Fields)) return true;
    } else if (field.fieldKind === "list" && field.listKind === "message") {
      for (const child of value as Fields[]) if (hasUnknown(field.message, child)) return true;
    }
  }
  return false;
}

/** FormatError if `message` or any message inside it carries fields this code lacks. */
export function rejectUnknownFields<Desc extends DescMessage>(
  schema: Desc,
  message: MessageShape<Desc>,
  what: string,
): void {
  if (hasUnknown(schema, message as unknown as Fields)) {
    throw new FormatError(`${what} has unknown fields`);
  }
}

/** The canonical encoding of a message (docs/protocol.md 3): what a signer signs. */
export function canonicalBytes<Desc extends DescMessage>(
  schema: Desc,
  message: MessageShape<Desc>,
): Uint8Array {
  return toBinary(schema, message, { writeUnknownFields: false });
}

/** Bytes of a message as it would be serialised, unknown fields included. */
export function encodedSize<Desc extends DescMessage>(
  schema: Desc,
  message: MessageShape<Desc>,
): number {
  return toBinary(schema, message).length;
}

/** Parse signed bytes, refusing unknown fields and any encoding but the canonical one. */
export function parseCanonical<Desc extends DescMessage>(
  schema: Desc,
  bytes: Uint8Array,
  what: string,
): MessageShape<Desc> {
  const message = decodeMessage(schema, bytes, what);
  rejectUnknownFields(schema, message, what);
  if (!sameBytes(canonicalBytes(schema, message), bytes)) {
    throw new FormatError(`${what} is not canonically encoded`);
  }
  return message;
}
