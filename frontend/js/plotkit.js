// What every plot shares: one redraw per display frame, the toolbar's configuration, and
// keeping the toolbar off the legend.

import { saveBlob } from "./download.js";

const Plotly = window.Plotly;
const dirty = new Set();
let scheduled = false;

function flush() {
  scheduled = false;
  const plots = [...dirty];
  dirty.clear();
  for (const plot of plots) plot.draw();
}

/**
 * Mark a plot for redrawing: updates only mark; one requestAnimationFrame redraws what
 * changed, so a burst of messages costs one draw per plot per display frame.
 * @param {{draw: () => void}} plot
 */
export function schedule(plot) {
  dirty.add(plot);
  if (!scheduled) {
    scheduled = true;
    requestAnimationFrame(flush);
  }
}

// Buttons a person here has no use for, and the one that would post the chart to Plotly's
// cloud: nothing leaves this machine.
const REMOVED = ["sendChartToCloud", "lasso2d", "select2d", "zoomIn2d", "zoomOut2d", "autoScale2d"];

/**
 * Plotly's config for one plot.
 * @param {string} filename  the PNG's name when saved
 * @param {(() => Promise<Blob>) | null} png  draws the PNG itself (a plot with a canvas under
 *   it, which Plotly's own export cannot see); null: Plotly's camera button
 */
export function plotConfig(filename, png = null) {
  const config = {
    displaylogo: false,
    responsive: true,
    showSendToCloud: false,
    plotlyServerURL: "",
    modeBarButtonsToRemove: png ? [...REMOVED, "toImage"] : REMOVED,
    toImageButtonOptions: { filename },
  };
  if (png) {
    config.modeBarButtonsToAdd = [
      {
        name: "downloadPng",
        title: "Download plot as a PNG",
        icon: Plotly.Icons.camera,
        click: async () => saveBlob(await png(), `${filename}.png`),
      },
    ];
  }
  return config;
}

const rect = (el) => el?.getBoundingClientRect();
const overlaps = (a, b) =>
  a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;

/**
 * After a draw: the top margin that puts the legend (anchored just above the plot area)
 * below the toolbar at the top right, as a narrow screen needs; null when it is clear already.
 * Measured, because Plotly itself widens the margin to fit the legend.
 * @param {HTMLElement} el  the plot
 * @returns {number | null}
 */
export function topMarginClearOfToolbar(el) {
  const bar = rect(el.querySelector(".modebar"));
  const legend = rect(el.querySelector(".legend"));
  const area = rect(el.querySelector(".draglayer .nsewdrag"));
  if (!bar?.width || !legend?.width || !area || !overlaps(bar, legend)) return null;
  return Math.ceil(area.top - rect(el).top + (bar.bottom - legend.top) + 4);
}
