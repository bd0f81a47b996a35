// The parts of render.js that decide (groups, order, verdict) need no DOM.
import assert from "node:assert/strict";
import { test } from "node:test";

import { groupOf, sortFindings, verdict } from "../../taskpane/render.js";

const f = (id, status, severity = "info", data = {}) => ({ id, status, severity, subject: "x", data });

test("findings go to Sender, Requirements, Sending path or Recipients by area", () => {
  assert.equal(groupOf(f("spf.missing", "fail")), "sender");
  assert.equal(groupOf(f("dmarc.record", "pass")), "sender");
  // What happens to this message on its way: the path.
  assert.equal(groupOf(f("dmarc.will_fail", "fail")), "path");
  assert.equal(groupOf(f("sendas.not_permitted", "fail", "critical")), "path");
  assert.equal(groupOf(f("alignment.dmarc", "pass")), "path");
  assert.equal(groupOf(f("requirements.dmarc_record", "fail")), "requirements");
  assert.equal(groupOf(f("recipient.no_mail", "fail")), "recipients");
  assert.equal(groupOf(f("smtp.auth_not_offered", "fail", "warning", { port: 587 })), "path");
  // The domain's own MX on port 25 is about receiving mail: the sender's group.
  assert.equal(groupOf(f("smtp.starttls_missing", "fail", "warning", { port: 25 })), "sender");
  assert.equal(groupOf(f("somethingnew.id", "pass")), "sender");
});

test("problems come first, worst first, then unknowns, then passes", () => {
  const sorted = sortFindings([
    f("a", "pass"), f("b", "unknown", "warning"), f("c", "fail", "warning"), f("d", "fail", "critical"),
  ]);
  assert.deepEqual(sorted.map((x) => x.id), ["d", "c", "b", "a"]);
});

test("the verdict is the worst problem, and says when it is still checking", () => {
  assert.equal(verdict([f("a", "pass")]).level, "ok");
  assert.equal(verdict([f("a", "pass")], { pending: true }).level, "checking");
  assert.equal(verdict([f("a", "fail", "warning")], { pending: true }).level, "warning");
  const v = verdict([f("a", "fail", "critical"), f("b", "fail", "warning"), f("c", "unknown")]);
  assert.deepEqual([v.level, v.critical, v.warnings, v.unknown], ["critical", 1, 1, 1]);
  // A failed info finding is not a problem for the verdict.
  assert.equal(verdict([f("a", "fail", "info")]).level, "ok");
});
