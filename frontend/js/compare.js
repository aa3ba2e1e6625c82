// The comparison: one run per value of the swept setting (hidden size by default) on the
// same data, each drawn live in a small boundary plot captioned with its value, loss and
// accuracy — the article's figure, alive — with the charts of sweep_charts.js under the grid.

import * as api from "./api.js";
import { finishedText, summariseComparison } from "./compare_summary.js";
import { BoundaryPlot } from "./plots.js";
import { classCount } from "./run.js";
import { summariseSweep } from "./sweep_summary.js";

const pct = (p) => `${(100 * p).toFixed(1)}%`;

function titleFor(head, cell) {
  if (cell.error) return `${head} · ${cell.error}`;
  const r = cell.last;
  if (!r) {
    const place = cell.status === "queued" && cell.position ? ` (place ${cell.position})` : "";
    return `${head} · ${cell.status || "starting"}${place}`;
  }
  let text = `${head} · loss ${Number(r.loss).toFixed(4)} · train ${pct(r.train_accuracy)}`;
  if (r.test_accuracy !== undefined && r.test_accuracy !== null) {
    text += ` (test ${pct(r.test_accuracy)})`;
  }
  if (cell.status && cell.status !== "running" && cell.status !== "completed") {
    text += ` · ${cell.status}`;
  }
  return text;
}

class CompareCell {
  /** @param {{label: string, value: unknown, config: object, size?: number}} spec */
  constructor(grid, spec, head, showTest) {
    this.size = spec.size;
    this.label = spec.label;
    this.value = spec.value;
    this.config = spec.config;
    this.head = head;
    this.history = [];
    this.status = "starting";
    this.last = null;
    this.error = null;
    this.nClasses = 2;
    this.el = document.createElement("figure");
    this.el.className = "compare-cell";
    if (spec.size !== undefined) this.el.dataset.size = String(spec.size);
    this.el.dataset.value = spec.label;
    // The caption is HTML above the plot, where Plotly's toolbar cannot cover it.
    this.caption = document.createElement("figcaption");
    this.caption.className = "compare-title";
    const plotEl = document.createElement("div");
    plotEl.className = "plot plot-small";
    plotEl.setAttribute("role", "img");
    plotEl.setAttribute("aria-label", `Decision boundary, ${head}`);
    this.el.append(this.caption, plotEl);
    grid.append(this.el);
    this.plot = new BoundaryPlot(plotEl, { small: true });
    this.plot.setShowTest(showTest);
    this.#retitle();
  }

  #retitle() {
    this.el.dataset.status = this.status;
    this.caption.textContent = titleFor(this.head, this);
  }

  follow(run) {
    this.id = run.id;
    this.status = run.status || "queued";
    this.position = run.position;
    this.#retitle();
    this.stream = new api.RunStream(run.id, {
      onMessage: (msg) => this.#onMessage(msg),
      onConnection: (state) => {
        if (state === "gone") this.fail("run lost");
      },
    });
    this.stream.start();
  }

  fail(message) {
    this.error = message;
    this.status = "failed";
    this.#retitle();
  }

  #onMessage(msg) {
    if (msg.type === "snapshot") {
      // What the run was doing when this viewer joined (a fast run may have finished).
      this.el.dataset.joined ??= msg.status;
      if (msg.dataset) {
        this.nClasses = classCount(msg.dataset);
        this.plot.setDataset(msg.dataset);
      }
      this.history = msg.history ? [...msg.history] : this.history;
      this.last = msg.history?.at(-1) ?? this.last;
      if (msg.boundary) {
        this.plot.setFrame(msg.boundary, this.nClasses);
        this.#countFrame();
      }
      this.status = msg.status;
      this.position = msg.position;
    } else if (msg.type === "progress") {
      this.last = msg;
      this.history.push(msg);
    } else if (msg.type === "boundary") {
      this.plot.setFrame(msg, this.nClasses);
      this.#countFrame();
    } else if (msg.type === "status") {
      this.status = msg.status;
      if (msg.position !== undefined) this.position = msg.position;
    }
    this.#retitle();
    this.onUpdate?.();
    if (api.TERMINAL.has(this.status)) this.onFinished?.();
  }

  // Counted so one can tell a live plot from one drawn once at the end.
  #countFrame() {
    this.el.dataset.frames = String(Number(this.el.dataset.frames || 0) + 1);
  }

  close() {
    if (this.id && !api.TERMINAL.has(this.status)) {
      api.control(this.id, "cancel").catch(() => {});
    }
    this.stream?.close();
  }
}

export class Comparison {
  /** @param {HTMLElement} grid  container of the small plots @param {HTMLElement} status */
  /** @param {import("./sweep_charts.js").SweepCharts | null} charts  drawn under the grid */
  constructor(grid, status, charts = null) {
    this.grid = grid;
    this.charts = charts;
    this.statusEl = status;
    this.cells = [];
    this.showTest = true;
  }

  /** Show or hide the held-out test points in every cell. */
  setShowTest(show) {
    this.showTest = show;
    for (const cell of this.cells) cell.plot.setShowTest(show);
  }

  liveRunIds() {
    return this.cells.filter((c) => c.id && !api.TERMINAL.has(c.status)).map((c) => c.id);
  }

  clear() {
    for (const cell of this.cells) cell.close();
    this.cells = [];
    this.grid.replaceChildren();
    this.charts?.show("", "", []);
  }

  /**
   * Start one run per cell, in order (the server queues them in that order when there are
   * more cells than workers).
   * @param {{label: string, value: unknown, config: object, size?: number}[]} specs
   * @param {string} field  the swept field's key @param {string} words  what it is called
   */
  async start(specs, field = "model.hidden_sizes", words = "hidden size") {
    this.clear();
    this.field = field;
    this.words = words;
    const head = (s) => (s.size !== undefined ? `Hidden size ${s.size}` : `${words} = ${s.label}`);
    this.cells = specs.map((s) => new CompareCell(this.grid, s, head(s), this.showTest));
    for (const cell of this.cells) {
      cell.onFinished = () => this.#summarise();
      cell.onUpdate = () => this.charts?.update();
    }
    this.charts?.show(field, words, this.cells);
    this.statusEl.textContent = `Training ${specs.length} networks on the same data…`;
    for (const cell of this.cells) {
      try {
        cell.follow(await api.createRun(cell.config));
      } catch (err) {
        cell.fail(err.message);
      }
    }
    this.#summarise();
  }

  #summarise() {
    const done = this.cells.filter((c) => api.TERMINAL.has(c.status)).length;
    const total = this.cells.length;
    const sizes = this.cells.every((c) => c.size !== undefined);
    this.statusEl.textContent =
      done === total
        ? sizes
          ? summariseComparison(this.cells)
          : summariseSweep(this.cells, this.words)
        : `${finishedText(done, total)}; each plot updates as its network learns.`;
  }
}
