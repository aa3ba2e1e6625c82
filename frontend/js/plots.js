// The decision-boundary plot: the points (Plotly, SVG) over the painted field (a canvas of
// its own, fieldcanvas.js). A new frame repaints the canvas only; Plotly redraws when the
// points, the grid or the test points' visibility change.

import { CLASS_COLORS, decodeFrame } from "./boundary.js";
import { FieldCanvas } from "./fieldcanvas.js";
import { plotConfig, schedule, topMarginClearOfToolbar } from "./plotkit.js";

const Plotly = window.Plotly;

function pointTraces(dataset, small, showTest) {
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
        // Hidden test points keep their legend entry, so they can be shown again from there.
        visible: test && !showTest ? "legendonly" : true,
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
  /**
   * @param {HTMLElement} el
   * @param {{small?: boolean, onTestLegend?: (show: boolean) => void}} options  small: a
   *   comparison cell (no legend, no axis titles); onTestLegend: the legend's "test points"
   *   entry was clicked, asking to show (true) or hide them
   */
  constructor(el, { small = false, onTestLegend = null } = {}) {
    this.el = el;
    this.small = small;
    this.onTestLegend = onTestLegend;
    this.dataset = null;
    this.grid = null; // the grid of the frame on show: it sets the axes' ranges
    this.showTest = true;
    this.field = new FieldCanvas(el);
    this.pending = undefined; // a frame to paint at the next draw (null: clear)
    this.revision = 0;
    this.full = true; // points, axes or grid changed: replot with Plotly
    this.top = 30; // the top margin; grows where the legend must clear the toolbar
    this.heldRanges = null; // axes kept still while a person clicks points in (owndata.js)
  }

  /** Keep the axes where they are (true), so a clicked point lands where it was clicked
   * while the points change; or follow the points again (false). */
  holdAxes(hold) {
    const axes = this.el._fullLayout;
    this.heldRanges = hold && axes ? [[...axes.xaxis.range], [...axes.yaxis.range]] : null;
    this.full = true;
    schedule(this);
  }

  setDataset(dataset) {
    this.dataset = dataset;
    this.full = true;
    schedule(this);
  }

  /** A boundary frame (or null to clear it); nClasses picks binary or K-class colours. */
  setFrame(frame, nClasses = 2) {
    // Decoded and painted at draw time, not here: of a burst of frames between two display
    // frames only the newest is painted.
    this.pending = frame ? { frame, nClasses } : null;
    if (!frame || !sameGrid(this.grid, frame.grid)) this.full = true;
    schedule(this);
  }

  /** Show or hide the held-out test points. */
  setShowTest(show) {
    if (show === this.showTest) return;
    this.showTest = show;
    this.full = true;
    schedule(this);
  }

  async draw() {
    const pending = this.pending;
    this.pending = undefined;
    if (pending !== undefined) {
      const grid = pending?.frame.grid ?? null;
      if (!sameGrid(grid, this.grid)) this.full = true;
      this.grid = grid;
    }
    if (this.full) {
      this.full = false;
      this.revision += 1;
      const config = plotConfig(this.small ? "boundary-compare" : "boundary", () =>
        this.field.png(Plotly),
      );
      const traces = pointTraces(this.dataset, this.small, this.showTest);
      await Plotly.react(this.el, traces, this.#layout(), config);
      this.#listen();
      const top = this.small ? null : topMarginClearOfToolbar(this.el);
      if (top !== null) {
        this.top = top;
        await Plotly.relayout(this.el, { "margin.t": top });
      }
    }
    if (pending !== undefined) {
      this.field.show(pending ? decodeFrame(pending.frame) : null, pending?.nClasses ?? 2);
    }
  }

  #listen() {
    if (this.listening) return;
    this.listening = true;
    this.field.listen();
    this.el.on("plotly_legendclick", (event) => {
      if (event.data[event.curveNumber]?.legendgroup !== "test") return true;
      this.onTestLegend?.(!this.showTest);
      return false; // the checkbox decides, so legend and checkbox never disagree
    });
  }

  #margin() {
    if (this.small) return { l: 28, r: 8, t: 26, b: 24 };
    return { l: 44, r: 12, t: this.top, b: 40 };
  }

  #layout() {
    const g = this.grid;
    const layout = {
      datarevision: this.revision,
      uirevision: "keep-zoom",
      margin: this.#margin(),
      showlegend: !this.small,
      // Above the plot: below it, the legend collides with the x₁ title on a phone.
      legend: { orientation: "h", x: 0, y: 1.01, yanchor: "bottom" },
      xaxis: { title: this.small ? undefined : { text: "x₁" }, zeroline: false },
      yaxis: { title: this.small ? undefined : { text: "x₂" }, zeroline: false },
      // See-through over a painted field, which lies under the plot in its own canvas.
      plot_bgcolor: g ? "rgba(0,0,0,0)" : "#fafafa",
      paper_bgcolor: "rgba(0,0,0,0)",
      font: { size: this.small ? 10 : 12 },
    };
    if (this.heldRanges && !g) {
      [layout.xaxis.range, layout.yaxis.range] = this.heldRanges;
    }
    if (g) {
      layout.xaxis.range = [g.x_min, g.x_max];
      layout.yaxis.range = [g.y_min, g.y_max];
      // Grid lines would draw over the painted field.
      layout.xaxis.showgrid = false;
      layout.yaxis.showgrid = false;
    }
    return layout;
  }
}
