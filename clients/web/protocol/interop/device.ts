/**
 * A relative's device over the gateway's browser port: the Connect protocol through
 * @connectrpc/connect-web (fetch), binary Protobuf, with this library doing every check a
 * client must make (docs/protocol.md 6.4, docs/transparency-log.md 6). What the web app
 * will do, without its user interface and storage.
 */

import { fromBinary } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";

import * as sp from "../src/index.js";
import { AuditService } from "../src/gen/sealpost/v1/audit_pb.js";
import { ContactStatus } from "../src/gen/sealpost/v1/common_pb.js";
import { TreeHeadSchema } from "../src/gen/sealpost/v1/log_pb.js";
import {
  RelativeService,
  type Contact,
  type StreamInboxResponse,
} from "../src/gen/sealpost/v1/relative_pb.js";

/** The calls that take no session token: a stale one would get them refused (6.2). */
const WITHOUT_TOKEN: ReadonlySet<string> = new Set(["GetDirectory", "CreateChallenge", "Login"]);

/** The directory and log records, verified against the pin, and the revocations. */
export interface Trust {
  readonly directory: sp.VerifiedKey;
  readonly log: sp.VerifiedKey;
  readonly revocations: readonly sp.KeyRevocation[];
}

/** A reply opened on this device. */
export interface OpenedReply {
  readonly item: StreamInboxResponse;
  readonly message: sp.OpenedMessage;
}

/** A receipt proven from the transparency log, and the newest head it is consistent with. */
export interface ProvenReceipt {
  readonly receipt: sp.Receipt;
  readonly verified: sp.VerifiedReceipt;
}

export function nowMs(): bigint {
  return BigInt(Date.now());
}

function sameHex(a: Uint8Array, b: Uint8Array): boolean {
  return sp.toHex(a) === sp.toHex(b);
}

/** The RelativeService and the log's read-only calls, on one browser port. */
export class BrowserPort {
  readonly relative: Client<typeof RelativeService>;
  readonly audit: Client<typeof AuditService>;
  /** The session token sent with every call that takes one; undefined sends none. */
  token: string | undefined;

  constructor(baseUrl: string) {
    const bearer: Interceptor = (next) => (request) => {
      if (this.token !== undefined && !WITHOUT_TOKEN.has(request.method.name)) {
        const [name, value] = sp.bearerHeader(this.token);
        request.header.set(name, value);
      }
      return next(request);
    };
    const transport = createConnectTransport({
      baseUrl,
      useBinaryFormat: true,
      interceptors: [bearer],
      defaultTimeoutMs: 30_000,
    });
    this.relative = createClient(RelativeService, transport);
    this.audit = createClient(AuditService, transport);
  }

  /**
   * GetDirectory, verified against the pinned directory key (5.3, 5.4), through every
   * hand-over of that key (5.7): a pin of an earlier key follows the rotation.
   */
  async trust(pin: sp.DirectoryPin): Promise<Trust> {
    const reply = await this.relative.getDirectory({});
    if (reply.directoryKey === undefined || reply.logKey === undefined) {
      throw new sp.KeyRecordError("the gateway sent no directory or log key record");
    }
    const check = { nowMs: nowMs(), revocations: reply.revocations };
    const directory = sp.verifyDirectoryRecord(reply.directoryKey, pin, {
      ...check,
      successions: reply.successions,
    });
    const log = sp.verifyKeyRecord(reply.logKey, directory, {
      ...check,
      purpose: sp.KeyPurpose.LOG,
    });
    return { directory, log, revocations: reply.revocations };
  }

