/**
 * What a message may carry, checked before anything is sealed: photos and PDF documents
 * (SPEC section 7), each within the envelope limits of docs/protocol.md 8. The institution's
 * terminal checks every attachment again by its bytes (sealpost/clients/attachments.py) and
 * refuses one whose contents are not of its type; checking here first turns that refusal
 * into a clear error before sending. Pure: names, sizes and first bytes in, a verdict out.
 */

import { DEFAULT_LIMITS, type Limits } from "@sealpost/protocol";

/** The attachment types, as the terminal accepts them (sealpost/clients/attachments.py). */
export const ATTACHMENT_TYPES: readonly string[] = [
  "image/jpeg",
  "image/png",
  "image/gif",
  "image/webp",
  "image/heic",
  "image/heif",
  "application/pdf",
];

/** The file picker's filter: the same types, by extension for systems that lack them. */
export const ACCEPT = [
  ...ATTACHMENT_TYPES,
  ".jpg",
  ".jpeg",
  ".png",
  ".gif",
  ".webp",
  ".heic",
  ".heif",
  ".pdf",
].join(",");

const BY_EXTENSION: Readonly<Record<string, string>> = {
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  png: "image/png",
  gif: "image/gif",
  webp: "image/webp",
  heic: "image/heic",
  heif: "image/heif",
  pdf: "application/pdf",
};

/** Bytes of a part's plaintext before its content: the file name's length (protocol.md 7.5). */
const FILENAME_LENGTH_BYTES = 8;
/** Bytes of the first part of a file that the type check reads. */
export const SNIFF_BYTES = 16;

/** Why a file cannot go with a message; each is a catalogue key (messages/*.json). */
export type FileProblem =
  | "file.type"
  | "file.mismatch"
  | "file.tooLarge"
  | "file.tooMany"
  | "file.totalTooLarge"
  | "file.nameTooLong";

/** A file the person picked, as much as the checks need. */
export interface PickedFile {
  readonly name: string;
  readonly size: number;
  /** The file's first SNIFF_BYTES bytes (fewer if it is shorter). */
  readonly head: Uint8Array;
}

/** The type a file name suggests, or undefined. */
export function typeFromName(name: string): string | undefined {
  const dot = name.lastIndexOf(".");
  if (dot < 0) return undefined;
  return BY_EXTENSION[name.slice(dot + 1).toLowerCase()];
}

function startsWith(data: Uint8Array, signature: readonly number[], at = 0): boolean {
  return signature.every((byte, index) => data[at + index] === byte);
}

function ascii(text: string): number[] {
  return Array.from(text, (ch) => ch.charCodeAt(0));
}

/** HEIF brands (ISO/IEC 23008-12) that photos carry in their "ftyp" box. */
const HEIF_BRANDS = new Set(["heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1"]);

/**
 * The attachment type the first bytes of a file are, by their signature, or undefined.
 * The same signatures the terminal's sniffing recognises for these types.
 */
export function sniff(head: Uint8Array): string | undefined {
  if (startsWith(head, [0xff, 0xd8, 0xff])) return "image/jpeg";
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "image/png";
  if (startsWith(head, ascii("GIF87a")) || startsWith(head, ascii("GIF89a"))) return "image/gif";
  if (startsWith(head, ascii("RIFF")) && startsWith(head, ascii("WEBP"), 8)) return "image/webp";
  if (startsWith(head, ascii("%PDF-"))) return "application/pdf";
  if (startsWith(head, ascii("ftyp"), 4)) {
    const brand = String.fromCharCode(...head.slice(8, 12));
    if (HEIF_BRANDS.has(brand)) return "image/heic";
  }
  return undefined;
}

/** HEIC is a kind of HEIF: a file named .heif may hold either. */
function sameFamily(declared: string, found: string): boolean {
  const family = (type: string): string => (type === "image/heif" ? "image/heic" : type);
  return family(declared) === family(found);
}

/** The bytes one attachment adds to the envelope's plaintext (7.5). */
export function partBytes(file: { readonly name: string; readonly size: number }): number {
  return FILENAME_LENGTH_BYTES + new TextEncoder().encode(file.name).length + file.size;
}

/** The bytes the text adds as part 0 (no file name). */
export function textBytes(text: string): number {
  return FILENAME_LENGTH_BYTES + new TextEncoder().encode(text).length;
}

/** The one problem of a single file, or undefined when it may be attached. */
export function checkFile(
  file: PickedFile,
  limits: Limits = DEFAULT_LIMITS,
): FileProblem | undefined {
  const declared = typeFromName(file.name);
  if (declared === undefined) return "file.type";
  if (new TextEncoder().encode(file.name).length > limits.maxFilenameBytes)
    return "file.nameTooLong";
  if (partBytes(file) > limits.maxPartBytes) return "file.tooLarge";
  const found = sniff(file.head);
  if (found === undefined || !sameFamily(declared, found)) return "file.mismatch";
  return undefined;
}

/** The problem of the message as a whole (count of parts, total size), or undefined. */
export function checkMessage(
  text: string,
  files: readonly { readonly name: string; readonly size: number }[],
  limits: Limits = DEFAULT_LIMITS,
): FileProblem | undefined {
  if (files.length + 1 > limits.maxParts) return "file.tooMany";
  if (textBytes(text) > limits.maxPartBytes) return "file.totalTooLarge";
  const total = files.reduce((sum, file) => sum + partBytes(file), textBytes(text));
  if (total > limits.maxTotalBytes) return "file.totalTooLarge";
  return undefined;
}

/** The most one attachment may weigh with this name: what the error message names. */
export function maxFileBytes(name: string, limits: Limits = DEFAULT_LIMITS): number {
  return limits.maxPartBytes - FILENAME_LENGTH_BYTES - new TextEncoder().encode(name).length;
}

/** A file name fit to show and to save: no control or bidirectional formatting characters. */
export function shownName(name: string): string {
  return Array.from(name.replace(/[\p{Cc}\p{Cf}]/gu, ""))
    .slice(0, 200)
    .join("");
}

const EXTENSIONS: Readonly<Record<string, string>> = {
  "image/jpeg": ".jpg",
  "image/png": ".png",
  "image/gif": ".gif",
  "image/webp": ".webp",
  "image/heic": ".heic",
  "image/heif": ".heif",
  "application/pdf": ".pdf",
};

/**
 * A name to save a received attachment under: the sender's name made harmless, with the
 * extension of the type it was sent as (a photo named "report.exe" saves as "report.jpg").
 */
export function safeFilename(name: string, index: number, contentType: string): string {
  const base = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  const extension = EXTENSIONS[base] ?? ".bin";
  const cleaned = shownName(name)
    .replace(/[/\\:*?"<>|]/g, "_")
    .trim()
    .replace(/^\.+/, "");
  const dot = cleaned.lastIndexOf(".");
  const stem = dot > 0 ? cleaned.slice(0, dot) : cleaned;
  return stem === "" ? `attachment-${String(index)}${extension}` : stem + extension;
}

/** Types a browser shows as an image (HEIC it mostly cannot): offered as a preview. */
export function isPreviewable(contentType: string): boolean {
  return ["image/jpeg", "image/png", "image/gif", "image/webp"].includes(
    contentType.split(";")[0]?.trim().toLowerCase() ?? "",
  );
}
