// "Discretize": hard class colours instead of probability shading. A frame's bytes are
// made certain before painting: with two classes P(class 1) becomes 0 or 255 (at 50 %);
// with more, each cell's confidence becomes 255 and its argmax class stays.

function base64Bytes(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

function bytesBase64(bytes) {
  let raw = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    raw += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(raw);
}

/** A copy of a boundary frame message (see README "boundary") with certain cells. */
export function discretize(frame) {
  if (!frame) return frame;
  const bytes = base64Bytes(frame.data);
  const cells = frame.grid.nx * frame.grid.ny;
  if (frame.encoding === "class-conf-uint8-base64") {
    bytes.fill(255, cells, 2 * cells);
  } else {
    for (let i = 0; i < bytes.length; i += 1) bytes[i] = bytes[i] >= 128 ? 255 : 0;
  }
  return { ...frame, data: bytesBase64(bytes) };
}
