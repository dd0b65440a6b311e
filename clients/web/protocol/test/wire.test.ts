// The strict wire reader sees what the Python reference (upb) sees: these cases were
// checked against sealpost.v1 parsed with google.protobuf (see the comments).
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import * as sp from "../src/index.js";
import {
  EnvelopeHeaderSchema,
  EnvelopeSchema,
  PartMetadataSchema,
} from "../src/gen/sealpost/v1/envelope_pb.js";
import { decodeMessage, parseCanonical } from "../src/_internal/wire.js";
import { h } from "./helpers.js";

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

describe("strict wire reading", () => {
  test("a known field number with another wire type is an unknown field, not a value", () => {
    // upb: EnvelopeHeader 0a 01 05 08 01 parses as version 1 with one unknown field.
    const header = decodeMessage(EnvelopeHeaderSchema, bytes(0x0a, 0x01, 0x05, 0x08, 0x01), "h");
    assert.equal(header.version, 1);
    assert.equal(header.$unknown?.length, 1);
    // upb: field 2 (bytes) as a varint leaves message_id empty, one unknown field.
    const other = decodeMessage(EnvelopeHeaderSchema, bytes(0x10, 0x05), "h");
    assert.equal(other.messageId.length, 0);
    assert.equal(other.$unknown?.length, 1);
    assert.throws(
      () => parseCanonical(EnvelopeHeaderSchema, bytes(0x10, 0x05), "h"),
      sp.FormatError,
    );
  });

  test("the version is checked before unknown fields are refused", () => {
    assert.throws(() => sp.parseEnvelope(bytes(0x08, 0x00, 0x78, 0x01)), sp.VersionTooOldError);
    assert.throws(() => sp.parseEnvelope(bytes(0x08, 0x01, 0x78, 0x01)), sp.FormatError);
    // A group in place of field 1 is skipped as unknown (upb): version stays 0.
    assert.throws(() => sp.parseEnvelope(bytes(0x0b, 0x08, 0x01, 0x0c)), sp.VersionTooOldError);
  });

  test("malformed bytes are a FormatError", () => {
    const malformed = [
      bytes(0x00, 0x01), // field number 0
      bytes(0x08, 0x01, 0x0f), // wire type 7
      bytes(0x08, ...new Array<number>(10).fill(0xff), 0x01), // varint of 11 bytes
      bytes(0x12, 0x05, 0x01), // length past the end
      bytes(0x0b, 0x08, 0x01), // unterminated group
      bytes(0x0b, 0x14), // group closed by another field's end
      bytes(0x0c), // end of a group that never started
    ];
    for (const data of malformed) assert.throws(() => sp.parseEnvelope(data), sp.FormatError);
    // upb: a string field with invalid UTF-8 does not parse.
    assert.throws(
      () => decodeMessage(PartMetadataSchema, bytes(0x0a, 0x02, 0xff, 0xfe), "p"),
      sp.FormatError,
    );
  });

  test("varints are read like upb: 32-bit fields truncated, 10-byte varints accepted", () => {
    // upb: version 08 ff ff ff ff 1f reads 4294967295; 08 80..80 02 (10 bytes) reads 0.
    assert.equal(
      decodeMessage(EnvelopeSchema, bytes(0x08, 0xff, 0xff, 0xff, 0xff, 0x1f), "e").version,
      4294967295,
    );
    const tenBytes = bytes(0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02);
    assert.equal(decodeMessage(EnvelopeSchema, tenBytes, "e").version, 0);
    // An overlong varint parses (upb: version 1) but is not canonical.
    const overlong = bytes(0x08, 0x81, 0x80, 0x80, 0x80, 0x00);
    assert.equal(decodeMessage(EnvelopeSchema, overlong, "e").version, 1);
    assert.throws(() => parseCanonical(EnvelopeSchema, overlong, "e"), sp.FormatError);
  });

  test("a key record with an unknown field, even nested in its body, is refused", () => {
    const record = h("0801120208011a40" + "00".repeat(64) + "2001");
    assert.throws(() => sp.parseKeyRecord(record), sp.FormatError);
    assert.throws(() => sp.parseKeyRecord(new Uint8Array(2049)), sp.LimitError);
  });
});
