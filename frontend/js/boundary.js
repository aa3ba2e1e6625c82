// Paints the server's boundary frames into an image that sits under the points, and owns the
// colours. A frame becomes a PNG data URL (a Plotly layout image), so a new frame costs one
// cheap relayout instead of a full replot of axes, legend and every point.
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

// Bilinear P(class 1) at fractional grid position (gx, gy): smooth colour and a smooth line.
function sampleP(field, gx, gy) {
  const { nx, ny } = field.grid;
  const x0 = Math.min(Math.floor(gx), nx - 2);
  const y0 = Math.min(Math.floor(gy), ny - 2);
  const fx = gx - x0;
  const fy = gy - y0;
  const i = y0 * nx + x0;
  const p = field.p;
  const top = p[i] + (p[i + 1] - p[i]) * fx;
  const bottom = p[i + nx] + (p[i + nx + 1] - p[i + nx]) * fx;
  return top + (bottom - top) * fy;
}

// K classes: nearest cell's class, paler where the network is less sure.
function paintClasses(field, nClasses, data, width, height) {
  const { nx, ny } = field.grid;
  const k = Math.max(nClasses, 3);
  const colours = CLASS_COLORS.map(rgb);
  const region = new Uint8Array(width * height);
  for (let r = 0; r < height; r += 1) {
    const gy = Math.round((1 - (r + 0.5) / height) * (ny - 1));
    for (let c = 0; c < width; c += 1) {
      const i = gy * nx + Math.round(((c + 0.5) / width) * (nx - 1));
      const cls = field.cls[i];
      // The argmax probability is never below 1/K: map [1/K, 1] onto pale → full colour.
      const sure = Math.max(0, (field.conf[i] / 255 - 1 / k) / (1 - 1 / k));
      const colour = toward(colours[cls % colours.length], WHITE, 0.85 - 0.6 * sure);
      data.set([...colour, 255], (r * width + c) * 4);
      region[r * width + c] = cls;
    }
  }
  // Edges between predicted classes, drawn where a pixel's right or lower neighbour differs.
  for (let i = 0; i < width * height; i += 1) {
    const right = i % width < width - 1 && region[i + 1] !== region[i];
    const below = i + width < width * height && region[i + width] !== region[i];
    if (right || below) data.set(LINE, i * 4);
  }
}

// Binary: P(class 1) interpolated bilinearly, and the 50 % line anti-aliased from the
// distance to it in pixels, |p − ½| / |∇p|, so it looks the same at any resolution.
function paintProbability(field, data, width, height) {
  const { nx, ny } = field.grid;
  const p = new Float32Array(width * height);
  for (let r = 0; r < height; r += 1) {
    const gy = (1 - (r + 0.5) / height) * (ny - 1);
    for (let c = 0; c < width; c += 1) {
      p[r * width + c] = sampleP(field, ((c + 0.5) / width) * (nx - 1), gy);
    }
  }
  for (let r = 0; r < height; r += 1) {
    for (let c = 0; c < width; c += 1) {
      const i = r * width + c;
      const dx = (p[c < width - 1 ? i + 1 : i] - p[c > 0 ? i - 1 : i]) / 2;
      const dy = (p[r < height - 1 ? i + width : i] - p[r > 0 ? i - width : i]) / 2;
      const distance = Math.abs(p[i] - 0.5) / Math.max(Math.sqrt(dx * dx + dy * dy), 1e-9);
      const ink = Math.min(1, Math.max(0, 1.3 - distance)); // about 2.5 px wide
      const lut = Math.round(p[i] * 255) * 3;
      const o = i * 4;
      // Written channel by channel: this loop runs for every pixel of every frame.
      data[o] = PROBABILITY_LUT[lut] + (LINE[0] - PROBABILITY_LUT[lut]) * ink;
      data[o + 1] = PROBABILITY_LUT[lut + 1] + (LINE[1] - PROBABILITY_LUT[lut + 1]) * ink;
      data[o + 2] = PROBABILITY_LUT[lut + 2] + (LINE[2] - PROBABILITY_LUT[lut + 2]) * ink;
      data[o + 3] = 255;
    }
  }
}

/**
 * Paint a decoded frame as a width × height PNG data URL (row 0 = y_max, the top).
 * @returns {string}
 */
export function paintFrame(field, nClasses, width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(width, height);
  if (field.p) paintProbability(field, image.data, width, height);
  else paintClasses(field, nClasses, image.data, width, height);
  ctx.putImageData(image, 0, 0);
  return canvas.toDataURL("image/png");
}
