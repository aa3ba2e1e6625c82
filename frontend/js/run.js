// The main run: follows one run's stream and keeps the status line, progress bar, metrics,
// controls, boundary plot and loss curve in step with it.

import * as api from "./api.js";

const fmtInt = (n) => Number(n).toLocaleString("en-US");
const fmtPct = (p) => (p === null || p === undefined ? "–" : `${(100 * p).toFixed(1)}%`);
const fmtLoss = (v) => (v === null || v === undefined ? "–" : Number(v).toPrecision(4));
/** "1 iteration", "3,200 iterations". */
const count = (n, word) => `${fmtInt(n)} ${word}${Number(n) === 1 ? "" : "s"}`;
// A rate needs this much time between its samples, or one late message makes it jump.
const RATE_MIN_SPAN_MS = 500;

function fmtDuration(seconds) {
  if (!Number.isFinite(seconds)) return "–";
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.ceil(seconds % 60)} s`;
}

/** Classes in a dataset message (labels are 0..K-1). */
export function classCount(dataset) {
  let k = 2;
  for (const part of [dataset?.train, dataset?.test]) {
    for (const y of part?.y || []) k = Math.max(k, y + 1);
  }
  return k;
}

export class RunView {
  /**
   * @param {Record<string, HTMLElement>} els  status, caption, showTest, banner, progress,
   *   progressText, iteration, trainAcc, testAcc, loss, pause, step, stop, exportModel,
   *   exportHistory, exportScript
   * @param {{boundary: BoundaryPlot, loss: LossPlot}} plots  from plots.js and lossplot.js
   */
  constructor(els, plots) {
    this.els = els;
    this.plots = plots;
    this.stream = null;
    this.id = null;
    this.status = null;
    this.onState = () => {}; // the run's status, or its knobs, changed
    this.#bindControls();
    this.#reset();
  }

  #reset() {
    this.total = 0;
    this.reportEvery = 1;
    this.iteration = 0;
    this.last = null;
    this.samples = [];
    this.nClasses = 2;
    this.config = null; // the config the run started with
    this.knobs = null; // its learning_rate, reg_lambda, steps_per_second now
    this.changes = []; // knobs turned while it trained: {iteration, changed, current}
  }

  #setConfig(config, changes = []) {
    const t = config?.training ?? {};
    this.config = config ?? null;
    this.changes = [...changes];
    this.knobs = changes.at(-1)?.current ?? {
      learning_rate: t.learning_rate,
      reg_lambda: t.reg_lambda,
      steps_per_second: t.steps_per_second ?? null,
    };
    this.plots.loss.setChanges(this.changes);
  }

  #onKnobs(msg) {
    const change = { iteration: msg.iteration, changed: msg.changed, current: msg.current };
    this.changes.push(change);
    this.knobs = msg.current;
    this.plots.loss.setChanges(this.changes);
    this.onState();
  }

  #bindControls() {
    const { pause, step, stop } = this.els;
    pause.addEventListener("click", () => {
      this.#control(this.status === "paused" ? "resume" : "pause");
    });
    step.addEventListener("click", () => this.#control("step"));
    stop.addEventListener("click", () => this.#control("cancel"));
  }

  async #control(action) {
    if (!this.id) return;
    try {
      await api.control(this.id, action);
    } catch (err) {
      this.setStatus(`Could not ${action}: ${err.message}`, "error");
    }
  }

  get active() {
    return this.id !== null && !api.TERMINAL.has(this.status);
  }

  /** Show freshly previewed data with no run attached. */
  showPreview(dataset) {
    this.detach();
    this.#setDataset(dataset);
    this.plots.boundary.setFrame(null);
    this.plots.network?.setFrame(null);
    this.plots.loss.reset();
    this.#renderMetrics();
  }

  #setDataset(dataset) {
    this.nClasses = classCount(dataset);
    // Nothing to show or hide without a test split.
    this.els.showTest.disabled = !dataset?.test?.x?.length;
    this.plots.boundary.setDataset(dataset);
    this.els.caption.textContent =
      this.nClasses > 2
        ? "Regions: colour = predicted class, paler = less sure"
        : "Boundary: background = P(blue), line = 50 %";
  }

  /** Stop following the current run (and cancel it if it still trains). */
  detach({ cancel = true } = {}) {
    if (this.active && cancel) api.control(this.id, "cancel").catch(() => {});
    this.stream?.close();
    this.stream = null;
    this.id = null;
    this.status = null;
    this.#reset();
    this.#renderControls();
    this.onState();
  }

  /** Follow a run just created by POST /api/runs (its 201 body). */
  attach(run) {
    this.detach();
    this.id = run.id;
    this.total = run.config?.training?.iterations ?? 0;
    this.reportEvery = run.config?.training?.report_every ?? 1;
    this.plots.loss.reset();
    this.#setConfig(run.config);
    this.plots.boundary.setFrame(null);
    this.plots.network?.setFrame(null);
    this.#setRunStatus(run.status || "queued", run);
    this.stream = new api.RunStream(run.id, {
      views: () => (this.plots.network?.open ? ["units"] : []),
      onMessage: (msg) => this.#onMessage(msg),
      onConnection: (state, delay) => this.#onConnection(state, delay),
    });
    this.stream.start();
    this.els.exportModel.href = api.modelUrl(run.id);
    this.els.exportHistory.href = api.historyUrl(run.id);
    this.els.exportScript.href = api.scriptUrl(run.id);
  }

  #onMessage(msg) {
    switch (msg.type) {
      case "snapshot":
        this.#onSnapshot(msg);
        break;
      case "progress":
        this.#onProgress(msg);
        break;
      case "boundary":
        this.plots.boundary.setFrame(msg, this.nClasses);
        break;
      case "units":
        this.plots.network?.setFrame(msg);
        break;
      case "knobs":
        this.#onKnobs(msg);
        break;
      case "status":
        this.#setRunStatus(msg.status, msg);
        break;
      default:
        break;
    }
  }

  #onSnapshot(msg) {
    this.total = msg.config?.training?.iterations ?? this.total;
    this.reportEvery = msg.config?.training?.report_every ?? this.reportEvery;
    if (msg.dataset) this.#setDataset(msg.dataset);
    this.plots.loss.reset();
    this.#setConfig(msg.config, msg.changes || []);
    this.samples = [];
    for (const report of msg.history || []) this.#onProgress(report);
    this.samples = []; // the replay arrived all at once: it tells nothing about the pace
    if (msg.boundary) this.plots.boundary.setFrame(msg.boundary, this.nClasses);
    if (msg.units) this.plots.network?.setFrame(msg.units);
    this.#setRunStatus(msg.status, msg);
  }

  #onProgress(report) {
    this.plots.loss.push(report);
    this.iteration = report.iteration;
    this.last = report;
    const now = performance.now();
    // Messages handled in one burst (the page was busy drawing) share one sample: the last
    // of the burst. Otherwise the window would start mid-burst and overstate the rate.
    const previous = this.samples.at(-1);
    if (previous && now - previous[0] < 30) previous[1] = report.iteration;
    else this.samples.push([now, report.iteration]);
    // Rate over the last three seconds: steady, yet quick to follow a pause or a new pace.
    while (this.samples.length > 2 && now - this.samples[0][0] > 3000) this.samples.shift();
    // A step while paused moves the iteration the status line names.
    if (this.status === "paused") this.#renderStatus();
    this.#renderMetrics();
  }

  #rate() {
    if (this.status !== "running" || this.samples.length < 2) return null;
    const [t0, i0] = this.samples[0];
    const [t1, i1] = this.samples.at(-1);
    return t1 - t0 >= RATE_MIN_SPAN_MS ? ((i1 - i0) * 1000) / (t1 - t0) : null;
  }

  #onConnection(state, delay) {
    if (state === "open") {
      this.els.banner.hidden = true;
      return;
    }
    const seconds = Math.round((delay || 0) / 1000);
    const text = {
      retrying: `Connection lost; reconnecting in ${seconds} s…`,
      unreachable: `Server unreachable; retrying in ${seconds} s…`,
      gone: "This run no longer exists on the server (it restarted or forgot it). Press Train.",
    }[state];
    this.els.banner.textContent = text;
    this.els.banner.hidden = false;
    if (state === "gone") {
      this.status = "failed";
      this.#renderControls();
    }
  }

  #setRunStatus(status, msg = {}) {
    // A pause, or the queue, is no part of the pace: the rate starts over from here.
    if (status !== this.status) this.samples = [];
    // A queued run had no worker to ask for unit views when the socket joined: ask now.
    if (this.status === "queued" && status === "running") this.wantUnits();
    this.status = status;
    this.statusMsg = msg;
    this.#renderStatus();
    this.els.status.dataset.status = status;
    this.#renderControls();
    this.#renderMetrics();
    this.onState();
  }

  #renderStatus() {
    const { status, statusMsg: msg } = this;
    const it = fmtInt(this.iteration);
    const place = msg.position;
    const wait = msg.expected_wait_s;
    const about = wait == null ? "" : wait < 1 ? ", starting any moment" : `, about ${fmtWait(wait)}`;
    const texts = {
      queued: `Queued${place ? ` (place ${place} in line${about})` : ""}: waiting for a free worker…`,
      running: "Training… watch the boundary bend.",
      paused: `Paused at iteration ${it}. Step advances ${count(this.reportEvery, "iteration")}.`,
      completed:
        `Completed: ${count(this.iteration, "iteration")}, ` +
        `final loss ${fmtLoss(this.last?.loss)}.`,
      cancelled: `Stopped at iteration ${it}.`,
      diverged: msg.message
        ? `Diverged: ${msg.message.replace(/^Training diverged:\s*/i, "")}`
        : `Diverged at iteration ${it}: lower the learning rate.`,
      failed: `Failed: ${msg.message || "the server could not train this run."}`,
    };
    const tone = { diverged: "error", failed: "error", completed: "ok" }[status] || "info";
    this.setStatus(texts[status] || status, tone);
  }

  /** Ask the stream for the network view's messages, or stop them (the view's toggle). */
  wantUnits(on = this.plots.network?.open ?? false) {
    this.stream?.setView("units", on);
  }

  setStatus(text, tone = "info") {
    this.els.status.textContent = text;
    this.els.status.dataset.tone = tone;
  }

  #renderControls() {
    const { pause, step, stop, exportModel, exportHistory, exportScript } = this.els;
    const live = this.active;
    pause.disabled = !live || this.status === "queued";
    pause.textContent = this.status === "paused" ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", this.status === "paused" ? "true" : "false");
    step.disabled = this.status !== "paused";
    stop.disabled = !live;
    for (const link of [exportModel, exportHistory, exportScript]) {
      link.classList.toggle("disabled", !this.id);
      link.setAttribute("aria-disabled", this.id ? "false" : "true");
      if (!this.id) link.removeAttribute("href");
    }
  }

  #renderMetrics() {
    const { progress, progressText, trainAcc, testAcc, loss } = this.els;
    const total = this.total || 1;
    progress.max = total;
    progress.value = Math.min(this.iteration, total);
    const rate = this.#rate();
    const parts = [`Iteration ${fmtInt(this.iteration)} / ${fmtInt(this.total)}`];
    if (rate !== null) {
      parts.push(`${fmtInt(Math.round(rate))} steps/s`);
      parts.push(`${fmtDuration((this.total - this.iteration) / Math.max(rate, 1e-9))} left`);
    }
    progressText.textContent = this.id ? parts.join(" · ") : "No run yet";
    this.els.iteration.textContent = String(this.iteration);
    trainAcc.textContent = fmtPct(this.last?.train_accuracy);
    testAcc.textContent = fmtPct(this.last?.test_accuracy);
    // No test split, no test figure: a dash there reads like a broken value.
    testAcc.parentElement.hidden = this.last?.test_accuracy === undefined;
    loss.textContent = fmtLoss(this.last?.loss);
  }
}

/** A wait in seconds as a person reads it: "12 s", "3 min". */
function fmtWait(seconds) {
  const s = Math.round(seconds);
  return s < 90 ? `${s} s` : `${Math.round(s / 60)} min`;
}
