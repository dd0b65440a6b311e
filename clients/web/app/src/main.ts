/**
 * Start: load libsodium's WebAssembly, read the deployment's pinned directory key from
 * /deployment.json (same origin), pick the language, and show the app.
 */

import * as sp from "@sealpost/protocol";

import { CATALOGUES } from "./catalogues.js";
import { parseDeployment } from "./deployment.js";
import { Translator, pickLanguage } from "./i18n.js";
import { IndexedDbStore } from "./idb.js";
import { Port } from "./port.js";
import { Session } from "./session.js";
import { App } from "./ui/app.js";
import { h, replace } from "./ui/dom.js";

async function main(): Promise<void> {
  const root = document.getElementById("app");
  if (root === null) return;
  const language = pickLanguage(localStorage.getItem("sealpost.language"), navigator.languages);
  try {
    const [response] = await Promise.all([
      fetch(new URL("deployment.json", location.href), {
        cache: "no-store",
        credentials: "same-origin",
      }),
      sp.ready(),
    ]);
    if (!response.ok) throw new Error(`deployment.json: HTTP ${String(response.status)}`);
    const deployment = parseDeployment(await response.text(), location.origin);
    const session = new Session(
      new IndexedDbStore(),
      new Port(deployment.apiBaseUrl),
      new sp.DirectoryPin(deployment.directoryPin),
    );
    await new App(root, session, CATALOGUES, language).start();
  } catch {
    const t = new Translator(language, CATALOGUES[language]);
    document.documentElement.lang = language;
    document.documentElement.dir = t.dir;
    replace(
      root,
      h(
        "main",
        { id: "main" },
        h("h1", {}, t.t("app.name")),
        h("p", { role: "alert" }, t.t("error.start")),
      ),
    );
  }
}

void main();
