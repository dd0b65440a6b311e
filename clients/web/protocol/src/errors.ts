/**
 * The errors every verifier in this library throws; none returns a boolean.
 *
 * The tree mirrors the Python reference (`sealpost.crypto.errors`), so that the test
 * vectors' `expected_error` names map one to one:
 *
 *     SealpostError
 *     ├── CryptoError
 *     │   ├── DecryptionError        a ciphertext or sealed key does not open (opaque on purpose)
 *     │   ├── SignatureError         a signature or signer key id does not verify
 *     │   ├── FormatError            bytes that are not a well-formed artefact
 *     │   │   └── UnsupportedVersionError
 *     │   │       ├── VersionTooOldError    version 0 / absent
 *     │   │       └── VersionTooNewError    a version newer than this code knows
 *     │   ├── LimitError             a size, count, cost or clock limit is exceeded
 *     │   ├── KeyRecordError         a key record is expired, revoked, of the wrong purpose or issuer
 *     │   ├── EnvelopeError          wrong sender, not addressed to this key, commitment mismatch
 *     │   └── ProofError             a Merkle proof, tree head or receipt does not check out
 *     │       ├── ForkError          two signed heads that cannot both be of one append-only log
 *     │       └── RollbackError      the log no longer proves a head a witness already saw
 *     └── WeakPassphraseError        a passphrase too short to protect a new key bundle
 *
 * Messages name what failed, never a key, a plaintext or a passphrase.
 */

/** Root of every error this library throws on purpose. */
export class SealpostError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }

  /** One line for a person: the kind of failure and what failed. */
  explain(): string {
    return `${this.name}: ${this.message}`;
  }
}

/** Base of the protocol's verification and decryption errors. */
export class CryptoError extends SealpostError {}

/** A ciphertext or sealed key does not open. Deliberately says nothing more. */
export class DecryptionError extends CryptoError {}

/** A signature does not verify, or is by another key than the one expected. */
export class SignatureError extends CryptoError {}

/** Bytes that do not parse as the expected artefact, or are not in canonical form. */
export class FormatError extends CryptoError {}

/** A wire artefact carries a version this code does not accept. */
export class UnsupportedVersionError extends FormatError {}

/** The version is older than the oldest one still accepted (0, or absent). */
export class VersionTooOldError extends UnsupportedVersionError {}

/** The version is newer than this code knows. */
export class VersionTooNewError extends UnsupportedVersionError {}

/** A size, count, cost or clock limit is exceeded; the message names the limit. */
export class LimitError extends CryptoError {}

/** A key record is expired, revoked, of the wrong purpose or not issued by the directory. */
export class KeyRecordError extends CryptoError {}

/** An envelope is well formed but not acceptable (wrong sender, recipient, commitment...). */
export class EnvelopeError extends CryptoError {}

/** A Merkle inclusion or consistency proof, a tree head or a receipt does not check out. */
export class ProofError extends CryptoError {}

/** Two signed tree heads that cannot both describe one append-only log (a split view). */
export class ForkError extends ProofError {}

/** The log is shorter than, or can no longer prove, a head a witness already saw. */
export class RollbackError extends ProofError {}

/** A passphrase too short or empty to protect a new key bundle. */
export class WeakPassphraseError extends SealpostError {}
