// The main run: follows one run's stream and keeps the status line, progress bar, metrics,
// controls, boundary plot and loss curve in step with it.

import * as api from "./api.js";
import { RateMeter } from "./ratemeter.js";
import { connectionText, fmtDuration, fmtInt, fmtLoss, fmtPct, statusText } from "./runtext.js";

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
    this.meter = new RateMeter();
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
    // No run is shown now: the status line must not still claim the old run's end.
    delete this.els.status.dataset.status;
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
    for (const report of msg.history || []) this.#onProgress(report);
    this.meter.reset(); // the replay arrived all at once: it tells nothing about the pace
    if (msg.boundary) this.plots.boundary.setFrame(msg.boundary, this.nClasses);
    if (msg.units) this.plots.network?.setFrame(msg.units);
    this.#setRunStatus(msg.status, msg);
  }

  #onProgress(report) {
    this.plots.loss.push(report);
    this.iteration = report.iteration;
    this.last = report;
    this.meter.add(report.iteration);
    // A step while paused moves the iteration the status line names.
    if (this.status === "paused") this.#renderStatus();
    this.#renderMetrics();
  }

  #rate() {
    return this.status === "running" ? this.meter.rate() : null;
  }

  #onConnection(state, delay) {
    if (state === "open") {
      this.els.banner.hidden = true;
      return;
    }
    this.els.banner.textContent = connectionText(state, delay);
    this.els.banner.hidden = false;
    if (state === "gone") {
      this.status = "failed";
      this.#renderControls();
    }
  }

  #setRunStatus(status, msg = {}) {
    // A pause, or the queue, is no part of the pace: the rate starts over from here.
    if (status !== this.status) this.meter.reset();
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
    const { text, tone } = statusText(this.status, this.statusMsg, this);
    this.setStatus(text, tone);
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
    renderControls(this.els, this.status, this.active, this.id);
  }

  #renderMetrics() {
    renderMetrics(this.els, this, this.#rate());
  }
}

/** Pause/Resume, Step and Stop for a run in `status` (`live`: it still trains or waits), and
 * the export links (off without a run). */
function renderControls(els, status, live, id) {
  const { pause, step, stop, exportModel, exportHistory, exportScript } = els;
  pause.disabled = !live || status === "queued";
  pause.textContent = status === "paused" ? "Resume" : "Pause";
  pause.setAttribute("aria-pressed", status === "paused" ? "true" : "false");
  step.disabled = status !== "paused";
  stop.disabled = !live;
  for (const link of [exportModel, exportHistory, exportScript]) {
    link.classList.toggle("disabled", !id);
    link.setAttribute("aria-disabled", id ? "false" : "true");
    if (!id) link.removeAttribute("href");
  }
}

/** The progress bar and line (with the pace and time left once `rate` is known) and the
 * latest report's figures, for `run` ({id, iteration, total, last}). */
function renderMetrics(els, run, rate) {
  const { progress, progressText, trainAcc, testAcc, loss } = els;
  const total = run.total || 1;
  progress.max = total;
  progress.value = Math.min(run.iteration, total);
  const parts = [`Iteration ${fmtInt(run.iteration)} / ${fmtInt(run.total)}`];
  if (rate !== null) {
    parts.push(`${fmtInt(Math.round(rate))} steps/s`);
    parts.push(`${fmtDuration((run.total - run.iteration) / Math.max(rate, 1e-9))} left`);
  }
  progressText.textContent = run.id ? parts.join(" · ") : "No run yet";
  els.iteration.textContent = String(run.iteration);
  trainAcc.textContent = fmtPct(run.last?.train_accuracy);
  testAcc.textContent = fmtPct(run.last?.test_accuracy);
  // No test split, no test figure: a dash there reads like a broken value.
  testAcc.parentElement.hidden = run.last?.test_accuracy === undefined;
  loss.textContent = fmtLoss(run.last?.loss);
}
