// The sign-in page the Office dialog opens where nested app authentication is missing:
// a standard MSAL.js redirect sign-in, whose access token goes back to the pane.

import { messageParent, ready } from "./office-context.js";
import { t } from "./strings.js";

async function main() {
  await ready();
  document.getElementById("status").textContent = t("checking");
  const { clientId, authority } = document.body.dataset;
  const scope = new URL(location.href).searchParams.get("scope") || `api://${clientId}/access_as_user`;
  try {
    const app = await globalThis.msal.createStandardPublicClientApplication({
      auth: { clientId, authority, redirectUri: `${location.origin}${location.pathname}` },
      cache: { cacheLocation: "sessionStorage" },
    });
    const result = await app.handleRedirectPromise();
    if (result && result.accessToken) {
      messageParent(JSON.stringify({ accessToken: result.accessToken }));
      return;
    }
    await app.acquireTokenRedirect({ scopes: [scope] });
  } catch (error) {
    messageParent(JSON.stringify({ error: error.errorCode || error.message || "failed" }));
  }
}

main();
