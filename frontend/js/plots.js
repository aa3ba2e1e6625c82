// The two kinds of plot: the decision boundary under the points, and the loss curve.
// Updates only mark a plot dirty; one requestAnimationFrame redraws what changed, so a burst
// of frames costs one Plotly.react per plot per display frame, never a queue of them.

import { CLASS_COLORS, decodeFrame, paintFrame } from "./boundary.js";

const Plotly = window.Plotly;
const dirty = new Set();
let scheduled = false;

function flush() {
  scheduled = false;
  const plots = [...dirty];
  dirty.clear();
  for (const plot of plots) plot.draw();
}

function schedule(plot) {
  dirty.add(plot);
  if (!scheduled) {
    scheduled = true;
    requestAnimationFrame(flush);
  }
}

const PLOT_CONFIG = {
  displaylogo: false,
  responsive: true,
  modeBarButtonsToRemove: ["lasso2d", "select2d"],
};

function pointTraces(dataset, small) {
  const traces = [];
  const splits = [
    ["train", "circle", "train"],
    ["test", "diamond", "test"],
  ];
  for (const [split, symbol, label] of splits) {
    const part = dataset?.[split];
    if (!part || !part.x?.length) continue;
    const classes = Math.max(...part.y) + 1;
    for (let k = 0; k < classes; k += 1) {
      const xs = [];
      const ys = [];
      part.x.forEach((p, i) => {
        if (part.y[i] === k) {
          xs.push(p[0]);
          ys.push(p[1]);
        }
      });
      if (!xs.length) continue;
      const test = split === "test";
      traces.push({
        type: "scatter",
        mode: "markers",
        // One legend entry per class, plus one for all test points: the legend stays short.
        name: test ? "test points" : `class ${k}`,
        legendgroup: test ? "test" : `class ${k}`,
        showlegend: !test || !traces.some((t) => t.legendgroup === "test"),
        x: xs,
        y: ys,
        marker: {
          symbol,
          size: small ? 4 : test ? 8 : 6,
          color: CLASS_COLORS[k % CLASS_COLORS.length],
          line: { color: test ? "#fff" : "#1a1a1a", width: small ? 0.5 : 1 },
        },
        hovertemplate: `class ${k} · ${label}<br>(%{x:.2f}, %{y:.2f})<extra></extra>`,
      });
    }
  }
  return traces;
}

function sameGrid(a, b) {
  return ["x_min", "x_max", "y_min", "y_max"].every((k) => a?.[k] === b?.[k]);
}

export class BoundaryPlot {
  /** @param {HTMLElement} el  @param {{small?: boolean}} options */
  constructor(el, { small = false } = {}) {
    this.el = el;
    this.small = small;
    this.dataset = null;
    this.image = null; // {source, grid}: the painted frame
    this.title = "";
    this.revision = 0;
    this.full = true; // points, axes or grid changed: replot everything
  }

  setDataset(dataset) {
    this.dataset = dataset;
    this.full = true;
    this.#changed();
  }

  /** A boundary frame (or null to clear it); nClasses picks binary or K-class colours. */
  setFrame(frame, nClasses = 2) {
    const previous = this.image?.grid;
    // Painted at draw time, not here: of a burst of frames between two display frames only
    // the newest is decoded and painted.
    this.pending = frame ? { frame, nClasses } : null;
    if (!frame || !sameGrid(previous, frame.grid)) this.full = true;
    this.#changed();
  }

  setTitle(title) {
    if (title === this.title) return;
    this.title = title;
    this.#changed();
  }

  #changed() {
    this.revision += 1;
    schedule(this);
  }

  #paint() {
    if (this.pending === undefined) return;
    const pending = this.pending;
    this.pending = undefined;
    if (!pending) {
      this.image = null;
      return;
    }
    // One canvas pixel per screen pixel of the plot area: a crisp line, no wasted paint.
    const area = this.el._fullLayout?._size;
    const scale = Math.min(window.devicePixelRatio || 1, 2);
    const width = Math.min(800, Math.round((area?.w || 400) * scale));
    const height = Math.min(800, Math.round((area?.h || 400) * scale));
    const field = decodeFrame(pending.frame);
    this.image = {
      grid: pending.frame.grid,
      source: paintFrame(field, pending.nClasses, width, height),
    };
  }

  #layoutImages() {
    if (!this.image) return [];
    const g = this.image.grid;
    return [
      {
        source: this.image.source,
        xref: "x",
        yref: "y",
        x: g.x_min,
        y: g.y_max,
        sizex: g.x_max - g.x_min,
        sizey: g.y_max - g.y_min,
        xanchor: "left",
        yanchor: "top",
        sizing: "stretch",
        layer: "below",
      },
    ];
  }

  draw() {
    this.#paint();
    if (!this.full && this.el.layout) {
      // Only the frame or the title changed: a relayout leaves the points alone.
      const update = { images: this.#layoutImages() };
      if (this.small) update["title.text"] = this.title;
      Plotly.relayout(this.el, update);
      return;
    }
    this.full = false;
    Plotly.react(this.el, pointTraces(this.dataset, this.small), this.#layout(), {
      ...PLOT_CONFIG,
      toImageButtonOptions: { filename: this.small ? "boundary-compare" : "boundary" },
    });
  }

  #layout() {
    const layout = {
      datarevision: this.revision,
      uirevision: "keep-zoom",
      margin: this.small ? { l: 28, r: 8, t: 46, b: 24 } : { l: 44, r: 12, t: 30, b: 40 },
      showlegend: !this.small,
      // Above the plot: below it, the legend collides with the x₁ title on a phone.
      legend: { orientation: "h", x: 0, y: 1.01, yanchor: "bottom" },
      xaxis: { title: this.small ? undefined : { text: "x₁" }, zeroline: false },
      yaxis: { title: this.small ? undefined : { text: "x₂" }, zeroline: false },
      images: this.#layoutImages(),
      plot_bgcolor: "#fafafa",
      paper_bgcolor: "rgba(0,0,0,0)",
      font: { size: this.small ? 10 : 12 },
    };
    if (this.small) layout.title = { text: this.title, font: { size: 11 }, x: 0.02, y: 0.97 };
    if (this.image) {
      const g = this.image.grid;
      layout.xaxis.range = [g.x_min, g.x_max];
      layout.yaxis.range = [g.y_min, g.y_max];
      // Grid lines would draw over the painted field.
      layout.xaxis.showgrid = false;
      layout.yaxis.showgrid = false;
    }
    return layout;
  }
}

export class LossPlot {
  constructor(el) {
    this.el = el;
    this.log = false;
    this.revision = 0;
    this.reset();
  }

  reset() {
    this.iterations = [];
    this.loss = [];
    this.testIterations = [];
    this.testLoss = [];
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

  draw() {
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
    const layout = {
      datarevision: this.revision,
      margin: { l: 56, r: 12, t: 12, b: 40 },
      xaxis: { title: { text: "iteration" }, rangemode: "tozero" },
      yaxis: { title: { text: "loss" }, type: this.log ? "log" : "linear" },
      legend: { orientation: "h", y: 1.02, x: 1, xanchor: "right", yanchor: "bottom" },
      hovermode: "x unified",
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "#fafafa",
    };
    Plotly.react(this.el, traces, layout, {
      ...PLOT_CONFIG,
      toImageButtonOptions: { filename: "loss" },
    });
  }
}
