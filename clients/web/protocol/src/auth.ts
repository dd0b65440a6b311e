/**
 * Registration and login signatures (docs/protocol.md 6.1 and 6.2): proof of possession
 * of a new signing key, bound to what is being registered, and a device key signing a
 * one-time challenge. Also the form in which the session token then travels.
 */

import * as domains from "./domains.js";
import { FormatError, KeyRecordError } from "./errors.js";
import { KEY_ID_BYTES, KeyPurpose, type VerifiedKey } from "./keyrecords.js";
import type { PrivateKeys } from "./keys.js";
import { utf8 } from "./_internal/bytes.js";
import { framedSha256 } from "./_internal/framing.js";
import { ed25519PublicIsValid, ed25519Verify, x25519IsLowOrder } from "./_internal/sodium.js";

/** Purposes a client registers itself (directory and log keys are configured, not registered). */
export const REGISTRABLE_PURPOSES: ReadonlySet<KeyPurpose> = new Set([
  KeyPurpose.RELATIVE_DEVICE,
  KeyPurpose.MAILBOX,
  KeyPurpose.INSTITUTION,
]);
/** Bytes of a login challenge. */
export const CHALLENGE_BYTES = 32;

/** What a registration proof signs: purpose, label (UTF-8, exactly as sent) and both keys. */
export function registrationDigest(
  purpose: KeyPurpose,
  label: string,
  encryptionKey: Uint8Array,
  signingKey: Uint8Array,
): Uint8Array {
  return framedSha256(domains.REGISTRATION, [
    BigInt(purpose),
    utf8(label),
    encryptionKey,
    signingKey,
  ]);
}

function checkRegistrationKeys(
  purpose: KeyPurpose,
  encryptionKey: Uint8Array,
  signingKey: Uint8Array,
): void {
  if (!REGISTRABLE_PURPOSES.has(purpose)) {
    throw new FormatError("this key purpose is not registered by proof of possession");
  }
  if (!ed25519PublicIsValid(signingKey)) {
    throw new FormatError("signing key is not a valid Ed25519 public key");
  }
  if (x25519IsLowOrder(encryptionKey)) {
    throw new FormatError("encryption key is not a usable X25519 public key");
  }
}

/**
 * Proof of possession for registering `keys` (6.1). `label` is the display name of a
 * device (the app sends it in Unicode NFC and signs exactly what it sends), the detainee
 * id of a mailbox, or the institution id.
 */
export function signRegistration(
  keys: PrivateKeys,
  purpose: KeyPurpose,
  label: string,
): Uint8Array {
  checkRegistrationKeys(purpose, keys.encryptionKey, keys.signingKey);
  return keys.sign(registrationDigest(purpose, label, keys.encryptionKey, keys.signingKey));
}

/** Throw unless `proof` shows possession of `signingKey` for exactly this request. */
export function verifyRegistration(
  proof: Uint8Array,
  purpose: KeyPurpose,
  label: string,
  encryptionKey: Uint8Array,
  signingKey: Uint8Array,
): void {
  checkRegistrationKeys(purpose, encryptionKey, signingKey);
  ed25519Verify(signingKey, registrationDigest(purpose, label, encryptionKey, signingKey), proof);
}

/** What a login signature signs: the device's key record id and the 32-byte challenge. */
export function loginDigest(keyId: Uint8Array, challenge: Uint8Array): Uint8Array {
  if (keyId.length !== KEY_ID_BYTES) throw new FormatError("key id is not 32 bytes");
  if (challenge.length !== CHALLENGE_BYTES)
    throw new FormatError("login challenge is not 32 bytes");
  return framedSha256(domains.LOGIN, [keyId, challenge]);
}

/** The device's answer to a login challenge (LoginRequest.signature). */
export function signLogin(keys: PrivateKeys, keyId: Uint8Array, challenge: Uint8Array): Uint8Array {
  return keys.sign(loginDigest(keyId, challenge));
}

/** Throw unless `signature` is the device key of `record` signing `challenge`. */
export function verifyLogin(
  signature: Uint8Array,
  record: VerifiedKey,
  challenge: Uint8Array,
): void {
  if (record.purpose !== KeyPurpose.RELATIVE_DEVICE) {
    throw new KeyRecordError("only device keys log in");
  }
  ed25519Verify(record.signingKey, loginDigest(record.id, challenge), signature);
}

/**
 * The request header that carries a session token (LoginResponse.access_token) on every
 * call but GetDirectory, CreateChallenge and Login: `authorization: Bearer <token>`
 * (docs/protocol.md 6.2).
 */
export function bearerHeader(token: string): readonly [string, string] {
  let printable = token.length > 0;
  for (let i = 0; i < token.length; i++) {
    const unit = token.charCodeAt(i);
    if (unit <= 0x20 || unit > 0x7e) printable = false;
  }
  if (!printable) {
    throw new FormatError("a session token is one word of printable ASCII");
  }
  return ["authorization", `Bearer ${token}`];
}
