// "Your own data": a CSV file (chosen or dropped), pasted text, and the download of the data
// set on show. It holds the points of a "custom" data set; the page sends them with the
// dataset section. A bad file is refused with its line and the points stay as they were.

import { parseCsv } from "./csv.js";

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
    this.points = points;
    this.names = names;
    this.showError("");
    this.#showInfo(source);
    this.onData();
  }

  #showInfo(source) {
    const k = 1 + Math.max(...this.points.map((p) => p[2]));
    const from = source ? ` from ${source}` : "";
    const parts = [`${this.points.length} points in ${k} classes${from}.`];
    if (this.names) {
      const map = this.names.map((n, i) => `"${n}" → class ${i} (${COLOR_NAMES[i]})`);
      parts.push(`Labels: ${map.join(", ")}.`);
    }
    this.els.info.textContent = parts.join(" ");
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
    const response = await fetch("api/datasets/csv", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(dataset),
    }).catch(() => null);
    if (!response?.ok) {
      const detail = response ? (await response.json().catch(() => ({})))?.detail : null;
      this.showError(`Download failed: ${pointErrors(detail) || response?.status || "offline"}`);
      return;
    }
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = `boundarylab-${dataset.kind}.csv`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
}
