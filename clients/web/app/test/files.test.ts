// The checks before sending: photo and PDF types by name and by bytes, the envelope limits.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { DEFAULT_LIMITS, makeLimits } from "@sealpost/protocol";

import {
  checkFile,
  checkMessage,
  maxFileBytes,
  partBytes,
  safeFilename,
  shownName,
  sniff,
  typeFromName,
} from "../src/files.js";

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);
const ascii = (text: string): number[] => Array.from(text, (ch) => ch.charCodeAt(0));

const JPEG = bytes(0xff, 0xd8, 0xff, 0xe0, 0, 0x10);
const PNG = bytes(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
const PDF = bytes(...ascii("%PDF-1.7\n"));
const GIF = bytes(...ascii("GIF89a"));
const WEBP = bytes(...ascii("RIFF"), 0, 0, 0, 0, ...ascii("WEBPVP8 "));
const HEIC = bytes(0, 0, 0, 0x18, ...ascii("ftypheic"), 0, 0, 0, 0);

describe("attachment types", () => {
  test("each allowed type is recognised by its first bytes", () => {
    assert.equal(sniff(JPEG), "image/jpeg");
    assert.equal(sniff(PNG), "image/png");
    assert.equal(sniff(PDF), "application/pdf");
    assert.equal(sniff(GIF), "image/gif");
    assert.equal(sniff(WEBP), "image/webp");
    assert.equal(sniff(HEIC), "image/heic");
  });

  test("anything else is not", () => {
    assert.equal(sniff(bytes(...ascii("MZ\x90\x00"))), undefined); // a Windows program
    assert.equal(sniff(bytes(...ascii("PK\x03\x04"))), undefined); // a zip, a .docx
    assert.equal(sniff(bytes()), undefined);
    assert.equal(sniff(bytes(0xff, 0xd8)), undefined); // too short to be a JPEG
  });

  test("the name suggests the type, in any case", () => {
    assert.equal(typeFromName("Foto.JPG"), "image/jpeg");
    assert.equal(typeFromName("brief.pdf"), "application/pdf");
    assert.equal(typeFromName("scan.heif"), "image/heif");
    assert.equal(typeFromName("notes.docx"), undefined);
    assert.equal(typeFromName("no-extension"), undefined);
  });
});

describe("checkFile", () => {
  test("a photo and a PDF of their named type pass", () => {
    assert.equal(checkFile({ name: "foto.jpg", size: 2_000_000, head: JPEG }), undefined);
    assert.equal(checkFile({ name: "rapport.pdf", size: 80_000, head: PDF }), undefined);
    assert.equal(checkFile({ name: "IMG_0001.HEIF", size: 80_000, head: HEIC }), undefined);
  });

  test("a type a terminal refuses is refused before sending", () => {
    assert.equal(
      checkFile({ name: "brief.docx", size: 10, head: bytes(0x50, 0x4b, 3, 4) }),
      "file.type",
    );
    assert.equal(checkFile({ name: "programma.exe", size: 10, head: JPEG }), "file.type");
  });

  test("a renamed file is refused: its bytes are not its name's type", () => {
    assert.equal(checkFile({ name: "foto.jpg", size: 10, head: PDF }), "file.mismatch");
    assert.equal(checkFile({ name: "foto.png", size: 10, head: JPEG }), "file.mismatch");
    assert.equal(
      checkFile({ name: "brief.pdf", size: 10, head: bytes(...ascii("MZ")) }),
      "file.mismatch",
    );
  });

  test("one attachment may fill a part, its name included, and no more", () => {
    const name = "foto.jpg";
    const max = maxFileBytes(name);
    assert.equal(max, DEFAULT_LIMITS.maxPartBytes - 8 - name.length);
    assert.equal(checkFile({ name, size: max, head: JPEG }), undefined);
    assert.equal(checkFile({ name, size: max + 1, head: JPEG }), "file.tooLarge");
  });

  test("a file name over the limit is refused", () => {
    const name = `${"é".repeat(128)}.jpg`; // 260 bytes of UTF-8
    assert.equal(checkFile({ name, size: 10, head: JPEG }), "file.nameTooLong");
  });
});

describe("checkMessage", () => {
  const photo = { name: "foto.jpg", size: 1000 };

  test("the text and 19 attachments fit; a 20th does not", () => {
    assert.equal(checkMessage("hallo", Array(19).fill(photo)), undefined);
    assert.equal(checkMessage("hallo", Array(20).fill(photo)), "file.tooMany");
  });

  test("the total counts the text and every attachment with its name", () => {
    const limits = makeLimits({ maxPartBytes: 1000, maxTotalBytes: 2000 });
    const file = { name: "a.jpg", size: 1000 - 8 - 5 };
    assert.equal(partBytes(file), 1000);
    assert.equal(checkMessage("", [file], limits), undefined); // 8 + 1000
    assert.equal(checkMessage("x".repeat(992), [file], limits), undefined); // exactly 2000
    assert.equal(checkMessage("x".repeat(993), [file], limits), "file.totalTooLarge");
  });

  test("text of any script is counted in UTF-8 bytes", () => {
    const limits = makeLimits({ maxPartBytes: 20, maxTotalBytes: 20 });
    assert.equal(checkMessage("مرحبا", [], limits), undefined); // 10 bytes + 8
    assert.equal(checkMessage("مرحبا!!!", [], limits), "file.totalTooLarge"); // 13 bytes + 8
  });
});

describe("names of received files", () => {
  test("the extension follows the type the part was sent as", () => {
    assert.equal(safeFilename("report.exe", 1, "image/jpeg"), "report.jpg");
    assert.equal(safeFilename("tekening.png", 2, "image/png"), "tekening.png");
    assert.equal(safeFilename("", 3, "application/pdf"), "attachment-3.pdf");
    assert.equal(safeFilename("x", 1, "application/x-unknown"), "x.bin");
  });

  test("separators, controls and reordering characters are taken out", () => {
    const climbed = safeFilename("../../etc/passwd", 1, "image/png");
    assert.doesNotMatch(climbed, /[/\\]/);
    assert.ok(!climbed.startsWith(".") && climbed.endsWith(".png"), climbed);
    assert.equal(safeFilename("photo\u202Egnp.exe", 1, "image/jpeg"), "photognp.jpg");
    assert.equal(shownName("a\u0000b\u200Fc"), "abc");
    assert.equal(safeFilename("...", 4, "image/gif"), "attachment-4.gif");
  });
});
