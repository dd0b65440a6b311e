// The words for a sent message's delivery: "not delivered" with the reason category only
// where the gateway told one, in plain words and with how to respond, in every language;
// without a reason "withheld after review" and no details; never a reason with another status.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { fromBinary } from "@bufbuild/protobuf";
import { DeliveryStatus, WithholdReason } from "@sealpost/protocol/gen/common_pb";
import { GetMessageStatusResponseSchema } from "@sealpost/protocol/gen/relative_pb";

import { REASON_KEYS, deliveryWords } from "../src/delivery.js";
import { LANGUAGES, Translator, type Language } from "../src/i18n.js";
import { readCatalogue } from "./helpers.js";

const translator = (language: Language): Translator =>
  new Translator(language, readCatalogue(language));

/** A value as the translator places it: isolated from the sentence's direction. */
const isolated = (text: string): string => `\u2068${text}\u2069`;

const REASONS = [
  WithholdReason.ORDER_AND_SECURITY,
  WithholdReason.PUBLIC_ORDER,
  WithholdReason.CRIME_PREVENTION,
  WithholdReason.VICTIM_PROTECTION,
] as const;

/** Per language: "withheld after review", the complaint, asking the institution. */
const SAYS: Readonly<Record<Language, { withheld: RegExp; complain: RegExp; ask: RegExp }>> = {
  nl: { withheld: /na controle tegengehouden/i, complain: /klachtenprocedure/, ask: /inrichting/ },
  en: {
    withheld: /withheld after review/i,
    complain: /complaints procedure/,
    ask: /ask the institution/,
  },
  ar: { withheld: /حُجِبت .*بعد المراجعة/, complain: /شكوى/, ask: /تسأل المؤسسة/ },
  tr: { withheld: /[İi]nceleme sonucunda alıkonuldu/, complain: /şikâyet/, ask: /kuruma/ },
  pl: { withheld: /wstrzymano po kontroli/i, complain: /skarg/, ask: /zapytać o to zakład/ },
};

describe("delivery words", () => {
  test("every reason category the gateway may tell has words", () => {
    const named = Object.values(WithholdReason).filter(
      (value): value is WithholdReason =>
        typeof value === "number" && value !== WithholdReason.UNSPECIFIED,
    );
    assert.deepEqual(named.sort(), [...REASONS].sort());
    assert.deepEqual(Object.keys(REASON_KEYS).map(Number).sort(), [...REASONS].sort());
  });

  test("English: the category in plain words, then how to respond", () => {
    const words = deliveryWords(
      translator("en"),
      DeliveryStatus.NOT_DELIVERED,
      WithholdReason.PUBLIC_ORDER,
    );
    assert.deepEqual(words, {
      status: "Not delivered",
      reason: "PUBLIC_ORDER",
      details: [
        `Withheld after review. Reason: ${isolated("public order or national security")}.`,
        "The detainee can complain about this decision through the institution's complaints " +
          "procedure. You can also ask the institution about it.",
      ],
    });
    const victims = deliveryWords(
      translator("en"),
      DeliveryStatus.NOT_DELIVERED,
      WithholdReason.VICTIM_PROTECTION,
    );
    assert.equal(victims.reason, "VICTIM_PROTECTION");
    assert.match(victims.details[0] ?? "", /protecting victims of crimes/);
  });

  test("Dutch: without a reason, withheld after review and no details", () => {
    const words = deliveryWords(
      translator("nl"),
      DeliveryStatus.NOT_DELIVERED,
      WithholdReason.UNSPECIFIED,
    );
    assert.deepEqual(words, {
      status: "Niet bezorgd",
      reason: undefined,
      details: [
        "Er worden geen details gegeven: het bericht is na controle tegengehouden, of kon niet " +
          "worden bezorgd.",
        "U kunt de inrichting ernaar vragen.",
      ],
    });
  });

  for (const language of LANGUAGES) {
    const catalogue = readCatalogue(language);
    const t = translator(language);

    test(`${language}: each reason reads "not delivered", its own category, how to respond`, () => {
      const seen = new Set<string>();
      for (const reason of REASONS) {
        const words = deliveryWords(t, DeliveryStatus.NOT_DELIVERED, reason);
        const category = catalogue[REASON_KEYS[reason] ?? ""] ?? "";
        assert.ok(category.length > 5, `${language}: no words for ${WithholdReason[reason]}`);
        assert.equal(words.status, catalogue["message.status.notDelivered"]);
        assert.equal(words.reason, WithholdReason[reason]);
        assert.equal(words.details.length, 2);
        assert.ok(words.details[0]?.includes(isolated(category)), `${language} ${category}`);
        assert.match(words.details[0] ?? "", SAYS[language].withheld);
        assert.equal(words.details[1], catalogue["message.withheld.respond"]);
        assert.match(words.details[1] ?? "", SAYS[language].complain);
        assert.match(words.details[1] ?? "", SAYS[language].ask);
        seen.add(category);
      }
      assert.equal(seen.size, REASONS.length, `${language}: two reasons read the same`);
    });

    test(`${language}: without a reason, "withheld after review" and no category`, () => {
      const categories = REASONS.map((r) => catalogue[REASON_KEYS[r] ?? ""] ?? "");
      // An unknown value (a newer gateway's) is said as no reason, never as another one.
      // withhold_reason = 99, as a newer gateway might send it.
      const newer = fromBinary(GetMessageStatusResponseSchema, Uint8Array.of(0x20, 99));
      assert.equal(newer.withholdReason, 99);
      for (const reason of [WithholdReason.UNSPECIFIED, undefined, newer.withholdReason]) {
        const words = deliveryWords(t, DeliveryStatus.NOT_DELIVERED, reason);
        assert.equal(words.reason, undefined);
        assert.deepEqual(words.details, [
          catalogue["message.withheld.noReason"],
          catalogue["message.withheld.ask"],
        ]);
        assert.match(words.details[0] ?? "", SAYS[language].withheld);
        assert.match(words.details[1] ?? "", SAYS[language].ask);
        for (const category of categories) {
          assert.ok(!words.details.join(" ").includes(category), `${language} names ${category}`);
        }
      }
    });

    test(`${language}: no reason and no details with any other status`, () => {
      for (const [status, key] of [
        [DeliveryStatus.PENDING, "message.status.pending"],
        [undefined, "message.status.pending"],
        [DeliveryStatus.UNSPECIFIED, "message.status.pending"],
        [DeliveryStatus.DELIVERED, "message.status.delivered"],
      ] as const) {
        const words = deliveryWords(t, status, WithholdReason.CRIME_PREVENTION);
        assert.deepEqual(words, { status: catalogue[key], reason: undefined, details: [] });
      }
    });
  }

  test("the categories are translated, not copied from English", () => {
    const english = readCatalogue("en");
    for (const language of LANGUAGES.filter((l) => l !== "en")) {
      const catalogue = readCatalogue(language);
      for (const key of [
        ...Object.values(REASON_KEYS),
        "message.withheld.reason",
        "message.withheld.respond",
        "message.withheld.noReason",
        "message.withheld.ask",
      ]) {
        assert.notEqual(catalogue[key], english[key], `${language} ${key}`);
      }
    }
  });
});
