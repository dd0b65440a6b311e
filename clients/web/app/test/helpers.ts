import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import type { Catalogue } from "../src/i18n.js";

/** clients/web/app, from build/test/ where the compiled tests run. */
export const APP = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export function readCatalogue(language: string): Catalogue {
  return JSON.parse(readFileSync(join(APP, "messages", `${language}.json`), "utf8")) as Catalogue;
}
