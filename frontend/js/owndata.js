// "Your own data": a CSV file (chosen or dropped), pasted text, and the download of the data
// set on show. It holds the points of a "custom" data set; the page sends them with the
// dataset section. A bad file is refused with its line and the points stay as they were.

import { CLASS_COLORS } from "./boundary.js";
import { MAX_CLASSES, MIN_POINTS, parseCsv } from "./csv.js";
import { saveBlob } from "./download.js";
import { dataPoint, nearestIndex, placed } from "./pointeditor.js";

const UNDO_DEPTH = 100;

const COLOR_NAMES = ["red", "blue", "green", "orange", "pink"];

/** A 422's detail items about dataset.points as one sentence naming each point. */
export function pointErrors(detail) {
  if (!Array.isArray(detail)) return "";
  const about = detail.filter((d) => (d.loc || []).includes("points"));
  return about
    .map((d) => {
      const loc = d.loc.slice(d.loc.indexOf("points") + 1);
      const where = Number.isInteger(loc[0]) ? `Point ${loc[0] + 1}` : "Points";
      const column = Number.isInteger(loc[1]) ? ` (${["x1", "x2", "label"][loc[1]]})` : "";
      return `${where}${column}: ${d.msg}`;
    })
    .join(" ");
}

/** POST the dataset section to api/datasets/csv: the Response, or null when offline. */
function fetchDatasetCsv(dataset) {
  return fetch("api/datasets/csv", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(dataset),
  }).catch(() => null);
}

/** One radio per class (0 checked), each with its colour swatch and name. */
function classChoices() {
  return Array.from({ length: MAX_CLASSES }, (_, k) => {
    const label = document.createElement("label");
    label.className = "own-class";
    const radio = document.createElement("input");
    radio.type = "radio";
    radio.name = "own-class";
    radio.value = String(k);
    radio.checked = k === 0;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = CLASS_COLORS[k];
    label.append(radio, swatch, ` ${k} ${COLOR_NAMES[k]}`);
    return label;
  });
}

export class OwnData {
  /**
   * @param {Record<string, HTMLElement>} els  panel, file, paste, usePaste, download, error, info
   * @param {{maxPoints: number, onData: () => void, dataset: () => object | null}} options
   *   onData: new points arrived (the page switches to "custom" and previews them);
   *   dataset: the dataset section the page would train on now (null while invalid)
   */
  constructor(els, { maxPoints, onData, dataset }) {
    this.els = els;
    this.maxPoints = maxPoints;
    this.onData = onData;
    this.dataset = dataset;
    this.points = null;
    this.names = null;
    els.file.addEventListener("change", () => {
      const file = els.file.files?.[0];
      if (file) this.#readFile(file);
      els.file.value = ""; // choosing the same file again (after fixing it) reads it again
    });
    els.usePaste.addEventListener("click", () => this.load(els.paste.value, "pasted text"));
    els.panel.addEventListener("dragover", (e) => {
      e.preventDefault();
      els.panel.classList.add("dropping");
    });
    els.panel.addEventListener("dragleave", () => els.panel.classList.remove("dropping"));
    els.panel.addEventListener("drop", (e) => {
      e.preventDefault();
      els.panel.classList.remove("dropping");
      const file = e.dataTransfer?.files?.[0];
      if (file) this.#readFile(file);
    });
    els.download.addEventListener("click", () => this.download());
    this.undo = []; // earlier {points, names}, newest last
    els.classes.append(...classChoices());
    els.undo.addEventListener("click", () => this.#undo());
    els.clear.addEventListener("click", () => this.#change([], null));
    els.editThese.addEventListener("click", () => this.#editThese());
  }

  get chosenClass() {
    return Number(this.els.classes.querySelector("input:checked")?.value ?? 0);
  }

  /** Listen for clicks on the boundary plot (while "click to add" is on); `plot` is its
   * BoundaryPlot, whose axes stay still while clicking. */
  attachPlot(el, plot) {
    const hold = () => plot.holdAxes(this.els.edit.checked);
    this.els.edit.addEventListener("change", hold);
    this.holdAxes = hold;
    el.addEventListener("click", (event) => {
      if (!this.els.edit.checked) return;
      const at = dataPoint(el, event);
      if (!at) return;
      const points = this.points ?? [];
      if (event.shiftKey || this.els.eraser.checked) {
        const i = nearestIndex(points, at);
        if (i >= 0) this.#change(points.filter((_, j) => j !== i), this.names);
      } else if (points.length >= this.maxPoints) {
        this.showError(`At most ${this.maxPoints} points.`);
      } else {
        this.#change([...points, [placed(at.x), placed(at.y), this.chosenClass]], this.names);
      }
    });
  }

  /** What stops these points from training, or "" when they can. */
  problem() {
    const points = this.points ?? [];
    const classes = new Set(points.map((p) => p[2]));
    const k = points.length ? 1 + Math.max(...classes) : 0;
    if (points.length < MIN_POINTS || classes.size < 2) {
      return `Add points: at least ${MIN_POINTS} in at least 2 classes (now ${points.length} in ${classes.size}).`;
    }
    const unused = [...Array(k).keys()].find((c) => !classes.has(c));
    if (unused !== undefined) return `Class ${unused} has no points: add one, or use classes 0 to ${classes.size - 1}.`;
    return "";
  }

  /** The points as a data set to draw before the server has split them. */
  localDataset() {
    const points = this.points ?? [];
    return {
      train: { x: points.map((p) => [p[0], p[1]]), y: points.map((p) => p[2]) },
      test: { x: [], y: [] },
    };
  }

  #change(points, names) {
    this.undo.push({ points: this.points, names: this.names });
    if (this.undo.length > UNDO_DEPTH) this.undo.shift();
    this.els.undo.disabled = false;
    this.#set(points, names, "your clicks");
  }

  #undo() {
    const last = this.undo.pop();
    this.els.undo.disabled = !this.undo.length;
    if (last) this.#set(last.points, last.names, "undo");
  }

  #set(points, names, source) {
    this.points = points;
    this.names = names;
    this.showError("");
    if (points) this.#showInfo(source);
    else this.els.info.textContent = "";
    this.onData();
  }

