// One persistent <canvas> under a Plotly plot's area, into which every boundary frame is
// painted in place (as TensorFlow Playground paints its heatmap). A new frame costs one
// putImageData: no PNG to encode and decode, no Plotly call. The canvas follows the plot
// area, which it measures from Plotly's own drag rectangle after every (re)layout, and the
// axis ranges, read from the plot's public `layout`, so it stays right when zoomed.

import { gridView, paintField } from "./boundary.js";

const MAX_PIXELS_PER_SIDE = 800; // beyond this the eye sees no difference, the CPU does
const EPSILON = 0.5; // px: remeasurements within this change nothing

/** The plot area in CSS pixels, relative to the plot element; null before the first plot. */
function measureArea(plotEl) {
  const drag = plotEl.querySelector(".draglayer .nsewdrag");
  if (!drag) return null;
  const outer = plotEl.getBoundingClientRect();
  const inner = drag.getBoundingClientRect();
  if (inner.width <= 0 || inner.height <= 0) return null;
  return {
    left: inner.left - outer.left,
    top: inner.top - outer.top,
    width: inner.width,
    height: inner.height,
  };
}

const sameArea = (a, b) =>
  a && b && ["left", "top", "width", "height"].every((k) => Math.abs(a[k] - b[k]) < EPSILON);
const sameView = (a, b) => a && b && ["x0", "x1", "y0", "y1"].every((k) => a[k] === b[k]);

/** The data coordinates the plot area shows, from a relayout event or the layout. */
function readView(plotEl, grid, event = {}) {
  const xr = plotEl.layout?.xaxis?.range;
  const yr = plotEl.layout?.yaxis?.range;
  const pick = (key, fallback) => {
    const v = event[key];
    return typeof v === "number" && Number.isFinite(v) ? v : fallback;
  };
  const home = gridView(grid);
  return {
    x0: pick("xaxis.range[0]", xr?.[0] ?? home.x0),
    x1: pick("xaxis.range[1]", xr?.[1] ?? home.x1),
    y0: pick("yaxis.range[0]", yr?.[0] ?? home.y0),
    y1: pick("yaxis.range[1]", yr?.[1] ?? home.y1),
  };
}

export class FieldCanvas {
  /** @param {HTMLElement} plotEl  the element Plotly draws into */
  constructor(plotEl) {
    this.plotEl = plotEl;
    this.canvas = document.createElement("canvas");
    this.canvas.className = "field-canvas";
    this.canvas.setAttribute("aria-hidden", "true");
    this.canvas.dataset.frames = "0";
    this.canvas.hidden = true;
    plotEl.append(this.canvas);
    this.ctx = this.canvas.getContext("2d");
    this.image = null; // ImageData, reused while the canvas keeps its size
    this.field = null;
    this.nClasses = 2;
    this.area = null;
    this.view = null;
    this.listening = false;
  }

  /** Start following Plotly's (re)layouts; call after the plot's first draw. */
  listen() {
    if (this.listening || typeof this.plotEl.on !== "function") return;
    this.listening = true;
    this.plotEl.on("plotly_afterplot", () => this.sync());
    this.plotEl.on("plotly_relayout", () => this.sync());
    this.plotEl.on("plotly_relayouting", (event) => this.sync(event));
  }

  /** Paint a decoded frame (null clears the canvas). */
  show(field, nClasses) {
    this.field = field;
    this.nClasses = nClasses;
    if (field) this.canvas.dataset.frames = String(Number(this.canvas.dataset.frames) + 1);
    this.#render(measureArea(this.plotEl), field ? readView(this.plotEl, field.grid) : null);
  }

  /** Remeasure after a relayout; repaint only when the area or the view changed. */
  sync(event) {
    const area = measureArea(this.plotEl);
    const view = this.field ? readView(this.plotEl, this.field.grid, event) : null;
    if (sameArea(area, this.area) && (sameView(view, this.view) || !this.field)) return;
    this.#render(area, view);
  }

  #render(area, view) {
    this.area = area;
    this.view = view;
    this.canvas.hidden = !area || !this.field;
    if (this.canvas.hidden) return;
    const style = this.canvas.style;
    style.left = `${area.left}px`;
    style.top = `${area.top}px`;
    style.width = `${area.width}px`;
    style.height = `${area.height}px`;
    // One canvas pixel per device pixel (up to 2× and 800 px a side): a crisp line.
    const scale = Math.min(window.devicePixelRatio || 1, 2);
    const width = Math.max(1, Math.min(MAX_PIXELS_PER_SIDE, Math.round(area.width * scale)));
    const height = Math.max(1, Math.min(MAX_PIXELS_PER_SIDE, Math.round(area.height * scale)));
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
    }
    if (this.image?.width !== width || this.image?.height !== height) {
      this.image = this.ctx.createImageData(width, height);
    }
    paintField(this.field, this.nClasses, this.image.data, width, height, view);
    this.ctx.putImageData(this.image, 0, 0);
  }

  /**
   * The whole plot as one PNG blob: Plotly's picture of axes, points and legend (transparent
   * where the plot area is) over this canvas, on white. Plotly's own PNG export cannot see
   * the canvas, which is not part of its SVG.
   */
  async png(Plotly, scale = 2) {
    const { clientWidth: width, clientHeight: height } = this.plotEl;
    const url = await Plotly.toImage(this.plotEl, { format: "png", width, height, scale });
    const overlay = new Image();
    overlay.src = url;
    await overlay.decode();
    const out = document.createElement("canvas");
    out.width = Math.round(width * scale);
    out.height = Math.round(height * scale);
    const ctx = out.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, out.width, out.height);
    if (!this.canvas.hidden && this.area) {
      const a = this.area;
      ctx.drawImage(this.canvas, a.left * scale, a.top * scale, a.width * scale, a.height * scale);
    }
    ctx.drawImage(overlay, 0, 0, out.width, out.height);
    return new Promise((resolve) => out.toBlob(resolve, "image/png"));
  }
}
