/**
 * What a sent message's delivery status says, in words: pure, no DOM, so that the tests
 * check every status, reason and language in Node.js.
 *
 * A message not delivered reads "not delivered". The gateway names the reason category of
 * a withholding (GetMessageStatusResponse.withhold_reason) only when the detainee's regime
 * told relatives the reason at that moment (docs/review.md, "What the relative is told");
 * then the category is said in plain words, with how to respond: the detainee may complain
 * through the institution's complaints procedure, and the relative may ask the institution.
 * Without a reason the words give no details: "not delivered" also covers a message that
 * could not be delivered at all (the detainee released before intake), so they say so.
 */

import { DeliveryStatus, WithholdReason } from "@sealpost/protocol/gen/common_pb";

import type { Translator } from "./i18n.js";

export { WithholdReason };

const STATUS_KEYS: Readonly<Record<number, string>> = {
  [DeliveryStatus.PENDING]: "message.status.pending",
  [DeliveryStatus.DELIVERED]: "message.status.delivered",
  [DeliveryStatus.NOT_DELIVERED]: "message.status.notDelivered",
};

/** The reason categories a regime may tell relatives, in words (docs/review.md). */
export const REASON_KEYS: Readonly<Record<number, string>> = {
  [WithholdReason.ORDER_AND_SECURITY]: "message.reason.orderAndSecurity",
  [WithholdReason.PUBLIC_ORDER]: "message.reason.publicOrder",
  [WithholdReason.CRIME_PREVENTION]: "message.reason.crimePrevention",
  [WithholdReason.VICTIM_PROTECTION]: "message.reason.victimProtection",
};

/** The words for one sent message's delivery. */
export interface DeliveryWords {
  /** "Not delivered yet", "Delivered", "Not delivered". */
  readonly status: string;
  /** The reason told, as a WithholdReason name ("PUBLIC_ORDER"), or undefined. */
  readonly reason: string | undefined;
  /** For a message not delivered: why, as far as told, and how to respond. Else empty. */
  readonly details: readonly string[];
}

/**
 * The words for a sent message's status and, when not delivered, its withholding's reason.
 * A reason is only shown with "not delivered"; an unknown reason value (a newer gateway)
 * is said as no reason, never as another one.
 */
export function deliveryWords(
  t: Translator,
  status: DeliveryStatus | undefined,
  reason: WithholdReason | undefined,
): DeliveryWords {
  const shown = t.t(STATUS_KEYS[status ?? DeliveryStatus.PENDING] ?? "message.status.pending");
  if (status !== DeliveryStatus.NOT_DELIVERED) {
    return { status: shown, reason: undefined, details: [] };
  }
  const key = REASON_KEYS[reason ?? WithholdReason.UNSPECIFIED];
  if (key === undefined || reason === undefined) {
    return {
      status: shown,
      reason: undefined,
      details: [t.t("message.withheld.noReason"), t.t("message.withheld.ask")],
    };
  }
  return {
    status: shown,
    reason: WithholdReason[reason],
    details: [
      t.t("message.withheld.reason", { reason: t.t(key) }),
      t.t("message.withheld.respond"),
    ],
  };
}
