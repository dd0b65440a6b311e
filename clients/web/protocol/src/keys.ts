/**
 * Secret keys of a device (or mailbox), kept out of every printout (docs/protocol.md 4).
 *
 * One X25519 secret (sealed boxes are addressed to its public key, the encryption key)
 * and one Ed25519 seed (its public key is the signing key). Generated on the device from
 * an injected source of randomness; never logged, never sent in the clear.
 */

import { FormatError } from "./errors.js";
import { toHex } from "./_internal/bytes.js";
import {
  ED25519_SEED_BYTES,
  X25519_SECRET_BYTES,
  ed25519ExpandSeed,
  ed25519SignExpanded,
  randomBytes,
  sealOpen,
  x25519PublicFromSecret,
  type Random,
} from "./_internal/sodium.js";

/** An X25519 secret key and an Ed25519 seed; printing shows the public keys only. */
export class PrivateKeys {
  readonly #x25519Secret: Uint8Array;
  readonly #ed25519Seed: Uint8Array;
  readonly #expanded: Uint8Array;
  /** The X25519 public key (32 bytes) that sealed boxes are addressed to. */
  readonly encryptionKey: Uint8Array;
  /** The Ed25519 public key (32 bytes) that verifies this key's signatures. */
  readonly signingKey: Uint8Array;

  /** Keys from their secrets (copied); FormatError unless both are 32 bytes. */
  constructor(x25519Secret: Uint8Array, ed25519Seed: Uint8Array) {
    if (x25519Secret.length !== X25519_SECRET_BYTES) {
      throw new FormatError("an X25519 secret key is 32 bytes");
    }
    if (ed25519Seed.length !== ED25519_SEED_BYTES) {
      throw new FormatError("an Ed25519 seed is 32 bytes");
    }
    this.#x25519Secret = x25519Secret.slice();
    this.#ed25519Seed = ed25519Seed.slice();
    this.#expanded = ed25519ExpandSeed(this.#ed25519Seed);
    this.encryptionKey = x25519PublicFromSecret(this.#x25519Secret);
    this.signingKey = this.#expanded.slice(ED25519_SEED_BYTES);
  }

  /** Fresh keys: 32 bytes of `rng` for the X25519 secret, then 32 for the Ed25519 seed. */
  static generate(rng: Random = randomBytes): PrivateKeys {
    const x25519Secret = rng(X25519_SECRET_BYTES);
    const ed25519Seed = rng(ED25519_SEED_BYTES);
    return new PrivateKeys(x25519Secret, ed25519Seed);
  }

  /** A detached Ed25519 signature (64 bytes); callers pass a domain-separated digest. */
  sign(message: Uint8Array): Uint8Array {
    return ed25519SignExpanded(this.#expanded, message);
  }

  /** Open a sealed box addressed to this key's X25519 public key; DecryptionError if not. */
  openSealed(sealed: Uint8Array): Uint8Array {
    return sealOpen(this.#x25519Secret, this.encryptionKey, sealed);
  }

  /**
   * Copies of the two secrets, for sealing them under a passphrase (keystore.ts) and
   * nothing else: whoever holds them can read this device's mail and sign as it.
   */
  exportSecrets(): { readonly x25519Secret: Uint8Array; readonly ed25519Seed: Uint8Array } {
    return { x25519Secret: this.#x25519Secret.slice(), ed25519Seed: this.#ed25519Seed.slice() };
  }

  /** Public keys only: secrets never reach a log or an error report. */
  toString(): string {
    return (
      `PrivateKeys(encryptionKey=${toHex(this.encryptionKey)}, ` +
      `signingKey=${toHex(this.signingKey)})`
    );
  }

  /** JSON shows the public keys only. */
  toJSON(): { encryptionKey: string; signingKey: string } {
    return { encryptionKey: toHex(this.encryptionKey), signingKey: toHex(this.signingKey) };
  }
}
