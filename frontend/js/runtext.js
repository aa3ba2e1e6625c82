// The main run in words: numbers as the status line and metrics show them, and the status
// line's sentence for each state of a run.

export const fmtInt = (n) => Number(n).toLocaleString("en-US");
export const fmtPct = (p) => (p === null || p === undefined ? "–" : `${(100 * p).toFixed(1)}%`);
export const fmtLoss = (v) => (v === null || v === undefined ? "–" : Number(v).toPrecision(4));
/** "1 iteration", "3,200 iterations". */
export const count = (n, word) => `${fmtInt(n)} ${word}${Number(n) === 1 ? "" : "s"}`;

export function fmtDuration(seconds) {
  if (!Number.isFinite(seconds)) return "–";
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.ceil(seconds % 60)} s`;
}

/** A wait in seconds as a person reads it: "12 s", "3 min". */
function fmtWait(seconds) {
  const s = Math.round(seconds);
  return s < 90 ? `${s} s` : `${Math.round(s / 60)} min`;
}

/**
 * The status line for a run in `status`: its sentence and tone ("info", "ok" or "error").
 * `msg` is the status message (queue place, expected wait, why it failed); `iteration`,
 * `last` (the latest progress report) and `reportEvery` (what one Step advances) the run's.
 */
export function statusText(status, msg, { iteration, last, reportEvery }) {
  const it = fmtInt(iteration);
  const place = msg.position;
  const wait = msg.expected_wait_s;
  const about = wait == null ? "" : wait < 1 ? ", starting any moment" : `, about ${fmtWait(wait)}`;
  const texts = {
    queued: `Queued${place ? ` (place ${place} in line${about})` : ""}: waiting for a free worker…`,
    running: "Training… watch the boundary bend.",
    paused: `Paused at iteration ${it}. Step advances ${count(reportEvery, "iteration")}.`,
    completed: `Completed: ${count(iteration, "iteration")}, final loss ${fmtLoss(last?.loss)}.`,
    cancelled: `Stopped at iteration ${it}.`,
    diverged: msg.message
      ? `Diverged: ${msg.message.replace(/^Training diverged:\s*/i, "")}`
      : `Diverged at iteration ${it}: lower the learning rate.`,
    failed: `Failed: ${msg.message || "the server could not train this run."}`,
  };
  const tone = { diverged: "error", failed: "error", completed: "ok" }[status] || "info";
  return { text: texts[status] || status, tone };
}

/** The banner over the page while the run's socket is not open (`delay`: ms to the retry). */
export function connectionText(state, delay) {
  const seconds = Math.round((delay || 0) / 1000);
  return {
    retrying: `Connection lost; reconnecting in ${seconds} s…`,
    unreachable: `Server unreachable; retrying in ${seconds} s…`,
    gone: "This run no longer exists on the server (it restarted or forgot it). Press Train.",
  }[state];
}
