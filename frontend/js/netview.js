// "Inside the network": a diagram of the run's network, inputs → hidden layers → output.
// Every input feature and hidden unit shows its own live heatmap over the (x1, x2) plane
// (the server's `units` messages, sent only while this view is open); edges are drawn with
// width by |w| and colour by sign; hovering or focusing a unit names its bias and incoming
// weights (and lights those edges), hovering an edge names its weight, and clicking a unit
// shows its heatmap large in the boundary plot (unitfocus.js). Units the stream does not
// carry (past the 64th of a layer) are counted under their layer, never silently dropped.

import {
  describeEdge,
  describeUnit,
  layerTitle,
  listedCount,
  notDrawnText,
  unitNames,
} from "./netview_text.js";
import { NEGATIVE, POSITIVE, base64Bytes, paintUnit } from "./unitpaint.js";

export { UnitFocus } from "./unitfocus.js";
export { signedColor } from "./unitpaint.js";

const SHOWN = 16; // units with a heatmap per layer (the server sends no more)
const SVG = "http://www.w3.org/2000/svg";

/** One unit's button: its heatmap canvas (or a plain dot), then its name. */
function unitButton(name, l, u, depth) {
  const node = document.createElement("button");
  node.type = "button";
  node.className = l === depth - 1 ? "neuron output" : "neuron";
  node.dataset.neuron = `${l}:${u}`;
  if (l < depth - 1 && u < SHOWN) node.append(document.createElement("canvas"));
  else if (l < depth - 1) node.classList.add("no-map"); // weights only: 16 maps a layer
  const label = document.createElement("span");
  label.className = "neuron-name";
  label.textContent = name;
  node.append(label);
  return node;
}

function textLine(className, text) {
  const line = document.createElement("div");
  line.className = className;
  line.textContent = text;
  return line;
}

/**
 * Layer l's column: title, `visible` unit buttons, a "+ k more" / "show fewer" toggle when
 * the stream carries more than SHOWN units, and a note counting the units it does not carry.
 */
function layerColumn(msg, names, l, visible) {
  const depth = names.length;
  const col = document.createElement("div");
  col.className = "netview-layer";
  col.setAttribute("role", "group");
  col.setAttribute("aria-label", layerTitle(l, depth));
  col.append(textLine("netview-title", layerTitle(l, depth)));
  for (let u = 0; u < visible; u += 1) col.append(unitButton(names[l][u], l, u, depth));
  const listed = listedCount(msg, l);
  if (listed > SHOWN && l < depth - 1) {
    const more = document.createElement("button");
    more.type = "button";
    more.className = "netview-more";
    more.dataset.layer = String(l);
    more.textContent = visible < listed ? `+ ${listed - visible} more` : "show fewer";
    col.append(more);
  }
  const unsent = notDrawnText(msg, l);
  if (unsent) col.append(textLine("netview-note", unsent));
  return col;
}

/** Lay every edge from its unit's right side to the next unit's left side, in board pixels. */
function placeEdges(board, svg, edges) {
  if (!svg || !edges.length) return;
  const box = board.getBoundingClientRect();
  svg.setAttribute("width", String(box.width));
  svg.setAttribute("height", String(board.scrollHeight));
  const centre = (l, u, side) => {
    const node = board.querySelector(`[data-neuron="${l}:${u}"]`);
    if (!node) return [0, 0]; // the diagram is being rebuilt: the next call places it
    const r = node.getBoundingClientRect();
    return [side ? r.right - box.left : r.left - box.left, r.top + r.height / 2 - box.top];
  };
  for (const e of edges) {
    const [x1, y1] = centre(e.l, e.i, true);
    const [x2, y2] = centre(e.l + 1, e.j, false);
    for (const line of [e.hit, e.line]) {
      line.setAttribute("x1", x1);
      line.setAttribute("y1", y1);
      line.setAttribute("x2", x2);
      line.setAttribute("y2", y2);
    }
  }
}

