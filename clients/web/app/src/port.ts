/**
 * The gateway's browser port: RelativeService and the log's read-only calls over the
 * Connect protocol (docs/gateway.md, "The browser port"), binary Protobuf, on the same
 * origin as the app. Every answer that carries a key record, an envelope or a proof is
 * checked with the protocol library before it is used (docs/protocol.md 6.4,
 * docs/transparency-log.md 6); nothing here verifies anything by itself.
 */

import { fromBinary } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import * as sp from "@sealpost/protocol";
import { AuditService } from "@sealpost/protocol/gen/audit_pb";
import { ContactStatus } from "@sealpost/protocol/gen/common_pb";
import { KeyRecordBodySchema } from "@sealpost/protocol/gen/keys_pb";
import { TreeHeadSchema } from "@sealpost/protocol/gen/log_pb";
import {
  RelativeService,
  type Contact,
  type StreamInboxResponse,
} from "@sealpost/protocol/gen/relative_pb";

/** The calls that take no session token: a stale one would get them refused (6.2). */
const WITHOUT_TOKEN: ReadonlySet<string> = new Set(["GetDirectory", "CreateChallenge", "Login"]);

/** The directory and log records, verified against the pin, and the revocations. */
export interface Trust {
  readonly directory: sp.VerifiedKey;
  readonly log: sp.VerifiedKey;
  readonly revocations: readonly sp.KeyRevocation[];
}

/** One of the account's devices, its record verified against the pinned directory. */
export interface VerifiedDevice {
  readonly key: sp.VerifiedKey;
  /** When the directory issued it (ms since the epoch): the record's notBefore. */
  readonly addedAtMs: bigint;
  /** When it was revoked (ms), or undefined while it may sign in. */
  readonly revokedAtMs: bigint | undefined;
}

/** What a message this device sealed must match in the gateway's receipt. */
export interface Expected {
  readonly messageId: Uint8Array;
  readonly envelopeDigest: Uint8Array;
  readonly sentEntry: sp.LogEntry;
}

export function nowMs(): bigint {
  return BigInt(Date.now());
}

function sameHex(a: Uint8Array, b: Uint8Array): boolean {
  return sp.toHex(a) === sp.toHex(b);
}

/** The calls the app makes, with the checks each answer needs. */
export class Port {
  readonly relative: Client<typeof RelativeService>;
  readonly audit: Client<typeof AuditService>;
  /** The session token sent with every call that takes one. */
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
      defaultTimeoutMs: 60_000,
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
   * Register new device keys (6.1): as a new account, or with `linkCode` (6.1.1) as another
   * device of the account that made the code. Check the record the gateway issued (6.4): a
   * device record under the pinned directory, for exactly these keys, whose subject is the
   * account id answered.
   */
  async register(
    keys: sp.PrivateKeys,
    displayName: string,
    pin: sp.DirectoryPin,
    linkCode = "",
  ): Promise<{ accountId: string; record: sp.KeyRecord; verified: sp.VerifiedKey }> {
    const name = displayName.trim().normalize("NFC");
    const proof = sp.signRegistration(keys, sp.KeyPurpose.RELATIVE_DEVICE, name);
    const trust = await this.trust(pin); // before any key leaves: a wrong pin stops here
    const reply = await this.relative.registerDevice({
      displayName: name,
      encryptionKey: keys.encryptionKey,
      signingKey: keys.signingKey,
      proof,
      linkCode,
    });
    if (reply.keyRecord === undefined)
      throw new sp.KeyRecordError("the gateway issued no key record");
    const verified = this.deviceRecord(reply.keyRecord, trust, nowMs());
    if (
      !sameHex(verified.signingKey, keys.signingKey) ||
      !sameHex(verified.encryptionKey, keys.encryptionKey)
    ) {
      throw new sp.KeyRecordError("the gateway issued a record for other keys");
    }
    sp.expectSubject(verified, reply.accountId);
    return { accountId: reply.accountId, record: reply.keyRecord, verified };
  }

  /** This device's own key record, verified against the directory at `atMs`. */
  deviceRecord(record: sp.KeyRecord, trust: Trust, atMs: bigint): sp.VerifiedKey {
    return sp.verifyKeyRecord(record, trust.directory, {
      nowMs: atMs,
      revocations: trust.revocations,
      purpose: sp.KeyPurpose.RELATIVE_DEVICE,
    });
  }

