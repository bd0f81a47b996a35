// Sign-in: nested app authentication (MSAL.js createNestablePublicClientApplication) where
// Outlook supports it, the Office dialog hosting auth-dialog.html where it does not. Only
// access tokens for our API ever leave this module; ID tokens are never sent anywhere.
// MSAL.js is the pinned browser bundle the service serves (window.msal).

import { hasOfficeDialog, openDialog, supportsNestedAppAuth } from "./office-context.js";

export class SignInError extends Error {
  constructor(code, reason = "") {
    super(reason || code);
    this.code = code; // "declined" | "failed" | "unavailable"
    this.reason = reason;
  }
}

function isInteractionRequired(error) {
  const msal = globalThis.msal;
  return Boolean(
    (msal && msal.InteractionRequiredAuthError && error instanceof msal.InteractionRequiredAuthError) ||
      (error && /interaction_required|consent_required|login_required/.test(error.errorCode || "")),
  );
}

function isDeclined(error) {
  const code = (error && (error.errorCode || error.code)) || "";
  return /user_cancelled|access_denied|declined|popup_window_error/.test(code);
}

const failed = (error) => new SignInError("failed", error.message || String(error));

/** A silent token when MSAL has one (account: which, where the app does not know), else a popup. */
async function silentThenPopup(app, scopes, account) {
  try {
    if (account !== null) return (await app.acquireTokenSilent({ scopes, account })).accessToken;
  } catch (error) {
    if (!isInteractionRequired(error)) throw failed(error);
  }
  try {
    return (await app.acquireTokenPopup({ scopes })).accessToken;
  } catch (error) {
    throw isDeclined(error) ? new SignInError("declined") : failed(error);
  }
}

/**
 * A token source for the pane. With no client id configured (the service's loopback
 * development mode) it hands out no token at all.
 */
export function createAuth({ clientId, authority, scope }) {
  let appPromise = null;
  const scopes = [scope || `api://${clientId}/access_as_user`];

  async function nestedApp() {
    if (!appPromise) {
      appPromise = globalThis.msal.createNestablePublicClientApplication({
        auth: { clientId, authority },
      });
    }
    return appPromise;
  }

  // NAA knows the Outlook account itself; no account is passed.
  const viaNaa = async () => silentThenPopup(await nestedApp(), scopes, undefined);

  async function viaDialog() {
    const url = new URL("auth-dialog.html", globalThis.location.href);
    url.searchParams.set("scope", scopes[0]);
    let message;
    try {
      message = await openDialog(url.toString());
    } catch (error) {
      if (error && error.code === "declined") throw new SignInError("declined");
      throw new SignInError("unavailable", (error && error.message) || "no Office dialog");
    }
    const data = JSON.parse(message);
    if (data.error) {
      throw new SignInError(isDeclined({ errorCode: data.error }) ? "declined" : "failed", data.error);
    }
    return data.accessToken;
  }

  // Outside Office (the standalone pane in a browser): a standard MSAL.js popup sign-in.
  async function viaBrowser() {
    const app = await globalThis.msal.createStandardPublicClientApplication({
      auth: { clientId, authority, redirectUri: globalThis.location.origin },
      cache: { cacheLocation: "sessionStorage" },
    });
    return silentThenPopup(app, scopes, app.getAllAccounts()[0] || null);
  }

  return {
    enabled: Boolean(clientId),
    async token() {
      if (!clientId) return null;
      if (globalThis.msal && supportsNestedAppAuth()) return viaNaa();
      if (hasOfficeDialog()) return viaDialog();
      if (globalThis.msal) return viaBrowser();
      throw new SignInError("unavailable", "MSAL.js did not load");
    },
  };
}
