/*
 * SendReady's event handlers (Smart Alerts). Self-contained on purpose: classic Outlook on
 * Windows runs this file in a JavaScript-only runtime with no module loader, no DOM and no
 * localStorage. The service fills the two placeholders below when it serves the file.
 *
 * The rule that matters most: this handler FAILS OPEN. Any error, timeout, missing token
 * or unreachable service allows the message to be sent. It blocks (SoftBlock: the user
 * can still send) only for a specific problem the service found:
 *   - a recipient domain that does not exist or accepts no mail,
 *   - a recipient domain that is a likely typo (with the suggestion),
 *   - a sender domain whose DMARC will fail under a quarantine or reject policy.
 */
/* eslint-disable no-var */
(function () {
  "use strict";

  var CONFIG = {
    apiBase: "__SENDREADY_API_BASE__",
    clientId: "__SENDREADY_CLIENT_ID__",
    authority: "__SENDREADY_AUTHORITY__",
    // OnMessageSend must finish well before Outlook's 5 s "taking longer" notice.
    sendDeadlineMs: 3500,
    sendRequestMs: 2500,
    backgroundRequestMs: 10000,
    verdictMaxAgeMs: 10 * 60 * 1000,
  };

  // Finding id → the lowest severity of a failure that stops the message. A DMARC failure
  // under p=none is delivered (a warning): only quarantine or reject (critical) blocks.
  var BLOCKING = {
    "recipient.domain_missing": "info",
    "recipient.no_mail": "info",
    "recipient.possible_typo": "info",
    "dmarc.will_fail": "critical",
  };
  var RANK = { info: 0, warning: 1, critical: 2 };

  var TEXT = {
    title: "SendReady found a problem that will stop this message:",
    domainMissing: "{subject} does not exist, so mail to it bounces.",
    noMail: "{subject} accepts no mail.",
    typo: "Did you mean {suggestion} instead of {subject}?",
    dmarc: "Mail from {subject} will fail DMARC and is likely to be rejected or sent to spam.",
    more: "and {count} more.",
    footer: "Fix the address, or choose Send to send it anyway.",
    cancelLabel: "Review",
    background: "SendReady: {summary}",
    backgroundClear: "SendReady: no delivery problems found.",
    signIn: "Open SendReady once to sign in, so it can check your messages.",
  };

  function fill(text, vars) {
    return text.replace(/\{(\w+)\}/g, function (_, name) {
      return vars[name] !== undefined ? String(vars[name]) : "";
    });
  }

  // ---- small promise helpers over the callback API ----------------------------------

  function asyncValue(getter) {
    return new Promise(function (resolve) {
      try {
        getter(function (result) {
          var ok = result && result.status === Office.AsyncResultStatus.Succeeded;
          resolve(ok ? result.value : null);
        });
      } catch (e) {
        resolve(null);
      }
    });
  }

  function address(entry) {
    if (!entry) return "";
    return typeof entry === "string" ? entry : entry.emailAddress || "";
  }

  function readMessage() {
    var item = Office.context.mailbox.item;
    var from = item.from && item.from.getAsync
      ? asyncValue(function (cb) { item.from.getAsync(cb); })
      : Promise.resolve(item.from || null);
    var fields = ["to", "cc", "bcc"].filter(function (name) { return item[name]; });
    var lists = fields.map(function (name) {
      var field = item[name];
      return field.getAsync
        ? asyncValue(function (cb) { field.getAsync(cb); })
        : Promise.resolve(field);
    });
    return Promise.all([from].concat(lists)).then(function (values) {
      var seen = {};
      var recipients = [];
      values.slice(1).forEach(function (list) {
        (list || []).forEach(function (entry) {
          var a = address(entry).trim();
          if (a && !seen[a.toLowerCase()]) {
            seen[a.toLowerCase()] = true;
            recipients.push(a);
          }
        });
      });
      var sender = address(values[0]);
      if (!sender && Office.context.mailbox.userProfile) {
        sender = Office.context.mailbox.userProfile.emailAddress || "";
      }
      return { from: sender, recipients: recipients };
    });
  }

  function verdictKey(message) {
    var domains = message.recipients
      .map(function (a) { return a.split("@").pop().toLowerCase(); })
      .sort()
      .filter(function (d, i, all) { return i === 0 || all[i - 1] !== d; });
    return "sendready.verdict:" + message.from.toLowerCase() + ">" + domains.join(",");
  }

  // ---- storage: OfficeRuntime.storage where it exists, memory otherwise --------------

  var memory = {};
  var storage = {
    get: function (key) {
      if (typeof OfficeRuntime !== "undefined" && OfficeRuntime.storage) {
        return OfficeRuntime.storage.getItem(key).catch(function () { return null; });
      }
      return Promise.resolve(memory[key] || null);
    },
    set: function (key, value) {
      if (typeof OfficeRuntime !== "undefined" && OfficeRuntime.storage) {
        return OfficeRuntime.storage.setItem(key, value).catch(function () {});
      }
      memory[key] = value;
      return Promise.resolve();
    },
  };

  // ---- sign-in: silent only (no dialogs are allowed in event handlers) ---------------

  var pca = null;
  function token() {
    var configured = CONFIG.clientId && CONFIG.clientId.indexOf("__") !== 0;
    if (!configured) return Promise.resolve(null);
    var msal = typeof self !== "undefined" ? self.msal : undefined;
    var naa = false;
    try {
      naa = Office.context.requirements.isSetSupported("NestedAppAuth", "1.1");
    } catch (e) {
      naa = false;
    }
    if (!msal || !naa) return Promise.reject(new Error("no silent sign-in here"));
    if (!pca) {
      pca = msal.createNestablePublicClientApplication({
        auth: { clientId: CONFIG.clientId, authority: CONFIG.authority },
      });
    }
    return pca.then(function (app) {
      return app.acquireTokenSilent({ scopes: ["api://" + CONFIG.clientId + "/access_as_user"] });
    }).then(function (result) {
      return result.accessToken;
    });
  }

  // ---- the service --------------------------------------------------------------------

  // In the browser runtime (commands.html) the page's own origin is the service; classic
  // Outlook's JavaScript-only runtime has no usable location and needs the absolute URL.
  function apiBase() {
    try {
      if (typeof location !== "undefined" && /^https?:$/.test(location.protocol)) {
        return location.origin;
      }
    } catch (e) {
      // fall through to the configured base
    }
    return CONFIG.apiBase;
  }

  function askService(message, timeoutMs) {
    return token().then(function (bearer) {
      var controller = typeof AbortController !== "undefined" ? new AbortController() : null;
      var timer = setTimeout(function () { if (controller) controller.abort(); }, timeoutMs);
      var headers = { "Content-Type": "application/json", Accept: "application/json" };
      if (bearer) headers.Authorization = "Bearer " + bearer;
      return fetch(apiBase() + "/api/v1/checks", {
        method: "POST",
        headers: headers,
        body: JSON.stringify({
          from: message.from,
          recipients: message.recipients,
          options: { probe_smtp: false },
        }),
        signal: controller ? controller.signal : undefined,
        credentials: "omit",
      }).then(function (response) {
        clearTimeout(timer);
        if (!response.ok) throw new Error("service answered " + response.status);
        return response.json();
      }, function (error) {
        clearTimeout(timer);
        throw error;
      });
    });
  }

  /** The decision for one report: {block, problems[]} — a pure function of the report. */
  function decide(report) {
    var problems = [];
    var findings = (report && report.findings) || [];
    for (var i = 0; i < findings.length; i++) {
      var f = findings[i];
      var least = BLOCKING.hasOwnProperty(f.id) ? RANK[BLOCKING[f.id]] : 3;
      if (f.status === "fail" && RANK[f.severity] >= least) problems.push(f);
    }
    // One message per recipient domain: a typo says more than "does not exist".
    var bySubject = {};
    var ordered = [];
    problems.forEach(function (f) {
      var known = bySubject[f.subject];
      if (!known) {
        bySubject[f.subject] = f;
        ordered.push(f.subject);
      } else if (f.id === "recipient.possible_typo") {
        bySubject[f.subject] = f;
      }
    });
    return {
      block: ordered.length > 0,
      problems: ordered.map(function (s) {
        var f = bySubject[s];
        return { id: f.id, subject: f.subject, suggestion: (f.data && f.data.suggestion) || "" };
      }),
    };
  }

  function describe(problem) {
    var vars = { subject: problem.subject, suggestion: problem.suggestion };
    if (problem.id === "recipient.possible_typo") return fill(TEXT.typo, vars);
    if (problem.id === "recipient.domain_missing") return fill(TEXT.domainMissing, vars);
    if (problem.id === "recipient.no_mail") return fill(TEXT.noMail, vars);
    return fill(TEXT.dmarc, vars);
  }

  function errorMessage(decision) {
    var lines = decision.problems.slice(0, 3).map(function (p) { return "• " + describe(p); });
    if (decision.problems.length > 3) {
      lines.push(fill(TEXT.more, { count: decision.problems.length - 3 }));
    }
    var text = TEXT.title + "\n" + lines.join("\n") + "\n" + TEXT.footer;
    return text.length > 500 ? text.slice(0, 497) + "…" : text; // Outlook's limit
  }

  function supports(version) {
    try {
      return Office.context.requirements.isSetSupported("Mailbox", version);
    } catch (e) {
      return false;
    }
  }

  // ---- background handlers ------------------------------------------------------------

  function notify(decision, signInNeeded) {
    var item = Office.context.mailbox.item;
    if (!item.notificationMessages || !item.notificationMessages.replaceAsync) {
      return Promise.resolve();
    }
    var message;
    if (signInNeeded) message = TEXT.signIn;
    else if (decision.block) {
      message = fill(TEXT.background, { summary: describe(decision.problems[0]) });
    } else message = TEXT.backgroundClear;
    return new Promise(function (resolve) {
      try {
        item.notificationMessages.replaceAsync(
          "sendready",
          {
            type: Office.MailboxEnums.ItemNotificationMessageType.InformationalMessage,
            message: message.slice(0, 150),
            icon: "Icon.16x16",
            persistent: false,
          },
          function () { resolve(); }
        );
      } catch (e) {
        resolve();
      }
    });
  }

  function refreshVerdict(event) {
    var finished = false;
    function complete() {
      if (!finished) {
        finished = true;
        event.completed();
      }
    }
    readMessage()
      .then(function (message) {
        if (!message.from) return null;
        return askService(message, CONFIG.backgroundRequestMs).then(
          function (report) {
            var decision = decide(report);
            return storage
              .set(verdictKey(message), JSON.stringify({ at: Date.now(), decision: decision }))
              .then(function () { return notify(decision, false); });
          },
          function (error) {
            var signIn = error && /sign-in/.test(String(error.message));
            return signIn ? notify({ block: false }, true) : null;
          }
        );
      })
      .then(complete, complete);
  }

  function onRecipientsChanged(event) {
    refreshVerdict(event);
  }

  function onFromChanged(event) {
    refreshVerdict(event);
  }

  // ---- OnMessageSend --------------------------------------------------------------------

  function onMessageSend(event) {
    var finished = false;
    function finish(options) {
      if (finished) return;
      finished = true;
      clearTimeout(guard);
      event.completed(options);
    }
    function allow() {
      finish({ allowEvent: true });
    }
    // The last line of defence: whatever is still pending, the message goes.
    var guard = setTimeout(allow, CONFIG.sendDeadlineMs);
    try {
      readMessage()
        .then(function (message) {
          if (!message.from) return null;
          return storage.get(verdictKey(message)).then(function (stored) {
            var parsed = null;
            try {
              parsed = stored ? JSON.parse(stored) : null;
            } catch (e) {
              parsed = null;
            }
            if (parsed && Date.now() - parsed.at < CONFIG.verdictMaxAgeMs) return parsed.decision;
            return askService(message, CONFIG.sendRequestMs).then(decide);
          });
        })
        .then(
          function (decision) {
            if (!decision || !decision.block) return allow();
            var options = { allowEvent: false, errorMessage: errorMessage(decision) };
            if (supports("1.14")) {
              options.cancelLabel = TEXT.cancelLabel;
              options.commandId = "msgComposeOpenPaneButton";
            }
            finish(options);
          },
          allow
        );
    } catch (e) {
      allow();
    }
  }

  Office.actions.associate("onRecipientsChanged", onRecipientsChanged);
  Office.actions.associate("onFromChanged", onFromChanged);
  Office.actions.associate("onMessageSend", onMessageSend);
})();
