/**
 * The relative's session: the app's logic over the protocol library, the gateway's port and
 * the local store, with no DOM. It makes and seals keys, signs in and renews the session,
 * gates the first message to each contact behind the review notice, seals and sends,
 * proves receipts, follows delivery, fetches, verifies, keeps and acknowledges replies, and
 * reopens the history from the envelopes it keeps; it links, lists and revokes the account's
 * devices and sets the notices by e-mail. The UI calls it and shows what it returns.
 */

import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import * as sp from "@sealpost/protocol";
import { ContactStatus, DeliveryStatus, WithholdReason } from "@sealpost/protocol/gen/common_pb";
import { KeyRecordSchema } from "@sealpost/protocol/gen/keys_pb";
import { LogEntrySchema, ReceiptSchema } from "@sealpost/protocol/gen/log_pb";
import type { Contact, StreamInboxResponse } from "@sealpost/protocol/gen/relative_pb";

import { AppError, during } from "./errors.js";
import { SNIFF_BYTES, checkFile, checkMessage, maxFileBytes, typeFromName } from "./files.js";
import { nowMs, openReply, type Expected, type Port, type Trust } from "./port.js";
import type { HistoryRecord, ReceivedRecord, SentRecord, Store } from "./store.js";

export { ContactStatus, DeliveryStatus, WithholdReason };

/** The calls of the port a session uses: a test may give a fake. */
export type Gateway = Pick<
  Port,
  | "trust"
  | "register"
  | "deviceRecord"
  | "devices"
  | "login"
  | "contacts"
  | "mailbox"
  | "verifyReceipt"
  | "proveReceipt"
  | "approvedDetainees"
  | "inbox"
  | "relative"
>;

/** A contact as the app shows it. */
export interface ContactView {
  readonly detaineeId: string;
  readonly status: ContactStatus;
  /** The gateway's word that this account is a verified privileged correspondent. */
  readonly privileged: boolean;
  /** Approved, and the detainee's mailbox is open. */
  readonly deliverable: boolean;
  /** When the review notice was acknowledged for this contact, if it was. */
  readonly noticeAcknowledgedAtMs: number | undefined;
}

/** A file to send. */
export interface OutgoingFile {
  readonly name: string;
  readonly data: Uint8Array;
}

/** An attachment of a message in the history. */
export interface ShownAttachment {
  readonly name: string;
  readonly contentType: string;
  readonly data: Uint8Array;
}

/** A message of the history, opened on this device. */
export interface MessageView {
  readonly id: string;
  readonly direction: "sent" | "received";
  readonly detaineeId: string;
  readonly atMs: bigint;
  /** Undefined when the envelope did not open or verify (then `error` names why). */
  readonly text: string | undefined;
  readonly attachments: readonly ShownAttachment[];
  readonly error: unknown;
  /** Sent messages: the delivery status and whether the receipt is proven from the log. */
  readonly status: DeliveryStatus | undefined;
  /**
   * Sent messages not delivered: the withholding's reason category where the detainee's
   * regime told it, else UNSPECIFIED. Never the screener's note: the gateway has none to give.
   */
  readonly withholdReason: WithholdReason;
  readonly proven: boolean;
}

/** What a send came to. */
export interface SendResult {
  readonly id: string;
  readonly acceptedAtMs: bigint;
  readonly leafIndex: bigint;
  /** True when the receipt's inclusion proof verified; else `proofError` says why not. */
  readonly proven: boolean;
  readonly proofError: unknown;
}

/** One of the account's devices as the app shows it. */
export interface DeviceView {
  /** Hex id of the device's key record. */
  readonly keyId: string;
  readonly addedAtMs: bigint;
  readonly revokedAtMs: bigint | undefined;
  /** The device this session runs on. */
  readonly thisDevice: boolean;
  /** The name this device signed up with; the gateway keeps no name per device. */
  readonly name: string | undefined;
}

/** A one-time code for another device of this account (protocol.md 6.1.1). */
export interface DeviceLink {
  /** Sixteen characters in groups of four, as the gateway gave it. */
  readonly code: string;
  readonly expiresAtMs: bigint;
}

/** The address told when there is news, and the language it is told in. */
export interface NotificationSetting {
  /** Empty when none is set. */
  readonly email: string;
  readonly language: string;
}

/** Renew the session this long before the token runs out (tokens last 15 minutes). */
const RENEW_BEFORE_MS = 60_000n;

