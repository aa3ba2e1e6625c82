// The HTTP and WebSocket client of the server's contract (docs/architecture.md). No DOM here.

export const TERMINAL = new Set(["completed", "cancelled", "diverged", "failed"]);

export class ApiError extends Error {
  /** @param {number} status HTTP status (0 = the server could not be reached) */
  constructor(status, message, detail = null) {
    super(message);
    this.status = status;
    this.detail = detail;
  }
}

function describeDetail(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => d.msg).join("; ");
  return "";
}

async function request(method, path, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "The server is unreachable.");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const detail = data?.detail ?? null;
    let message = describeDetail(detail) || `${response.status} ${response.statusText}`;
    if (response.status === 429) {
      const wait = response.headers.get("Retry-After");
      message = `The server is busy${wait ? `; try again in ${wait} s` : ""}. ${message}`;
    }
    throw new ApiError(response.status, message, detail);
  }
  return data;
}

export const getJSON = (path) => request("GET", path);
export const postJSON = (path, body) => request("POST", path, body);

export const health = () => getJSON("api/health");
export const schema = () => getJSON("api/schema");
export const previewDataset = (dataset) => postJSON("api/datasets/preview", dataset);
export const createRun = (config) => postJSON("api/runs", config);
export const getRun = (id) => getJSON(`api/runs/${encodeURIComponent(id)}`);
export const controlUrl = (id, action) => `api/runs/${encodeURIComponent(id)}/${action}`;
export const control = (id, action) => postJSON(controlUrl(id, action), undefined);
/** Change a live run's learning rate, λ or pace: `change` is `{training: {...}}`. */
export const changeRun = (id, change) =>
  request("PATCH", `api/runs/${encodeURIComponent(id)}`, change);
export const modelUrl = (id) => `api/runs/${encodeURIComponent(id)}/model`;
export const historyUrl = (id) => `api/runs/${encodeURIComponent(id)}/history.csv`;
export const scriptUrl = (id) => `api/runs/${encodeURIComponent(id)}/script`;

/**
 * Map a 422 body's detail to field keys: loc ["body","training","learning_rate"] →
 * "training.learning_rate". `prefix` names the section when the body was one section only
 * (the dataset preview). Errors that name no field land under "" (shown as a general error).
 */
export function errorsByField(detail, prefix = "") {
  const errors = {};
  const list = Array.isArray(detail) ? detail : [{ loc: [], msg: describeDetail(detail) }];
  for (const item of list) {
    const loc = (item.loc || []).filter((p) => p !== "body" && typeof p === "string");
    const path = prefix ? [prefix, ...loc] : loc;
    const key = path.length >= 2 ? `${path[0]}.${path[1]}` : "";
    const msg = String(item.msg || "Invalid value.").replace(/^Value error, /, "");
    errors[key] = errors[key] ? `${errors[key]} ${msg}` : msg;
  }
  return errors;
}

/**
 * One run's live stream. Reconnects with backoff while the run is not finished; every
 * (re)connection starts with a snapshot, so the page rebuilds its state from it.
 * handlers: onMessage(msg), onConnection(state, detail) with state in
 * "open" | "retrying" | "unreachable" | "gone".
 */
export class RunStream {
  constructor(id, handlers) {
    this.id = id;
    this.handlers = handlers;
    this.closed = false;
    this.finished = false;
    this.attempt = 0;
    this.socket = null;
    this.timer = null;
  }

  start() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const base = location.pathname.replace(/[^/]*$/, "");
    const views = this.handlers.views?.() || [];
    const query = views.length ? `?views=${views.join(",")}` : "";
    const url = `${scheme}//${location.host}${base}api/runs/${encodeURIComponent(this.id)}/stream${query}`;
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.handlers.onConnection("open");
    });
    socket.addEventListener("message", (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (msg.type === "status" && TERMINAL.has(msg.status)) this.finished = true;
      if (msg.type === "snapshot" && TERMINAL.has(msg.status)) this.finished = true;
      this.handlers.onMessage(msg);
    });
    socket.addEventListener("close", () => this.#closed(socket));
  }

  send(action) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ action }));
  }

  /** Start or stop getting an opt-in kind of message (e.g. "units", the network view). */
  setView(view, on) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ view, on }));
  }

  async #closed(socket) {
    if (socket !== this.socket || this.closed || this.finished) return;
    // Ask over HTTP why: a vanished run must not be retried forever.
    let state = "retrying";
    try {
      // A run that ended meanwhile is still worth one reconnect: its snapshot is the result.
      await getRun(this.id);
    } catch (err) {
      if (err.status === 404) {
        this.handlers.onConnection("gone");
        return;
      }
      state = err.status === 0 ? "unreachable" : "retrying";
    }
    if (this.closed) return;
    const delay = Math.min(5000, 500 * 2 ** this.attempt); // a person waits seconds, not minutes
    this.attempt += 1;
    this.handlers.onConnection(state, delay);
    this.timer = setTimeout(() => {
      if (!this.closed) this.start();
    }, delay);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.socket?.close();
  }
}
