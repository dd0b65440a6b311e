// Every language has exactly the Dutch catalogue's keys, each with the same placeholders;
// every key the code names exists; the review notice is complete in every language.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";

import { TYPE, parse, type MessageFormatElement } from "@formatjs/icu-messageformat-parser";

import { LANGUAGES } from "../src/i18n.js";
import { APP, readCatalogue } from "./helpers.js";

/** The names of a message's arguments, at any depth (plural and select branches included). */
function placeholders(
  elements: readonly MessageFormatElement[],
  into = new Set<string>(),
): Set<string> {
  for (const element of elements) {
    switch (element.type) {
      case TYPE.argument:
      case TYPE.number:
      case TYPE.date:
      case TYPE.time:
        into.add(element.value);
        break;
      case TYPE.plural:
      case TYPE.select:
        into.add(element.value);
        for (const option of Object.values(element.options)) placeholders(option.value, into);
        break;
      case TYPE.tag:
        placeholders(element.children, into);
        break;
      default:
        break;
    }
  }
  return into;
}

const source = readCatalogue("nl");

describe("message catalogues", () => {
  test("there is one catalogue per language, and no other", () => {
    const files = readdirSync(join(APP, "messages")).filter((name) => name.endsWith(".json"));
    assert.deepEqual(files.sort(), LANGUAGES.map((l) => `${l}.json`).sort());
  });

  for (const language of LANGUAGES) {
    test(`${language}: the keys of the Dutch source, no more, no fewer`, () => {
      const catalogue = readCatalogue(language);
      const missing = Object.keys(source).filter((key) => !(key in catalogue));
      const extra = Object.keys(catalogue).filter((key) => !(key in source));
      assert.deepEqual(missing, [], `${language} lacks keys`);
      assert.deepEqual(extra, [], `${language} has keys the Dutch source does not`);
    });

    test(`${language}: every message parses and has the source's placeholders`, () => {
      const catalogue = readCatalogue(language);
      for (const [key, text] of Object.entries(catalogue)) {
        assert.ok(text.trim() !== "", `${language} ${key} is empty`);
        const expected = [...placeholders(parse(source[key] ?? ""))].sort();
        const found = [...placeholders(parse(text))].sort();
        assert.deepEqual(found, expected, `${language} ${key}: placeholders differ`);
      }
    });

    test(`${language}: the review notice is complete`, () => {
      const catalogue = readCatalogue(language);
      for (const key of ["notice.intro", "notice.review", "notice.log", "notice.privileged"]) {
        assert.ok((catalogue[key] ?? "").length > 20, `${language} ${key}`);
      }
      assert.match(catalogue["notice.review"] ?? "", /36/, "names article 36");
      assert.match(catalogue["notice.review"] ?? "", /Penitentiaire beginselenwet/);
    });
  }

  test("every key the code names is in the source catalogue", () => {
    const named = new Set<string>();
    const walk = (folder: string): void => {
      for (const entry of readdirSync(folder, { withFileTypes: true })) {
        const path = join(folder, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.name.endsWith(".ts")) {
          const code = readFileSync(path, "utf8");
          for (const match of code.matchAll(
            /"((?:error|file|notice|signup|unlock|contacts?|request|compose|history|message|account|nav|app|footer|inbox|privileged|size|language)\.[A-Za-z.]+)"/g,
          )) {
            if (match[1] !== undefined) named.add(match[1]);
          }
        }
      }
    };
    walk(join(APP, "src"));
    assert.ok(named.size > 100, `found only ${String(named.size)} keys in the code`);
    const missing = [...named].filter((key) => !(key in source));
    assert.deepEqual(missing, []);
  });
});
