// The network view in words: names of layers and units, and what a unit or an edge holds.
// The same sentences are the hover/focus text and each unit button's accessible name, so a
// keyboard or screen-reader user reads what a mouse user reads.

export const fmt = (v) => (Number.isFinite(v) ? Number(v).toPrecision(4) : "–");

/** Names of every layer's units: the features, "h<l>.<u>", then the classes. */
export function unitNames(msg) {
  const names = msg.layers.map((layer, l) =>
    Array.from({ length: msg.sizes[l] }, (_, u) => layer[u]?.name ?? `h${l}.${u + 1}`),
  );
  names.push(Array.from({ length: msg.sizes.at(-1) }, (_, k) => `class ${k}`));
  return names;
}

export function layerTitle(l, depth) {
  if (l === 0) return "inputs";
  return l === depth - 1 ? "output" : `hidden layer ${l}`;
}

/** Units of layer l whose values the stream carries: every input feature; of the other
 * layers the units with a bias in `weights` (the server sends the first 64 of a layer). */
export function listedCount(msg, l) {
  return l === 0 ? msg.sizes[0] : Math.min(msg.sizes[l], msg.weights[l - 1].b.length);
}

/** What a layer holds beyond what the stream carries, or "" when it carries every unit. */
export function notDrawnText(msg, l) {
  const total = msg.sizes[l];
  const listed = listedCount(msg, l);
  if (total <= listed) return "";
  return `+${total - listed} more units not drawn (the stream carries the first ${listed} of ${total})`;
}

export function describeEdge(msg, names, l, i, j) {
  return `weight ${names[l][i]} → ${names[l + 1][j]}: ${fmt(msg.weights[l].W[i][j])}`;
}

/**
 * Unit (l, u) in words: `head` (name, place, bias, heatmap scale) and `weights`, one
 * sentence per incoming edge, as hovering that edge reads (with a last line saying how many
 * inputs the stream does not carry, if any).
 */
export function describeUnit(msg, names, l, u) {
  const where = `${layerTitle(l, names.length)}, unit ${u + 1}`;
  const scale = msg.layers[l]?.[u]?.scale;
  if (l === 0) {
    return { head: `${names[l][u]} (${where}): input feature, heatmap scale ±${fmt(scale)}`, weights: [] };
  }
  const map = scale === undefined ? "" : `, heatmap scale ±${fmt(scale)}`;
  const head = `${names[l][u]} (${where}): bias ${fmt(msg.weights[l - 1].b[u])}${map}`;
  const weights = msg.weights[l - 1].W.map((_, i) => describeEdge(msg, names, l - 1, i, u));
  const unsent = msg.sizes[l - 1] - weights.length;
  if (unsent > 0) weights.push(`(and ${unsent} more inputs the stream does not carry)`);
  return { head, weights };
}
