// Language choice, direction, formatting in Amsterdam time, plurals and sizes.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Translator, direction, pickLanguage, type Language } from "../src/i18n.js";
import { readCatalogue } from "./helpers.js";

const translator = (language: Language): Translator =>
  new Translator(language, readCatalogue(language));

describe("choosing the language", () => {
  test("a choice made before wins over the browser's", () => {
    assert.equal(pickLanguage("tr", ["pl-PL", "en"]), "tr");
  });

  test("else the first of the browser's languages the app has, by its base", () => {
    assert.equal(pickLanguage(null, ["de-DE", "ar-MA", "en"]), "ar");
    assert.equal(pickLanguage(null, ["EN-gb"]), "en");
  });

  test("else Dutch; an unknown stored value is ignored", () => {
    assert.equal(pickLanguage(null, ["de", "fr"]), "nl");
    assert.equal(pickLanguage("xx", []), "nl");
  });

  test("Arabic is right to left, the others left to right", () => {
    assert.equal(direction("ar"), "rtl");
    for (const language of ["nl", "en", "tr", "pl"] as const)
      assert.equal(direction(language), "ltr");
  });
});

describe("formatting", () => {
  test("times are shown in Amsterdam time, summer and winter", () => {
    const t = translator("nl");
    // 10:00 UTC is 12:00 in July (CEST) and 11:00 in January (CET).
    assert.match(t.dateTime(Date.UTC(2026, 6, 1, 10, 0)), /12:00/);
    assert.match(t.dateTime(Date.UTC(2026, 0, 15, 10, 0)), /11:00/);
    assert.match(translator("en").dateTime(Date.UTC(2026, 6, 1, 10, 0)), /12:00|PM/);
  });

  test("plurals follow each language's rules", () => {
    assert.equal(translator("en").t("inbox.new", { count: 1 }), "1 new reply fetched and checked.");
    assert.equal(
      translator("en").t("inbox.new", { count: 3 }),
      "3 new replies fetched and checked.",
    );
    assert.match(translator("pl").t("inbox.new", { count: 2 }), /2 nowe odpowiedzi/);
    assert.match(translator("pl").t("inbox.new", { count: 5 }), /5 nowych odpowiedzi/);
    assert.match(translator("ar").t("inbox.new", { count: 2 }), /ردّين/);
  });

  test("sizes in the language's number format", () => {
    assert.equal(translator("nl").size(1536 * 1024), "1,5 MB");
    assert.equal(translator("en").size(1536 * 1024), "1.5 MB");
    assert.equal(translator("en").size(900), "900 B");
    assert.equal(translator("en").size(2048), "2 kB");
  });

  test("placeholders are filled, text isolated from the sentence's direction; a missing key shows itself", () => {
    const t = translator("en");
    assert.equal(t.t("contact.title", { id: "d-1001" }), "Contact \u2068d-1001\u2069");
    assert.equal(t.t("no.such.key"), "no.such.key");
  });
});
