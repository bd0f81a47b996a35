// The task pane's entry point: reads the message (or the standalone form), signs in, asks
// the service, and hands each answer to render.js the moment it arrives.

import { ApiError, check } from "./api.js";
import { SignInError, createAuth } from "./auth.js";
import * as office from "./office-context.js";
import {
  groupOf,
  renderChecklist,
  renderError,
  renderGroup,
  renderMessage,
  renderPending,
  renderRecipients,
  renderVerdict,
  verdict,
} from "./render.js";
import { t } from "./strings.js";

const $ = (id) => document.getElementById(id);

const config = {
  clientId: document.body.dataset.clientId || "",
  authority: document.body.dataset.authority || "https://login.microsoftonline.com/organizations",
  apiBase: document.body.dataset.apiBase || "",
};

let auth = null;
let generation = 0;

function translate() {
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
    node.setAttribute("placeholder", t(node.dataset.i18nPlaceholder));
  }
  for (const node of document.querySelectorAll("[data-i18n-label]")) {
    node.setAttribute("aria-label", t(node.dataset.i18nLabel));
  }
}

async function applyTheme() {
  const dark =
    office.officeThemeIsDark() ?? Boolean(globalThis.matchMedia?.("(prefers-color-scheme: dark)").matches);
  document.documentElement.dataset.theme = dark ? "dark" : "light";
  try {
    const [{ setTheme }, tokens] = await Promise.all([
      import("../vendor/fluent/web-components.js"),
      import("../vendor/tokens/index.js"),
    ]);
    setTheme(dark ? tokens.webDarkTheme : tokens.webLightTheme);
  } catch (error) {
    // Without Fluent the pane still works with plain styles; say why in the console.
    console.warn("SendReady: Fluent UI could not be loaded", error);
  }
}

async function copyText(text, button) {
  let ok = true;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No Clipboard API (insecure context) or the host's policy denies it: the older way.
    const area = Object.assign(document.createElement("textarea"), { value: text, readOnly: true });
    area.className = "offscreen";
    document.body.append(area);
    area.select();
    ok = document.execCommand("copy");
    area.remove();
  }
  button.textContent = ok ? t("copied") : t("copyButton");
  $("announce").textContent = ok ? t("copied") : t("copyFailed");
}

function asError(error) {
  if (error instanceof SignInError) {
    return error.code === "declined" ? { kind: "declined" } : { kind: "signin", reason: error.reason };
  }
  if (error instanceof ApiError) return { kind: error.kind, reason: error.reason, status: error.status };
  return { kind: "unexpected", reason: String(error?.message || error) };
}

const SENDER_GROUPS = ["sender", "requirements", "path"];

/** One check of the sender (with the draft's unsubscribe headers, null if unread) and the
 * recipients, rendered as the two answers arrive. */
