// The two kinds of plot: the decision boundary under the points, and the loss curve.
// Updates only mark a plot dirty; one requestAnimationFrame redraws what changed, so a burst
// of frames costs one Plotly.react per plot per display frame, never a queue of them.

import { CLASS_COLORS, PROBABILITY_SCALE, classScale, decodeFrame } from "./boundary.js";

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
      traces.push({
        type: "scatter",
        mode: "markers",
        name: `class ${k} (${label})`,
        x: xs,
        y: ys,
        marker: {
          symbol,
          size: small ? 4 : split === "test" ? 8 : 6,
          color: CLASS_COLORS[k % CLASS_COLORS.length],
          line: { color: split === "test" ? "#fff" : "#1a1a1a", width: small ? 0.5 : 1 },
        },
        hovertemplate: `class ${k} · ${label}<br>(%{x:.2f}, %{y:.2f})<extra></extra>`,
      });
    }
  }
  return traces;
}

function boundaryTraces(field) {
  if (!field) return [];
  if (field.classes > 2) {
    return [
      {
        type: "heatmap",
        x: field.x,
        y: field.y,
        z: field.z,
        zmin: 0,
        zmax: field.classes,
        colorscale: classScale(field.classes),
        showscale: false,
        hovertemplate: "predicted class %{z:.0f}<extra></extra>",
      },
    ];
  }
  return [
    {
      type: "heatmap",
      x: field.x,
      y: field.y,
      z: field.z,
      zmin: 0,
      zmax: 1,
      colorscale: PROBABILITY_SCALE,
      opacity: 0.8,
      showscale: false,
      hovertemplate: "P(class 1) = %{z:.2f}<extra></extra>",
    },
    {
      // The decision boundary itself: where P(class 1) crosses one half.
      type: "contour",
      x: field.x,
      y: field.y,
      z: field.z,
      contours: { start: 0.5, end: 0.5, size: 1, coloring: "lines" },
      colorscale: [
        [0, "#222"],
        [1, "#222"],
      ],
      line: { width: 2 },
      showscale: false,
      hoverinfo: "skip",
    },
  ];
}

export class BoundaryPlot {
  /** @param {HTMLElement} el  @param {{small?: boolean}} options */
  constructor(el, { small = false } = {}) {
    this.el = el;
    this.small = small;
    this.dataset = null;
    this.field = null;
    this.title = "";
    this.revision = 0;
  }

  setDataset(dataset) {
    this.dataset = dataset;
    this.#changed();
  }

  setFrame(frame, nClasses) {
    this.field = frame ? decodeFrame(frame, nClasses) : null;
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

  draw() {
    const traces = [...boundaryTraces(this.field), ...pointTraces(this.dataset, this.small)];
    const layout = {
      datarevision: this.revision,
      uirevision: "keep-zoom",
      margin: this.small ? { l: 28, r: 8, t: 46, b: 24 } : { l: 44, r: 12, t: 30, b: 40 },
      showlegend: !this.small,
      // Above the plot: below it, the legend collides with the x₁ title on a phone.
      legend: { orientation: "h", x: 0, y: 1.01, yanchor: "bottom" },
      xaxis: { title: this.small ? undefined : { text: "x₁" }, zeroline: false },
      yaxis: { title: this.small ? undefined : { text: "x₂" }, zeroline: false },
      plot_bgcolor: "#fafafa",
      paper_bgcolor: "rgba(0,0,0,0)",
      font: { size: this.small ? 10 : 12 },
    };
    if (this.small) layout.title = { text: this.title, font: { size: 11 }, x: 0.02, y: 0.97 };
    if (this.field) {
      layout.xaxis.range = [this.field.x[0], this.field.x.at(-1)];
      layout.yaxis.range = [this.field.y[0], this.field.y.at(-1)];
    }
    Plotly.react(this.el, traces, layout, {
      ...PLOT_CONFIG,
      toImageButtonOptions: { filename: this.small ? "boundary-compare" : "boundary" },
    });
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
