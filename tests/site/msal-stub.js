// Test-only stand-in for the MSAL.js browser bundle, at its boundary: the pane and the
// event handlers call createNestablePublicClientApplication / acquireTokenSilent /
// acquireTokenPopup, and the test decides, through window.__SENDREADY_STUB__.msal, what
// they return: {token, silent: "ok" | "interaction" | "error", popup: "ok" | "cancel"}.
(function () {
  "use strict";
  var cfg = (window.__SENDREADY_STUB__ || {}).msal || {};
  var calls = [];

  function InteractionRequiredAuthError(code) {
    this.name = "InteractionRequiredAuthError";
    this.errorCode = code || "interaction_required";
    this.message = this.errorCode;
  }
  InteractionRequiredAuthError.prototype = Object.create(Error.prototype);

  function BrowserAuthError(code) {
    this.name = "BrowserAuthError";
    this.errorCode = code;
    this.message = code;
  }
  BrowserAuthError.prototype = Object.create(Error.prototype);

  function app(config) {
    return {
      acquireTokenSilent: function (request) {
        calls.push({ call: "acquireTokenSilent", scopes: request.scopes, clientId: config.auth.clientId });
        var mode = cfg.silent || "ok";
        if (mode === "ok") return Promise.resolve({ accessToken: cfg.token || "stub-token" });
        if (mode === "interaction") return Promise.reject(new InteractionRequiredAuthError());
        return Promise.reject(new BrowserAuthError("no_network_connectivity"));
      },
      acquireTokenPopup: function (request) {
        calls.push({ call: "acquireTokenPopup", scopes: request.scopes });
        if ((cfg.popup || "ok") === "ok") {
          return Promise.resolve({ accessToken: cfg.token || "stub-token" });
        }
        return Promise.reject(new BrowserAuthError("user_cancelled"));
      },
    };
  }

  window.msal = {
    InteractionRequiredAuthError: InteractionRequiredAuthError,
    BrowserAuthError: BrowserAuthError,
    createStandardPublicClientApplication: function (config) {
      calls.push({ call: "createStandardPublicClientApplication", clientId: config.auth.clientId });
      var standard = app(config);
      standard.getAllAccounts = function () { return []; };
      return Promise.resolve(standard);
    },
    createNestablePublicClientApplication: function (config) {
      calls.push({ call: "createNestablePublicClientApplication", clientId: config.auth.clientId });
      return Promise.resolve(app(config));
    },
  };
  window.__msal = { calls: calls };
})();