  /**
   * Register new device keys (6.1) as a new account, and check the record the gateway
   * issued as 6.4 says: a device record, verified against the pinned directory, for
   * exactly these keys, whose subject is the account id the gateway answered with.
   */
  async register(
    keys: sp.PrivateKeys,
    displayName: string,
    pin: sp.DirectoryPin,
  ): Promise<{ accountId: string; record: sp.VerifiedKey }> {
    const name = displayName.trim().normalize("NFC");
    const proof = sp.signRegistration(keys, sp.KeyPurpose.RELATIVE_DEVICE, name);
    const reply = await this.relative.registerDevice({
      displayName: name,
      encryptionKey: keys.encryptionKey,
      signingKey: keys.signingKey,
      proof,
    });
    if (reply.keyRecord === undefined) {
      throw new sp.KeyRecordError("the gateway issued no key record");
    }
    const trust = await this.trust(pin);
    const record = sp.verifyKeyRecord(reply.keyRecord, trust.directory, {
      nowMs: nowMs(),
      revocations: trust.revocations,
      purpose: sp.KeyPurpose.RELATIVE_DEVICE,
    });
    if (
      !sameHex(record.signingKey, keys.signingKey) ||
      !sameHex(record.encryptionKey, keys.encryptionKey)
    ) {
      throw new sp.KeyRecordError("the gateway issued a record for other keys");
    }
    sp.expectSubject(record, reply.accountId);
    return { accountId: reply.accountId, record };
  }

  /** Sign a fresh challenge with the device key (6.2) and keep the session token. */
  async login(bundle: sp.KeyBundle): Promise<{ expiresAtMs: bigint }> {
    this.token = undefined;
    const { challenge } = await this.relative.createChallenge({ keyId: bundle.keyId });
    const signature = sp.signLogin(bundle.keys, bundle.keyId, challenge);
    const reply = await this.relative.login({ keyId: bundle.keyId, challenge, signature });
    if (reply.accountId !== "" && reply.accountId !== bundle.accountId) {
      throw new sp.KeyRecordError("signed in to another account than this device's");
    }
    this.token = reply.accessToken;
    const expires = reply.expiresAt;
    return { expiresAtMs: expires === undefined ? 0n : expires.seconds * 1000n };
  }

  /**
   * The contact with `detaineeId`, and once approved its mailbox key, verified against
   * the directory with the contact's detainee as its subject (6.4).
   */
  async contact(
    detaineeId: string,
    trust: Trust,
  ): Promise<{ contact: Contact; mailbox: sp.VerifiedKey | undefined }> {
    const { contacts } = await this.relative.listContacts({});
    const contact = contacts.find((c) => c.detaineeId === detaineeId);
    if (contact === undefined) throw new Error(`no contact with detainee ${detaineeId}`);
    if (contact.mailboxKey === undefined) return { contact, mailbox: undefined };
    const mailbox = sp.verifyKeyRecord(contact.mailboxKey, trust.directory, {
      nowMs: nowMs(),
      revocations: trust.revocations,
      purpose: sp.KeyPurpose.MAILBOX,
    });
    sp.expectSubject(mailbox, contact.detaineeId);
    return { contact, mailbox };
  }

  /** The log key that signed a receipt's head: the current one, or an older one by id. */
  async logKeyFor(receipt: sp.Receipt, trust: Trust): Promise<sp.VerifiedKey> {
    const signed = receipt.treeHead;
    if (signed === undefined) return trust.log;
    // Read only to learn which key to check with; verifyReceipt reads the head strictly.
    const keyId = fromBinary(TreeHeadSchema, signed.treeHead).logKeyId;
    if (keyId.length === 0 || sameHex(keyId, trust.log.id)) return trust.log;
    const reply = await this.relative.getKeyRecords({ keyIds: [keyId] });
    for (const record of reply.keyRecords) {
      if (sameHex(sp.keyRecordId(record.body), keyId)) {
        // A rotated log key is judged at the time the message was accepted (5.6).
        return sp.verifyKeyRecord(record, trust.directory, {
          nowMs: receipt.acceptedAtMs,
          revocations: [...trust.revocations, ...reply.revocations],
          purpose: sp.KeyPurpose.LOG,
        });
      }
    }
    return trust.log; // unknown key: the head's check against the current key fails loudly
  }

