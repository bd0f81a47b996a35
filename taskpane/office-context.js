// The only module that touches Office.js: it turns Outlook's callback API into promises
// that resolve to plain values (and to "nothing" on failure), so the rest of the pane
// never needs Outlook to run or to be tested.

const READY_TIMEOUT_MS = 3000;

const office = () => globalThis.Office ?? null;

/** Waits for Office.js; resolves {host, platform} or {host: null} outside Office. */
export async function ready() {
  const O = office();
  if (!O || typeof O.onReady !== "function") return { host: null, platform: null };
  const timeout = new Promise((resolve) =>
    setTimeout(() => resolve({ host: null, platform: null }), READY_TIMEOUT_MS),
  );
  try {
    return await Promise.race([O.onReady(), timeout]);
  } catch {
    return { host: null, platform: null };
  }
}

/** True when the pane runs inside Outlook with a message open. */
export const inOutlook = (info) => info?.host === "Outlook" && Boolean(office()?.context?.mailbox?.item);

const item = () => office().context.mailbox.item;

function asPromise(call) {
  return new Promise((resolve) => {
    try {
      call((result) => {
        const ok = result?.status === (office().AsyncResultStatus?.Succeeded ?? "succeeded");
        resolve(ok ? result.value : null);
      });
    } catch {
      resolve(null);
    }
  });
}

const addressOf = (value) => (typeof value === "string" ? value : value?.emailAddress || "");

/** The From address: compose mode reads it asynchronously, read mode has it as a value. */
export async function readFrom() {
  const { from } = item();
  if (typeof from?.getAsync === "function") return addressOf(await asPromise((cb) => from.getAsync(cb)));
  return addressOf(from || office().context.mailbox.userProfile);
}

/** To, Cc and Bcc addresses, deduplicated, in order. */
export async function readRecipients() {
  const current = item();
  const fields = ["to", "cc", "bcc"].map((name) => current[name]).filter(Boolean);
  const lists = await Promise.all(
    fields.map((field) =>
      typeof field.getAsync === "function"
        ? asPromise((cb) => field.getAsync(cb))
        : Promise.resolve(field),
    ),
  );
  // Keyed by the lower-cased address: the first spelling of each is kept, in order.
  const seen = new Map();
  for (const entry of lists.flatMap((list) => list || [])) {
    const address = addressOf(entry).trim();
    if (address && !seen.has(address.toLowerCase())) seen.set(address.toLowerCase(), address);
  }
  return [...seen.values()];
}

const UNSUBSCRIBE = ["List-Unsubscribe", "List-Unsubscribe-Post"];

/** The draft's unsubscribe headers ({} if none), or null where the host cannot read them
 * (internetHeaders: Mailbox 1.8, compose; missing in meeting compose and older clients). */
export async function readUnsubscribeHeaders() {
  const headers = item().internetHeaders;
  if (!headers?.getAsync || !supports("Mailbox", "1.8")) return null;
  const found = await asPromise((cb) => headers.getAsync(UNSUBSCRIBE, cb));
  if (!found) return null;
  const out = {};
  for (const name of UNSUBSCRIBE) {
    const key = Object.keys(found).find((k) => k.toLowerCase() === name.toLowerCase());
    if (typeof found[key] === "string") out[name] = found[key];
  }
  return out;
}

/** Calls back when the recipients or the From address change while the pane is open. */
export function onItemChanged(callback) {
  const O = office();
  const current = item();
  if (typeof current.addHandlerAsync !== "function" || !O.EventType) return;
  for (const type of [O.EventType.RecipientsChanged, O.EventType.FromChanged]) {
    if (type) {
      try {
        current.addHandlerAsync(type, () => callback(type), () => {});
      } catch {
        // an older client without this event: the pane still has its "Check again" button
      }
    }
  }
}

/** Is Office's theme dark? null when Office gives no theme (then the browser's is used). */
export function officeThemeIsDark() {
  const hex = office()?.context?.officeTheme?.bodyBackgroundColor?.replace("#", "");
  if (!/^[0-9a-f]{6}$/i.test(hex ?? "")) return null;
  const [r, g, b] = [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
  return 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.5;
}

/** Whether the Office host (never a plain browser) supports a requirement set. */
function supports(set, version) {
  try {
    return Boolean(office()?.context?.mailbox && office().context.requirements.isSetSupported(set, version));
  } catch {
    return false;
  }
}

/** Whether Outlook supports nested app authentication (it cannot be declared in the manifest). */
export const supportsNestedAppAuth = () => supports("NestedAppAuth", "1.1");

/** Whether an Office host offers the dialog API (it does not outside Office). */
export const hasOfficeDialog = () => Boolean(office()?.context?.ui && office().context.mailbox);

/**
 * Opens the sign-in page in an Office dialog (the fallback where NAA is missing) and
 * resolves with the message it sends back, or rejects with {code: "declined"} when the
 * user closes it.
 */
export function openDialog(url) {
  const O = office();
  return new Promise((resolve, reject) => {
    if (!O?.context?.ui) return reject({ code: "unsupported" });
    O.context.ui.displayDialogAsync(url, { height: 60, width: 30 }, (result) => {
      if (result.status !== O.AsyncResultStatus.Succeeded) {
        return reject({ code: "dialog_failed", message: result.error?.message });
      }
      const dialog = result.value;
      dialog.addEventHandler(O.EventType.DialogMessageReceived, (arg) => {
        dialog.close();
        resolve(arg.message);
      });
      dialog.addEventHandler(O.EventType.DialogEventReceived, () => {
        reject({ code: "declined" });
      });
    });
  });
}

/** From inside the dialog page: hands the result to the pane. */
export const messageParent = (text) => office().context.ui.messageParent(text);
