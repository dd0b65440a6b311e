/** The message catalogues, bundled with the app (messages/<lang>.json). */

import ar from "../messages/ar.json" with { type: "json" };
import en from "../messages/en.json" with { type: "json" };
import nl from "../messages/nl.json" with { type: "json" };
import pl from "../messages/pl.json" with { type: "json" };
import tr from "../messages/tr.json" with { type: "json" };
import type { Catalogue, Language } from "./i18n.js";

export const CATALOGUES: Readonly<Record<Language, Catalogue>> = { nl, en, ar, tr, pl };
