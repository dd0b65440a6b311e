/**
 * Languages, message catalogues and formatting: pure, no DOM, so that the tests run it in
 * Node.js. Every string a person sees comes from a catalogue (messages/<lang>.json, ICU
 * MessageFormat); Dutch is the source, the other languages must have exactly its keys and
 * placeholders (test/catalogues.test.ts).
 */

import { IntlMessageFormat } from "intl-messageformat";

/** The languages of the app, Dutch first: the default and the source of every key. */
export const LANGUAGES = ["nl", "en", "ar", "tr", "pl"] as const;
export type Language = (typeof LANGUAGES)[number];
export const DEFAULT_LANGUAGE: Language = "nl";

/** Right-to-left languages: <html dir="rtl">. */
const RTL: ReadonlySet<Language> = new Set(["ar"]);

/** Dates and times are shown as they are in the Netherlands, where the institutions are. */
export const TIME_ZONE = "Europe/Amsterdam";

export type Catalogue = Readonly<Record<string, string>>;
export type Values = Readonly<Record<string, string | number | Date>>;

export function isLanguage(value: unknown): value is Language {
  return typeof value === "string" && (LANGUAGES as readonly string[]).includes(value);
}

export function direction(language: Language): "ltr" | "rtl" {
  return RTL.has(language) ? "rtl" : "ltr";
}

/**
 * The language to show: the one chosen before (kept locally), else the first of the
 * browser's preferred languages the app has ("ar-MA" gives "ar"), else Dutch.
 */
export function pickLanguage(stored: string | null, preferred: readonly string[]): Language {
  if (isLanguage(stored)) return stored;
  for (const tag of preferred) {
    const base = tag.toLowerCase().split("-")[0];
    if (isLanguage(base)) return base;
  }
  return DEFAULT_LANGUAGE;
}

/**
 * Text values (an id, a file name, a name) wrapped in Unicode's first-strong isolate
 * (U+2068 ... U+2069), as Fluent does, so that a left-to-right id inside an Arabic sentence,
 * or an Arabic file name inside a Dutch one, cannot reorder the words around it.
 */
function isolate(values: Values | undefined): Values | undefined {
  if (values === undefined) return undefined;
  const out: Record<string, string | number | Date> = {};
  for (const [name, value] of Object.entries(values)) {
    out[name] = typeof value === "string" ? `\u2068${value}\u2069` : value;
  }
  return out;
}

/** Formats catalogue messages for one language; a missing key is a bug, shown as the key. */
export class Translator {
  readonly #formats = new Map<string, IntlMessageFormat>();
  readonly #dates: Intl.DateTimeFormat;
  readonly #numbers: Intl.NumberFormat;

  constructor(
    readonly language: Language,
    private readonly catalogue: Catalogue,
  ) {
    this.#dates = new Intl.DateTimeFormat(language, {
      dateStyle: "medium",
      timeStyle: "short",
      timeZone: TIME_ZONE,
    });
    this.#numbers = new Intl.NumberFormat(language, { maximumFractionDigits: 1 });
  }

  get dir(): "ltr" | "rtl" {
    return direction(this.language);
  }

  t(key: string, values?: Values): string {
    return this.#format(key, isolate(values));
  }

  #format(key: string, values: Values | undefined): string {
    let format = this.#formats.get(key);
    if (format === undefined) {
      const source = this.catalogue[key];
      if (source === undefined) return key;
      format = new IntlMessageFormat(source, this.language, undefined, { ignoreTag: true });
      this.#formats.set(key, format);
    }
    const result = format.format(values);
    return typeof result === "string" ? result : String(result);
  }

  /** A moment (milliseconds since the epoch) in Amsterdam time. */
  dateTime(ms: bigint | number): string {
    return this.#dates.format(new Date(Number(ms)));
  }

  /** A size in bytes as a person reads it: "820 B", "1,5 MB" (units from the catalogue). */
  size(bytes: number): string {
    // A number in the language's own digits and separators: nothing to isolate.
    if (bytes < 1024) return this.#format("size.bytes", { n: this.#numbers.format(bytes) });
    if (bytes < 1024 * 1024) {
      return this.#format("size.kib", { n: this.#numbers.format(bytes / 1024) });
    }
    return this.#format("size.mib", { n: this.#numbers.format(bytes / (1024 * 1024)) });
  }
}