interface Unlocked {
  readonly bundle: sp.KeyBundle;
  readonly keyRecord: sp.KeyRecord;
  trust: Trust;
  expiresAtMs: bigint;
}

export class Session {
  #unlocked: Unlocked | undefined;

  constructor(
    private readonly store: Store,
    private readonly gateway: Gateway,
    /** The directory key this deployment publishes (deployment.json). */
    private readonly pin: sp.DirectoryPin,
    /** Milliseconds since the epoch; injected so that tests choose the time. */
    private readonly clock: () => bigint = nowMs,
  ) {}

  async hasDevice(): Promise<boolean> {
    return (await this.store.device()) !== undefined;
  }

  get unlocked(): boolean {
    return this.#unlocked !== undefined;
  }

  get accountId(): string {
    return this.#state().bundle.accountId;
  }

  #state(): Unlocked {
    if (this.#unlocked === undefined) throw new AppError("error.locked");
    return this.#unlocked;
  }

  /**
   * Make keys on this device, register them, and keep them sealed under the passphrase.
   * With `linkCode` (from another device of the account) this device joins that account;
   * without it, the registration makes a new account.
   */
  async register(displayName: string, passphrase: string, linkCode?: string): Promise<void> {
    if (await this.hasDevice()) throw new AppError("error.deviceExists");
    if (displayName.trim() === "") throw new AppError("error.nameRequired");
    const code = linkCode?.trim();
    if (code === "") throw new AppError("error.linkCodeRequired");
    sp.checkNewPassphrase(passphrase); // before any key is made or anything is sent
    const keys = sp.PrivateKeys.generate();
    let registered: Awaited<ReturnType<Gateway["register"]>>;
    try {
      registered = await this.gateway.register(keys, displayName, this.pin, code);
    } catch (error) {
      throw code === undefined ? error : during("registerWithLink", error);
    }
    const { accountId, record, verified } = registered;
    const bundle: sp.KeyBundle = { keys, keyId: verified.id, accountId, directoryPin: this.pin };
    await this.store.saveDevice({
      bundle: sp.sealKeyBundle(bundle, passphrase),
      keyRecord: toBinary(KeyRecordSchema, record),
      displayName: displayName.trim(),
    });
    await this.#begin(bundle, record);
  }

  /** Open the sealed key bundle with the passphrase and sign in. */
  async unlock(passphrase: string): Promise<void> {
    const device = await this.store.device();
    if (device === undefined) throw new AppError("error.noDevice");
    let bundle: sp.KeyBundle;
    try {
      bundle = sp.openKeyBundle(device.bundle, passphrase);
    } catch (error) {
      if (error instanceof sp.DecryptionError) throw new AppError("error.wrongPassphrase");
      throw error;
    }
    // The pin sealed in the bundle is the one this device trusts; the deployment must agree.
    if (sp.toHex(bundle.directoryPin.signingKey) !== sp.toHex(this.pin.signingKey)) {
      throw new AppError("error.pinChanged");
    }
    await this.#begin(bundle, fromBinary(KeyRecordSchema, device.keyRecord));
  }

