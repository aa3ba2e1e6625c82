// Under the sweep's grid: every cell's loss curve on one chart (one colour per cell, legend =
// the swept value, train solid, test dashed), a summary of final train and test accuracy
// against the swept value, and the sweep's exports (CSV of final metrics, JSON of configs
// and histories), made in the page from what the runs streamed.

import { logTicks } from "./lossplot.js";
import { plotConfig, schedule } from "./plotkit.js";

const Plotly = window.Plotly;
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
  "#e377c2", "#7f7f7f", "#bcbd22", "#393b79", "#637939"];
// Title above, legend below the axis title: neither covers the other or the toolbar.
const LAYOUT = { paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fafafa",
  margin: { l: 56, r: 12, t: 40, b: 40 },
  legend: { orientation: "h", x: 0, y: -0.22, yanchor: "top" } };

const METRICS = ["loss", "train_accuracy", "test_loss", "test_accuracy"];

/** The curves' log axis, labelled with whole numbers as the run's loss chart is. */
function lossAxis(curves) {
  let lo = Infinity;
  let hi = 0;
  for (const curve of curves) {
    for (const v of curve.y) {
      if (typeof v === "number" && v > 0 && Number.isFinite(v)) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
    }
  }
  const ticks = hi > 0 ? logTicks(lo, hi) : null;
  const axis = { title: { text: "loss" }, type: "log" };
  return ticks ? { ...axis, tickmode: "array", ...ticks } : { ...axis, exponentformat: "e" };
}

/** CSV of each cell's final metrics: field,value,iteration,status,loss,… */
export function sweepCsv(field, cells) {
  const rows = [["field", "value", "status", "iteration", ...METRICS].join(",")];
  for (const c of cells) {
    const last = c.last ?? {};
    const cols = [field, `"${c.label}"`, c.status, last.iteration ?? "",
      ...METRICS.map((m) => last[m] ?? "")];
    rows.push(cols.join(","));
  }
  return `${rows.join("\n")}\n`;
}

/** JSON of every cell's config and history. */
export function sweepJson(field, cells) {
  const out = cells.map((c) => ({ value: c.value, status: c.status, config: c.config,
    history: c.history }));
  return JSON.stringify({ field, cells: out }, null, 1);
}

export class SweepCharts {
  /** @param {HTMLElement} curvesEl @param {HTMLElement} summaryEl @param {HTMLElement} exportsEl */
  constructor(curvesEl, summaryEl, exportsEl) {
    this.curvesEl = curvesEl;
    this.summaryEl = summaryEl;
    this.exportsEl = exportsEl;
    this.cells = [];
    this.field = "";
    this.words = "";
    this.urls = [];
  }

  /** Follow these cells (each with label, history, last, status, config). */
  show(field, words, cells) {
    this.field = field;
    this.words = words;
    this.cells = cells;
    for (const el of [this.curvesEl, this.summaryEl, this.exportsEl]) el.hidden = !cells.length;
    this.update();
  }

  /** Something streamed: redraw on the next display frame. */
  update() {
    schedule(this);
  }

  draw() {
    if (!this.cells.length) return;
    const curves = [];
    this.cells.forEach((c, i) => {
      const color = PALETTE[i % PALETTE.length];
      const x = c.history.map((h) => h.iteration);
      curves.push({ x, y: c.history.map((h) => h.loss), name: `${c.label} train`,
        legendgroup: c.label, line: { color, width: 2 }, mode: "lines" });
      if (c.history.some((h) => typeof h.test_loss === "number")) {
        curves.push({ x, y: c.history.map((h) => h.test_loss), name: `${c.label} test`,
          legendgroup: c.label, line: { color, width: 2, dash: "dash" }, mode: "lines" });
      }
    });
    Plotly.react(this.curvesEl, curves, { ...LAYOUT,
      title: { text: `Loss of every cell (train solid, test dashed) by ${this.words}`, font: { size: 13 } },
      xaxis: { title: { text: "iteration" } }, yaxis: lossAxis(curves),
    }, plotConfig("sweep-loss"));
    const labels = this.cells.map((c) => c.label);
    const final = (m) => this.cells.map((c) => (c.last && typeof c.last[m] === "number" ? c.last[m] : null));
    const bars = [{ x: labels, y: final("train_accuracy"), name: "train accuracy", mode: "lines+markers",
      line: { color: "#1f77b4" } }];
    if (final("test_accuracy").some((v) => v !== null)) {
      bars.push({ x: labels, y: final("test_accuracy"), name: "test accuracy", mode: "lines+markers",
        line: { color: "#d62728", dash: "dash" } });
    }
    Plotly.react(this.summaryEl, bars, { ...LAYOUT,
      title: { text: `Final accuracy against ${this.words}`, font: { size: 13 } },
      xaxis: { title: { text: this.words }, type: "category" },
      yaxis: { title: { text: "accuracy" }, tickformat: ".1%" },
    }, plotConfig("sweep-accuracy"));
    this.#exports();
  }

  #exports() {
    for (const url of this.urls) URL.revokeObjectURL(url);
    const csv = URL.createObjectURL(new Blob([sweepCsv(this.field, this.cells)], { type: "text/csv" }));
    const json = URL.createObjectURL(new Blob([sweepJson(this.field, this.cells)], { type: "application/json" }));
    this.urls = [csv, json];
    const [csvLink, jsonLink] = this.exportsEl.querySelectorAll("a");
    csvLink.href = csv;
    jsonLink.href = json;
  }
}
