// The one table from failures to catalogue keys.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Code, ConnectError } from "@connectrpc/connect";
import * as sp from "@sealpost/protocol";

import {
  AppError,
  CONNECT_ERRORS,
  LIBRARY_ERRORS,
  OPERATION_ERRORS,
  during,
  errorKey,
  errorValues,
} from "../src/errors.js";
import { readCatalogue } from "./helpers.js";

const source = readCatalogue("nl");

describe("the error table", () => {
  test("the library's errors, most specific first", () => {
    assert.equal(errorKey(new sp.WeakPassphraseError("short")), "error.weakPassphrase");
    assert.equal(errorKey(new sp.VersionTooNewError("v2")), "error.updateApp");
    assert.equal(errorKey(new sp.VersionTooOldError("v0")), "error.verification");
    assert.equal(errorKey(new sp.ForkError("fork")), "error.proof");
    assert.equal(errorKey(new sp.RollbackError("back")), "error.proof");
    assert.equal(errorKey(new sp.ProofError("proof")), "error.proof");
    assert.equal(errorKey(new sp.KeyRecordError("expired")), "error.keyRecord");
    assert.equal(errorKey(new sp.LimitError("big")), "error.limit");
    assert.equal(errorKey(new sp.DecryptionError("no")), "error.verification");
    assert.equal(errorKey(new sp.SignatureError("no")), "error.verification");
  });

  test("the gateway's answers by Connect code", () => {
    assert.equal(errorKey(new ConnectError("x", Code.Unauthenticated)), "error.unauthenticated");
    assert.equal(errorKey(new ConnectError("x", Code.FailedPrecondition)), "error.notApproved");
    assert.equal(errorKey(new ConnectError("x", Code.ResourceExhausted)), "error.tooMuch");
    assert.equal(errorKey(new ConnectError("x", Code.Unavailable)), "error.offline");
    assert.equal(errorKey(new ConnectError("x", Code.Internal)), "error.unexpected");
  });

  test("some calls name a code more exactly; the rest fall back to the code's row", () => {
    const denied = new ConnectError("x", Code.PermissionDenied);
    assert.equal(errorKey(during("registerWithLink", denied)), "error.linkCode");
    assert.equal(errorKey(denied), "error.permission");
    const invalid = new ConnectError("x", Code.InvalidArgument);
    assert.equal(errorKey(during("setNotifications", invalid)), "error.email");
    assert.equal(errorKey(during("registerWithLink", invalid)), "error.invalid");
    assert.equal(
      errorKey(during("revokeDevice", new ConnectError("x", Code.FailedPrecondition))),
      "error.alreadyRevoked",
    );
    assert.equal(
      errorKey(during("revokeDevice", new ConnectError("x", Code.NotFound))),
      "error.noSuchDevice",
    );
    const offline = new ConnectError("x", Code.Unavailable);
    assert.equal(during("registerWithLink", offline), offline);
    const library = new sp.KeyRecordError("revoked");
    assert.equal(during("revokeDevice", library), library);
  });

  test("a failed fetch is 'no connection'", () => {
    const cause = new TypeError("Failed to fetch");
    assert.equal(
      errorKey(new ConnectError("x", Code.Unknown, undefined, undefined, cause)),
      "error.offline",
    );
    assert.equal(errorKey(cause), "error.offline");
  });

  test("the app's own refusals keep their key and values", () => {
    const error = new AppError("file.tooLarge", { name: "a.jpg", max: 3 });
    assert.equal(errorKey(error), "file.tooLarge");
    assert.deepEqual(errorValues(error), { name: "a.jpg", max: 3 });
    assert.equal(errorKey(new Error("anything")), "error.unexpected");
    assert.equal(errorKey("not even an error"), "error.unexpected");
  });

  test("every key the table names is in the catalogue", () => {
    const keys = [
      ...LIBRARY_ERRORS.map(([, key]) => key),
      ...CONNECT_ERRORS.values(),
      ...[...OPERATION_ERRORS.values()].flatMap((codes) => [...codes.values()]),
      "error.unexpected",
      "error.offline",
    ];
    for (const key of keys) assert.ok(key in source, key);
  });
});
