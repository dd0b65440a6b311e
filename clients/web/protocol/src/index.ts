/**
 * @sealpost/protocol: the Sealpost client protocol for the browser and Node.js.
 *
 * Keys are made and kept on the device, envelopes sealed and replies opened there, and
 * every key record, receipt, tree head and cosignature verified there, byte for byte as
 * docs/protocol.md and docs/transparency-log.md specify. Call `ready()` once first.
 * Every verifier returns a value or throws an error from `errors`; none returns a boolean.
 */

export { ready, randomBytes, type Random } from "./_internal/sodium.js";
export { toHex, fromHex } from "./_internal/bytes.js";
export * from "./errors.js";
export * as domains from "./domains.js";
export { DEFAULT_LIMITS, makeLimits, maxEnvelopeBytes, type Limits } from "./limits.js";
export { PrivateKeys } from "./keys.js";
export {
  DirectoryPin,
  KEY_ID_BYTES,
  KeyPurpose,
  MAX_SUCCESSIONS,
  MAX_SUCCESSION_BYTES,
  VerifiedKey,
  directorySuccessionDigests,
  expectSubject,
  keyRecordId,
  keyRecordSignedDigest,
  keyRevocationSignedDigest,
  parseKeyRecord,
  parseKeyRevocation,
  parseSuccession,
  successionId,
  verifyDirectoryRecord,
  verifyKeyRecord,
  verifyRevocation,
  verifySuccession,
  type DirectoryRecordCheck,
  type DirectorySuccession,
  type KeyRecord,
  type KeyRecordCheck,
  type KeyRevocation,
  type VerifiedRevocation,
  type VerifiedSuccession,
} from "./keyrecords.js";
export {
  CHALLENGE_BYTES,
  bearerHeader,
  loginDigest,
  registrationDigest,
  signLogin,
  signRegistration,
  verifyLogin,
  verifyRegistration,
} from "./auth.js";
export {
  MESSAGE_ID_BYTES,
  Part,
  TEXT_PLAIN,
  attachments,
  contentDigest,
  decodePartPlaintext,
  decryptWithDek,
  encodePartPlaintext,
  envelopeDigest,
  keyCommitment,
  messageIdOf,
  messageText,
  openDek,
  openEnvelope,
  parseEnvelope,
  parseHeader,
  partAssociatedData,
  sealEnvelope,
  serializeEnvelope,
  textPart,
  verifyDekCommitment,
  verifyEnvelope,
  type Envelope,
  type Header,
  type OpenedMessage,
  type PartInfo,
  type ReadOptions,
  type SealOptions,
  type SealedKey,
  type VerifiedEnvelope,
} from "./envelope.js";
export * as merkle from "./merkle.js";
export {
  ENVELOPE_DIGEST_FIELD,
  LogAction,
  decodeEvent,
  encodeEvent,
  escrowDigest,
  eventMessageId,
  logActionName,
  makeLogEvent,
  treeHeadSigningDigest,
  verifyEntryInclusion,
  verifyHeadConsistency,
  verifyReceipt,
  verifyRelease,
  verifyTreeHead,
  type ConsistencyProof,
  type InclusionProof,
  type LogActionCode,
  type LogActionName,
  type LogEntry,
  type LogEvent,
  type LogEventInit,
  type Receipt,
  type ReceiptExpectation,
  type SignedTreeHead,
  type VerifiedReceipt,
  type VerifiedTreeHead,
} from "./logentry.js";
export {
  checkSuccessor,
  cosignatureDigest,
  verifyCosignature,
  witnessKeyId,
  type Cosignature,
  type Successor,
  type VerifiedCosignature,
} from "./cosignature.js";
export {
  KDF_INTERACTIVE,
  KDF_MODERATE,
  KDF_SENSITIVE,
  KDF_WEB_DEFAULT,
  checkNewPassphrase,
  keyBundleCost,
  openKeyBundle,
  sealKeyBundle,
  type KdfParams,
  type KeyBundle,
  type SealBundleOptions,
} from "./keystore.js";