/** Edge width by |w| (0.5 px + 5.5 px · |w| / the largest |w| of the frame), colour by sign. */
function inkEdges(edges, weights) {
  let biggest = 0;
  for (const { W } of weights) for (const row of W) for (const w of row) {
    biggest = Math.max(biggest, Math.abs(w));
  }
  for (const e of edges) {
    const w = weights[e.l].W[e.i][e.j];
    const width = 0.5 + 5.5 * (biggest > 0 ? Math.abs(w) / biggest : 0);
    e.line.setAttribute("stroke-width", width.toFixed(2));
    e.line.setAttribute("stroke", `rgb(${(w < 0 ? NEGATIVE : POSITIVE).join(",")})`);
  }
}

export class NetworkView {
  /**
   * @param {HTMLDetailsElement} el  the view's <details>; open = the stream carries units
   * @param {{onOpen: (open: boolean) => void, onPick: (pick: object|null) => void}} hooks
   *   onOpen: the person opened or closed the view; onPick: a unit was clicked (its
   *   heatmap as {name, scale, data, grid}) or the view was cleared (null)
   */
  constructor(el, hooks) {
    this.el = el;
    this.hooks = hooks;
    this.board = el.querySelector(".netview-board");
    this.tip = el.querySelector(".netview-tip");
    this.msg = null;
    this.shape = "";
    this.edges = [];
    this.expanded = new Set(); // layers whose listed units beyond SHOWN are drawn
    this.picked = null; // "l:u" of the unit shown large
    this.tipTarget = null; // the unit or edge element the tip describes
    el.addEventListener("toggle", () => hooks.onOpen(el.open));
    this.board.addEventListener("mouseover", (e) => this.#showTip(e.target));
    this.board.addEventListener("focusin", (e) => this.#showTip(e.target));
    this.board.addEventListener("mouseout", () => this.#hideTip());
    this.board.addEventListener("focusout", () => this.#hideTip());
    this.board.addEventListener("click", (e) => this.#click(e.target));
    // Escape leaves a unit shown large, as the focus bar's "Back to the boundary" does.
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.picked) this.#pick(null);
    });
    new ResizeObserver(() => placeEdges(this.board, this.svg, this.edges)).observe(this.board);
  }

  get open() {
    return this.el.open;
  }

  /** A `units` message (or null: no run). */
  setFrame(msg) {
    this.msg = msg;
    if (!msg) {
      this.shape = "";
      this.edges = [];
      this.board.replaceChildren();
      this.#hideTip();
      this.#pick(null);
      return;
    }
    const shape = `${msg.sizes.join(",")}|${unitNames(msg).flat().join(",")}`;
    if (shape !== this.shape) this.#build(msg, shape);
    this.#update(msg);
  }

  #build(msg, shape) {
    this.shape = shape;
    this.names = unitNames(msg);
    const depth = this.names.length;
    this.svg = document.createElementNS(SVG, "svg");
    this.svg.classList.add("netview-edges");
    const columns = this.names.map((_, l) => layerColumn(msg, this.names, l, this.#visible(l)));
    this.board.replaceChildren(this.svg, ...columns);
    this.edges = [];
    for (let l = 0; l + 1 < depth; l += 1) {
      for (let i = 0; i < this.#visible(l); i += 1) {
        for (let j = 0; j < this.#visible(l + 1); j += 1) this.edges.push(this.#edge(l, i, j));
      }
    }
    if (this.picked && !this.board.querySelector(`[data-neuron="${this.picked}"]`)) {
      this.#pick(null);
    }
    this.#hideTip();
    requestAnimationFrame(() => placeEdges(this.board, this.svg, this.edges));
  }

  /** Units of layer l drawn: the first SHOWN of those listed, or all of them expanded. */
  #visible(l) {
    const listed = listedCount(this.msg, l);
    return this.expanded.has(l) || l === this.names.length - 1 ? listed : Math.min(listed, SHOWN);
  }

  #edge(l, i, j) {
    const hit = document.createElementNS(SVG, "line");
    hit.classList.add("edge");
    hit.dataset.edge = `${l}:${i}:${j}`;
    const line = document.createElementNS(SVG, "line");
    line.classList.add("edge-ink");
    this.svg.append(line, hit);
    return { l, i, j, hit, line };
  }

  #update(msg) {
    const { nx, ny } = msg.grid;
    msg.layers.forEach((layer, l) =>
      layer.forEach((unit, u) => {
        const canvas = this.board.querySelector(`[data-neuron="${l}:${u}"] canvas`);
        if (!canvas) return;
        canvas.width = nx;
        canvas.height = ny;
        paintUnit(canvas, base64Bytes(unit.data), nx, ny);
      }),
    );
    inkEdges(this.edges, msg.weights);
    for (const node of this.board.querySelectorAll("[data-neuron]")) {
      const { head, weights } = this.#unitWords(node.dataset.neuron);
      const label = weights.length ? `${head}; weights in: ${weights.join("; ")}` : head;
      node.setAttribute("aria-label", label);
    }
    if (this.picked) this.#pick(this.picked);
    if (this.tipTarget) this.#showTip(this.tipTarget); // the values it names moved on
    const iteration = this.el.querySelector(".netview-iteration");
    if (iteration) iteration.textContent = `at iteration ${msg.iteration}`;
  }

  #unitWords(key) {
    const [l, u] = key.split(":").map(Number);
    return describeUnit(this.msg, this.names, l, u);
  }

