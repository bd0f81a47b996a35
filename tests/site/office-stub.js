// Test-only stand-in for office.js: behaves like Outlook's asynchronous API (getAsync with
// callbacks on a later tick, AsyncResult objects, event objects with completed()). A test
// configures it before the page loads with window.__SENDREADY_STUB__ = {...} and drives
// it through window.__office.
(function () {
  "use strict";
  var cfg = window.__SENDREADY_STUB__ || {};
  var delay = cfg.delayMs === undefined ? 5 : cfg.delayMs;
  var state = {
    from: cfg.from === undefined ? "alice@sender.test" : cfg.from,
    to: cfg.to || [],
    cc: cfg.cc || [],
    bcc: cfg.bcc || [],
  };
  var sets = cfg.sets || { Mailbox: "1.14" };
  var handlers = {};
  var itemHandlers = {};
  var notifications = {};
  var completions = [];
  var calls = [];

  var Status = { Succeeded: "succeeded", Failed: "failed" };

  function later(fn) {
    setTimeout(fn, delay);
  }

  function result(value) {
    return { status: Status.Succeeded, value: value, error: null, asyncContext: undefined };
  }

  function callbackOf(args) {
    for (var i = args.length - 1; i >= 0; i--) if (typeof args[i] === "function") return args[i];
    return function () {};
  }

  function entry(address) {
    return { emailAddress: address, displayName: address.split("@")[0], recipientType: "other" };
  }

  function field(name) {
    return {
      getAsync: function () {
        var cb = callbackOf(arguments);
        calls.push(name + ".getAsync");
        later(function () {
          if (name === "from") {
            cb(state.from ? result(entry(state.from)) : result(null));
          } else {
            cb(result(state[name].map(entry)));
          }
        });
      },
    };
  }

  function versionAtLeast(have, want) {
    var a = String(have).split(".").map(Number);
    var b = String(want || "1.1").split(".").map(Number);
    for (var i = 0; i < Math.max(a.length, b.length); i++) {
      if ((a[i] || 0) !== (b[i] || 0)) return (a[i] || 0) > (b[i] || 0);
    }
    return true;
  }

  var item = {
    itemType: "message",
    from: field("from"),
    to: field("to"),
    cc: field("cc"),
    bcc: field("bcc"),
    // Mailbox 1.8: the draft's custom internet headers; the answer holds only the names
    // that are set. cfg.headers === null: a client without the API.
    internetHeaders: cfg.headers === null ? undefined : {
      getAsync: function (names) {
        var cb = callbackOf(arguments);
        calls.push("internetHeaders.getAsync");
        var set = cfg.headers || {};
        later(function () {
          var found = {};
          names.forEach(function (name) {
            Object.keys(set).forEach(function (key) {
              if (key.toLowerCase() === name.toLowerCase()) found[key] = set[key];
            });
          });
          cb(result(found));
        });
      },
    },
    addHandlerAsync: function (type, handler) {
      (itemHandlers[type] = itemHandlers[type] || []).push(handler);
      var cb = callbackOf(Array.prototype.slice.call(arguments, 2));
      later(function () { cb(result(undefined)); });
    },
    notificationMessages: {
      replaceAsync: function (key, message) {
        notifications[key] = message;
        var cb = callbackOf(arguments);
        later(function () { cb(result(undefined)); });
      },
      addAsync: function (key, message) {
        notifications[key] = message;
        var cb = callbackOf(arguments);
        later(function () { cb(result(undefined)); });
      },
      removeAsync: function (key) {
        delete notifications[key];
        var cb = callbackOf(arguments);
        later(function () { cb(result(undefined)); });
      },
    },
  };

  var dark = cfg.theme === "dark";
  window.Office = {
    AsyncResultStatus: Status,
    EventType: {
      RecipientsChanged: "olkRecipientsChanged",
      FromChanged: "olkFromChanged",
      DialogMessageReceived: "dialogMessageReceived",
      DialogEventReceived: "dialogEventReceived",
    },
    MailboxEnums: {
      ItemNotificationMessageType: {
        InformationalMessage: "informationalMessage",
        ErrorMessage: "errorMessage",
        InsightMessage: "insightMessage",
      },
    },
    onReady: function (cb) {
      var info = { host: cfg.host === undefined ? "Outlook" : cfg.host, platform: "OfficeOnline" };
      return new Promise(function (resolve) {
        later(function () {
          if (typeof cb === "function") cb(info);
          resolve(info);
        });
      });
    },
    context: {
      officeTheme: {
        bodyBackgroundColor: dark ? "#1f1f1f" : "#ffffff",
        bodyForegroundColor: dark ? "#ffffff" : "#000000",
        controlBackgroundColor: dark ? "#292929" : "#ffffff",
        controlForegroundColor: dark ? "#ffffff" : "#000000",
      },
      requirements: {
        isSetSupported: function (name, version) {
          return name in sets && versionAtLeast(sets[name], version);
        },
      },
      mailbox: cfg.host === null ? undefined : {
        item: item,
        userProfile: { emailAddress: state.from, displayName: "Alice" },
      },
      ui: {
        // cfg.dialog: {message: "..."} answers like auth-dialog.html would; {closed: true}
        // is the user closing it; absent, the dialog cannot open (error 12007).
        displayDialogAsync: function (url) {
          var cb = callbackOf(arguments);
          calls.push("displayDialogAsync " + url);
          var dialogCfg = cfg.dialog;
          later(function () {
            if (!dialogCfg) {
              cb({ status: Status.Failed, error: { code: 12007, message: "the dialog could not open" } });
              return;
            }
            var events = {};
            cb(result({
              addEventHandler: function (type, handler) { events[type] = handler; },
              close: function () { calls.push("dialog.close"); },
            }));
            later(function () {
              if (dialogCfg.closed) {
                events.dialogEventReceived && events.dialogEventReceived({ error: 12006 });
              } else {
                events.dialogMessageReceived && events.dialogMessageReceived({ message: dialogCfg.message });
              }
            });
          });
        },
      },
    },
    actions: {
      associate: function (name, handler) {
        handlers[name] = handler;
      },
    },
  };

  // OfficeRuntime.storage as in the browser event runtime: asynchronous, strings only.
  var stored = {};
  window.OfficeRuntime = {
    storage: {
      getItem: function (key) { return Promise.resolve(key in stored ? stored[key] : null); },
      setItem: function (key, value) { stored[key] = String(value); return Promise.resolve(); },
      removeItem: function (key) { delete stored[key]; return Promise.resolve(); },
    },
  };

  function fireItem(type) {
    (itemHandlers[type] || []).forEach(function (h) { h({ type: type }); });
  }

  window.__office = {
    handlers: handlers,
    notifications: notifications,
    completions: completions,
    calls: calls,
    storage: stored,
    setRecipients: function (to) {
      state.to = to;
      fireItem(window.Office.EventType.RecipientsChanged);
    },
    setFrom: function (from) {
      state.from = from;
      fireItem(window.Office.EventType.FromChanged);
    },
    /** Runs a registered event handler like Outlook does; resolves with what it passed to
     *  completed() (or {timedOut: true} after ms), and how long it took. */
    fire: function (name, ms) {
      var handler = handlers[name];
      if (!handler) return Promise.reject(new Error("no handler associated for " + name));
      var started = Date.now();
      return new Promise(function (resolve) {
        var timer = setTimeout(function () { resolve({ timedOut: true }); }, ms || 10000);
        var event = {
          type: name,
          changedRecipientFields: { to: true, cc: false, bcc: false },
          completed: function (options) {
            clearTimeout(timer);
            var record = { options: options || null, elapsedMs: Date.now() - started };
            completions.push({ name: name, record: record });
            resolve(record);
          },
        };
        handler(event);
      });
    },
  };
})();
