// Turns Report JSON into DOM, and nothing else: no Office.js, no HTTP, no globals beyond
// `document`. Everything here can be driven by a page that has never seen Outlook.

import { t } from "./strings.js";

const SENDER_AREAS = new Set([
  "mx", "spf", "dkim", "dmarc", "mta_sts", "tlsrpt", "bimi", "dnssec", "dane", "ptr",
  "alignment", "requirements", "services", "engine",
]);
const PATH_AREAS = new Set(["smtp", "submission"]);
const STATUS_ORDER = { fail: 0, unknown: 1, pass: 2 };
const SEVERITY_RANK = { critical: 2, warning: 1, info: 0 };

function area(finding) {
  return finding.id.split(".", 1)[0];
}

/** Which group a finding belongs to: "sender", "path" or "recipients". */
export function groupOf(finding) {
  const a = area(finding);
  if (a === "recipient") return "recipients";
  if (PATH_AREAS.has(a)) {
    // A probe of the domain's own MX on port 25 is about receiving, so it is the sender's.
    const port = finding.data && finding.data.port;
    return port === 25 ? "sender" : "path";
  }
  if (SENDER_AREAS.has(a)) return "sender";
  return "sender";
}

export function sortFindings(findings) {
  return [...findings].sort(
    (x, y) =>
      STATUS_ORDER[x.status] - STATUS_ORDER[y.status] ||
      SEVERITY_RANK[y.severity] - SEVERITY_RANK[x.severity],
  );
}

/** The overall verdict over every finding seen so far. */
export function verdict(findings, { pending = false } = {}) {
  const problems = findings.filter((f) => f.status === "fail");
  const critical = problems.filter((f) => f.severity === "critical").length;
  const warnings = problems.filter((f) => f.severity === "warning").length;
  const unknown = findings.filter((f) => f.status === "unknown").length;
  let level = "ok";
  if (critical) level = "critical";
  else if (warnings) level = "warning";
  else if (pending) level = "checking";
  return { level, critical, warnings, unknown, pending };
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
}

export function renderVerdict(container, state) {
  clear(container);
  container.dataset.level = state.level;
  const titles = {
    critical: [t("verdictCritical"), t("verdictCriticalDetail", { count: state.critical })],
    warning: [t("verdictWarning"), t("verdictWarningDetail", { count: state.warnings })],
    ok: [t("verdictOk"), t("verdictOkDetail")],
    checking: [t("verdictChecking"), ""],
  }[state.level];
  const icon = { critical: "✗", warning: "!", ok: "✓", checking: "…" }[state.level];
  container.append(
    el("span", { class: "verdict-icon", "aria-hidden": "true", text: icon }),
    el(
      "div",
      { class: "verdict-text" },
      el("strong", { class: "verdict-title", text: titles[0] }),
      titles[1] ? el("span", { class: "verdict-detail", text: titles[1] }) : null,
      state.unknown
        ? el("span", { class: "verdict-partial", text: t("verdictPartial", { count: state.unknown }) })
        : null,
    ),
  );
}

