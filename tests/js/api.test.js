// api.js turns every way a request can fail into an error kind the pane can explain.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError, check } from "../../taskpane/api.js";

function respond(status, body, { json = true } = {}) {
  return async () => ({
    ok: status >= 200 && status < 300,
    status,
    statusText: "status text",
    json: async () => {
      if (!json) throw new SyntaxError("not json");
      return body;
    },
  });
}

async function kindOf(fetchImpl, extra = {}) {
  try {
    await check({ from: "a@example.test", fetchImpl, ...extra });
  } catch (error) {
    assert.ok(error instanceof ApiError);
    return error;
  }
  assert.fail("check() resolved");
}

test("a report is returned as it came", async () => {
  const report = { schema: "1.0", findings: [] };
  assert.deepEqual(await check({ from: "a@example.test", fetchImpl: respond(200, report) }), report);
});

test("the request carries from, recipients, options and the bearer token", async () => {
  let seen;
  const fetchImpl = async (url, init) => {
    seen = { url, init };
    return respond(200, {})();
  };
  await check({ base: "https://svc.test", from: "a@x.test", recipients: ["b@y.test"],
    options: { probe_smtp: false }, token: "tok", fetchImpl });
  assert.equal(seen.url, "https://svc.test/api/v1/checks");
  assert.equal(seen.init.method, "POST");
  assert.equal(seen.init.headers.Authorization, "Bearer tok");
  assert.deepEqual(JSON.parse(seen.init.body), {
    from: "a@x.test", recipients: ["b@y.test"], options: { probe_smtp: false },
  });
});

test("no token means no Authorization header", async () => {
  let headers;
  await check({ from: "a@x.test", fetchImpl: async (_, init) => {
    headers = init.headers;
    return respond(200, {})();
  } });
  assert.equal("Authorization" in headers, false);
});

test("a fetch that throws is the network", async () => {
  const error = await kindOf(async () => {
    throw new TypeError("Failed to fetch");
  });
  assert.equal(error.kind, "network");
});

test("a request that outlives its timeout is a timeout", async () => {
  const hang = (_, init) =>
    new Promise((_, reject) => init.signal.addEventListener("abort", () => reject(new Error("aborted"))));
  const error = await kindOf(hang, { timeoutMs: 20 });
  assert.equal(error.kind, "timeout");
});

test("status codes map to the kinds the pane explains", async () => {
  const cases = [
    [401, "auth"], [403, "forbidden"], [400, "bad_input"], [422, "bad_input"],
    [429, "backend"], [500, "backend"], [502, "backend"], [503, "backend"], [404, "backend"],
    [418, "unexpected"],
  ];
  for (const [status, kind] of cases) {
    const error = await kindOf(respond(status, { detail: `detail ${status}` }));
    assert.equal(error.kind, kind, `status ${status}`);
    assert.equal(error.status, status);
    assert.equal(error.reason, `detail ${status}`);
  }
});

test("a success that is not JSON is the backend's fault", async () => {
  const error = await kindOf(respond(200, null, { json: false }));
  assert.equal(error.kind, "backend");
});
