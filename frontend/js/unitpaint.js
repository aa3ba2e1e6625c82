// A unit's heatmap as pixels: the `units` message's signed bytes (128 ≈ 0) painted white at
// zero, towards red below and blue above (the colours of classes 0 and 1 in boundary.js).

export const NEGATIVE = [215, 48, 39]; // the class-0 red of boundary.js: below zero
export const POSITIVE = [69, 117, 180]; // the class-1 blue: above zero

export function base64Bytes(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

/** RGB of a signed byte (128 ≈ 0): white at zero, towards red below and blue above. */
export function signedColor(byte) {
  const t = (byte - 127.5) / 127.5;
  const ink = t < 0 ? NEGATIVE : POSITIVE;
  const a = Math.min(1, Math.abs(t));
  return ink.map((c) => Math.round(255 + (c - 255) * a));
}

/** Paint one unit's bytes (rows from y_min up) into a canvas of nx × ny pixels. */
export function paintUnit(canvas, bytes, nx, ny) {
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(nx, ny);
  for (let r = 0; r < ny; r += 1) {
    const row = (ny - 1 - r) * nx; // canvas rows run top down, the grid's bottom up
    for (let c = 0; c < nx; c += 1) {
      const [red, green, blue] = signedColor(bytes[r * nx + c]);
      const o = (row + c) * 4;
      image.data[o] = red;
      image.data[o + 1] = green;
      image.data[o + 2] = blue;
      image.data[o + 3] = 255;
    }
  }
  ctx.putImageData(image, 0, 0);
}
