/**
 * Every failure a person may see, mapped to one catalogue key in one table: the
 * protocol library's errors by class (most specific first), the gateway's answers by
 * their Connect code (for a few calls a code means something more exact: OPERATION_ERRORS),
 * and the app's own refusals (AppError). Nothing else decides what a failure is called;
 * the UI shows `t(errorKey(error))`.
 */

import { Code, ConnectError } from "@connectrpc/connect";
import * as sp from "@sealpost/protocol";

/** A refusal of the app's own, already named by its catalogue key. */
export class AppError extends Error {
  constructor(
    readonly key: string,
    readonly values: Readonly<Record<string, string | number>> = {},
  ) {
    super(key);
    this.name = "AppError";
  }
}

type ErrorClass = abstract new (...args: never[]) => Error;

/** The library's errors, most specific first: the first class that matches names it. */
export const LIBRARY_ERRORS: readonly (readonly [ErrorClass, string])[] = [
  [sp.WeakPassphraseError, "error.weakPassphrase"],
  [sp.VersionTooNewError, "error.updateApp"],
  [sp.ProofError, "error.proof"],
  [sp.LimitError, "error.limit"],
  [sp.KeyRecordError, "error.keyRecord"],
  [sp.DecryptionError, "error.verification"],
  [sp.SignatureError, "error.verification"],
  [sp.EnvelopeError, "error.verification"],
  [sp.FormatError, "error.verification"],
  [sp.CryptoError, "error.verification"],
];

/** The gateway's answers by Connect code (docs/gateway.md, the error table). */
export const CONNECT_ERRORS: ReadonlyMap<Code, string> = new Map([
  [Code.Unauthenticated, "error.unauthenticated"],
  [Code.PermissionDenied, "error.permission"],
  [Code.FailedPrecondition, "error.notApproved"],
  [Code.NotFound, "error.notFound"],
  [Code.InvalidArgument, "error.invalid"],
  [Code.AlreadyExists, "error.exists"],
  [Code.ResourceExhausted, "error.tooMuch"],
  [Code.Unavailable, "error.offline"],
  [Code.DeadlineExceeded, "error.offline"],
  [Code.Canceled, "error.offline"],
]);

/** The calls whose answers say something more exact than the code alone. */
export type Operation = "registerWithLink" | "setNotifications" | "revokeDevice";

/**
 * A Connect code from one call, named more exactly than CONNECT_ERRORS does: a link code
 * refused is one answer for wrong, used, expired or another account's (protocol.md 6.1.1);
 * an address refused is the address's fault; a device already revoked is not a contact.
 */
export const OPERATION_ERRORS: ReadonlyMap<Operation, ReadonlyMap<Code, string>> = new Map<
  Operation,
  ReadonlyMap<Code, string>
>([
  ["registerWithLink", new Map([[Code.PermissionDenied, "error.linkCode"]])],
  ["setNotifications", new Map([[Code.InvalidArgument, "error.email"]])],
  [
    "revokeDevice",
    new Map<Code, string>([
      [Code.FailedPrecondition, "error.alreadyRevoked"],
      [Code.NotFound, "error.noSuchDevice"],
    ]),
  ],
]);

/** The error a call failed with, as an AppError when OPERATION_ERRORS names its code. */
export function during(operation: Operation, error: unknown): unknown {
  if (!(error instanceof ConnectError)) return error;
  const key = OPERATION_ERRORS.get(operation)?.get(error.code);
  return key === undefined ? error : new AppError(key);
}

/** The catalogue key that explains `error` to a person. */
export function errorKey(error: unknown): string {
  if (error instanceof AppError) return error.key;
  if (error instanceof ConnectError) {
    // fetch failing (no network, the server gone) reaches Connect as "unknown" with a TypeError.
    if (error.code === Code.Unknown && error.cause instanceof TypeError) return "error.offline";
    return CONNECT_ERRORS.get(error.code) ?? "error.unexpected";
  }
  for (const [kind, key] of LIBRARY_ERRORS) {
    if (error instanceof kind) return key;
  }
  if (error instanceof TypeError && /fetch|network/i.test(error.message)) return "error.offline";
  return "error.unexpected";
}

/** The values the key's message needs (an AppError's), or none. */
export function errorValues(error: unknown): Readonly<Record<string, string | number>> {
  return error instanceof AppError ? error.values : {};
}