/** Text with `code spans` as <code> elements, each followed by a copy button. */
function richText(text, onCopy) {
  const fragment = document.createDocumentFragment();
  const parts = String(text).split(/`([^`]+)`/);
  parts.forEach((part, index) => {
    if (index % 2 === 0) {
      if (part) fragment.append(document.createTextNode(part));
      return;
    }
    fragment.append(el("code", { text: part }));
    if (onCopy) fragment.append(copyButton(part, onCopy));
  });
  return fragment;
}

function copyButton(text, onCopy) {
  const what = text.length > 40 ? `${text.slice(0, 37)}…` : text;
  const button = el("fluent-button", {
    class: "copy",
    size: "small",
    appearance: "subtle",
    "aria-label": t("copyLabel", { what }),
    "data-copy": text,
    text: t("copyButton"),
  });
  button.addEventListener("click", (event) => {
    event.preventDefault();
    onCopy(text, button);
  });
  return button;
}

const STATUS_TEXT = { pass: "statusPass", fail: "statusFail", unknown: "statusUnknown" };
const SEVERITY_TEXT = { critical: "severityCritical", warning: "severityWarning", info: "severityInfo" };
const STATUS_ICON = { pass: "✓", fail: "✗", unknown: "?" };

export function renderFinding(finding, { onCopy } = {}) {
  const status = t(STATUS_TEXT[finding.status] || "statusUnknown");
  const severity = t(SEVERITY_TEXT[finding.severity] || "severityInfo");
  const label = finding.status === "fail" ? `${status}, ${severity}` : status;
  const item = el("li", {
    class: `finding finding--${finding.status} finding--${finding.severity}`,
    "data-id": finding.id,
    "data-status": finding.status,
    "data-subject": finding.subject,
  });
  const details = el("details", { open: finding.status === "fail" });
  details.append(
    el(
      "summary",
      {},
      el("span", { class: "status", role: "img", "aria-label": label, text: STATUS_ICON[finding.status] }),
      el("span", { class: "finding-title", text: finding.title }),
      finding.status === "fail"
        ? el("span", { class: `badge badge--${finding.severity}`, text: severity })
        : null,
    ),
  );
  // Copy buttons only in the fix: that is where the records to publish are.
  if (finding.detail) details.append(el("p", { class: "detail" }, richText(finding.detail, null)));
  if (finding.fix) {
    details.append(
      el(
        "div",
        { class: "fix" },
        el("span", { class: "fix-label", text: `${t("fixLabel")}: ` }),
        richText(finding.fix, onCopy),
      ),
    );
  }
  if (finding.spec) {
    details.append(el("p", { class: "spec", text: `${t("specLabel")}: ${finding.spec} · ${finding.id}` }));
  }
  item.append(details);
  return item;
}

function findingList(findings, options) {
  const list = el("ul", { class: "findings" });
  for (const finding of sortFindings(findings)) list.append(renderFinding(finding, options));
  return list;
}

/** Marks a group as waiting for its answer. */
export function renderPending(body) {
  clear(body);
  body.setAttribute("aria-busy", "true");
  body.append(
    el("p", { class: "pending" }, el("fluent-spinner", { size: "tiny", "aria-hidden": "true" }), t("checking")),
  );
}

export function renderMessage(body, text, kind = "note") {
  clear(body);
  body.setAttribute("aria-busy", "false");
  body.append(el("p", { class: `message message--${kind}`, text }));
}

export function renderGroup(body, findings, options = {}) {
  clear(body);
  body.setAttribute("aria-busy", "false");
  if (!findings.length) {
    body.append(el("p", { class: "message message--note", text: options.empty || t("groupEmpty") }));
    return;
  }
  body.append(findingList(findings, options));
}

/** Recipients, one block per domain, in the order the domains were given. */
export function renderRecipients(body, findings, options = {}) {
  clear(body);
  body.setAttribute("aria-busy", "false");
  if (!findings.length) {
    body.append(el("p", { class: "message message--note", text: options.empty || t("noRecipients") }));
    return;
  }
  const byDomain = new Map();
  for (const finding of findings) {
    const key = finding.subject;
    if (!byDomain.has(key)) byDomain.set(key, []);
    byDomain.get(key).push(finding);
  }
  for (const [domain, list] of byDomain) {
    const worst = verdict(list).level;
    const addresses = list.find((f) => f.data && Array.isArray(f.data.recipients));
    const heading = el(
      "h3",
      { class: `recipient-domain recipient-domain--${worst}` },
      el("span", { text: domain }),
      addresses
        ? el("span", { class: "recipient-addresses", text: ` (${addresses.data.recipients.join(", ")})` })
        : null,
    );
    body.append(el("section", { class: "recipient", "data-domain": domain }, heading, findingList(list, options)));
  }
}

export function renderError(container, error, { onRetry } = {}) {
  clear(container);
  if (!error) {
    container.hidden = true;
    return;
  }
  container.hidden = false;
  container.dataset.kind = error.kind;
  container.append(el("p", { text: errorText(error) }));
  if (onRetry) {
    const retry = el("fluent-button", { class: "retry", text: t("retryButton") });
    retry.addEventListener("click", onRetry);
    container.append(retry);
  }
}

export function errorText(error) {
  switch (error.kind) {
    case "network":
      return t("errorNetwork");
    case "backend":
      return t("errorBackend", { status: error.status || "no answer" });
    case "timeout":
      return t("errorTimeout");
    case "declined":
      return t("errorSignInDeclined");
    case "signin":
      return t("errorSignIn", { reason: error.reason || "unknown error" });
    case "auth":
    case "forbidden":
      return t("errorForbidden", { reason: error.reason || error.status });
    case "bad_input":
      return t("errorBadInput", { reason: error.reason });
    case "no_from":
      return t("errorNoFrom");
    default:
      return t("errorUnexpected", { reason: error.reason || String(error.message || error) });
  }
}