  /**
   * ListDevices, each record verified against the directory at its own notBefore (a revoked
   * or expired device is listed too, so it is not judged now) and bound to `accountId`.
   */
  async devices(trust: Trust, accountId: string): Promise<VerifiedDevice[]> {
    const { devices } = await this.relative.listDevices({});
    return devices.map((device) => {
      if (device.keyRecord === undefined) throw new sp.KeyRecordError("a device without a record");
      // Read only to learn the time to check at; verifyKeyRecord reads the body strictly.
      const { notBefore } = fromBinary(KeyRecordBodySchema, device.keyRecord.body);
      const key = sp.verifyKeyRecord(device.keyRecord, trust.directory, {
        nowMs: notBefore * 1000n,
        purpose: sp.KeyPurpose.RELATIVE_DEVICE,
      });
      sp.expectSubject(key, accountId);
      const revoked = device.revokedAt;
      return {
        key,
        addedAtMs: key.notBefore * 1000n,
        revokedAtMs:
          revoked === undefined
            ? undefined
            : revoked.seconds * 1000n + BigInt(Math.floor(revoked.nanos / 1e6)),
      };
    });
  }

  /** Sign a fresh challenge with the device key (6.2) and keep the session token. */
  async login(bundle: sp.KeyBundle): Promise<bigint> {
    this.token = undefined;
    const { challenge } = await this.relative.createChallenge({ keyId: bundle.keyId });
    const signature = sp.signLogin(bundle.keys, bundle.keyId, challenge);
    const reply = await this.relative.login({ keyId: bundle.keyId, challenge, signature });
    if (reply.accountId !== "" && reply.accountId !== bundle.accountId) {
      throw new sp.KeyRecordError("signed in to another account than this device's");
    }
    this.token = reply.accessToken;
    const expires = reply.expiresAt;
    return expires === undefined ? 0n : expires.seconds * 1000n;
  }

  async contacts(): Promise<Contact[]> {
    return (await this.relative.listContacts({})).contacts;
  }

  /** A contact's mailbox key, verified against the directory with its detainee as subject. */
  mailbox(contact: Contact, trust: Trust): sp.VerifiedKey {
    if (contact.mailboxKey === undefined) {
      throw new sp.KeyRecordError("the contact has no mailbox key yet");
    }
    const mailbox = sp.verifyKeyRecord(contact.mailboxKey, trust.directory, {
      nowMs: nowMs(),
      revocations: trust.revocations,
      purpose: sp.KeyPurpose.MAILBOX,
    });
    sp.expectSubject(mailbox, contact.detaineeId);
    return mailbox;
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
    expected: Expected,
    trust: Trust,
  ): Promise<sp.VerifiedReceipt> {
    return sp.verifyReceipt(receipt, { ...expected, logKey: await this.logKeyFor(receipt, trust) });
  }

  /** GetReceiptProof, verified: the entry named at acceptance is in a signed head. */
  async proveReceipt(
    expected: Expected,
    trust: Trust,
  ): Promise<{ receipt: sp.Receipt; verified: sp.VerifiedReceipt }> {
    const { receipt } = await this.relative.getReceiptProof({ messageId: expected.messageId });
    if (receipt === undefined) throw new sp.ProofError("the gateway sent no receipt");
    return { receipt, verified: await this.verifyReceipt(receipt, expected, trust) };
  }

  /** The approved contacts' detainee ids: replies from anyone else are refused. */
  async approvedDetainees(): Promise<Set<string>> {
    const contacts = await this.contacts();
    return new Set(
      contacts.filter((c) => c.status === ContactStatus.APPROVED).map((c) => c.detaineeId),
    );
  }

  /** Replies after `afterCursor`, as the gateway streams them; not yet verified. */
  inbox(afterCursor: string): AsyncIterable<StreamInboxResponse> {
    return this.relative.streamInbox({ afterCursor, follow: false });
  }
}

/**
 * Verify and open one reply (7.10, 7.11): the sender's mailbox record verified at the
 * reply's acceptance time (5.6), its subject the reply's detainee, who must be one of
 * `approved`. Throws unless every check passes; no plaintext comes out otherwise.
 */
export function openReply(
  item: {
    envelope: sp.Envelope;
    senderKey: sp.KeyRecord;
    detaineeId: string;
    acceptedAtMs: bigint;
  },
  bundle: sp.KeyBundle,
  trust: Trust,
  approved: ReadonlySet<string>,
): sp.OpenedMessage {
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
  return sp.openEnvelope(item.envelope, bundle.keys, bundle.keyId, sender, { nowMs: when });
}
