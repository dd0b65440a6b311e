/**
 * The pages: the frame (header with the language switcher and the link to the review
 * notice, footer, live regions), and one view per route. Every word comes from the
 * catalogues through `t`; every action goes through the Session; every failure is named by
 * the error table (errors.ts). Elements tests rely on carry `data-test`.
 */

import { DEFAULT_LIMITS } from "@sealpost/protocol";

import { AppError, errorKey, errorValues } from "../errors.js";
import {
  ACCEPT,
  SNIFF_BYTES,
  checkFile,
  checkMessage,
  isPreviewable,
  maxFileBytes,
  partBytes,
  safeFilename,
  shownName,
  textBytes,
} from "../files.js";
import { LANGUAGES, Translator, type Catalogue, type Language } from "../i18n.js";
import {
  ContactStatus,
  DeliveryStatus,
  type ContactView,
  type MessageView,
  type Session,
} from "../session.js";
import { h, replace, type Child } from "./dom.js";

const LANGUAGE_KEY = "sealpost.language";

const CONTACT_STATUS_KEYS: Readonly<Record<number, string>> = {
  [ContactStatus.REQUESTED]: "contact.status.requested",
  [ContactStatus.APPROVED]: "contact.status.approved",
  [ContactStatus.REJECTED]: "contact.status.rejected",
  [ContactStatus.REVOKED]: "contact.status.revoked",
  [ContactStatus.EXPIRED]: "contact.status.expired",
};

const DELIVERY_KEYS: Readonly<Record<number, string>> = {
  [DeliveryStatus.PENDING]: "message.status.pending",
  [DeliveryStatus.DELIVERED]: "message.status.delivered",
  [DeliveryStatus.NOT_DELIVERED]: "message.status.notDelivered",
};

interface Picked {
  readonly file: File;
  readonly head: Uint8Array;
}

