/**
 * The device's key bundle sealed under a passphrase: what the web app keeps (in
 * IndexedDB) so that keys made on the device never leave it in the clear. Pure: bytes
 * in, bytes out; the storage itself belongs to the app. Format, version 1 (docs/web.md):
 *
 *     offset  size  field
 *     0       16    magic "SEALPOST-WEBKEYS" (ASCII)
 *     16      1     version, 0x01
 *     17      4     Argon2id opslimit, u32 big-endian
 *     21      8     Argon2id memlimit in bytes, u64 big-endian
 *     29      16    salt
 *     45      24    nonce
 *     69      n+16  XChaCha20-Poly1305(key, nonce, bundle, associated data = bytes 0 to 68)
 *
 *     key    = Argon2id v1.3 (crypto_pwhash) of UTF-8(NFC(passphrase)), salt, cost; 32 bytes
 *     bundle = LP(x25519 secret) ‖ LP(ed25519 seed) ‖ LP(key id) ‖ LP(UTF-8 account id)
 *              ‖ LP(directory pin)
 *
 * The whole header is the associated data, so an altered header, a wrong passphrase and
 * an altered ciphertext all fail alike: one DecryptionError, nothing more specific.
 */

import {
  FormatError,
  LimitError,
  VersionTooNewError,
  VersionTooOldError,
  WeakPassphraseError,
} from "./errors.js";
import { DirectoryPin, KEY_ID_BYTES, MAX_SUBJECT_BYTES } from "./keyrecords.js";
import { PrivateKeys } from "./keys.js";
import { concat, decodeUtf8, sameBytes, utf8 } from "./_internal/bytes.js";
import { U64_BYTES, lp, readU64, u64 } from "./_internal/framing.js";
import {
  AEAD_KEY_BYTES,
  AEAD_NONCE_BYTES,
  AEAD_TAG_BYTES,
  ARGON2ID_MEMLIMIT_INTERACTIVE,
  ARGON2ID_MEMLIMIT_MODERATE,
  ARGON2ID_MEMLIMIT_SENSITIVE,
  ARGON2ID_OPSLIMIT_INTERACTIVE,
  ARGON2ID_OPSLIMIT_MODERATE,
  ARGON2ID_OPSLIMIT_SENSITIVE,
  ARGON2ID_SALT_BYTES,
  aeadDecrypt,
  aeadEncrypt,
  argon2id,
  randomBytes,
  wipe,
  type Random,
} from "./_internal/sodium.js";

/** The first 16 bytes of every sealed key bundle. */
export const KEY_BUNDLE_MAGIC = Uint8Array.from("SEALPOST-WEBKEYS", (ch) => ch.charCodeAt(0));
/** The format this code writes; the byte after the magic. */
export const KEY_BUNDLE_VERSION = 1;
/** The oldest format still read (0 was never written). */
export const MIN_KEY_BUNDLE_VERSION = 1;
/** Characters (code points, after NFC) a passphrase needs to seal a bundle. */
export const MIN_PASSPHRASE_CHARS = 8;
/** Bytes before the ciphertext: magic, version, opslimit, memlimit, salt, nonce. */
export const KEY_BUNDLE_HEADER_BYTES = 16 + 1 + 4 + 8 + ARGON2ID_SALT_BYTES + AEAD_NONCE_BYTES;

/** Argon2id cost: passes over memory, and bytes of memory. */
export interface KdfParams {
  readonly opslimit: number;
  readonly memlimit: number;
}

/** libsodium's INTERACTIVE (2 passes, 64 MiB): the least a bundle may ask for. */
export const KDF_INTERACTIVE: KdfParams = Object.freeze({
  opslimit: ARGON2ID_OPSLIMIT_INTERACTIVE,
  memlimit: ARGON2ID_MEMLIMIT_INTERACTIVE,
});
/** libsodium's MODERATE (3 passes, 256 MiB), the Python profile's default. */
export const KDF_MODERATE: KdfParams = Object.freeze({
  opslimit: ARGON2ID_OPSLIMIT_MODERATE,
  memlimit: ARGON2ID_MEMLIMIT_MODERATE,
});
/** libsodium's SENSITIVE (4 passes, 1 GiB): the most a bundle may ask for. */
export const KDF_SENSITIVE: KdfParams = Object.freeze({
  opslimit: ARGON2ID_OPSLIMIT_SENSITIVE,
  memlimit: ARGON2ID_MEMLIMIT_SENSITIVE,
});
/**
 * The web default: MODERATE's 3 passes over INTERACTIVE's 64 MiB, because a browser on a
 * phone cannot count on 256 MiB of WebAssembly memory; about 0.2 s in Node.js.
 */