export async function run(from, recipients, headers = null) {
  const mine = ++generation;
  const current = () => mine === generation;
  const seen = { sender: null, recipients: null };
  const bodies = {};
  for (const group of [...SENDER_GROUPS, "recipients"]) bodies[group] = $(`${group}-body`);
  let pending = recipients.length ? 2 : 1;
  let shownError = null;
  document.body.dataset.state = "checking";
  renderError($("error"), null);
  renderVerdict($("verdict"), verdict([], { pending: true }));
  for (const group of SENDER_GROUPS) renderPending(bodies[group]);
  if (recipients.length) renderPending(bodies.recipients);
  else renderMessage(bodies.recipients, t("noRecipients"));
  $("sender-hint").textContent = t("groupSenderHint", { domain: from.split("@").pop() });

  const update = () => {
    const all = [...(seen.sender || []), ...(seen.recipients || [])];
    renderVerdict($("verdict"), verdict(all, { pending: pending > 0 }));
    if (pending === 0) document.body.dataset.state = shownError ? "error" : "done";
  };
  const fail = (error, groups) => {
    if (!current()) return;
    pending -= 1;
    const info = asError(error);
    if (!shownError) {
      shownError = info;
      renderError($("error"), info, { onRetry: () => run(from, recipients, headers) });
    }
    for (const group of groups) renderMessage(bodies[group], t("groupFailed"), "error");
    if (seen.sender || seen.recipients) update();
    else {
      $("verdict").hidden = pending === 0;
      if (pending === 0) document.body.dataset.state = "error";
    }
  };
  $("verdict").hidden = false;

  let token = null;
  try {
    token = await auth.token();
  } catch (error) {
    if (!current()) return;
    pending = 1; // nothing will be asked: this one failure settles the whole check
    fail(error, [...SENDER_GROUPS, ...(recipients.length ? ["recipients"] : [])]);
    return;
  }
  if (!current()) return;

  const options = { base: config.apiBase, token, from };
  // Two requests, so whichever answers first is shown first: the recipients' domains are
  // a few DNS questions; the sender's report may wait for SMTP probes.
  check({ ...options, recipients: [], headers }).then(
    (report) => {
      if (!current()) return;
      pending -= 1;
      const findings = report.findings.filter((f) => groupOf(f) !== "recipients");
      seen.sender = findings;
      renderGroup(bodies.sender, findings.filter((f) => groupOf(f) === "sender"), { onCopy: copyText });
      renderChecklist(bodies.requirements, report.facts?.requirements?.checklist);
      renderGroup(bodies.path, findings.filter((f) => groupOf(f) === "path"), {
        onCopy: copyText,
        empty: t("pathNotChecked"),
      });
      update();
    },
    (error) => fail(error, SENDER_GROUPS),
  );
  if (recipients.length) {
    check({ ...options, recipients, options: { probe_smtp: false } }).then(
      (report) => {
        if (!current()) return;
        pending -= 1;
        const findings = report.findings.filter((f) => groupOf(f) === "recipients");
        seen.recipients = findings;
        renderRecipients(bodies.recipients, findings, {
          onCopy: copyText,
          empty: t("recipientsNoResults"),
        });
        update();
      },
      (error) => fail(error, ["recipients"]),
    );
  }
}

const splitRecipients = (text) => text.split(/[\s,;]+/).filter(Boolean);

function startStandalone() {
  document.body.dataset.mode = "standalone";
  $("standalone").hidden = false;
  const submit = (event) => {
    if (event) event.preventDefault();
    const from = $("from").value.trim();
    if (!from) {
      renderError($("error"), { kind: "no_from" });
      $("from").focus();
      return;
    }
    run(from, splitRecipients($("recipients").value));
  };
  // fluent-button type="submit" submits the form, by click or by keyboard.
  $("standalone").addEventListener("submit", submit);
  for (const id of ["from", "recipients"]) {
    $(id).addEventListener("keydown", (event) => {
      // Enter in the address field, Ctrl+Enter in the list: fluent-button does not take
      // part in implicit form submission.
      if (event.key === "Enter" && (id === "from" || event.ctrlKey || event.metaKey)) submit(event);
    });
  }
  $("from").focus();
}

async function startInOutlook() {
  document.body.dataset.mode = "outlook";
  $("context").hidden = false;
  const refresh = async () => {
    const [from, recipients, headers] = await Promise.all([
      office.readFrom(),
      office.readRecipients(),
      office.readUnsubscribeHeaders(),
    ]);
    $("context-from").textContent = from ? t("contextFrom", { from }) : t("contextNoFrom");
    $("context-to").textContent = recipients.length
      ? t("contextTo", { recipients: recipients.join(", ") })
      : t("contextNoRecipients");
    if (!from) {
      renderError($("error"), { kind: "no_from" });
      return;
    }
    await run(from, recipients, headers);
  };
  $("recheck").addEventListener("click", refresh);
  let timer = null;
  office.onItemChanged(() => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400); // typing a list of recipients fires many events
  });
  await refresh();
}

async function main() {
  translate();
  const info = await office.ready();
  // The theme loads Fluent UI and its tokens; the check need not wait for them.
  applyTheme();
  auth = createAuth(config);
  if (office.inOutlook(info)) await startInOutlook();
  else startStandalone();
}

main();
