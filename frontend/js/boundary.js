// Turns the server's boundary frames into pixels, and owns the colours. Pure functions over
// arrays: fieldcanvas.js puts the pixels on screen.
// Red ↔ blue through light yellow (ColorBrewer RdYlBu): the article's Spectral look, without
// the greens that red–green colour-blind people cannot tell from the reds.

export const CLASS_COLORS = ["#d73027", "#4575b4", "#009e73", "#e69f00", "#cc79a7"];

const PROBABILITY_STOPS = [
  "#d73027",
  "#f46d43",
  "#fdae61",
  "#fee090",
  "#ffffbf",
  "#e0f3f8",
  "#abd9e9",
  "#74add1",
  "#4575b4",
];
const LINE = [34, 34, 34]; // the decision boundary's colour
const WASH = 0.2; // share of white mixed into the background so the points stand out

const rgb = (hex) => {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
};
const toward = (c, target, t) => c.map((v, i) => Math.round(v + (target[i] - v) * t));
const WHITE = [255, 255, 255];

/** 256 colours, flat RGB: [3·round(255·p)] → colour of P(class 1) = p, washed with white. */
const PROBABILITY_LUT = (() => {
  const stops = PROBABILITY_STOPS.map(rgb);
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i += 1) {
    const pos = (i / 255) * (stops.length - 1);
    const lo = Math.min(Math.floor(pos), stops.length - 2);
    lut.set(toward(toward(stops[lo], stops[lo + 1], pos - lo), WHITE, WASH), i * 3);
  }
  return lut;
})();

