// Click editing on the boundary plot: a click adds a point of the chosen class at the place
// clicked; shift-click (or a click in eraser mode) removes the nearest point. Knows the
// plot's axes (Plotly's laid-out ranges), not the server.

/**
 * Where a mouse event falls on a Plotly plot, in data coordinates, or null outside the
 * plotting area.
 * @returns {{x: number, y: number, sx: number, sy: number} | null}  sx, sy: data units per
 *   pixel, to measure distances on screen
 */
export function dataPoint(el, event) {
  const area = el.querySelector(".nsewdrag");
  const layout = el._fullLayout;
  if (!area || !layout) return null;
  const rect = area.getBoundingClientRect();
  const fx = (event.clientX - rect.left) / rect.width;
  const fy = (event.clientY - rect.top) / rect.height;
  if (!(fx >= 0 && fx <= 1 && fy >= 0 && fy <= 1)) return null;
  const [x0, x1] = layout.xaxis.range;
  const [y0, y1] = layout.yaxis.range;
  return {
    x: x0 + fx * (x1 - x0),
    y: y1 - fy * (y1 - y0),
    sx: (x1 - x0) / rect.width,
    sy: (y1 - y0) / rect.height,
  };
}

/** Index of the point nearest to `at` as seen on screen, or -1 when there are none. */
export function nearestIndex(points, at) {
  let best = -1;
  let bestDistance = Infinity;
  points.forEach(([x, y], i) => {
    const d = ((x - at.x) / at.sx) ** 2 + ((y - at.y) / at.sy) ** 2;
    if (d < bestDistance) {
      bestDistance = d;
      best = i;
    }
  });
  return best;
}

/** A coordinate rounded to what a person can place with a mouse (4 significant digits). */
export const placed = (v) => Number(v.toPrecision(4));
