// The admin page: signs the admin in, lists scans, starts one, follows its progress,
// highlights regressions. Plain DOM, no inline script (the page's CSP allows only 'self');
// every value from the API is set as text, never as HTML.

const API = "/api/v1/admin/scans";
const POLL_MS = 1500;
let selected = null;
let timer = null;

const $ = (id) => document.getElementById(id);
const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content || "";

// -- sign-in: MSAL.js (the service's pinned bundle), a popup the first time ----------------
// Without a client id the service runs in development mode on loopback: no token at all.

const clientId = meta("sendready-client-id");
const authority = meta("sendready-authority");
const scopes = [`api://${clientId}/access_as_user`];
let msalApp = null;
let account = null;
let accessToken = null;

class SignInNeeded extends Error {}

async function app() {
  if (!msalApp) {
    msalApp = await globalThis.msal.createStandardPublicClientApplication({
      auth: { clientId, authority, redirectUri: globalThis.location.origin },
      cache: { cacheLocation: "sessionStorage" },
    });
    account = msalApp.getAllAccounts()[0] || null;
  }
  return msalApp;
}

async function token() {
  if (!clientId) return null;
  const client = await app();
  if (account) {
    try {
      accessToken = (await client.acquireTokenSilent({ scopes, account })).accessToken;
    } catch (error) {
      if (!accessToken) throw new SignInNeeded(error.message);
    }
  }
  if (!accessToken) throw new SignInNeeded("sign in to use the admin page");
  return accessToken;
}

async function signIn() {
  try {
    const result = await (await app()).acquireTokenPopup({ scopes });
    accessToken = result.accessToken;
    account = result.account || account;
    $("signin").hidden = true;
    $("account").textContent = account?.username ? `Signed in as ${account.username}.` : "Signed in.";
    await refresh();
  } catch (error) {
    say(`Sign-in failed: ${error.message}`, true);
  }
}

async function headers() {
  const h = { Accept: "application/json" };
  const bearer = await token();
  if (bearer) h.Authorization = `Bearer ${bearer}`;
  return h;
}

async function call(url, options = {}) {
  const response = await fetch(url, { ...options, headers: { ...(await headers()), ...(options.headers || {}) } });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) accessToken = null;
  if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
  return body;
}

function say(text, isError = false) {
  const el = $("message");
  el.textContent = text;
  el.className = isError ? "error" : "";
}

function cell(row, text, className = "") {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.append(td);
  return td;
}

function exportLinks(td, id) {
  for (const kind of ["csv", "json"]) {
    const a = document.createElement("a");
    a.href = `${API}/${id}/export.${kind}`;
    a.textContent = kind.toUpperCase();
    a.addEventListener("click", (event) => download(event, a.href, `sendready-scan-${id}.${kind}`));
    td.append(a, " ");
  }
}

// A plain link cannot carry the bearer token, so exports are fetched and saved as a blob.
async function download(event, url, name) {
  event.preventDefault();
  try {
    const response = await fetch(url, { headers: await headers() });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await response.blob());
    link.download = name;
    link.click();
    URL.revokeObjectURL(link.href);
  } catch (error) {
    say(`Export failed: ${error.message}`, true);
  }
}

async function listScans() {
  const body = await call(API);
  const tbody = $("scans").querySelector("tbody");
  tbody.replaceChildren();
  for (const scan of body.scans) {
    const row = document.createElement("tr");
    row.dataset.id = scan.id;
    if (scan.id === selected) row.className = "selected";
    const started = cell(row, "");
    const open = document.createElement("a");
    open.className = "open";
    open.tabIndex = 0;
    open.textContent = scan.created_at || scan.id;
    open.addEventListener("click", () => select(scan.id));
    open.addEventListener("keydown", (e) => { if (e.key === "Enter") select(scan.id); });
    started.append(open);
    cell(row, scan.kind);
    cell(row, scan.state);
    cell(row, `${scan.done} / ${scan.domains}`);
    exportLinks(cell(row, ""), scan.id);
    tbody.append(row);
  }
}

async function showScan(id) {
  const scan = await call(`${API}/${id}`);
  $("detail").hidden = false;
  $("detail-title").textContent = `Scan ${scan.id}`;
  const counts = Object.entries(scan.summary).map(([k, v]) => `${v} ${k}`).join(", ");
  $("progress").textContent =
    `${scan.state}: ${scan.done} of ${scan.domains} domains` +
    (counts ? ` (worst finding per domain: ${counts})` : "") +
    (Object.keys(scan.errors).length ? `; ${Object.keys(scan.errors).length} could not be checked` : "");
  const list = $("regressions");
  list.replaceChildren();
  for (const r of scan.regressions) {
    const li = document.createElement("li");
    li.textContent = `${r.domain}: ${r.title} (${r.finding}, ${r.severity}) — passed ${r.before}, fails ${r.now}`;
    list.append(li);
  }
  if (!scan.regressions.length) {
    const li = document.createElement("li");
    li.className = "none";
    li.textContent = scan.complete ? "None." : "Shown when the scan has finished.";
    list.append(li);
  }
  const tbody = $("reports").querySelector("tbody");
  tbody.replaceChildren();
  for (const report of scan.reports) {
    const row = document.createElement("tr");
    cell(row, report.domain);
    cell(row, report.worst || "none", report.worst ? `worst-${report.worst}` : "");
    cell(row, String(report.failed));
    cell(row, report.checked_at || "");
    tbody.append(row);
  }
  return scan.state === "queued" || scan.state === "running";
}

async function select(id) {
  selected = id;
  clearTimeout(timer);
  await refresh();
}

async function refresh() {
  try {
    await listScans();
    if (selected && (await showScan(selected))) timer = setTimeout(refresh, POLL_MS);
  } catch (error) {
    if (error instanceof SignInNeeded) {
      $("signin").hidden = false;
      $("account").textContent = "Sign in with an admin account of your tenant.";
      return;
    }
    say(error.message, true);
  }
}

async function start(event) {
  event.preventDefault();
  const tenant = document.querySelector("input[name=scope]:checked").value === "tenant";
  const domains = $("domains").value.split(/\s+/).filter(Boolean);
  const body = tenant ? { tenant: true } : { domains };
  $("run").disabled = true;
  try {
    const scan = await call(API, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    say(`Scan ${scan.id} started: ${scan.domains} domains.`);
    await select(scan.id);
  } catch (error) {
    say(`Could not start the scan: ${error.message}`, true);
  } finally {
    $("run").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("start").addEventListener("submit", start);
  $("signin").addEventListener("click", signIn);
  if (!clientId) $("account").textContent = "Development mode: sign-in is off (loopback only).";
  refresh();
});