function base64Bytes(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

/**
 * Decode a frame: {grid, k, p: Float32Array(ny·nx) of P(class 1) | null,
 * cls: Uint8Array(ny·nx) | null, conf: Uint8Array(ny·nx) | null}, rows from y_min up.
 */
export function decodeFrame(frame) {
  const { nx, ny } = frame.grid;
  const bytes = base64Bytes(frame.data);
  const cells = nx * ny;
  if (frame.encoding === "class-conf-uint8-base64") {
    const cls = bytes.subarray(0, cells);
    return { grid: frame.grid, k: 0, p: null, cls, conf: bytes.subarray(cells, 2 * cells) };
  }
  const p = new Float32Array(cells);
  for (let i = 0; i < cells; i += 1) p[i] = bytes[i] / 255;
  return { grid: frame.grid, k: 2, p, cls: null, conf: null };
}

/** The view a frame fills exactly: its own grid's extent. */
export const gridView = (grid) => ({
  x0: grid.x_min,
  x1: grid.x_max,
  y0: grid.y_min,
  y1: grid.y_max,
});

// Reused between frames: a live run paints up to 60 frames a second, each up to 800 × 800.
let scratch = { size: 0, value: null, margin: null, cls: null };
function buffers(size) {
  if (scratch.size !== size) {
    scratch = {
      size,
      value: new Float32Array(size),
      margin: new Float32Array(size),
      cls: new Uint8Array(size),
    };
  }
  return scratch;
}

/**
 * Where the centre of each pixel column / row falls on the frame's grid, in cells from
 * (x_min, y_min); NaN off the grid. view = {x0, x1, y0, y1}: the data coordinates of the
 * canvas's left, right, bottom and top edges (they differ from the grid's when zoomed).
 * @returns {{gx: Float64Array(width), gy: Float64Array(height), sx: number, sy: number}}
 *   sx, sy: grid cells per pixel, to turn a gradient per cell into one per pixel
 */
function pixelGrid(grid, view, width, height) {
  const cellsPerX = (grid.nx - 1) / (grid.x_max - grid.x_min);
  const cellsPerY = (grid.ny - 1) / (grid.y_max - grid.y_min);
  const gx = new Float64Array(width);
  const gy = new Float64Array(height);
  const onGrid = (g, n) =>
    g >= -1e-9 && g <= n - 1 + 1e-9 ? Math.min(Math.max(g, 0), n - 1) : NaN;
  for (let c = 0; c < width; c += 1) {
    const x = view.x0 + ((c + 0.5) / width) * (view.x1 - view.x0);
    gx[c] = onGrid((x - grid.x_min) * cellsPerX, grid.nx);
  }
  for (let r = 0; r < height; r += 1) {
    const y = view.y1 - ((r + 0.5) / height) * (view.y1 - view.y0); // row 0 is the top
    gy[r] = onGrid((y - grid.y_min) * cellsPerY, grid.ny);
  }
  const sx = (cellsPerX * (view.x1 - view.x0)) / width;
  const sy = (cellsPerY * (view.y1 - view.y0)) / height;
  return { gx, gy, sx, sy };
}

// Distance in pixels from a pixel to where `field` crosses zero, |f| / |∇f|, turned into ink
// (1 on the line, 0 beyond ~1.3 px): a 2.5 px anti-aliased line at any resolution. The
// gradient takes the larger one-sided difference on each axis, so a kink (the top-two margin
// of K classes is |…|-shaped at the edge) reads as steep as its sides.
function inkAt(field, i, c, r, width, height, signed, reach) {
  const f = field[i];
  if (Math.abs(f) > reach) return 0; // too far from any zero to be on the line
  const left = c > 0 && !Number.isNaN(field[i - 1]) ? field[i - 1] : f;
  const right = c < width - 1 && !Number.isNaN(field[i + 1]) ? field[i + 1] : f;
  const up = r > 0 && !Number.isNaN(field[i - width]) ? field[i - width] : f;
  const down = r < height - 1 && !Number.isNaN(field[i + width]) ? field[i + width] : f;
  const dx = signed ? (right - left) / 2 : Math.max(Math.abs(right - f), Math.abs(f - left));
  const dy = signed ? (down - up) / 2 : Math.max(Math.abs(down - f), Math.abs(f - up));
  const distance = Math.abs(f) / Math.max(Math.sqrt(dx * dx + dy * dy), 1e-9);
  return Math.min(1, Math.max(0, 1.3 - distance));
}

/**
 * The largest |f| a pixel on the line can have: 1.3 px times an upper bound on |∇f| per
 * pixel, from the steepest difference between neighbouring grid points. Pixels beyond it skip
 * the gradient entirely, which is most of them.
 * @param {Float32Array[]} grids  per-grid-point fields whose differences bound f's
 */
function inkReach(grids, nx, at) {
  let steepest = 0;
  for (const g of grids) {
    for (let i = 0; i + 1 < g.length; i += 1) {
      if ((i + 1) % nx) steepest = Math.max(steepest, Math.abs(g[i + 1] - g[i]));
      if (i + nx < g.length) steepest = Math.max(steepest, Math.abs(g[i + nx] - g[i]));
    }
  }
  // Two fields, two steps (the K-class margin is a difference of two scores), √2 diagonally.
  return (
    1.3 * 2 * grids.length * steepest * Math.SQRT2 * Math.max(Math.abs(at.sx), Math.abs(at.sy))
  );
}

// Binary: P(class 1) interpolated bilinearly; the line is where P − ½ crosses zero.
function paintProbability(field, data, width, height, at) {
  const { nx } = field.grid;
  const { value } = buffers(width * height);
  const p = field.p;
  const reach = inkReach([p], nx, at);
  for (let r = 0; r < height; r += 1) {
    const gy = at.gy[r];
    const y0 = Math.min(Math.floor(gy), field.grid.ny - 2);
    const fy = gy - y0;
    for (let c = 0; c < width; c += 1) {
      const gx = at.gx[c];
      if (Number.isNaN(gx) || Number.isNaN(gy)) {
        value[r * width + c] = NaN;
        continue;
      }
      const x0 = Math.min(Math.floor(gx), nx - 2);
      const fx = gx - x0;
      const i = y0 * nx + x0;
      const top = p[i] + (p[i + 1] - p[i]) * fx;
      const bottom = p[i + nx] + (p[i + nx + 1] - p[i + nx]) * fx;
      value[r * width + c] = top + (bottom - top) * fy - 0.5;
    }
  }
  for (let r = 0; r < height; r += 1) {
    for (let c = 0; c < width; c += 1) {
      const i = r * width + c;
      const o = i * 4;
      if (Number.isNaN(value[i])) {
        data[o + 3] = 0; // off the grid (zoomed out): transparent
        continue;
      }
      const lut = Math.round((value[i] + 0.5) * 255) * 3;
      const ink = inkAt(value, i, c, r, width, height, true, reach);
      // Written channel by channel: this loop runs for every pixel of every frame.
      data[o] = PROBABILITY_LUT[lut] + (LINE[0] - PROBABILITY_LUT[lut]) * ink;
      data[o + 1] = PROBABILITY_LUT[lut + 1] + (LINE[1] - PROBABILITY_LUT[lut + 1]) * ink;
      data[o + 2] = PROBABILITY_LUT[lut + 2] + (LINE[2] - PROBABILITY_LUT[lut + 2]) * ink;
      data[o + 3] = 255;
    }
  }
}

// Where both neighbours are barely sure (q ≤ ½ + floor/2), the edge falls between them.
const TIE_FLOOR = 0.01;
const CORNERS = new Int32Array(4); // reused: this runs for every mixed pixel of every frame
const WEIGHTS = new Float64Array(4);

/**
 * Per grid point, from the K-class frame (which carries only each point's argmax class and
 * that class's probability q): `top` = q, the score of its own class, and `other` = the score
 * of every other class there, as the runner-up next to a region of its own would score,
 * min(1 − q, q − floor). Two classes then tie where q ≈ ½ between their regions, and a
 * point scores a class the same whichever cell asks, so each class's bilinear score is
 * continuous from cell to cell and regions meet along smooth curves, not cell edges.
 * @returns {{top: Float32Array(ny·nx), other: Float32Array(ny·nx)}}
 */
function classScores(field) {
  const cells = field.conf.length;
  const top = new Float32Array(cells);
  const other = new Float32Array(cells);
  for (let i = 0; i < cells; i += 1) {
    const q = field.conf[i] / 255;
    top[i] = q;
    other[i] = Math.min(1 - q, q - TIE_FLOOR);
  }
  return { top, other };
}

/**
 * The classes at a pixel whose four grid points disagree (i = the lower-left point).
 * @returns {number} the top class; sets out.sure (its score) and out.margin (top − second)
 */
function mixedAt(field, scores, i, fx, fy, out) {
  const { cls } = field;
  const nx = field.grid.nx;
  CORNERS[0] = i;
  CORNERS[1] = i + 1;
  CORNERS[2] = i + nx;
  CORNERS[3] = i + nx + 1;
  WEIGHTS[0] = (1 - fx) * (1 - fy);
  WEIGHTS[1] = fx * (1 - fy);
  WEIGHTS[2] = (1 - fx) * fy;
  WEIGHTS[3] = fx * fy;
  let rest = 0; // the score of a class that is the argmax at none of the four points
  for (let j = 0; j < 4; j += 1) rest += WEIGHTS[j] * scores.other[CORNERS[j]];
  let top = cls[i];
  let best = -Infinity;
  let second = rest;
  for (let j = 0; j < 4; j += 1) {
    const c = cls[CORNERS[j]];
    let seen = false;
    for (let m = 0; m < j; m += 1) seen = seen || cls[CORNERS[m]] === c;
    if (seen) continue;
    let score = rest;
    for (let m = j; m < 4; m += 1) {
      const n = CORNERS[m];
      if (cls[n] === c) score += WEIGHTS[m] * (scores.top[n] - scores.other[n]);
    }
    if (score > best) {
      second = Math.max(second, best);
      best = score;
      top = c;
    } else if (score > second) second = score;
  }
  out.sure = best;
  out.margin = best - second;
  return top;
}

/** Per class, 256 colours: [256·class + round(255·sure)] → RGB, paler when less sure. */
const CLASS_LUT = CLASS_COLORS.map((hex) => {
  const lut = new Uint8Array(256 * 3);
  for (let s = 0; s < 256; s += 1) lut.set(toward(rgb(hex), WHITE, 0.85 - (0.6 * s) / 255), s * 3);
  return lut;
});

/**
 * K classes sampled at every pixel: `cls` the predicted class, `value` its score and `margin`
 * its lead over the runner-up (NaN off the grid), interpolated between the grid's points.
 */
function sampleClasses(field, scores, width, height, at) {
  const { nx, ny } = field.grid;
  const { cls: fieldCls } = field;
  const { value, margin, cls } = buffers(width * height);
  const x0s = new Int32Array(width);
  for (let c = 0; c < width; c += 1) x0s[c] = Math.min(Math.floor(at.gx[c]), nx - 2);
  const out = { sure: 0, margin: 0 };
  for (let r = 0; r < height; r += 1) {
    const gy = at.gy[r];
    const y0 = Math.min(Math.floor(gy), ny - 2);
    const fy = gy - y0;
    for (let c = 0; c < width; c += 1) {
      const o = r * width + c;
      if (Number.isNaN(at.gx[c]) || Number.isNaN(gy)) {
        margin[o] = NaN;
        continue;
      }
      const fx = at.gx[c] - x0s[c];
      const i = y0 * nx + x0s[c];
      const a = fieldCls[i];
      if (a === fieldCls[i + 1] && a === fieldCls[i + nx] && a === fieldCls[i + nx + 1]) {
        // One class at all four points (most pixels): its score against any other's.
        const { top, other } = scores;
        const lerp = (f, j) => f[j] + (f[j + 1] - f[j]) * fx;
        const sTop = lerp(top, i) + (lerp(top, i + nx) - lerp(top, i)) * fy;
        const sOther = lerp(other, i) + (lerp(other, i + nx) - lerp(other, i)) * fy;
        cls[o] = a;
        value[o] = sTop;
        margin[o] = sTop - sOther;
      } else {
        cls[o] = mixedAt(field, scores, i, fx, fy, out);
        value[o] = out.sure;
        margin[o] = out.margin;
      }
    }
  }
  return { value, margin, cls };
}

// K classes: colour of the predicted class, paler where the network is less sure, and a line
// where two classes tie.
function paintClasses(field, nClasses, data, width, height, at) {
  const k = Math.max(nClasses, 3);
  const scores = classScores(field);
  const { value, margin, cls } = sampleClasses(field, scores, width, height, at);
  const reach = inkReach([scores.top, scores.other], field.grid.nx, at);
  for (let r = 0; r < height; r += 1) {
    for (let c = 0; c < width; c += 1) {
      const i = r * width + c;
      if (Number.isNaN(margin[i])) {
        data[i * 4 + 3] = 0;
        continue;
      }
      // The top score is never below 1/K: map [1/K, 1] onto pale → full colour.
      const sure = Math.min(1, Math.max(0, (value[i] - 1 / k) / (1 - 1 / k)));
      const lut = CLASS_LUT[cls[i] % CLASS_LUT.length];
      const at3 = Math.round(sure * 255) * 3;
      const ink = inkAt(margin, i, c, r, width, height, false, reach);
      const o = i * 4;
      data[o] = lut[at3] + (LINE[0] - lut[at3]) * ink;
      data[o + 1] = lut[at3 + 1] + (LINE[1] - lut[at3 + 1]) * ink;
      data[o + 2] = lut[at3 + 2] + (LINE[2] - lut[at3 + 2]) * ink;
      data[o + 3] = 255;
    }
  }
}

/**
 * Paint a decoded frame into RGBA pixels (row 0 = the top of the view).
 * @param {object} field  from decodeFrame()
 * @param {number} nClasses  K; colours of the K-class encoding
 * @param {Uint8ClampedArray} data  width · height · 4 bytes, overwritten
 * @param {{x0: number, x1: number, y0: number, y1: number}} view  data coordinates of the
 *   left, right, bottom and top edges; pixels off the frame's grid stay transparent
 */
export function paintField(field, nClasses, data, width, height, view = gridView(field.grid)) {
  const at = pixelGrid(field.grid, view, width, height);
  if (field.p) paintProbability(field, data, width, height, at);
  else paintClasses(field, nClasses, data, width, height, at);
}