  // The data set on show (generated, or own with its split) becomes own, editable points,
  // with exact coordinates from the server.
  async #editThese() {
    const dataset = this.dataset();
    if (!dataset) {
      this.showError("Fix the data fields first.");
      return;
    }
    const response = await fetchDatasetCsv(dataset);
    const parsed = response?.ok ? parseCsv(await response.text(), this.maxPoints) : null;
    if (!parsed?.points) {
      this.showError("Could not load the data set on show.");
      return;
    }
    this.els.edit.checked = true;
    this.holdAxes?.();
    this.#change(parsed.points, null);
  }

  async #readFile(file) {
    if (file.size > this.maxPoints * 200) {
      this.showError(`${file.name} is too large for ${this.maxPoints} points.`);
      return;
    }
    this.load(await file.text(), file.name);
  }

  /** Parse text as CSV; on success the points replace the old ones, else nothing changes. */
  load(text, source) {
    const parsed = parseCsv(text, this.maxPoints);
    if (parsed.error) {
      this.showError(`${source}: ${parsed.error} Your previous data is unchanged.`);
      return false;
    }
    this.setPoints(parsed.points, parsed.names, source);
    return true;
  }

  /** New points ([x1, x2, label] rows); names[k] is the label class k came from, if any. */
  setPoints(points, names = null, source = "") {
    this.#change(points, names);
    this.#showInfo(source);
  }

  #showInfo(source) {
    const k = this.points.length ? 1 + Math.max(...this.points.map((p) => p[2])) : 0;
    const from = source ? ` from ${source}` : "";
    const parts = [`${this.points.length} points in ${k} classes${from}.`];
    if (this.names) {
      const map = this.names.map((n, i) => `"${n}" → class ${i} (${COLOR_NAMES[i]})`);
      parts.push(`Labels: ${map.join(", ")}.`);
    }
    this.els.info.textContent = parts.join(" ");
  }

  /** What the share link cannot carry (or "" when it carries the points). */
  showLinkNote(text) {
    this.els.linkNote.textContent = text;
    this.els.linkNote.hidden = !text;
  }

  showError(text) {
    this.els.error.textContent = text || "";
    this.els.error.hidden = !text;
  }

  /** The data set on show (generated or own) as CSV, from the server (exact numbers). */
  async download() {
    const dataset = this.dataset();
    if (!dataset) {
      this.showError("Fix the data fields first, then download.");
      return;
    }
    const response = await fetchDatasetCsv(dataset);
    if (!response?.ok) {
      const detail = response ? (await response.json().catch(() => ({})))?.detail : null;
      this.showError(`Download failed: ${pointErrors(detail) || response?.status || "offline"}`);
      return;
    }
    saveBlob(await response.blob(), `boundarylab-${dataset.kind}.csv`);
  }
}

/** The own-data panel of the page: its elements by id, the schema's point limit, and the
 * page's form as the source of the data set on show. */
export function makeOwnData(schema, page) {
  const $ = (id) => document.getElementById(id);
  const points = schema.$defs?.DatasetConfig?.properties?.points;
  const els = {
    panel: $("own-data"),
    file: $("own-file"),
    paste: $("own-paste"),
    usePaste: $("own-paste-use"),
    download: $("own-download"),
    error: $("own-error"),
    info: $("own-info"),
    linkNote: $("own-link-note"),
    edit: $("own-edit"),
    classes: $("own-classes"),
    eraser: $("own-eraser"),
    undo: $("own-undo"),
    clear: $("own-clear"),
    editThese: $("own-edit-these"),
  };
  return new OwnData(els, {
    maxPoints: points?.maxItems ?? 5000,
    onData: () => page.useOwnData(),
    dataset: () => {
      const { values, errors } = page.form.read();
      if (Object.keys(errors).some((k) => k.startsWith("dataset."))) return null;
      const dataset = page.datasetSection(values);
      return dataset.kind === "custom" && !dataset.points ? null : dataset;
    },
  });
}
