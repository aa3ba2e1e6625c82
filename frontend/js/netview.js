// "Inside the network": a diagram of the run's network, inputs → hidden layers → output.
// Every input feature and hidden unit shows its own live heatmap over the (x1, x2) plane
// (the server's `units` messages, sent only while this view is open); edges are drawn with
// width by |w| and colour by sign; hovering or focusing a unit or an edge names its value,
// and clicking a unit shows its heatmap large in the boundary plot (UnitFocus).

import { discretize } from "./discretize.js";

const NEGATIVE = [215, 48, 39]; // the class-0 red of boundary.js: below zero
const POSITIVE = [69, 117, 180]; // the class-1 blue: above zero
const SHOWN = 16; // units with a heatmap per layer (the server sends no more)
const SVG = "http://www.w3.org/2000/svg";
const fmt = (v) => (Number.isFinite(v) ? Number(v).toPrecision(4) : "–");

function base64Bytes(text) {
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
function paintUnit(canvas, bytes, nx, ny) {
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

/** Names of every layer's units: the features, "h<l>.<u>", then the classes. */
function unitNames(msg) {
  const names = msg.layers.map((layer, l) =>
    Array.from({ length: msg.sizes[l] }, (_, u) => layer[u]?.name ?? `h${l}.${u + 1}`),
  );
  names.push(Array.from({ length: msg.sizes.at(-1) }, (_, k) => `class ${k}`));
  return names;
}

function layerTitle(l, depth) {
  if (l === 0) return "inputs";
  return l === depth - 1 ? "output" : `hidden layer ${l}`;
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
    this.expanded = new Set(); // layers whose units beyond SHOWN are listed
    this.picked = null; // "l:u" of the unit shown large
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
    new ResizeObserver(() => this.#placeEdges()).observe(this.board);
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
    const columns = this.names.map((names, l) => this.#column(names, l, depth));
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
    requestAnimationFrame(() => this.#placeEdges());
  }

  /** Units of layer l whose values the stream carries (the server lists the first 64). */
  #listed(l) {
    const n = this.names[l].length;
    return l === 0 ? n : Math.min(n, this.msg.weights[l - 1].b.length);
  }

  #visible(l) {
    const listed = this.#listed(l);
    return this.expanded.has(l) || l === this.names.length - 1 ? listed : Math.min(listed, SHOWN);
  }

  #column(names, l, depth) {
    const col = document.createElement("div");
    col.className = "netview-layer";
    col.setAttribute("role", "group");
    col.setAttribute("aria-label", layerTitle(l, depth));
    const title = document.createElement("div");
    title.className = "netview-title";
    title.textContent = layerTitle(l, depth);
    col.append(title);
    for (let u = 0; u < this.#visible(l); u += 1) {
      const node = document.createElement("button");
      node.type = "button";
      node.className = l === depth - 1 ? "neuron output" : "neuron";
      node.dataset.neuron = `${l}:${u}`;
      if (l < depth - 1 && u < SHOWN) {
        const canvas = document.createElement("canvas");
        node.append(canvas);
      } else if (l < depth - 1) {
        node.classList.add("no-map"); // weights only: the server sends the first 16 maps
      }
      const label = document.createElement("span");
      label.className = "neuron-name";
      label.textContent = names[u];
      node.append(label);
      col.append(node);
    }
    const hidden = this.#listed(l) - this.#visible(l);
    if (names.length > this.#listed(l) && this.expanded.has(l)) {
      const note = document.createElement("div");
      note.className = "netview-title";
      note.textContent = `${names.length - this.#listed(l)} more not shown`;
      col.append(note);
    }
    if (hidden > 0 || this.expanded.has(l)) {
      const more = document.createElement("button");
      more.type = "button";
      more.className = "netview-more";
      more.dataset.layer = String(l);
      more.textContent = hidden > 0 ? `+ ${hidden} more` : "show fewer";
      col.append(more);
    }
    return col;
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

  #placeEdges() {
    if (!this.svg || !this.edges) return;
    const box = this.board.getBoundingClientRect();
    this.svg.setAttribute("width", String(box.width));
    this.svg.setAttribute("height", String(this.board.scrollHeight));
    const centre = (l, u, side) => {
      const node = this.board.querySelector(`[data-neuron="${l}:${u}"]`);
      if (!node) return [0, 0]; // the diagram is being rebuilt: the next call places it
      const r = node.getBoundingClientRect();
      return [side ? r.right - box.left : r.left - box.left, r.top + r.height / 2 - box.top];
    };
    for (const e of this.edges) {
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
    let biggest = 0;
    for (const { W } of msg.weights) for (const row of W) for (const w of row) {
      biggest = Math.max(biggest, Math.abs(w));
    }
    for (const e of this.edges) {
      const w = msg.weights[e.l].W[e.i][e.j];
      const width = 0.5 + 5.5 * (biggest > 0 ? Math.abs(w) / biggest : 0);
      e.line.setAttribute("stroke-width", width.toFixed(2));
      e.line.setAttribute("stroke", `rgb(${(w < 0 ? NEGATIVE : POSITIVE).join(",")})`);
    }
    for (const node of this.board.querySelectorAll("[data-neuron]")) {
      node.setAttribute("aria-label", this.#describeUnit(node.dataset.neuron));
    }
    if (this.picked) this.#pick(this.picked);
    const iteration = this.el.querySelector(".netview-iteration");
    if (iteration) iteration.textContent = `at iteration ${msg.iteration}`;
  }

  /** Everything about one unit in words: the hover text, and its accessible name. */
  #describeUnit(key) {
    const [l, u] = key.split(":").map(Number);
    const name = this.names[l][u];
    const where = `${layerTitle(l, this.names.length)}, unit ${u + 1}`;
    if (l === 0) {
      const scale = this.msg.layers[0][u]?.scale;
      return `${name} (${where}): input feature, heatmap scale ±${fmt(scale)}`;
    }
    const { W, b } = this.msg.weights[l - 1];
    const inputs = W.map((row, i) => `${this.names[l - 1][i]} ${fmt(row[u])}`).join(", ");
    const scale = this.msg.layers[l]?.[u]?.scale;
    const map = scale === undefined ? "" : `, heatmap scale ±${fmt(scale)}`;
    return `${name} (${where}): bias ${fmt(b[u])}${map}; weights in: ${inputs}`;
  }

  #describeEdge(key) {
    const [l, i, j] = key.split(":").map(Number);
    const w = this.msg.weights[l].W[i][j];
    return `weight ${this.names[l][i]} → ${this.names[l + 1][j]}: ${fmt(w)}`;
  }

  #showTip(target) {
    const key = target?.closest?.("[data-neuron],[data-edge]");
    if (!key || !this.msg) return;
    const edge = key.dataset.edge;
    this.tip.textContent = edge ? this.#describeEdge(edge) : this.#describeUnit(key.dataset.neuron);
    this.tip.hidden = false;
  }

  #hideTip() {
    this.tip.hidden = true;
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

/**
 * Stands in for the boundary plot: forwards everything to it, except that while a unit is
 * picked the plot shows that unit's heatmap (as a frame whose 50 % line is the unit's zero),
 * and the latest boundary frame waits for the person to go back.
 */
export class UnitFocus {
  constructor(boundary, bar) {
    this.boundary = boundary;
    this.bar = bar;
    this.frame = null;
    this.nClasses = 2;
    this.unit = null;
    this.discrete = false;
  }

  /** Hard class colours (true) or probability shading (false), for frames and units. */
  setDiscrete(on) {
    this.discrete = on;
    this.show(this.unit);
  }

  #paint(frame, nClasses) {
    this.boundary.setFrame(this.discrete ? discretize(frame) : frame, nClasses);
  }

  setDataset(dataset) {
    this.boundary.setDataset(dataset);
  }

  setShowTest(show) {
    this.boundary.setShowTest(show);
  }

  /** Keep the axes still while points are clicked in (owndata.js). */
  holdAxes(on) {
    this.boundary.holdAxes(on);
  }

  setFrame(frame, nClasses = 2) {
    this.frame = frame;
    this.nClasses = nClasses;
    if (!this.unit) this.#paint(frame, nClasses);
  }

  /** A picked unit ({name, scale, data, grid}) or null. */
  show(unit) {
    this.unit = unit;
    this.bar.hidden = !unit;
    if (!unit) {
      this.#paint(this.frame, this.nClasses);
      return;
    }
    this.bar.querySelector(".focus-text").textContent =
      `Showing unit ${unit.name}: its activation over the plane, red −${fmt(unit.scale)}, ` +
      `white 0, blue +${fmt(unit.scale)}; the line is where it crosses 0.`;
    const frame = { grid: unit.grid, encoding: "p1-uint8-base64", data: unit.data };
    this.#paint(frame, 2);
  }
}