export const KDF_WEB_DEFAULT: KdfParams = Object.freeze({
  opslimit: ARGON2ID_OPSLIMIT_MODERATE,
  memlimit: ARGON2ID_MEMLIMIT_INTERACTIVE,
});

/** What a device keeps: its secret keys, its record id and account, and the pinned directory. */
export interface KeyBundle {
  readonly keys: PrivateKeys;
  /** The id of the device's key record; empty until the gateway has issued it. */
  readonly keyId: Uint8Array;
  /** The account id the gateway gave at registration; empty until then. */
  readonly accountId: string;
  /** The directory key this device trusts; inside the bundle, so it cannot be swapped. */
  readonly directoryPin: DirectoryPin;
}

function passphraseBytes(passphrase: string): Uint8Array {
  if (passphrase.length === 0) throw new WeakPassphraseError("the passphrase is empty");
  try {
    return utf8(passphrase.normalize("NFC"));
  } catch (cause) {
    throw new WeakPassphraseError("the passphrase is not valid Unicode text", { cause });
  }
}

/** Throw WeakPassphraseError unless `passphrase` may seal a new bundle. */
export function checkNewPassphrase(passphrase: string): void {
  passphraseBytes(passphrase);
  // Code points, as Python's len() counts them for the profile's passphrase.
  if (Array.from(passphrase.normalize("NFC")).length < MIN_PASSPHRASE_CHARS) {
    throw new WeakPassphraseError(
      `choose a passphrase of at least ${String(MIN_PASSPHRASE_CHARS)} characters`,
    );
  }
}

function checkKdf(kdf: KdfParams): void {
  const inRange = (value: number, low: number, high: number): boolean =>
    Number.isSafeInteger(value) && low <= value && value <= high;
  if (
    !inRange(kdf.opslimit, KDF_INTERACTIVE.opslimit, KDF_SENSITIVE.opslimit) ||
    !inRange(kdf.memlimit, KDF_INTERACTIVE.memlimit, KDF_SENSITIVE.memlimit)
  ) {
    throw new LimitError(
      `Argon2id cost opslimit=${String(kdf.opslimit)} memlimit=${String(kdf.memlimit)} is ` +
        "outside the accepted range (libsodium INTERACTIVE to SENSITIVE)",
    );
  }
}

function encodeBundle(bundle: KeyBundle): Uint8Array {
  const { x25519Secret, ed25519Seed } = bundle.keys.exportSecrets();
  if (bundle.keyId.length !== 0 && bundle.keyId.length !== KEY_ID_BYTES) {
    throw new FormatError("a key id is empty or 32 bytes");
  }
  const account = utf8(bundle.accountId);
  if (account.length > MAX_SUBJECT_BYTES) throw new FormatError("account id is too long");
  const out = concat(
    lp(x25519Secret),
    lp(ed25519Seed),
    lp(bundle.keyId),
    lp(account),
    lp(bundle.directoryPin.signingKey),
  );
  wipe(x25519Secret);
  wipe(ed25519Seed);
  return out;
}

function decodeBundle(data: Uint8Array): KeyBundle {
  const items: Uint8Array[] = [];
  let offset = 0;
  for (let i = 0; i < 5; i++) {
    if (data.length - offset < U64_BYTES) throw new FormatError("the key bundle is damaged");
    const size = readU64(data, offset);
    offset += U64_BYTES;
    if (size > BigInt(data.length - offset)) throw new FormatError("the key bundle is damaged");
    items.push(data.subarray(offset, offset + Number(size)));
    offset += Number(size);
  }
  const [x25519Secret, ed25519Seed, keyId, account, pin] = items;
  const accountId = account === undefined ? undefined : decodeUtf8(account);
  if (
    offset !== data.length ||
    x25519Secret === undefined ||
    ed25519Seed === undefined ||
    keyId === undefined ||
    (keyId.length !== 0 && keyId.length !== KEY_ID_BYTES) ||
    accountId === undefined ||
    pin === undefined
  ) {
    throw new FormatError("the key bundle is damaged");
  }
  return {
    keys: new PrivateKeys(x25519Secret, ed25519Seed),
    keyId: keyId.slice(),
    accountId,
    directoryPin: new DirectoryPin(pin),
  };
}

