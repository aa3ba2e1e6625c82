// Decodes the server's boundary frames into Plotly heatmap arrays, and owns the colours.
// Red ↔ blue through light yellow (ColorBrewer RdYlBu): the article's Spectral look, without
// the greens that red–green colour-blind people cannot tell from the reds.

export const CLASS_COLORS = ["#d73027", "#4575b4", "#009e73", "#e69f00", "#cc79a7"];

export const PROBABILITY_SCALE = [
  [0.0, "#d73027"],
  [0.125, "#f46d43"],
  [0.25, "#fdae61"],
  [0.375, "#fee090"],
  [0.5, "#ffffbf"],
  [0.625, "#e0f3f8"],
  [0.75, "#abd9e9"],
  [0.875, "#74add1"],
  [1.0, "#4575b4"],
];

function linspace(lo, hi, n) {
  if (n <= 1) return [lo];
  const step = (hi - lo) / (n - 1);
  return Array.from({ length: n }, (_, i) => lo + i * step);
}

function base64Bytes(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

function mix(hex, amount) {
  // Blend a colour toward white: low confidence reads as pale.
  const n = Number.parseInt(hex.slice(1), 16);
  const channel = (shift) => {
    const c = (n >> shift) & 255;
    return Math.round(c + (255 - c) * amount);
  };
  return `rgb(${channel(16)},${channel(8)},${channel(0)})`;
}

/** A discrete colour scale for K classes over z ∈ [0, K): pale at low confidence. */
export function classScale(k) {
  const scale = [];
  for (let c = 0; c < k; c += 1) {
    const color = CLASS_COLORS[c % CLASS_COLORS.length];
    scale.push([c / k, mix(color, 0.85)]);
    scale.push([(c + 1) / k - 1e-6, mix(color, 0.25)]);
  }
  scale[scale.length - 1][0] = 1;
  return scale;
}

/**
 * Frame → {x: nx numbers, y: ny numbers, z: ny rows of nx numbers, classes: K or 2}.
 * Binary frames give z = P(class 1) in [0, 1]; K-class frames give z = class + confidence
 * mapped into [class, class + 1), which classScale() colours.
 */
export function decodeFrame(frame, nClasses = 2) {
  const { x_min, x_max, y_min, y_max, nx, ny } = frame.grid;
  const bytes = base64Bytes(frame.data);
  const cells = nx * ny;
  const z = new Array(ny);
  if (frame.encoding === "class-conf-uint8-base64") {
    const k = Math.max(nClasses, 3);
    const floor = 1 / k; // the argmax probability is never below 1/K
    for (let r = 0; r < ny; r += 1) {
      const row = new Array(nx);
      for (let c = 0; c < nx; c += 1) {
        const i = r * nx + c;
        const conf = Math.min(1, Math.max(0, (bytes[cells + i] / 255 - floor) / (1 - floor)));
        row[c] = bytes[i] + 0.999 * conf;
      }
      z[r] = row;
    }
    return { x: linspace(x_min, x_max, nx), y: linspace(y_min, y_max, ny), z, classes: k };
  }
  for (let r = 0; r < ny; r += 1) {
    const row = new Array(nx);
    for (let c = 0; c < nx; c += 1) row[c] = bytes[r * nx + c] / 255;
    z[r] = row;
  }
  return { x: linspace(x_min, x_max, nx), y: linspace(y_min, y_max, ny), z, classes: 2 };
}