  /** Verify a receipt against what this device computed itself (transparency-log.md 6). */
  async verifyReceipt(
    receipt: sp.Receipt,
    expected: { messageId: Uint8Array; envelopeDigest: Uint8Array; sentEntry: sp.LogEntry },
    trust: Trust,
  ): Promise<sp.VerifiedReceipt> {
    return sp.verifyReceipt(receipt, { ...expected, logKey: await this.logKeyFor(receipt, trust) });
  }

  /** GetReceiptProof, verified: the entry named at acceptance is in a signed head. */
  async proveReceipt(
    expected: { messageId: Uint8Array; envelopeDigest: Uint8Array; sentEntry: sp.LogEntry },
    trust: Trust,
  ): Promise<ProvenReceipt> {
    const { receipt } = await this.relative.getReceiptProof({ messageId: expected.messageId });
    if (receipt === undefined) throw new sp.ProofError("the gateway sent no receipt");
    return { receipt, verified: await this.verifyReceipt(receipt, expected, trust) };
  }

  /**
   * The log's newest signed head (AuditService over the browser port), verified, proven
   * consistent with the receipt's head, and with the receipt's entry included in it.
   */
  async newestHeadCovering(
    proven: sp.VerifiedReceipt,
    entry: sp.LogEntry,
    trust: Trust,
  ): Promise<sp.VerifiedTreeHead> {
    const { treeHead } = await this.audit.getTreeHead({});
    if (treeHead === undefined) throw new sp.ProofError("the gateway sent no tree head");
    const newest = sp.verifyTreeHead(treeHead, trust.log.signingKey, trust.log.id);
    const first = proven.head;
    if (newest.treeSize < first.treeSize) {
      throw new sp.RollbackError("the newest head is smaller than one this device verified");
    }
    const { proof } = await this.audit.getConsistencyProof({
      firstSize: first.treeSize,
      secondSize: newest.treeSize,
    });
    if (proof === undefined) throw new sp.ProofError("the gateway sent no consistency proof");
    sp.verifyHeadConsistency(first, newest, proof);
    const inclusion = await this.audit.getInclusionProof({
      leafIndex: entry.index,
      treeSize: newest.treeSize,
    });
    if (inclusion.proof === undefined) {
      throw new sp.ProofError("the gateway sent no inclusion proof");
    }
    sp.verifyEntryInclusion(entry.leaf, entry.index, inclusion.proof, newest);
    return newest;
  }

  /**
   * Replies addressed to this device (StreamInbox, a server stream), each verified and
   * opened: the sender's mailbox record verified at the reply's acceptance time (5.6),
   * its subject the reply's detainee, who must be one of this account's approved
   * contacts; then every check of 7.10 and 7.11. Nothing is returned that did not open.
   */
  async *inbox(
    bundle: sp.KeyBundle,
    trust: Trust,
    afterCursor: string,
  ): AsyncGenerator<OpenedReply> {
    const { contacts } = await this.relative.listContacts({});
    const approved = new Set(
      contacts.filter((c) => c.status === ContactStatus.APPROVED).map((c) => c.detaineeId),
    );
    for await (const item of this.relative.streamInbox({ afterCursor, follow: false })) {
      if (item.senderKey === undefined || item.envelope === undefined) {
        throw new sp.FormatError("an inbox item without its envelope or sender key");
      }
      const when = item.acceptedAtMs;
      const sender = sp.verifyKeyRecord(item.senderKey, trust.directory, {
        nowMs: when,
        revocations: trust.revocations,
        purpose: sp.KeyPurpose.MAILBOX,
      });
      sp.expectSubject(sender, item.detaineeId);
      if (!approved.has(item.detaineeId)) {
        throw new sp.KeyRecordError("a reply from a detainee who is not an approved contact");
      }
      const message = sp.openEnvelope(item.envelope, bundle.keys, bundle.keyId, sender, {
        nowMs: when,
      });
      yield { item, message };
    }
  }
}
