/**
 * Every domain-separation string Sealpost hashes or signs under (docs/protocol.md 2,
 * docs/transparency-log.md), as in the Python reference `crypto/domains.py`.
 *
 * Each is ASCII, enters its input as the first length-prefixed item, and serves exactly
 * one purpose, so a digest or signature made for one use is never valid for another.
 */

const ascii = (text: string): Uint8Array => Uint8Array.from(text, (ch) => ch.charCodeAt(0));

/** Associated data of each part's XChaCha20-Poly1305 encryption (7.5). */
export const ENVELOPE_PART_AD = ascii("sealpost/v1/envelope/part");
/** Key commitment: BLAKE2b keyed with the DEK over the message id (7.4). */
export const ENVELOPE_KEY_COMMITMENT = ascii("sealpost/v1/envelope/key-commitment");
/** The digest the sender's Ed25519 key signs (7.7). */
export const ENVELOPE_SIGNATURE = ascii("sealpost/v1/envelope/signature");
/** The envelope digest quoted in receipts and the log (7.8). */
export const ENVELOPE_DIGEST = ascii("sealpost/v1/envelope/digest");
/** A key record's id, a digest of its body (5.2). */
export const KEY_RECORD_ID = ascii("sealpost/v1/key-record/id");
/** The digest the directory key signs for a key record (5.2). */
export const KEY_RECORD_SIGNATURE = ascii("sealpost/v1/key-record/signature");
/** The digest the directory key signs for a revocation (5.5). */
export const KEY_REVOCATION_SIGNATURE = ascii("sealpost/v1/key-revocation/signature");
/** What the directory key handing over signs in a succession (5.7). */
export const DIRECTORY_SUCCESSION_PREVIOUS = ascii("sealpost/v1/directory-succession/previous");
/** What the directory key taking over signs in a succession (5.7). */
export const DIRECTORY_SUCCESSION_NEXT = ascii("sealpost/v1/directory-succession/next");
/** A succession's id, as the transparency log records it (5.7). */
export const DIRECTORY_SUCCESSION_ID = ascii("sealpost/v1/directory-succession/id");
/** Proof of possession of a signing key when registering it (6.1). */
export const REGISTRATION = ascii("sealpost/v1/registration");
/** Login: a device key signs a one-time challenge (6.2). */
export const LOGIN = ascii("sealpost/v1/login");
/** The mailbox secret keys, sealed to an institution key (6.3). */
export const MAILBOX_SECRET = ascii("sealpost/v1/mailbox-secret");
/** The digest the log key signs for a tree head. */
export const LOG_TREE_HEAD = ascii("sealpost/v1/log/tree-head");
/** The digest naming an escrow blob in the log (MESSAGE_ESCROWED). */
export const LOG_ESCROW_DIGEST = ascii("sealpost/v1/log/escrow-digest");
/** The draw of an escrow audit's sample from a tree head. */
export const ESCROW_AUDIT_SAMPLE = ascii("sealpost/v1/escrow-audit/sample");
/** The digest a witness signs when it countersigns a tree head. */
export const LOG_COSIGNATURE = ascii("sealpost/v1/log/cosignature");
/** The key id of a witness key without a key record (an auditor's own Ed25519 key). */
export const LOG_WITNESS_KEY_ID = ascii("sealpost/v1/log/witness-key-id");
/** What the gateway keeps of a one-time device link code. */
export const DEVICE_LINK = ascii("sealpost/v1/device-link");
/** A file of the web app, as a release manifest names it. */
export const WEB_APP_FILE = ascii("sealpost/v1/web-app/file");
/** A release manifest of the web app, as the transparency log records it. */
export const WEB_APP_RELEASE = ascii("sealpost/v1/web-app/release");
/** The digest of a sealed triage watch list, named in the log entry that changed it. */
export const LOG_WATCH_LIST_DIGEST = ascii("sealpost/v1/log/watch-list-digest");
/** The key server's derivation context of a queued message's sealed triage summary. */
export const TRIAGE_SUMMARY_CONTEXT = ascii("sealpost/v1/triage/summary");
/** The key server's derivation context of a sealed triage watch list. */
export const TRIAGE_WATCH_LIST_CONTEXT = ascii("sealpost/v1/triage/watch-list");

/** All of them, in the order of `crypto/domains.py` ALL. */
export const ALL: readonly Uint8Array[] = [
  ENVELOPE_PART_AD,
  ENVELOPE_KEY_COMMITMENT,
  ENVELOPE_SIGNATURE,
  ENVELOPE_DIGEST,
  KEY_RECORD_ID,
  KEY_RECORD_SIGNATURE,
  KEY_REVOCATION_SIGNATURE,
  DIRECTORY_SUCCESSION_PREVIOUS,
  DIRECTORY_SUCCESSION_NEXT,
  DIRECTORY_SUCCESSION_ID,
  REGISTRATION,
  LOGIN,
  MAILBOX_SECRET,
  LOG_TREE_HEAD,
  LOG_ESCROW_DIGEST,
  ESCROW_AUDIT_SAMPLE,
  LOG_COSIGNATURE,
  LOG_WITNESS_KEY_ID,
  WEB_APP_FILE,
  WEB_APP_RELEASE,
  DEVICE_LINK,
  LOG_WATCH_LIST_DIGEST,
  TRIAGE_SUMMARY_CONTEXT,
  TRIAGE_WATCH_LIST_CONTEXT,
];
