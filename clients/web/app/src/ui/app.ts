/**
 * The pages: the frame (header with the language switcher and the link to the review
 * notice, footer, live regions), and one view per route. Every word comes from the
 * catalogues through `t`; every action goes through the Session; every failure is named by
 * the error table (errors.ts). Elements tests rely on carry `data-test`.
 */

import { DEFAULT_LIMITS } from "@sealpost/protocol";

import { deliveryWords } from "../delivery.js";
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
import { LANGUAGES, Translator, isLanguage, type Catalogue, type Language } from "../i18n.js";
import {
  ContactStatus,
  DeliveryStatus,
  type ContactView,
  type DeviceView,
  type MessageView,
  type NotificationSetting,
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
    // Another device of an account already in use: the code it showed, behind an option.
    const linking = h("input", {
      type: "checkbox",
      id: "signup-link-toggle",
      "aria-controls": "signup-link",
      "data-test": "signup-link-toggle",
    });
    const code = h("input", {
      type: "text",
      autocomplete: "off",
      autocapitalize: "characters",
      spellcheck: "false",
      dir: "ltr",
      class: "code-input",
      "data-test": "signup-link-code",
    });
    const codeField = this.#field(
      "signup-link-code",
      this.t("signup.linkCode"),
      code,
      this.t("signup.linkCodeHint"),
    );
    const linkPart = h(
      "div",
      { id: "signup-link", hidden: true },
      h("p", {}, this.t("signup.linkIntro")),
      codeField.wrapper,
    );
    linking.addEventListener("change", () => {
      linkPart.hidden = !linking.checked;
      if (!linking.checked) codeField.showError(undefined);
    });
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
      h(
        "div",
        { class: "checkbox" },
        linking,
        h("label", { for: "signup-link-toggle" }, this.t("signup.linkToggle")),
      ),
      linkPart,
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
      codeField.showError(
        linking.checked && code.value.trim() === "" ? this.t("error.linkCodeRequired") : undefined,
      );
      const invalid = form.querySelector<HTMLElement>("[aria-invalid=true]");
      if (invalid !== null) {
        invalid.focus();
        return;
      }
      void this.#busy(button, this.t("signup.working"), async () => {
        try {
          await this.session.register(
            name.value,
            pass.value,
            linking.checked ? code.value : undefined,
          );
          pass.value = "";
          again.value = "";
          this.announce(this.t(linking.checked ? "signup.linkDone" : "signup.done"));
          this.#go("#/contacts");
        } catch (error) {
          if (errorKey(error) === "error.linkCode") {
            // The code's fault: said at the code, which takes the focus to be typed again.
            replace(errors);
            codeField.showError(this.#explain(error));
            code.focus();
          } else {
            replace(errors, this.#errorBox(error));
          }
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
      const words = deliveryWords(this.#t, message.status, message.withholdReason);
      status.push(
        h(
          "p",
          {
            class: "delivery",
            "data-test": "message-status",
            "data-status": DeliveryStatus[message.status ?? 0],
          },
          words.status,
        ),
        words.details.length === 0
          ? null
          : h(
              "div",
              {
                class: "withheld",
                "data-test": "message-withheld",
                "data-reason": words.reason ?? "UNSPECIFIED",
              },
              words.details.map((line) => h("p", {}, line)),
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

  async #accountPage(): Promise<HTMLElement> {
    const content: Child[] = [];
    if (this.session.unlocked) {
      const [devices, notices] = await Promise.all([
        this.#devicesSection(),
        this.#noticesSection(),
      ]);
      content.push(this.#linkSection(), devices, this.#lossSection(), notices);
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

  /** A one-time code for another device of this account (protocol.md 6.1.1). */
  #linkSection(): HTMLElement {
    const result = h("div", { class: "link-result" });
    const button = h(
      "button",
      { type: "button", class: "button", "data-test": "link-create" },
      this.t("account.linkCreate"),
    );
    button.addEventListener("click", () => {
      void this.#busy(button, this.t("account.linkWorking"), async () => {
        try {
          const link = await this.session.linkDevice();
          replace(
            result,
            h("p", { id: "link-code-label", class: "link-label" }, this.t("account.linkCodeLabel")),
            h(
              "p",
              {
                class: "link-code",
                dir: "ltr",
                "aria-labelledby": "link-code-label",
                "data-test": "link-code",
              },
              link.code,
            ),
            h(
              "p",
              { "data-test": "link-expires" },
              this.t("account.linkExpires", { time: this.#t.dateTime(link.expiresAtMs) }),
            ),
            h("p", { class: "callout" }, this.t("account.linkInstructions")),
          );
          this.announce(this.t("account.linkReady"));
        } catch (error) {
          replace(result, this.#errorBox(error));
          this.announce(this.#explain(error));
        }
      });
    });
    return h(
      "section",
      { "aria-labelledby": "link-heading" },
      h("h2", { id: "link-heading" }, this.t("account.linkTitle")),
      h("p", {}, this.t("account.linkText")),
      button,
      result,
    );
  }

  /** The account's devices, each verified; revoking one asks first, this one more firmly. */
  async #devicesSection(): Promise<HTMLElement> {
    const heading = h("h2", { id: "devices-heading" }, this.t("account.devicesTitle"));
    const section = (...body: Child[]): HTMLElement =>
      h(
        "section",
        { "aria-labelledby": "devices-heading" },
        heading,
        h("p", {}, this.t("account.devicesIntro")),
        ...body,
      );
    let devices: DeviceView[];
    try {
      devices = await this.session.devices();
    } catch (error) {
      return section(this.#errorBox(error));
    }
    const items = devices.map((device) => {
      const name =
        device.thisDevice && device.name !== undefined && device.name !== ""
          ? device.name
          : this.t("account.deviceOther", { id: device.keyId.slice(0, 8) });
      const revoked = device.revokedAtMs !== undefined;
      const item = h(
        "li",
        {
          class: revoked ? "device device--revoked" : "device",
          "data-test": "device",
          "data-key-id": device.keyId,
          "data-revoked": String(revoked),
          "data-this": String(device.thisDevice),
        },
        h(
          "p",
          { class: "device-name" },
          h("span", { dir: "auto" }, name),
          device.thisDevice
            ? [" ", h("span", { class: "badge badge--this" }, this.t("account.deviceThis"))]
            : null,
        ),
        h(
          "p",
          { class: "meta" },
          h(
            "time",
            { datetime: new Date(Number(device.addedAtMs)).toISOString() },
            this.t("account.deviceAdded", { time: this.#t.dateTime(device.addedAtMs) }),
          ),
        ),
        device.revokedAtMs === undefined
          ? null
          : h(
              "p",
              {},
              h(
                "span",
                { class: "badge badge--revoked" },
                this.t("account.deviceRevoked", { time: this.#t.dateTime(device.revokedAtMs) }),
              ),
            ),
      );
      if (!revoked) item.append(this.#revokeControl(device));
      return item;
    });
    return section(h("ul", { class: "devices", "data-test": "device-list" }, items));
  }

  /** "Revoke", then what it means and a second button to do it. */
  #revokeControl(device: DeviceView): HTMLElement {
    const id = `revoke-${device.keyId.slice(0, 16)}`;
    const open = h(
      "button",
      {
        type: "button",
        class: "button button--secondary",
        "aria-expanded": "false",
        "aria-controls": id,
        "data-test": "device-revoke",
      },
      this.t("account.deviceRevoke"),
    );
    const confirm = h(
      "button",
      { type: "button", class: "button button--danger", "data-test": "device-revoke-confirm" },
      this.t("account.revokeConfirm"),
    );
    const cancel = h(
      "button",
      { type: "button", class: "button button--secondary" },
      this.t("account.revokeCancel"),
    );
    const result = h("div");
    const panel = h(
      "div",
      { id, class: "confirm", hidden: true, role: "group", "aria-labelledby": `${id}-text` },
      h("p", { id: `${id}-text` }, this.t("account.revokeConfirmText")),
      device.thisDevice ? h("p", { class: "callout" }, this.t("account.revokeThisWarning")) : null,
      result,
      h("div", { class: "actions" }, confirm, " ", cancel),
    );
    const show = (shown: boolean): void => {
      panel.hidden = !shown;
      open.setAttribute("aria-expanded", String(shown));
      (shown ? confirm : open).focus();
    };
    open.addEventListener("click", () => {
      show(true);
    });
    cancel.addEventListener("click", () => {
      replace(result);
      show(false);
    });
    confirm.addEventListener("click", () => {
      void this.#busy(confirm, this.t("account.revoking"), async () => {
        try {
          const signedOut = await this.session.revokeDevice(device.keyId);
          if (signedOut) {
            this.announce(this.t("account.revokedSelf"));
            this.#go("#/");
            return;
          }
          this.announce(this.t("account.revoked"));
          await this.render();
          this.#main.querySelector<HTMLElement>("#devices-heading")?.focus();
        } catch (error) {
          replace(result, this.#errorBox(error));
          this.announce(this.#explain(error));
        }
      });
    });
    return h("div", { class: "device-actions" }, open, panel);
  }

  /** What stays and what is gone when every device is lost (docs/relatives.md, "Devices"). */
  #lossSection(): HTMLElement {
    return h(
      "section",
      { "aria-labelledby": "loss-heading" },
      h("h2", { id: "loss-heading" }, this.t("account.lossTitle")),
      h("p", {}, this.t("account.lossText")),
    );
  }

  /** The e-mail address told when there is news (never who or what), and its language. */
  async #noticesSection(): Promise<HTMLElement> {
    const heading = h("h2", { id: "notify-heading" }, this.t("account.notifyTitle"));
    const intro = h("p", {}, this.t("account.notifyText"));
    let setting: NotificationSetting;
    try {
      setting = await this.session.notifications();
    } catch (error) {
      return h(
        "section",
        { "aria-labelledby": "notify-heading" },
        heading,
        intro,
        this.#errorBox(error),
      );
    }
    const current = h("p", { "data-test": "notify-current" });
    const show = (now: NotificationSetting): void => {
      const language = isLanguage(now.language) ? now.language : undefined;
      current.textContent =
        now.email === ""
          ? this.t("account.notifyNone")
          : this.t("account.notifyCurrent", {
              email: now.email,
              language:
                language === undefined
                  ? now.language
                  : (this.catalogues[language]["language.self"] ?? language),
            });
    };
    show(setting);
    const email = h("input", {
      type: "email",
      autocomplete: "email",
      dir: "ltr",
      value: setting.email,
      "data-test": "notify-email",
    });
    const chosen = isLanguage(setting.language) ? setting.language : this.#t.language;
    const language = h(
      "select",
      { "data-test": "notify-language" },
      LANGUAGES.map((code) =>
        h(
          "option",
          { value: code, lang: code, selected: code === chosen },
          this.catalogues[code]["language.self"] ?? code,
        ),
      ),
    );
    const emailField = this.#field("notify-email", this.t("account.notifyEmail"), email);
    const languageField = this.#field(
      "notify-language",
      this.t("account.notifyLanguage"),
      language,
    );
    const save = h(
      "button",
      { type: "submit", class: "button", "data-test": "notify-save" },
      this.t("account.notifySave"),
    );
    const remove = h(
      "button",
      { type: "button", class: "button button--secondary", "data-test": "notify-remove" },
      this.t("account.notifyRemove"),
    );
    const result = h("div");
    const form = h(
      "form",
      { novalidate: true, "data-test": "notify-form" },
      emailField.wrapper,
      languageField.wrapper,
      h("div", { class: "actions" }, save, " ", remove),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      replace(result);
      emailField.showError(undefined);
      void this.#busy(save, this.t("account.notifySaving"), async () => {
        try {
          await this.session.setNotifications(email.value, language.value);
          show(await this.session.notifications());
          this.announce(this.t("account.notifySaved"));
        } catch (error) {
          const key = errorKey(error);
          if (key === "error.email" || key === "error.emailRequired") {
            emailField.showError(this.#explain(error));
            email.focus();
          } else {
            replace(result, this.#errorBox(error));
          }
          this.announce(this.#explain(error));
        }
      });
    });
    remove.addEventListener("click", () => {
      replace(result);
      emailField.showError(undefined);
      void this.#busy(remove, this.t("account.notifySaving"), async () => {
        try {
          await this.session.removeNotifications();
          email.value = "";
          show(await this.session.notifications());
          this.announce(this.t("account.notifyRemoved"));
        } catch (error) {
          replace(result, this.#errorBox(error));
          this.announce(this.#explain(error));
        }
      });
    });
    return h(
      "section",
      { "aria-labelledby": "notify-heading" },
      heading,
      intro,
      current,
      result,
      form,
    );
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
