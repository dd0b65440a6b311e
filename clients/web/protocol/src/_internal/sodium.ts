/**
 * The one place this library calls libsodium (libsodium-wrappers-sumo, WebAssembly).
 *
 * Every other module uses these recipes. Inputs and outputs are plain bytes; every
 * authentication failure surfaces as DecryptionError or SignatureError and nothing
 * more specific, so that a failure tells an attacker nothing. Call `ready()` once
 * before anything else: libsodium's WebAssembly module loads asynchronously.
 */

import sodium from "libsodium-wrappers-sumo";

import { DecryptionError, SignatureError } from "../errors.js";
import { concat } from "./bytes.js";

/** A source of random bytes; tests inject a deterministic one. */
export type Random = (size: number) => Uint8Array;

export const SHA256_BYTES = 32;
export const ED25519_SEED_BYTES = 32;
export const ED25519_PUBLIC_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;
export const X25519_SECRET_BYTES = 32;
export const X25519_PUBLIC_BYTES = 32;
/** crypto_box_SEALBYTES: ephemeral public key and Poly1305 tag. */
export const SEALED_BOX_OVERHEAD = 48;
export const AEAD_KEY_BYTES = 32;
export const AEAD_NONCE_BYTES = 24;
export const AEAD_TAG_BYTES = 16;
const BOX_NONCE_BYTES = 24;

let loaded = false;

/** Wait until libsodium is loaded; every other function needs it. Safe to call repeatedly. */
export async function ready(): Promise<void> {
  await sodium.ready;
  loaded = true;
}

function lib(): typeof sodium {
  if (!loaded) {
    throw new Error("libsodium is not loaded yet: await ready() first");
  }
  return sodium;
}

/** Cryptographically secure random bytes (randombytes_buf). */
export const randomBytes: Random = (size) => lib().randombytes_buf(size);

/** SHA-256 (crypto_hash_sha256). */
export function sha256(data: Uint8Array): Uint8Array {
  return lib().crypto_hash_sha256(data);
}

/** SHA-256 over chunks, streamed (crypto_hash_sha256_init/update/final). */
export function sha256Chunks(chunks: Iterable<Uint8Array>): Uint8Array {
  const s = lib();
  const state = s.crypto_hash_sha256_init();
  for (const chunk of chunks) s.crypto_hash_sha256_update(state, chunk);
  return s.crypto_hash_sha256_final(state);
}

/** BLAKE2b (crypto_generichash) with an output of `size` bytes, keyed or not. */
export function blake2b(data: Uint8Array, size: number, key: Uint8Array | null = null): Uint8Array {
  return lib().crypto_generichash(size, data, key);
}

/** Constant-time equality (sodium_memcmp); false at once for different lengths, which are public. */
export function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && lib().memcmp(a, b);
}

/** The Ed25519 public key of a 32-byte seed. */
export function ed25519PublicFromSeed(seed: Uint8Array): Uint8Array {
  return lib().crypto_sign_seed_keypair(seed).publicKey;
}

/** The 64-byte libsodium Ed25519 secret key (seed ‖ public) of a seed. */
export function ed25519ExpandSeed(seed: Uint8Array): Uint8Array {
  return lib().crypto_sign_seed_keypair(seed).privateKey;
}

/** Detached Ed25519 signature (crypto_sign_detached) with an expanded secret key. */
export function ed25519SignExpanded(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  return lib().crypto_sign_detached(message, secretKey);
}

/** Detached Ed25519 signature of `message` under the key of `seed`. */
export function ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array {
  return ed25519SignExpanded(ed25519ExpandSeed(seed), message);
}

/**
 * Throw SignatureError unless `signature` is valid for `message` under `publicKey`
 * (crypto_sign_verify_detached: refuses non-canonical signatures and small-order keys).
 */
export function ed25519Verify(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): void {
  if (publicKey.length !== ED25519_PUBLIC_BYTES || signature.length !== ED25519_SIGNATURE_BYTES) {
    throw new SignatureError("malformed key or signature");
  }
  let valid: boolean;
  try {
    valid = lib().crypto_sign_verify_detached(signature, message, publicKey);
  } catch {
    valid = false;
  }
  if (!valid) throw new SignatureError("signature does not verify");
}

/** True for a canonical Ed25519 point in the main subgroup, not of small order. */
export function ed25519PublicIsValid(publicKey: Uint8Array): boolean {
  return (
    publicKey.length === ED25519_PUBLIC_BYTES && lib().crypto_core_ed25519_is_valid_point(publicKey)
  );
}