  /** The tip names a unit (its bias, then one line per incoming weight, those edges lit)
   * or an edge (its weight): the same words for the pointer and the keyboard. */
  #showTip(target) {
    const el = target?.closest?.("[data-neuron],[data-edge]");
    if (!el || !this.msg || !this.board.contains(el)) return;
    this.tipTarget = el;
    let lit = () => false;
    if (el.dataset.edge) {
      const [l, i, j] = el.dataset.edge.split(":").map(Number);
      this.tip.textContent = describeEdge(this.msg, this.names, l, i, j);
    } else {
      const { head, weights } = this.#unitWords(el.dataset.neuron);
      this.tip.textContent = weights.length ? `${head}; weights in:\n${weights.join("\n")}` : head;
      const [l, u] = el.dataset.neuron.split(":").map(Number);
      lit = (e) => e.l === l - 1 && e.j === u;
    }
    for (const e of this.edges) e.line.classList.toggle("lit", lit(e));
    this.svg?.classList.toggle("focusing", !el.dataset.edge);
    this.tip.hidden = false;
  }

  #hideTip() {
    this.tipTarget = null;
    this.tip.hidden = true;
    for (const e of this.edges) e.line.classList.remove("lit");
    this.svg?.classList.remove("focusing");
  }

  #click(target) {
    const more = target.closest?.(".netview-more");
    if (more) {
      const l = Number(more.dataset.layer);
      if (this.expanded.has(l)) this.expanded.delete(l);
      else this.expanded.add(l);
      this.shape = "";
      this.setFrame(this.msg);
      this.board.querySelector(`.netview-more[data-layer="${l}"]`)?.focus();
      return;
    }
    const node = target.closest?.("[data-neuron]");
    if (!node || !this.msg) return;
    const key = node.dataset.neuron;
    this.#pick(this.picked === key ? null : key);
  }

  /** Show unit `key`'s heatmap large (null: back to the boundary). */
  #pick(key) {
    const [l, u] = key ? key.split(":").map(Number) : [];
    const unit = key ? this.msg?.layers[l]?.[u] : null;
    this.picked = unit ? key : null;
    for (const node of this.board.querySelectorAll("[data-neuron]")) {
      node.setAttribute("aria-pressed", node.dataset.neuron === this.picked ? "true" : "false");
    }
    this.hooks.onPick(unit ? { ...unit, grid: this.msg.grid, key } : null);
  }

  /** Back to the boundary (the focus bar's button). */
  clearPick() {
    this.#pick(null);
  }
}