  async #begin(bundle: sp.KeyBundle, keyRecord: sp.KeyRecord): Promise<void> {
    const trust = await this.gateway.trust(bundle.directoryPin);
    // Revoked from another device (or this one): said as such, not as a broken key.
    for (const revocation of trust.revocations) {
      const revoked = sp.verifyRevocation(revocation, trust.directory);
      if (
        sp.toHex(revoked.keyId) === sp.toHex(bundle.keyId) &&
        revoked.revokedAt * 1000n <= this.clock()
      ) {
        throw new AppError("error.deviceRevoked");
      }
    }
    this.gateway.deviceRecord(keyRecord, trust, this.clock()); // still valid and not revoked
    const expiresAtMs = await this.gateway.login(bundle);
    this.#unlocked = { bundle, keyRecord, trust, expiresAtMs };
  }

  /** Forget the keys and the session token; the sealed bundle stays for the next unlock. */
  signOut(): void {
    this.#unlocked = undefined;
    (this.gateway as { token?: string | undefined }).token = undefined;
  }

  /** Sign out and remove everything the app keeps on this device. */
  async deleteAll(): Promise<void> {
    this.signOut();
    await this.store.clear();
  }

  /** Run a call with a fresh session token; sign in again once if the gateway refuses it. */
  async #call<T>(call: () => Promise<T>): Promise<T> {
    const state = this.#state();
    if (this.clock() > state.expiresAtMs - RENEW_BEFORE_MS) {
      state.expiresAtMs = await this.gateway.login(state.bundle);
    }
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof ConnectError) || error.code !== Code.Unauthenticated) throw error;
      state.expiresAtMs = await this.gateway.login(state.bundle);
      return call();
    }
  }

  async contacts(): Promise<ContactView[]> {
    const contacts = await this.#call(() => this.gateway.contacts());
    return Promise.all(contacts.map((contact) => this.#view(contact)));
  }

  async #view(contact: Contact): Promise<ContactView> {
    return {
      detaineeId: contact.detaineeId,
      status: contact.status,
      privileged: contact.privileged,
      deliverable: contact.deliverable,
      noticeAcknowledgedAtMs: await this.store.noticeAcknowledged(contact.detaineeId),
    };
  }

  /** Ask for contact with the id the detainee gave. */
  async requestContact(detaineeId: string, relationship: string): Promise<ContactView> {
    const id = detaineeId.trim();
    if (id === "") throw new AppError("error.detaineeIdRequired");
    const reply = await this.#call(() =>
      this.gateway.relative.requestContact({ detaineeId: id, relationship: relationship.trim() }),
    );
    if (reply.contact === undefined) throw new sp.FormatError("the gateway sent no contact");
    return this.#view(reply.contact);
  }

  /** A one-time code with which another device joins this account, for ten minutes. */
  async linkDevice(): Promise<DeviceLink> {
    const reply = await this.#call(() => this.gateway.relative.createDeviceLink({}));
    if (reply.code === "" || reply.expiresAt === undefined) {
      throw new sp.FormatError("the gateway sent no link code");
    }
    return { code: reply.code, expiresAtMs: reply.expiresAt.seconds * 1000n };
  }

  /** The account's devices, oldest first, each record verified against the pinned directory. */
  async devices(): Promise<DeviceView[]> {
    const state = this.#state();
    const trust = await this.gateway.trust(state.bundle.directoryPin);
    state.trust = trust;
    const devices = await this.#call(() => this.gateway.devices(trust, state.bundle.accountId));
    const own = sp.toHex(state.bundle.keyId);
    const name = (await this.store.device())?.displayName;
    return devices.map((device) => {
      const keyId = sp.toHex(device.key.id);
      return {
        keyId,
        addedAtMs: device.addedAtMs,
        revokedAtMs: device.revokedAtMs,
        thisDevice: keyId === own,
        name: keyId === own ? name : undefined,
      };
    });
  }

  /**
   * Revoke one of the account's devices: it can no longer sign in, and no reply is sealed
   * to it any more. Revoking this device signs it out; returns whether it did.
   */
  async revokeDevice(keyId: string): Promise<boolean> {
    const own = keyId === sp.toHex(this.#state().bundle.keyId);
    try {
      await this.#call(() => this.gateway.relative.revokeDevice({ keyId: sp.fromHex(keyId) }));
    } catch (error) {
      throw during("revokeDevice", error);
    }
    if (own) this.signOut();
    return own;
  }

  /** The address told when there is news, if any. */
  async notifications(): Promise<NotificationSetting> {
    const reply = await this.#call(() => this.gateway.relative.getNotifications({}));
    return { email: reply.email, language: reply.language };
  }

  /** Be told at `email`, in `language`, when there is news (never who or what). */
  async setNotifications(email: string, language: string): Promise<void> {
    const address = email.trim();
    if (address === "") throw new AppError("error.emailRequired");
    try {
      await this.#call(() => this.gateway.relative.setNotifications({ email: address, language }));
    } catch (error) {
      throw during("setNotifications", error);
    }
  }

  /** Stop the notices: the gateway deletes the address. */
  async removeNotifications(): Promise<void> {
    await this.#call(() => this.gateway.relative.setNotifications({ email: "", language: "" }));
  }

  /** Record that the person read the review notice for this contact. */
  async acknowledgeNotice(detaineeId: string): Promise<void> {
    await this.store.acknowledgeNotice(detaineeId, Number(this.clock()));
  }

  /**
   * Seal and send a message, then prove its receipt from the log. Refused before anything
   * is sealed when the notice was not acknowledged for this contact, a file is not a photo
   * or PDF of the type its name says, or the message is too large.
   */
  async send(
    detaineeId: string,
    text: string,
    files: readonly OutgoingFile[],
  ): Promise<SendResult> {
    const state = this.#state();
    if ((await this.store.noticeAcknowledged(detaineeId)) === undefined) {
      throw new AppError("error.noticeFirst");
    }
    const parts = [sp.textPart(text)];
    for (const file of files) {
      const problem = checkFile({
        name: file.name,
        size: file.data.length,
        head: file.data.slice(0, SNIFF_BYTES),
      });
      if (problem !== undefined) {
        throw new AppError(problem, { name: file.name, max: maxFileBytes(file.name) });
      }
      parts.push(new sp.Part(typeFromName(file.name) ?? "", file.data, file.name));
    }
    const problem = checkMessage(
      text,
      files.map((f) => ({ name: f.name, size: f.data.length })),
    );
    if (problem !== undefined) throw new AppError(problem, { name: "", max: 0 });
    if (text.trim() === "" && files.length === 0) throw new AppError("error.emptyMessage");

    const contacts = await this.#call(() => this.gateway.contacts());
    const contact = contacts.find((c) => c.detaineeId === detaineeId);
    if (contact?.status !== ContactStatus.APPROVED) throw new AppError("error.notApproved");
    if (!contact.deliverable) throw new AppError("error.mailboxClosed");
    const trust = await this.gateway.trust(state.bundle.directoryPin);
    state.trust = trust;
    const mailbox = this.gateway.mailbox(contact, trust);
    const envelope = sp.sealEnvelope(parts, {
      senderKeys: state.bundle.keys,
      senderKeyId: state.bundle.keyId,
      recipients: [mailbox],
      nowMs: this.clock(),
    });
    const messageId = sp.messageIdOf(envelope);
    const envelopeDigest = sp.envelopeDigest(envelope);
    const { receipt } = await this.#call(() => this.gateway.relative.sendMessage({ envelope }));
    if (receipt?.entry === undefined) throw new sp.ProofError("the gateway sent no receipt entry");
    if (
      sp.toHex(receipt.messageId) !== sp.toHex(messageId) ||
      sp.toHex(receipt.envelopeDigest) !== sp.toHex(envelopeDigest)
    ) {
      throw new sp.ProofError("the gateway acknowledged another envelope");
    }
    const id = sp.toHex(messageId);
    const record: SentRecord = {
      kind: "sent",
      id,
      detaineeId,
      envelope: sp.serializeEnvelope(envelope),
      envelopeDigest,
      acceptedEntry: toBinary(LogEntrySchema, receipt.entry),
      acceptedAtMs: receipt.acceptedAtMs,
      receipt: undefined,
      status: DeliveryStatus.PENDING,
    };
    await this.store.put(record); // accepted: kept before anything else can fail
    const expected: Expected = { messageId, envelopeDigest, sentEntry: receipt.entry };
    try {
      // The answer normally carries its head and proof; only without them ask for one.
      const proven =
        receipt.treeHead !== undefined && receipt.inclusionProof !== undefined
          ? { receipt, verified: await this.gateway.verifyReceipt(receipt, expected, trust) }
          : await this.#call(() => this.gateway.proveReceipt(expected, trust));
      await this.store.put({ ...record, receipt: toBinary(ReceiptSchema, proven.receipt) });
      return {
        id,
        acceptedAtMs: receipt.acceptedAtMs,
        leafIndex: proven.verified.leafIndex,
        proven: true,
        proofError: undefined,
      };
    } catch (error) {
      if (!(error instanceof sp.SealpostError) && !(error instanceof ConnectError)) throw error;
      return {
        id,
        acceptedAtMs: receipt.acceptedAtMs,
        leafIndex: receipt.entry.index,
        proven: false,
        proofError: error,
      };
    }
  }

  /**
   * Ask the gateway how each sent message stands that is not delivered yet, and prove any
   * receipt not proven yet. Returns how many changed. A message not delivered is asked
   * about again: a withholding released after a complaint moves on to delivery, and the
   * reason told with a withholding (if any) comes with its status.
   */
  async refreshSent(detaineeId?: string): Promise<number> {
    const state = this.#state();
    let changed = 0;
    for (const record of await this.store.history()) {
      if (record.kind !== "sent") continue;
      if (detaineeId !== undefined && record.detaineeId !== detaineeId) continue;
      let next: SentRecord = record;
      if (record.status !== DeliveryStatus.DELIVERED) {
        const messageId = sp.fromHex(record.id);
        const { status, withholdReason } = await this.#call(() =>
          this.gateway.relative.getMessageStatus({ messageId }),
        );
        // A reason only with "not delivered": a released message carries none.
        const reason =
          status === DeliveryStatus.NOT_DELIVERED ? withholdReason : WithholdReason.UNSPECIFIED;
        if (
          status !== record.status ||
          reason !== (record.withholdReason ?? WithholdReason.UNSPECIFIED)
        ) {
          next = { ...next, status, withholdReason: reason };
        }
      }
      if (record.receipt === undefined) {
        try {
          const proven = await this.#call(() =>
            this.gateway.proveReceipt(
              {
                messageId: sp.fromHex(record.id),
                envelopeDigest: record.envelopeDigest,
                sentEntry: fromBinary(LogEntrySchema, record.acceptedEntry),
              },
              state.trust,
            ),
          );
          next = { ...next, receipt: toBinary(ReceiptSchema, proven.receipt) };
        } catch (error) {
          if (!(error instanceof sp.SealpostError) && !(error instanceof ConnectError)) throw error;
        }
      }
      if (next !== record) {
        await this.store.put(next);
        changed += 1;
      }
    }
    return changed;
  }

  /**
   * Fetch new replies: each verified and opened on this device, kept (as its envelope),
   * acknowledged to the gateway, and only then passed by the cursor, so none is skipped
   * and none is kept twice. A reply that does not verify stops the fetch with its error.
   */
  async fetchInbox(): Promise<number> {
    const state = this.#state();
    const approved = await this.#call(() => this.gateway.approvedDetainees());
    const cursor = await this.store.cursor();
    const items: StreamInboxResponse[] = [];
    await this.#call(async () => {
      for await (const item of this.gateway.inbox(cursor)) items.push(item);
    });
    let count = 0;
    for (const item of items) {
      if (item.envelope === undefined || item.senderKey === undefined) {
        throw new sp.FormatError("an inbox item without its envelope or sender key");
      }
      const opened = openReply(
        {
          envelope: item.envelope,
          senderKey: item.senderKey,
          detaineeId: item.detaineeId,
          acceptedAtMs: item.acceptedAtMs,
        },
        state.bundle,
        state.trust,
        approved,
      );
      const record: ReceivedRecord = {
        kind: "received",
        id: sp.toHex(opened.header.messageId),
        detaineeId: item.detaineeId,
        envelope: sp.serializeEnvelope(item.envelope),
        senderKey: toBinary(KeyRecordSchema, item.senderKey),
        acceptedAtMs: item.acceptedAtMs,
        cursor: item.cursor,
      };
      await this.store.put(record);
      const messageId = opened.header.messageId;
      await this.#call(() => this.gateway.relative.acknowledgeMessage({ messageId }));
      await this.store.saveCursor(item.cursor);
      count += 1;
    }
    return count;
  }

  /** The messages with one contact, oldest first, each opened from its kept envelope. */
  async conversation(detaineeId: string): Promise<MessageView[]> {
    const records = (await this.store.history()).filter((r) => r.detaineeId === detaineeId);
    return records.map((record) => this.#open(record));
  }

  #open(record: HistoryRecord): MessageView {
    const state = this.#state();
    const base = {
      id: record.id,
      direction: record.kind,
      detaineeId: record.detaineeId,
      atMs: record.acceptedAtMs,
      status: record.kind === "sent" ? record.status : undefined,
      withholdReason:
        record.kind === "sent"
          ? (record.withholdReason ?? WithholdReason.UNSPECIFIED)
          : WithholdReason.UNSPECIFIED,
      proven: record.kind === "sent" && record.receipt !== undefined,
    };
    try {
      const envelope = sp.parseEnvelope(record.envelope);
      let opened: sp.OpenedMessage;
      if (record.kind === "sent") {
        // This device's own copy, verified as it was when sealed.
        const created = sp.parseHeader(envelope.header).createdAtMs;
        const own = this.gateway.deviceRecord(state.keyRecord, state.trust, created);
        opened = sp.openEnvelope(envelope, state.bundle.keys, state.bundle.keyId, own, {
          nowMs: created,
        });
      } else {
        opened = openReply(
          {
            envelope,
            senderKey: fromBinary(KeyRecordSchema, record.senderKey),
            detaineeId: record.detaineeId,
            acceptedAtMs: record.acceptedAtMs,
          },
          state.bundle,
          state.trust,
          new Set([record.detaineeId]),
        );
      }
      return {
        ...base,
        text: sp.messageText(opened.parts),
        attachments: sp.attachments(opened.parts).map((part) => ({
          name: part.filename,
          contentType: part.contentType,
          data: part.data,
        })),
        error: undefined,
      };
    } catch (error) {
      return { ...base, text: undefined, attachments: [], error };
    }
  }
}
