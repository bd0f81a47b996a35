// The only module that talks HTTP: POST /api/v1/checks, with errors turned into values
// the pane can explain ({kind: "network" | "backend" | "timeout" | "auth" | "forbidden" |
// "bad_input" | "unexpected", status, reason}).

export const DEFAULT_TIMEOUT_MS = 20000;

export class ApiError extends Error {
  constructor(kind, reason = "", status = 0) {
    super(reason || kind);
    this.kind = kind;
    this.reason = reason;
    this.status = status;
  }
}

/**
 * Asks the service to check one sender and (optionally) recipients; resolves with the
 * Report JSON or rejects with an ApiError.
 */
export async function check({ base = "", from, recipients = [], options = {}, headers: draft = null,
  token = null, timeoutMs = DEFAULT_TIMEOUT_MS, fetchImpl = globalThis.fetch }) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetchImpl(`${base}/api/v1/checks`, {
      method: "POST",
      headers,
      // headers only when the draft's were read: absent means "not available".
      body: JSON.stringify({ from, recipients, options, ...(draft ? { headers: draft } : {}) }),
      signal: controller.signal,
      credentials: "omit",
    });
  } catch (error) {
    if (controller.signal.aborted) throw new ApiError("timeout");
    throw new ApiError("network", String(error && error.message ? error.message : error));
  } finally {
    clearTimeout(timer);
  }
  if (response.ok) {
    try {
      return await response.json();
    } catch {
      throw new ApiError("backend", "the answer was not JSON", response.status);
    }
  }
  const problem = await response.json().catch(() => ({}));
  const reason = problem.detail || problem.title || response.statusText || "";
  if (response.status === 401) throw new ApiError("auth", reason, 401);
  if (response.status === 403) throw new ApiError("forbidden", reason, 403);
  if (response.status === 400 || response.status === 422) {
    throw new ApiError("bad_input", reason, response.status);
  }
  if (response.status >= 500 || response.status === 429 || response.status === 404) {
    throw new ApiError("backend", reason, response.status);
  }
  throw new ApiError("unexpected", reason, response.status);
}