function header(kdf: KdfParams, salt: Uint8Array, nonce: Uint8Array): Uint8Array {
  const ops = new Uint8Array(4);
  new DataView(ops.buffer).setUint32(0, kdf.opslimit, false);
  return concat(
    KEY_BUNDLE_MAGIC,
    Uint8Array.of(KEY_BUNDLE_VERSION),
    ops,
    u64(kdf.memlimit),
    salt,
    nonce,
  );
}

/** Options of sealKeyBundle; tests inject randomness and the cheapest accepted cost. */
export interface SealBundleOptions {
  readonly kdf?: KdfParams;
  readonly rng?: Random;
}

/**
 * Seal a key bundle under a passphrase (at least 8 characters after NFC): a fresh salt
 * and nonce each time, so sealing the same bundle twice gives different bytes.
 */
export function sealKeyBundle(
  bundle: KeyBundle,
  passphrase: string,
  options: SealBundleOptions = {},
): Uint8Array {
  checkNewPassphrase(passphrase);
  const kdf = options.kdf ?? KDF_WEB_DEFAULT;
  checkKdf(kdf);
  const rng = options.rng ?? randomBytes;
  const salt = rng(ARGON2ID_SALT_BYTES);
  const nonce = rng(AEAD_NONCE_BYTES);
  const head = header(kdf, salt, nonce);
  const key = argon2id(
    passphraseBytes(passphrase),
    salt,
    kdf.opslimit,
    kdf.memlimit,
    AEAD_KEY_BYTES,
  );
  const plaintext = encodeBundle(bundle);
  try {
    return concat(head, aeadEncrypt(key, nonce, plaintext, head));
  } finally {
    wipe(key);
    wipe(plaintext);
  }
}

/** The Argon2id cost a sealed bundle asks for, read without the passphrase (checked). */
export function keyBundleCost(blob: Uint8Array): KdfParams {
  return parseHeader(blob).kdf;
}

function parseHeader(blob: Uint8Array): { kdf: KdfParams; salt: Uint8Array; nonce: Uint8Array } {
  const version = blob[KEY_BUNDLE_MAGIC.length];
  if (
    version === undefined ||
    !sameBytes(blob.subarray(0, KEY_BUNDLE_MAGIC.length), KEY_BUNDLE_MAGIC)
  ) {
    throw new FormatError("this is not a Sealpost key bundle");
  }
  if (version < MIN_KEY_BUNDLE_VERSION) {
    throw new VersionTooOldError(`key bundle format version ${String(version)} is no longer read`);
  }
  if (version > KEY_BUNDLE_VERSION) {
    throw new VersionTooNewError(
      `key bundle format version ${String(version)} is newer than this code reads: update the app`,
    );
  }
  if (blob.length < KEY_BUNDLE_HEADER_BYTES + AEAD_TAG_BYTES) {
    throw new FormatError("the key bundle is truncated");
  }
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const memlimit = view.getBigUint64(21, false);
  const kdf: KdfParams = {
    opslimit: view.getUint32(17, false),
    memlimit:
      memlimit > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(memlimit),
  };
  checkKdf(kdf);
  return {
    kdf,
    salt: blob.subarray(29, 29 + ARGON2ID_SALT_BYTES),
    nonce: blob.subarray(45, 45 + AEAD_NONCE_BYTES),
  };
}

/**
 * Open a sealed key bundle. Checks in order: magic (FormatError), version (version errors),
 * length (FormatError), cost within [INTERACTIVE, SENSITIVE] (LimitError: a planted file
 * must not exhaust memory); then a wrong passphrase or any altered byte is one
 * DecryptionError.
 */
export function openKeyBundle(blob: Uint8Array, passphrase: string): KeyBundle {
  const secret = passphraseBytes(passphrase);
  const { kdf, salt, nonce } = parseHeader(blob);
  const key = argon2id(secret, salt, kdf.opslimit, kdf.memlimit, AEAD_KEY_BYTES);
  try {
    const plaintext = aeadDecrypt(
      key,
      nonce,
      blob.subarray(KEY_BUNDLE_HEADER_BYTES),
      blob.subarray(0, KEY_BUNDLE_HEADER_BYTES),
    );
    try {
      return decodeBundle(plaintext);
    } finally {
      wipe(plaintext);
    }
  } finally {
    wipe(key);
  }
}
