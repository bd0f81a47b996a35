// Every string the task pane shows, in one table so the pane can be translated.
// Placeholders are {name}; fill them with t(key, {name: value}).

export const STRINGS = {
  appName: "SendReady",
  tagline: "Will this message be delivered?",
  standaloneIntro:
    "Outside Outlook: type the address you send from and, if you like, the recipients.",
  fromLabel: "Send from",
  fromPlaceholder: "you@example.com",
  recipientsLabel: "Recipients (comma or one per line)",
  recipientsPlaceholder: "alice@example.org, bob@example.net",
  checkButton: "Check",
  recheckButton: "Check again",
  contextFrom: "From: {from}",
  contextTo: "To: {recipients}",
  contextNoRecipients: "To: no recipients yet",
  contextNoFrom: "This message has no From address yet.",
  groupSender: "Sender",
  groupSenderHint: "SPF, DKIM, DMARC, MX, MTA-STS and the rest for {domain}",
  groupRequirements: "Mailbox provider requirements",
  groupRequirementsHint: "What Gmail, Yahoo and Outlook.com ask of senders (?: uncertain)",
  groupPath: "Sending path",
  groupPathHint: "The submission endpoint, TLS, AUTH, Send As and DMARC for this message",
  groupRecipients: "Recipients",
  groupRecipientsHint: "Each recipient's domain",
  groupEmpty: "Nothing to report here.",
  groupFailed: "Not checked: see the message above.",
  pathNotChecked: "The sending path was not probed in this check.",
  noRecipients: "Add recipients to check their domains.",
  recipientsNoResults: "The service returned no results for the recipients' domains.",
  checking: "Checking…",
  verdictChecking: "Checking your message…",
  verdictCritical: "This message will probably not arrive",
  verdictCriticalDetail: "{count} problem(s) will stop delivery or authentication. Fix them first.",
  verdictWarning: "It should arrive, but there is something to fix",
  verdictWarningDetail: "{count} problem(s) may send it to spam or weaken your domain.",
  verdictOk: "Ready to send",
  verdictOkDetail: "Everything SendReady checked is in order.",
  verdictPartial: "Some checks could not be completed ({count}).",
  statusPass: "OK",
  statusFail: "Problem",
  statusUnknown: "Not checked",
  statusNotCheckable: "Cannot be checked",
  uncertainMark: "?",
  recordTtl: "{type} · TTL {ttl}",
  recordAbove: "the same record as above",
  severityCritical: "Critical",
  severityWarning: "Warning",
  severityInfo: "Note",
  fixLabel: "Fix",
  specLabel: "Reference",
  copyButton: "Copy",
  copyLabel: "Copy {what}",
  copied: "Copied",
  copyFailed: "Copy failed: select the text and copy it by hand.",
  errorNetwork:
    "No network: SendReady could not reach its service. Check your connection and try again.",
  errorBackend:
    "The SendReady service is not answering right now ({status}). Your mail is not affected; try again in a minute.",
  errorTimeout: "The SendReady service took too long to answer. Try again.",
  errorSignInDeclined:
    "Sign-in was cancelled, so SendReady cannot check. Choose “Check again” and accept the sign-in.",
  errorSignIn: "Sign-in failed: {reason}",
  errorForbidden:
    "Your account is not allowed to use this SendReady service ({reason}). Ask your administrator.",
  errorBadInput: "SendReady could not check this: {reason}",
  errorUnexpected: "Something went wrong: {reason}",
  errorNoFrom: "Enter the address you send from.",
  retryButton: "Try again",
  // Smart Alerts (launchevent.js keeps its own copy: it cannot import this module).
};

export function t(key, vars = {}) {
  const text = STRINGS[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}