export class App {
  #t: Translator;
  readonly #header = h("header", { class: "site-header" });
  readonly #main = h("main", { id: "main", tabindex: "-1" });
  readonly #footer = h("footer", { class: "site-footer" });
  /** Polite announcements: progress and results. */
  readonly #status = h("p", {
    role: "status",
    "aria-live": "polite",
    class: "status",
    "data-test": "status",
  });
  /** Blob URLs of the page on show, revoked when it goes. */
  #blobs: string[] = [];
  /** The last route rendered, to tell a new page from a re-render. */
  #lastRoute = "";
  /** Counts renders: a page that finishes loading after a newer one began is dropped. */
  #generation = 0;

  constructor(
    private readonly root: HTMLElement,
    private readonly session: Session,
    private readonly catalogues: Readonly<Record<Language, Catalogue>>,
    language: Language,
  ) {
    this.#t = new Translator(language, catalogues[language]);
    window.addEventListener("hashchange", () => {
      void this.render();
    });
  }

  t(key: string, values?: Record<string, string | number>): string {
    return this.#t.t(key, values);
  }

  async start(): Promise<void> {
    this.#applyLanguage();
    const skip = h("a", { href: "#main", class: "skip-link" }, this.t("app.skip"));
    skip.addEventListener("click", (event) => {
      event.preventDefault();
      this.#main.focus();
    });
    replace(
      this.root,
      skip,
      this.#header,
      h("div", { class: "page" }, this.#status, this.#main),
      this.#footer,
    );
    await this.render();
  }

  #applyLanguage(): void {
    document.documentElement.lang = this.#t.language;
    document.documentElement.dir = this.#t.dir;
    document.title = this.t("app.title");
  }

  #setLanguage(language: Language): void {
    localStorage.setItem(LANGUAGE_KEY, language);
    this.#t = new Translator(language, this.catalogues[language]);
    this.#applyLanguage();
    this.#status.textContent = "";
    this.#lastRoute = "";
    void this.render();
  }

  announce(text: string): void {
    // Emptied first, so that the same words said twice are announced twice.
    this.#status.textContent = "";
    window.setTimeout(() => {
      this.#status.textContent = text;
    }, 50);
  }

  // --- The frame ---

  #renderFrame(): void {
    const select = h(
      "select",
      {
        id: "language",
        "data-test": "language",
        onchange: (event: Event) => {
          this.#setLanguage((event.target as HTMLSelectElement).value as Language);
        },
      },
      LANGUAGES.map((code) =>
        h(
          "option",
          { value: code, lang: code, selected: code === this.#t.language },
          this.catalogues[code]["language.self"] ?? code,
        ),
      ),
    );
    const nav: Child[] = [];
    if (this.session.unlocked) {
      nav.push(
        h(
          "li",
          {},
          h("a", { href: "#/contacts", "data-test": "nav-contacts" }, this.t("nav.contacts")),
        ),
        h(
          "li",
          {},
          h("a", { href: "#/account", "data-test": "nav-account" }, this.t("nav.account")),
        ),
      );
    }
    nav.push(
      h("li", {}, h("a", { href: "#/notice", "data-test": "notice-link" }, this.t("nav.notice"))),
    );
    replace(
      this.#header,
      h("div", { class: "brand" }, h("a", { href: "#/" }, this.t("app.name"))),
      h("nav", { "aria-label": this.t("nav.label") }, h("ul", {}, nav)),
      h(
        "div",
        { class: "language" },
        h("label", { for: "language" }, this.t("language.label")),
        select,
      ),
    );
    replace(
      this.#footer,
      h(
        "p",
        {},
        this.t("footer.text"),
        " ",
        h("a", { href: "#/notice", "data-test": "notice-link-footer" }, this.t("nav.notice")),
      ),
    );
  }

  // --- Routing ---

  async render(): Promise<void> {
    const generation = ++this.#generation;
    const route = decodeURIComponent(location.hash.replace(/^#\/?/, ""));
    const isNew = route !== this.#lastRoute;
    this.#lastRoute = route;
    for (const url of this.#blobs) URL.revokeObjectURL(url);
    this.#blobs = [];
    this.#renderFrame();
    const [page = "", ...rest] = route.split("/");
    const argument = rest.join("/");
    let view: Node;
    try {
      view = await this.#route(page, argument);
    } catch (error) {
      view = this.#page(this.t("error.title"), this.#errorBox(error));
    }
    if (generation !== this.#generation) return; // a newer page is on its way
    replace(this.#main, view);
    if (isNew) {
      const heading = this.#main.querySelector("h1");
      heading?.setAttribute("tabindex", "-1");
      heading?.focus();
    }
  }

  async #route(page: string, argument: string): Promise<Node> {
    if (page === "notice") return this.#noticePage();
    if (page === "account") return this.#accountPage();
    if (!this.session.unlocked) {
      if (!(await this.session.hasDevice())) return this.#signUpPage();
      return this.#unlockPage();
    }
    if (page === "contact" && argument !== "") return this.#contactPage(argument);
    return this.#contactsPage();
  }

  #go(hash: string): void {
    if (location.hash === hash) void this.render();
    else location.hash = hash;
  }

  // --- Building blocks ---

  #page(title: string, ...content: (Child | readonly Child[])[]): HTMLElement {
    return h("div", { class: "content" }, h("h1", {}, title), ...content);
  }

  /** What a failure says, with sizes in the error's values written for a person. */
  #explain(error: unknown): string {
    const values = { ...errorValues(error) };
    if (typeof values["max"] === "number") values["max"] = this.#t.size(values["max"]);
    return this.t(errorKey(error), values);
  }

  #errorBox(error: unknown): HTMLElement {
    return h(
      "div",
      { class: "error-summary", role: "alert", "data-test": "error" },
      h("p", {}, this.#explain(error)),
    );
  }

  /** A labelled field with its hint and error tied to it (aria-describedby). */
  #field(
    id: string,
    label: string,
    control: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement,
    hint?: string,
  ): { wrapper: HTMLElement; showError: (text: string | undefined) => void } {
    control.id = id;
    const hintId = `${id}-hint`;
    const errorId = `${id}-error`;
    const error = h("p", { id: errorId, class: "field-error", hidden: true });
    const describedBy = (withError: boolean): string =>
      [hint === undefined ? "" : hintId, withError ? errorId : ""].filter(Boolean).join(" ");
    if (hint !== undefined) control.setAttribute("aria-describedby", describedBy(false));
    const wrapper = h(
      "div",
      { class: "field" },
      h("label", { for: id }, label),
      hint === undefined ? null : h("p", { id: hintId, class: "hint" }, hint),
      error,
      control,
    );
    const showError = (text: string | undefined): void => {
      error.textContent = text ?? "";
      error.hidden = text === undefined;
      wrapper.classList.toggle("field--error", text !== undefined);
      if (text === undefined) control.removeAttribute("aria-invalid");
      else control.setAttribute("aria-invalid", "true");
      const ids = describedBy(text !== undefined);
      if (ids === "") control.removeAttribute("aria-describedby");
      else control.setAttribute("aria-describedby", ids);
    };
    return { wrapper, showError };
  }

  /** Run an action with the button disabled and the outcome announced. */
  async #busy(
    button: HTMLButtonElement,
    working: string,
    action: () => Promise<void>,
  ): Promise<void> {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    this.announce(working);
    try {
      await action();
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }

  #notice(): HTMLElement {
    return h(
      "div",
      { class: "notice", "data-test": "notice-text" },
      h("p", {}, this.t("notice.intro")),
      h("p", {}, this.t("notice.review")),
      h("p", {}, this.t("notice.log")),
      h("p", {}, this.t("notice.privileged")),
    );
  }

  // --- Pages ---

  #noticePage(): HTMLElement {
    return this.#page(this.t("notice.title"), this.#notice());
  }

  #signUpPage(): HTMLElement {
    const name = h("input", {
      type: "text",
      autocomplete: "name",
      dir: "auto",
      "data-test": "signup-name",
    });
    const pass = h("input", {
      type: "password",
      autocomplete: "new-password",
      "data-test": "signup-passphrase",
    });
    const again = h("input", {
      type: "password",
      autocomplete: "new-password",
      "data-test": "signup-passphrase-again",
    });
    const nameField = this.#field(
      "signup-name",
      this.t("signup.name"),
      name,
      this.t("signup.nameHint"),
    );
    const passField = this.#field(
      "signup-pass",
      this.t("signup.passphrase"),
      pass,
      this.t("signup.passphraseHint"),
    );
    const againField = this.#field("signup-again", this.t("signup.passphraseAgain"), again);
    const button = h(
      "button",
      { type: "submit", class: "button", "data-test": "signup-submit" },
      this.t("signup.submit"),
    );
    const errors = h("div");
    const form = h(
      "form",
      { novalidate: true, "data-test": "signup-form" },
      nameField.wrapper,
      passField.wrapper,
      againField.wrapper,
      button,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      nameField.showError(name.value.trim() === "" ? this.t("error.nameRequired") : undefined);
      passField.showError(
        Array.from(pass.value.normalize("NFC")).length < 8
          ? this.t("error.weakPassphrase")
          : undefined,
      );
      againField.showError(pass.value !== again.value ? this.t("signup.mismatch") : undefined);
      const invalid = form.querySelector<HTMLElement>("[aria-invalid=true]");
      if (invalid !== null) {
        invalid.focus();
        return;
      }
      void this.#busy(button, this.t("signup.working"), async () => {
        try {
          await this.session.register(name.value, pass.value);
          pass.value = "";
          again.value = "";
          this.announce(this.t("signup.done"));
          this.#go("#/contacts");
        } catch (error) {
          replace(errors, this.#errorBox(error));
          this.announce(this.#explain(error));
        }
      });
    });
    return this.#page(
      this.t("signup.title"),
      h("p", {}, this.t("signup.intro")),
      h("p", {}, this.t("signup.keysHere")),
      h(
        "section",
        { "aria-labelledby": "notice-heading", class: "notice-box" },
        h("h2", { id: "notice-heading" }, this.t("notice.title")),
        this.#notice(),
      ),
      errors,
      form,
    );
  }

  #unlockPage(): HTMLElement {
    const pass = h("input", {
      type: "password",
      autocomplete: "current-password",
      "data-test": "unlock-passphrase",
    });
    const field = this.#field("unlock-pass", this.t("unlock.passphrase"), pass);
    const button = h(
      "button",
      { type: "submit", class: "button", "data-test": "unlock-submit" },
      this.t("unlock.submit"),
    );
    const form = h("form", { novalidate: true, "data-test": "unlock-form" }, field.wrapper, button);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      field.showError(undefined);
      void this.#busy(button, this.t("unlock.working"), async () => {
        try {
          await this.session.unlock(pass.value);
          pass.value = "";
          this.announce(this.t("unlock.done"));
          this.#go("#/contacts");
        } catch (error) {
          field.showError(this.#explain(error));
          this.announce(this.#explain(error));
          pass.focus();
        }
      });
    });
    return this.#page(
      this.t("unlock.title"),
      h("p", {}, this.t("unlock.intro")),
      form,
      h(
        "p",
        { class: "aside" },
        this.t("unlock.forgotten"),
        " ",
        h("a", { href: "#/account" }, this.t("unlock.forgottenLink")),
      ),
    );
  }

  async #contactsPage(): Promise<HTMLElement> {
    const list = h("ul", { class: "contacts", "data-test": "contact-list" });
    const fill = (contacts: readonly ContactView[]): void => {
      replace(
        list,
        contacts.length === 0
          ? h("li", { class: "empty" }, this.t("contacts.none"))
          : contacts.map((contact) =>
              h(
                "li",
                {
                  "data-test": "contact",
                  "data-detainee": contact.detaineeId,
                  "data-status": ContactStatus[contact.status],
                },
                h(
                  "a",
                  { href: `#/contact/${encodeURIComponent(contact.detaineeId)}`, dir: "auto" },
                  contact.detaineeId,
                ),
                " ",
                h(
                  "span",
                  { class: `badge badge--${ContactStatus[contact.status].toLowerCase()}` },
                  this.#contactStatus(contact),
                ),
                contact.privileged
                  ? h(
                      "span",
                      { class: "badge badge--privileged", "data-test": "privileged" },
                      this.t("contact.privileged"),
                    )
                  : null,
              ),
            ),
      );
    };
    const contacts = await this.session.contacts();
    fill(contacts);
    const replies = await this.#fetchReplies();

    const id = h("input", {
      type: "text",
      autocomplete: "off",
      dir: "auto",
      spellcheck: "false",
      "data-test": "contact-request-id",
    });
    const relation = h("input", {
      type: "text",
      dir: "auto",
      "data-test": "contact-request-relationship",
    });
    const idField = this.#field("request-id", this.t("request.id"), id, this.t("request.idHint"));
    const relationField = this.#field(
      "request-relation",
      this.t("request.relationship"),
      relation,
      this.t("request.relationshipHint"),
    );
    const button = h(
      "button",
      { type: "submit", class: "button", "data-test": "contact-request-submit" },
      this.t("request.submit"),
    );
    const result = h("div", { "data-test": "contact-request-result" });
    const form = h(
      "form",
      { novalidate: true, "data-test": "contact-request-form" },
      idField.wrapper,
      relationField.wrapper,
      button,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (id.value.trim() === "") {
        idField.showError(this.t("error.detaineeIdRequired"));
        id.focus();
        return;
      }
      idField.showError(undefined);
      void this.#busy(button, this.t("request.working"), async () => {
        try {
          const contact = await this.session.requestContact(id.value, relation.value);
          const text = this.t("request.done", {
            id: contact.detaineeId,
            status: this.#contactStatus(contact),
          });
          replace(result, h("p", { class: "success" }, text));
          this.announce(text);
          id.value = "";
          relation.value = "";
          fill(await this.session.contacts());
        } catch (error) {
          replace(result, this.#errorBox(error));
          this.announce(this.#explain(error));
        }
      });
    });
    return this.#page(
      this.t("contacts.title"),
      replies,
      h(
        "section",
        { "aria-labelledby": "contacts-heading" },
        h("h2", { id: "contacts-heading" }, this.t("contacts.list")),
        list,
        h("p", { class: "hint" }, this.t("contacts.states")),
      ),
      h(
        "section",
        { "aria-labelledby": "request-heading" },
        h("h2", { id: "request-heading" }, this.t("request.title")),
        h("p", {}, this.t("request.intro")),
        h("p", { class: "callout" }, this.t("request.sameAnswer")),
        form,
        result,
      ),
    );
  }

  #contactStatus(contact: ContactView): string {
    if (contact.status === ContactStatus.APPROVED && !contact.deliverable)
      return this.t("contact.status.closed");
    return this.t(CONTACT_STATUS_KEYS[contact.status] ?? "contact.status.unknown");
  }

  /** New replies fetched, verified and kept, and sent messages followed up; any failure shown. */
  async #fetchReplies(): Promise<HTMLElement | null> {
    try {
      const count = await this.session.fetchInbox();
      await this.session.refreshSent();
      if (count > 0) this.announce(this.t("inbox.new", { count }));
      return null;
    } catch (error) {
      return this.#errorBox(error);
    }
  }

  async #contactPage(detaineeId: string): Promise<HTMLElement> {
    const contacts = await this.session.contacts();
    const contact = contacts.find((c) => c.detaineeId === detaineeId);
    if (contact === undefined) throw new AppError("error.noContact");
    const replies = await this.#fetchReplies();
    const messages = await this.session.conversation(detaineeId);
    const title = this.t("contact.title", { id: detaineeId });
    const parts: Child[] = [
      h(
        "p",
        {},
        this.t("contact.state"),
        " ",
        h(
          "span",
          {
            class: `badge badge--${ContactStatus[contact.status].toLowerCase()}`,
            "data-test": "contact-status",
          },
          this.#contactStatus(contact),
        ),
      ),
      replies,
    ];
    if (contact.privileged) {
      parts.push(
        h(
          "section",
          {
            class: "privileged",
            "aria-labelledby": "privileged-heading",
            "data-test": "privileged-explained",
          },
          h("h2", { id: "privileged-heading" }, this.t("privileged.title")),
          h("p", {}, this.t("privileged.text")),
        ),
      );
    }
    if (contact.status !== ContactStatus.APPROVED) {
      parts.push(
        h(
          "p",
          { class: "callout" },
          this.t(`contact.explain.${ContactStatus[contact.status].toLowerCase()}`),
        ),
      );
    } else if (!contact.deliverable) {
      parts.push(h("p", { class: "callout" }, this.t("contact.explain.closed")));
    } else if (contact.noticeAcknowledgedAtMs === undefined) {
      // Before the first message to this contact: the notice, and a button to say it was read.
      parts.push(this.#noticeGate(detaineeId));
    } else {
      parts.push(this.#compose(detaineeId));
    }
    parts.push(this.#history(messages));
    return this.#page(title, parts);
  }

  #noticeGate(detaineeId: string): HTMLElement {
    const button = h(
      "button",
      { type: "button", class: "button", "data-test": "notice-acknowledge" },
      this.t("notice.acknowledge"),
    );
    button.addEventListener("click", () => {
      void this.#busy(button, "", async () => {
        await this.session.acknowledgeNotice(detaineeId);
        this.announce(this.t("notice.acknowledged"));
        this.#lastRoute = ""; // a new page: the compose form takes the focus's place
        await this.render();
      });
    });
    return h(
      "section",
      { class: "notice-box", "aria-labelledby": "gate-heading", "data-test": "notice-gate" },
      h("h2", { id: "gate-heading" }, this.t("notice.beforeFirst")),
      this.#notice(),
      button,
    );
  }

  #compose(detaineeId: string): HTMLElement {
    const text = h("textarea", { rows: 8, dir: "auto", "data-test": "compose-text" });
    const files = h("input", {
      type: "file",
      multiple: true,
      accept: ACCEPT,
      "data-test": "compose-files",
    });
    const textField = this.#field(
      "compose-text",
      this.t("compose.text"),
      text,
      this.t("compose.textHint"),
    );
    const fileField = this.#field(
      "compose-files",
      this.t("compose.files"),
      files,
      this.t("compose.filesHint"),
    );
    const chosen = h("ul", {
      class: "files",
      "data-test": "compose-file-list",
      "aria-live": "polite",
    });
    const total = h("p", { class: "hint", "data-test": "compose-total" });
    const button = h(
      "button",
      { type: "submit", class: "button", "data-test": "send" },
      this.t("compose.send"),
    );
    const result = h("div", { "data-test": "send-result" });
    let picked: Picked[] = [];

    const check = (): boolean => {
      const problems: string[] = [];
      replace(
        chosen,
        picked.map(({ file, head }) => {
          const problem = checkFile({ name: file.name, size: file.size, head });
          const why =
            problem === undefined
              ? undefined
              : this.t(problem, {
                  name: shownName(file.name),
                  max: this.#t.size(maxFileBytes(file.name)),
                });
          if (why !== undefined) problems.push(why);
          return h(
            "li",
            { class: why === undefined ? "" : "file--error", "data-test": "compose-file" },
            h("span", { dir: "auto" }, shownName(file.name)),
            " ",
            h("span", { class: "size" }, this.#t.size(file.size)),
            why === undefined ? null : h("span", { class: "field-error" }, " ", why),
          );
        }),
      );
      const sizes = picked.map(({ file }) => ({ name: file.name, size: file.size }));
      const bytes = sizes.reduce((sum, file) => sum + partBytes(file), textBytes(text.value));
      total.textContent = this.t("compose.total", {
        size: this.#t.size(bytes),
        max: this.#t.size(DEFAULT_LIMITS.maxTotalBytes),
      });
      const whole = checkMessage(text.value, sizes);
      if (whole !== undefined)
        problems.push(this.t(whole, { name: "", max: this.#t.size(DEFAULT_LIMITS.maxTotalBytes) }));
      fileField.showError(problems.length === 0 ? undefined : problems.join(" "));
      return problems.length === 0;
    };
    files.addEventListener("change", () => {
      void (async () => {
        picked = await Promise.all(
          Array.from(files.files ?? []).map(async (file) => ({
            file,
            head: new Uint8Array(await file.slice(0, SNIFF_BYTES).arrayBuffer()),
          })),
        );
        check();
      })();
    });
    text.addEventListener("input", () => {
      total.textContent = "";
    });

    const form = h(
      "form",
      { novalidate: true, class: "compose", "data-test": "compose-form" },
      textField.wrapper,
      fileField.wrapper,
      chosen,
      total,
      button,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      replace(result);
      if (!check()) {
        files.focus();
        return;
      }
      if (text.value.trim() === "" && picked.length === 0) {
        textField.showError(this.t("error.emptyMessage"));
        text.focus();
        return;
      }
      textField.showError(undefined);
      void this.#busy(button, this.t("compose.working"), async () => {
        try {
          const outgoing = await Promise.all(
            picked.map(async ({ file }) => ({
              name: file.name,
              data: new Uint8Array(await file.arrayBuffer()),
            })),
          );
          const sent = await this.session.send(detaineeId, text.value, outgoing);
          const said = sent.proven
            ? this.t("compose.sentProven", { entry: Number(sent.leafIndex) })
            : this.t("compose.sentUnproven", { why: this.t(errorKey(sent.proofError)) });
          text.value = "";
          files.value = "";
          picked = [];
          this.#lastRoute = `contact/${detaineeId}`;
          await this.render();
          this.announce(said);
          const box = this.#main.querySelector('[data-test="send-result"]');
          if (box !== null)
            replace(box, h("p", { class: sent.proven ? "success" : "warning" }, said));
        } catch (error) {
          replace(result, this.#errorBox(error));
          this.announce(this.#explain(error));
        }
      });
    });
    return h(
      "section",
      { "aria-labelledby": "compose-heading" },
      h("h2", { id: "compose-heading" }, this.t("compose.title")),
      h(
        "p",
        { class: "aside" },
        this.t("compose.reminder"),
        " ",
        h("a", { href: "#/notice" }, this.t("nav.notice")),
      ),
      result,
      form,
    );
  }

  #history(messages: readonly MessageView[]): HTMLElement {
    const items = messages
      .slice()
      .reverse()
      .map((message) => this.#message(message));
    return h(
      "section",
      { "aria-labelledby": "history-heading" },
      h("h2", { id: "history-heading" }, this.t("history.title")),
      h(
        "button",
        {
          type: "button",
          class: "button button--secondary",
          "data-test": "refresh",
          onclick: () => {
            this.announce(this.t("history.refreshing"));
            void this.render();
          },
        },
        this.t("history.refresh"),
      ),
      items.length === 0
        ? h("p", {}, this.t("history.none"))
        : h("ol", { class: "history", reversed: true }, items),
    );
  }

  #message(message: MessageView): HTMLElement {
    const sent = message.direction === "sent";
    const meta: Child[] = [
      h("span", { class: "who" }, this.t(sent ? "history.sent" : "history.received")),
      " ",
      h(
        "time",
        { datetime: new Date(Number(message.atMs)).toISOString() },
        this.#t.dateTime(message.atMs),
      ),
    ];
    const body: Child[] = [];
    if (message.text === undefined) {
      body.push(
        h(
          "p",
          { class: "field-error" },
          this.t("history.unopened", { why: this.t(errorKey(message.error)) }),
        ),
      );
    } else if (message.text !== "") {
      body.push(
        h("p", { class: "message-text", dir: "auto", "data-test": "message-text" }, message.text),
      );
    }
    if (message.attachments.length > 0) {
      body.push(
        h(
          "ul",
          { class: "attachments" },
          message.attachments.map((part, index) => {
            const url = URL.createObjectURL(
              new Blob([part.data as Uint8Array<ArrayBuffer>], { type: part.contentType }),
            );
            this.#blobs.push(url);
            const name = safeFilename(part.name, index + 1, part.contentType);
            return h(
              "li",
              {},
              isPreviewable(part.contentType)
                ? h("img", { src: url, alt: shownName(part.name), class: "preview" })
                : null,
              h(
                "a",
                { href: url, download: name, dir: "auto", "data-test": "attachment" },
                this.t("history.download", { name }),
              ),
              " ",
              h("span", { class: "size" }, this.#t.size(part.data.length)),
            );
          }),
        ),
      );
    }
    const status: Child[] = [];
    if (sent) {
      status.push(
        h(
          "p",
          {
            class: "delivery",
            "data-test": "message-status",
            "data-status": DeliveryStatus[message.status ?? 0],
          },
          this.t(DELIVERY_KEYS[message.status ?? 0] ?? "message.status.pending"),
        ),
        h(
          "p",
          {
            class: message.proven ? "proof" : "proof proof--missing",
            "data-test": "message-proof",
            "data-proven": String(message.proven),
          },
          this.t(message.proven ? "message.proven" : "message.unproven"),
        ),
      );
    }
    return h(
      "li",
      {
        class: sent ? "message message--sent" : "message message--received",
        "data-test": sent ? "message" : "inbox-item",
        "data-message": message.id,
      },
      h("article", {}, h("p", { class: "meta" }, meta), body, status),
    );
  }

  #accountPage(): HTMLElement {
    const content: Child[] = [];
    if (this.session.unlocked) {
      content.push(
        h(
          "section",
          { "aria-labelledby": "signout-heading" },
          h("h2", { id: "signout-heading" }, this.t("account.signOutTitle")),
          h("p", {}, this.t("account.signOutText")),
          h(
            "button",
            {
              type: "button",
              class: "button button--secondary",
              "data-test": "sign-out",
              onclick: () => {
                this.session.signOut();
                this.announce(this.t("account.signedOut"));
                this.#go("#/");
              },
            },
            this.t("account.signOut"),
          ),
        ),
      );
    }
    const confirm = h("input", {
      type: "checkbox",
      id: "delete-confirm",
      "data-test": "delete-data-confirm",
    });
    const error = h(
      "p",
      { id: "delete-error", class: "field-error", hidden: true },
      this.t("account.deleteConfirmFirst"),
    );
    const button = h(
      "button",
      { type: "button", class: "button button--danger", "data-test": "delete-data" },
      this.t("account.delete"),
    );
    button.addEventListener("click", () => {
      if (!confirm.checked) {
        error.hidden = false;
        confirm.setAttribute("aria-describedby", "delete-error");
        confirm.setAttribute("aria-invalid", "true");
        confirm.focus();
        return;
      }
      void this.#busy(button, this.t("account.deleting"), async () => {
        await this.session.deleteAll();
        localStorage.removeItem(LANGUAGE_KEY);
        this.announce(this.t("account.deleted"));
        this.#go("#/");
      });
    });
    content.push(
      h(
        "section",
        { "aria-labelledby": "delete-heading" },
        h("h2", { id: "delete-heading" }, this.t("account.deleteTitle")),
        h("p", {}, this.t("account.deleteText")),
        h("p", { class: "callout" }, this.t("account.deleteWarning")),
        h(
          "div",
          { class: "checkbox" },
          confirm,
          h("label", { for: "delete-confirm" }, this.t("account.deleteConfirm")),
        ),
        error,
        button,
      ),
    );
    content.push(this.#releaseSection());
    return this.#page(this.t("account.title"), content);
  }

  /** The version of this app and the log entry that records it (/release-log.json). */
  #releaseSection(): HTMLElement {
    const line = h("p", { "data-test": "app-release" }, this.t("account.releaseUnknown"));
    void fetch(new URL("release-log.json", location.href), { cache: "no-store" })
      .then(async (response) => (response.ok ? ((await response.json()) as unknown) : null))
      .then((found) => {
        const record = found as { appVersion?: unknown; leafIndex?: unknown } | null;
        if (typeof record?.appVersion === "string" && typeof record.leafIndex === "number") {
          line.textContent = this.t("account.release", {
            version: record.appVersion,
            entry: record.leafIndex,
          });
        }
      })
      .catch(() => undefined);
    return h(
      "section",
      { "aria-labelledby": "release-heading" },
      h("h2", { id: "release-heading" }, this.t("account.releaseTitle")),
      line,
    );
  }
}
