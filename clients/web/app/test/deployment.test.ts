// deployment.json: the pin is 64 hex digits; the API is the page's own origin by default.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { parseDeployment } from "../src/deployment.js";

const PIN = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";

describe("deployment.json", () => {
  test("the pin and version are read; the API is the same origin", () => {
    const d = parseDeployment(
      JSON.stringify({ directoryPin: PIN, version: "1.2" }),
      "https://post.example.nl",
    );
    assert.equal(d.apiBaseUrl, "https://post.example.nl");
    assert.equal(d.version, "1.2");
    assert.equal(d.directoryPin.length, 32);
    assert.equal(d.directoryPin[0], 0x3d);
    assert.equal(d.directoryPin[31], 0x0c);
  });

  test("a pin that is not 64 lower-case hex digits is refused", () => {
    for (const pin of [PIN.slice(2), PIN.toUpperCase(), `${PIN}00`, "", 42]) {
      assert.throws(
        () => parseDeployment(JSON.stringify({ directoryPin: pin }), "https://a"),
        /directoryPin/,
      );
    }
    assert.throws(() => parseDeployment("null", "https://a"), /not an object/);
  });

  test("an API origin for local trials must be an origin, nothing more", () => {
    const d = parseDeployment(
      JSON.stringify({ directoryPin: PIN, apiBaseUrl: "https://127.0.0.1:50053" }),
      "http://127.0.0.1:8080",
    );
    assert.equal(d.apiBaseUrl, "https://127.0.0.1:50053");
    assert.throws(
      () =>
        parseDeployment(
          JSON.stringify({ directoryPin: PIN, apiBaseUrl: "javascript:alert(1)" }),
          "https://a",
        ),
      /apiBaseUrl/,
    );
    assert.throws(
      () =>
        parseDeployment(
          JSON.stringify({ directoryPin: PIN, apiBaseUrl: "https://a/path" }),
          "https://a",
        ),
      /apiBaseUrl/,
    );
  });
});
