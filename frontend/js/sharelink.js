// Own points in a link: a compact binary form in the URL fragment (#points=…), which never
// reaches the server. Coordinates are quantised to 16 bits across the points' bounding box,
// labels take a byte: 5 bytes a point, base64url. Pure functions, no DOM.

export const MAX_LINK_POINTS = 2000; // about 13 KB of link
const STEPS = 65535;
const HEADER = 1 + 4 * 8; // version byte, then x_min, x_max, y_min, y_max as float64
const VERSION = 1;

const toBase64Url = (bytes) =>
  btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");

function fromBase64Url(text) {
  const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function bounds(points) {
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  return [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
}

const step = (lo, hi) => (hi > lo ? (hi - lo) / STEPS : 0);
const level = (v, lo, hi) => (hi > lo ? Math.round(((v - lo) / (hi - lo)) * STEPS) : 0);

/** The points as the link restores them: each coordinate on the 16-bit grid of the box. */
export function quantise(points) {
  const [x0, x1, y0, y1] = bounds(points);
  return points.map(([x, y, k]) => [
    x0 + level(x, x0, x1) * step(x0, x1),
    y0 + level(y, y0, y1) * step(y0, y1),
    k,
  ]);
}

/** The fragment's text for these points, or null when there are more than a link carries. */
export function encodePoints(points) {
  if (!points.length || points.length > MAX_LINK_POINTS) return null;
  const box = bounds(points);
  const bytes = new Uint8Array(HEADER + 5 * points.length);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, VERSION);
  box.forEach((v, i) => view.setFloat64(1 + 8 * i, v));
  points.forEach(([x, y, k], i) => {
    const at = HEADER + 5 * i;
    view.setUint16(at, level(x, box[0], box[1]));
    view.setUint16(at + 2, level(y, box[2], box[3]));
    view.setUint8(at + 4, k);
  });
  // In slices: String.fromCharCode(...) of 10 KB at once can overflow the call stack.
  let text = "";
  for (let i = 0; i < bytes.length; i += 3 * 4096) {
    text += toBase64Url(bytes.subarray(i, i + 3 * 4096));
  }
  return text;
}

/** Points from a fragment's text: {points} or {error}. */
export function decodePoints(text) {
  let bytes;
  try {
    bytes = fromBase64Url(text);
  } catch {
    return { error: "The link's points are damaged (not base64)." };
  }
  if (bytes.length < HEADER || (bytes.length - HEADER) % 5 || bytes[0] !== VERSION) {
    return { error: "The link's points are damaged or from another version." };
  }
  const view = new DataView(bytes.buffer);
  const [x0, x1, y0, y1] = [0, 1, 2, 3].map((i) => view.getFloat64(1 + 8 * i));
  const points = [];
  for (let at = HEADER; at < bytes.length; at += 5) {
    points.push([
      x0 + view.getUint16(at) * step(x0, x1),
      y0 + view.getUint16(at + 2) * step(y0, y1),
      view.getUint8(at + 4),
    ]);
  }
  return { points };
}

const POINTS_KEY = "points";

/** The page's URL (`loc`: location) with `points` in its fragment, or none; `note` says
 * when there are more than a link carries. */
export function linkWithPoints(loc, points) {
  let hash = "";
  let note = "";
  if (points?.length) {
    const text = encodePoints(points);
    if (text) hash = `#${POINTS_KEY}=${text}`;
    else note = `A link carries at most ${MAX_LINK_POINTS} points: share these with “Download data CSV”.`;
  }
  return { url: `${loc.pathname}${loc.search}${hash}`, note };
}

/** The points in a link's fragment (`hash`: location.hash) as decodePoints gives them, or
 * null when it carries none. */
export function pointsFromLink(hash) {
  const text = new URLSearchParams(hash.slice(1)).get(POINTS_KEY);
  return text ? decodePoints(text) : null;
}