/** The X25519 public key of a 32-byte secret key (crypto_scalarmult_base). */
export function x25519PublicFromSecret(secret: Uint8Array): Uint8Array {
  return lib().crypto_scalarmult_base(secret);
}

/** True when an X25519 public key has small order (every shared secret with it is known). */
export function x25519IsLowOrder(publicKey: Uint8Array): boolean {
  if (publicKey.length !== X25519_PUBLIC_BYTES) return true;
  try {
    // A clamped scalar is a multiple of 8, so only small-order points give the all-zero
    // output, which libsodium refuses.
    lib().crypto_scalarmult(new Uint8Array(X25519_SECRET_BYTES).fill(1), publicKey);
  } catch {
    return true;
  }
  return false;
}

/**
 * crypto_box_seal with a caller-drawn ephemeral secret, so that randomness can be injected.
 * Byte for byte libsodium's construction (docs/protocol.md 7.6), opened by `sealOpen`:
 * epk ‖ crypto_box_easy(plaintext, BLAKE2b-192(epk ‖ pk), pk, esk).
 */
export function sealWithEphemeral(
  recipientPublic: Uint8Array,
  plaintext: Uint8Array,
  ephemeralSecret: Uint8Array,
): Uint8Array {
  if (
    recipientPublic.length !== X25519_PUBLIC_BYTES ||
    ephemeralSecret.length !== X25519_SECRET_BYTES
  ) {
    throw new DecryptionError("malformed key");
  }
  const s = lib();
  const ephemeralPublic = s.crypto_scalarmult_base(ephemeralSecret);
  const nonce = s.crypto_generichash(
    BOX_NONCE_BYTES,
    concat(ephemeralPublic, recipientPublic),
    null,
  );
  let boxed: Uint8Array;
  try {
    boxed = s.crypto_box_easy(plaintext, nonce, recipientPublic, ephemeralSecret);
  } catch (cause) {
    // A small-order key gives an all-zero shared secret, which libsodium refuses.
    throw new DecryptionError("cannot seal to this key", { cause });
  }
  return concat(ephemeralPublic, boxed);
}

/** Open a sealed box (crypto_box_seal_open); DecryptionError on any failure. */
export function sealOpen(
  recipientSecret: Uint8Array,
  recipientPublic: Uint8Array,
  sealed: Uint8Array,
): Uint8Array {
  try {
    return lib().crypto_box_seal_open(sealed, recipientPublic, recipientSecret);
  } catch {
    throw new DecryptionError("cannot open");
  }
}

/** XChaCha20-Poly1305 (IETF) encryption; the 16-byte tag is appended. */
export function aeadEncrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  associated: Uint8Array,
): Uint8Array {
  return lib().crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, associated, null, nonce, key);
}

/** XChaCha20-Poly1305 (IETF) decryption; DecryptionError on any failure. */
export function aeadDecrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  associated: Uint8Array,
): Uint8Array {
  if (
    key.length !== AEAD_KEY_BYTES ||
    nonce.length !== AEAD_NONCE_BYTES ||
    ciphertext.length < AEAD_TAG_BYTES
  ) {
    throw new DecryptionError("cannot open");
  }
  try {
    return lib().crypto_aead_xchacha20poly1305_ietf_decrypt(
      null,
      ciphertext,
      associated,
      nonce,
      key,
    );
  } catch {
    throw new DecryptionError("cannot open");
  }
}

// --- Passphrases (the key bundle, keystore.ts) ---

export const ARGON2ID_SALT_BYTES = 16;
export const ARGON2ID_OPSLIMIT_INTERACTIVE = 2;
export const ARGON2ID_MEMLIMIT_INTERACTIVE = 64 * 1024 * 1024;
export const ARGON2ID_OPSLIMIT_MODERATE = 3;
export const ARGON2ID_MEMLIMIT_MODERATE = 256 * 1024 * 1024;
export const ARGON2ID_OPSLIMIT_SENSITIVE = 4;
export const ARGON2ID_MEMLIMIT_SENSITIVE = 1024 * 1024 * 1024;

/** A key from a passphrase with Argon2id v1.3 (crypto_pwhash, ALG_ARGON2ID13). */
export function argon2id(
  passphrase: Uint8Array,
  salt: Uint8Array,
  opslimit: number,
  memlimit: number,
  size: number,
): Uint8Array {
  const s = lib();
  return s.crypto_pwhash(
    size,
    passphrase,
    salt,
    opslimit,
    memlimit,
    s.crypto_pwhash_ALG_ARGON2ID13,
  );
}

/** Overwrite secret bytes with zeros (sodium_memzero) once they are no longer needed. */
export function wipe(data: Uint8Array): void {
  lib().memzero(data);
}
