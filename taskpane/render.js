// Turns Report JSON into DOM, and nothing else: no Office.js, no HTTP, no globals beyond
// `document`. Everything here can be driven by a page that has never seen Outlook.

import { t } from "./strings.js";

const PATH_AREAS = new Set(["smtp", "submission"]);
const STATUS_ORDER = { fail: 0, unknown: 1, pass: 2 };
const SEVERITY_RANK = { critical: 2, warning: 1, info: 0 };

/** Which group a finding belongs to: "sender", "requirements", "path" or "recipients". */
export function groupOf(finding) {
  const a = finding.id.split(".", 1)[0];
  if (a === "recipient") return "recipients";
  if (a === "requirements") return a;
  // Send-As and the alignment prediction are about the path this message takes.
  if (a === "sendas" || a === "alignment" || finding.id === "dmarc.will_fail") return "path";
  // A probe of the domain's own MX on port 25 is about receiving, so it is the sender's.
  return PATH_AREAS.has(a) && finding.data?.port !== 25 ? "path" : "sender";
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
  const level = critical ? "critical" : warnings ? "warning" : pending ? "checking" : "ok";
  return { level, critical, warnings, unknown, pending };
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child != null));
  return node;
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
}

/** Empties a group's body and says whether it is waiting (aria-busy). */
function reset(body, busy = false) {
  clear(body);
  body.setAttribute("aria-busy", String(busy));
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
  // Odd parts are the code spans.
  String(text).split(/`([^`]+)`/).forEach((part, index) => {
    if (index % 2 === 0) fragment.append(part);
    else fragment.append(el("code", { text: part }), ...(onCopy ? [copyButton(part, onCopy)] : []));
  });
  return fragment;
}

function copyButton(text, onCopy, label = text) {
  const what = label.length > 40 ? `${label.slice(0, 37)}…` : label;
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

const STATUS_TEXT = {
  pass: "statusPass", fail: "statusFail", unknown: "statusUnknown", not_checkable: "statusNotCheckable",
};
const SEVERITY_TEXT = { critical: "severityCritical", warning: "severityWarning", info: "severityInfo" };
const STATUS_ICON = { pass: "✓", fail: "✗", unknown: "?", not_checkable: "–" };

function statusIcon(status, label = t(STATUS_TEXT[status] || "statusUnknown")) {
  return el("span", { class: "status", role: "img", "aria-label": label, text: STATUS_ICON[status] });
}

const recordKey = (r) => `${r.type}\u0000${r.name}\u0000${r.value}`;

/** Records to publish, each with a copy button; a FILE shows its URL and its body. A record
 * already shown under an earlier finding of the list (seen) is named, not repeated. */
function records(list, onCopy, seen) {
  // Several records under one finding (DMARC's stages, two CNAMEs): the label says which.
  const item = (r, i) => {
    const again = seen.has(recordKey(r));
    seen.add(recordKey(r));
    return el(
      "li",
      { "data-type": r.type },
      el("span", { class: "record-type", text: r.ttl && r.type !== "FILE" ? t("recordTtl", r) : r.type }),
      el("code", { text: r.name }),
      again
        ? el("span", { class: "record-note", text: t("recordAbove") })
        : el(r.type === "FILE" ? "pre" : "code", { class: "record-value", text: r.value }),
      onCopy && !again
        ? copyButton(r.value, onCopy, `${list.length > 1 ? `${i + 1}/${list.length} ` : ""}${r.type} ${r.name}`)
        : null,
      r.note && !again ? el("span", { class: "record-note", text: r.note }) : null,
    );
  };
  return el("ul", { class: "records" }, ...list.map(item));
}

export function renderFinding(finding, { onCopy, seen = new Set() } = {}) {
  const { status: state, severity: level } = finding;
  const severity = t(SEVERITY_TEXT[level] || "severityInfo");
  const status = t(STATUS_TEXT[state] || "statusUnknown");
  const failed = state === "fail";
  const summary = el(
    "summary",
    {},
    statusIcon(state, failed ? `${status}, ${severity}` : status),
    el("span", { class: "finding-title", text: finding.title }),
    failed ? el("span", { class: `badge badge--${level}`, text: severity }) : null,
  );
  // Copy buttons only in the fix and its records: that is where the records to publish are.
  const details = el(
    "details",
    { open: failed },
    summary,
    finding.detail ? el("p", { class: "detail" }, richText(finding.detail, null)) : null,
    finding.fix
      ? el("div", { class: "fix" }, el("span", { class: "fix-label", text: `${t("fixLabel")}: ` }), richText(finding.fix, onCopy))
      : null,
    finding.records?.length ? records(finding.records, onCopy, seen) : null,
    finding.spec ? el("p", { class: "spec", text: `${t("specLabel")}: ${finding.spec} · ${finding.id}` }) : null,
  );
  const attrs = { "data-id": finding.id, "data-status": state, "data-subject": finding.subject };
  return el("li", { class: `finding finding--${state} finding--${level}`, ...attrs }, details);
}

function findingList(findings, options) {
  const shown = { ...options, seen: new Set() };
  return el("ul", { class: "findings" }, ...sortFindings(findings).map((f) => renderFinding(f, shown)));
}

/** Marks a group as waiting for its answer. */
export function renderPending(body) {
  reset(body, true);
  body.append(
    el("p", { class: "pending" }, el("fluent-spinner", { size: "tiny", "aria-hidden": "true" }), t("checking")),
  );
}

export function renderMessage(body, text, kind = "note") {
  reset(body);
  body.append(el("p", { class: `message message--${kind}`, text }));
}

export function renderGroup(body, findings, options = {}) {
  if (!findings.length) return renderMessage(body, options.empty || t("groupEmpty"));
  reset(body);
  body.append(findingList(findings, options));
}

/** The provider-requirements checklist (report.facts.requirements.checklist), one line each. */
export function renderChecklist(body, lines = []) {
  if (!lines.length) return renderMessage(body, t("groupEmpty"));
  reset(body);
  const who = (p) => `${p.provider}${p.uncertain ? t("uncertainMark") : ""}: ${p.applies_to}`;
  const line = (item) =>
    el(
      "li",
      { class: `finding finding--${item.status}`, "data-id": item.id, "data-status": item.status },
      el(
        "details",
        {},
        el(
          "summary",
          {},
          statusIcon(item.status),
          el("span", { class: "finding-title", text: item.requirement }),
          el("span", { class: "who", text: item.providers.map(who).join(" · ") }),
        ),
        el("p", { class: "detail", text: item.why }),
      ),
    );
  body.append(el("ul", { class: "findings checklist" }, ...lines.map(line)));
}

/** Recipients, one block per domain, in the order the domains were given. */
export function renderRecipients(body, findings, options = {}) {
  if (!findings.length) return renderMessage(body, options.empty || t("noRecipients"));
  reset(body);
  const byDomain = new Map();
  for (const f of findings) byDomain.set(f.subject, [...(byDomain.get(f.subject) || []), f]);
  for (const [domain, list] of byDomain) {
    const worst = verdict(list).level;
    const addresses = list.find((f) => Array.isArray(f.data?.recipients));
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
  container.hidden = !error;
  if (!error) return;
  container.dataset.kind = error.kind;
  container.append(el("p", { text: errorText(error) }));
  if (onRetry) {
    const retry = el("fluent-button", { class: "retry", text: t("retryButton") });
    retry.addEventListener("click", onRetry);
    container.append(retry);
  }
}

const ERROR_TEXT = {
  network: "errorNetwork",
  backend: "errorBackend",
  timeout: "errorTimeout",
  declined: "errorSignInDeclined",
  signin: "errorSignIn",
  auth: "errorForbidden",
  forbidden: "errorForbidden",
  bad_input: "errorBadInput",
  no_from: "errorNoFrom",
};

export function errorText(error) {
  return t(ERROR_TEXT[error.kind] || "errorUnexpected", {
    status: error.status || "no answer",
    reason: error.reason || error.status || error.message || "unknown error",
  });
}
