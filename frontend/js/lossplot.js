// The loss curve: train (and test) loss against the iteration, linear or log scale, with a
// vertical marker where a person changed the learning rate, λ or pace mid-run.

import { CLASS_COLORS } from "./boundary.js";
import { plotConfig, schedule, topMarginClearOfToolbar } from "./plotkit.js";

const Plotly = window.Plotly;
const MARGIN = { l: 56, r: 12, t: 12, b: 40 };
const MAX_TICKS = 7;
// Mantissas of each decade to label, densest first: the densest that fits MAX_TICKS wins.
const MANTISSAS = [[1, 2, 3, 5], [1, 2, 5], [1]];

const label = (v) => String(Number(v.toPrecision(3)));
const SHORT = { learning_rate: "ε", reg_lambda: "λ", steps_per_second: "pace" };
const LONG = { learning_rate: "learning rate ε", reg_lambda: "λ", steps_per_second: "pace" };
const MARKER_COLOR = "#8a5a00";

/** "ε 0.05, λ 0" (the marker) and "learning rate ε → 0.05" (its hover) of a change. */
function changeTexts(changed) {
  const entries = Object.entries(changed);
  return {
    short: entries.map(([k, v]) => `${SHORT[k] ?? k} ${label(v)}`).join(", "),
    long: entries.map(([k, v]) => `${LONG[k] ?? k} → ${v}`).join("<br>"),
  };
}

/** Plotly shapes and annotations marking each change at the iteration it applied after. */
export function changeMarkers(changes) {
  const shapes = [];
  const annotations = [];
  changes.forEach((change, i) => {
    const { short, long } = changeTexts(change.changed);
    shapes.push({
      type: "line",
      xref: "x",
      yref: "paper",
      x0: change.iteration,
      x1: change.iteration,
      y0: 0,
      y1: 1,
      line: { color: MARKER_COLOR, width: 1.5, dash: "dot" },
    });
    annotations.push({
      x: change.iteration,
      xref: "x",
      // Staggered, so markers close together do not print over each other.
      y: 0.97 - 0.09 * (i % 3),
      yref: "paper",
      text: short,
      hovertext: `after step ${change.iteration}:<br>${long}`,
      showarrow: false,
      xanchor: "left",
      yanchor: "top",
      font: { size: 11, color: MARKER_COLOR },
      bgcolor: "rgba(255,255,255,0.85)",
    });
  });
  return { shapes, annotations };
}

/**
 * Tick values and labels for a log axis over [lo, hi] (0 < lo ≤ hi): every label is the
 * whole number it marks ("0.05", "0.1", "0.2"), never Plotly's bare minor digits ("7, 8, 9").
 * @returns {{tickvals: number[], ticktext: string[]} | null}  null: let Plotly choose
 */
export function logTicks(lo, hi) {
  if (!(lo > 0) || !(hi >= lo) || !Number.isFinite(hi)) return null;
  const first = Math.floor(Math.log10(lo));
  const last = Math.ceil(Math.log10(hi));
  const within = (v) => v >= lo * 0.999 && v <= hi * 1.001;
  for (const mantissas of MANTISSAS) {
    const values = [];
    for (let e = first; e <= last; e += 1) {
      for (const m of mantissas) {
        const v = Number((m * 10 ** e).toPrecision(3));
        if (within(v)) values.push(v);
      }
    }
    if (values.length <= MAX_TICKS && values.length >= 2) {
      return { tickvals: values, ticktext: values.map(label) };
    }
  }
  // Many decades: every n-th decade.
  const step = Math.ceil((last - first + 1) / MAX_TICKS);
  const values = [];
  for (let e = first; e <= last; e += step) if (within(10 ** e)) values.push(10 ** e);
  return values.length >= 2 ? { tickvals: values, ticktext: values.map(label) } : null;
}

export class LossPlot {
  constructor(el) {
    this.el = el;
    this.log = false;
    this.revision = 0;
    this.top = MARGIN.t; // grows where the legend must clear the toolbar
    this.reset();
  }

  reset() {
    this.iterations = [];
    this.loss = [];
    this.testIterations = [];
    this.testLoss = [];
    this.changes = [];
    this.revision += 1;
    schedule(this);
  }

  /** The knobs turned mid-run, each {iteration, changed}: drawn as markers. */
  setChanges(changes) {
    this.changes = [...changes];
    this.revision += 1;
    schedule(this);
  }

  /** Append one progress report (iteration, loss, optional test_loss). */
  push(report) {
    const last = this.iterations.at(-1);
    if (last !== undefined && report.iteration <= last) return; // replayed after a reconnect
    this.iterations.push(report.iteration);
    this.loss.push(report.loss);
    if (report.test_loss !== undefined && report.test_loss !== null) {
      this.testIterations.push(report.iteration);
      this.testLoss.push(report.test_loss);
    }
    this.revision += 1;
    schedule(this);
  }

  setLog(log) {
    this.log = log;
    this.revision += 1;
    schedule(this);
  }

  #traces() {
    const traces = [
      {
        type: "scatter",
        name: "train loss",
        // A lone point draws no line: show markers until there is a curve.
        mode: this.iterations.length < 3 ? "lines+markers" : "lines",
        x: this.iterations,
        y: this.loss,
        line: { color: CLASS_COLORS[1], width: 2 },
        hovertemplate: "iteration %{x}<br>train loss %{y:.6f}<extra></extra>",
      },
    ];
    if (this.testLoss.length) {
      traces.push({
        type: "scatter",
        mode: "lines",
        name: "test loss",
        x: this.testIterations,
        y: this.testLoss,
        line: { color: CLASS_COLORS[0], width: 2, dash: "dash" },
        hovertemplate: "iteration %{x}<br>test loss %{y:.6f}<extra></extra>",
      });
    }
    return traces;
  }

  #yaxis() {
    const yaxis = { title: { text: "loss" }, type: this.log ? "log" : "linear" };
    if (!this.log) return yaxis;
    const positive = [...this.loss, ...this.testLoss].filter((v) => v > 0 && Number.isFinite(v));
    const ticks = positive.length ? logTicks(Math.min(...positive), Math.max(...positive)) : null;
    return ticks ? { ...yaxis, tickmode: "array", ...ticks } : { ...yaxis, exponentformat: "e" };
  }

  async draw() {
    const empty = this.iterations.length === 0;
    const markers = changeMarkers(empty ? [] : this.changes);
    const layout = {
      datarevision: this.revision,
      margin: { ...MARGIN, t: this.top },
      xaxis: { title: { text: "iteration" }, rangemode: "tozero", visible: !empty },
      yaxis: { ...this.#yaxis(), visible: !empty },
      // Top left, clear of the toolbar at the top right.
      legend: { orientation: "h", y: 1.02, x: 0, yanchor: "bottom" },
      hovermode: "x unified",
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "#fafafa",
      shapes: markers.shapes,
      // Before any run: say what will be here, rather than axes with made-up ranges.
      annotations: empty
        ? [
            {
              text: "The loss curve appears here<br>when you press Train.",
              xref: "paper",
              yref: "paper",
              x: 0.5,
              y: 0.5,
              showarrow: false,
              font: { color: "#5b6570", size: 13 },
            },
          ]
        : markers.annotations,
    };
    const traces = empty ? [] : this.#traces();
    await Plotly.react(this.el, traces, layout, plotConfig("loss"));
    const top = topMarginClearOfToolbar(this.el);
    if (top !== null) {
      this.top = top;
      await Plotly.relayout(this.el, { "margin.t": top });
    }
  }
}
