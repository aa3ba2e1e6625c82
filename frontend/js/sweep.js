// Sweep any one setting: which field varies (any the schema's "x-sweep" offers), its values
// as typed, the article's experiments as presets, and the sweep's place in the link. The
// server checks the sweep (POST /api/sweeps) and answers each cell's complete config.

import * as api from "./api.js";
import { parseValue } from "./schema.js";

export const SIZES = "model.hidden_sizes";
export const FIELD_KEY = "sweep.field";
export const VALUES_KEY = "sweep.values";
export const PRESET_KEY = "sweep.preset";

const ARTICLE_SIZES = "1, 2, 3, 4, 5, 20, 50";

/** The article's experiments: what the sweep varies, and the form fields each one sets. */
export const PRESETS = [
  {
    id: "hidden-size",
    title: "Hidden size (the article's figure)",
    field: SIZES,
    values: ARTICLE_SIZES,
    set: { "dataset.test_fraction": 0 },
  },
  {
    id: "generalisation",
    title: "Generalisation: hidden size with a 30 % test split",
    field: SIZES,
    values: ARTICLE_SIZES,
    set: { "dataset.test_fraction": 0.3 },
  },
  {
    id: "regularisation",
    title: "Regularisation against overfitting: 50 hidden units, λ ∈ {0, 0.001, 0.01, 0.1, 1}, 30 % test split",
    field: "training.reg_lambda",
    values: "0, 0.001, 0.01, 0.1, 1",
    set: { "dataset.test_fraction": 0.3, "model.hidden_sizes": [50], "training.regularization": "l2" },
  },
];

// What the values box starts with when a person picks a field to vary.
export const STARTING_VALUES = {
  "model.hidden_sizes": ARTICLE_SIZES,
  "training.reg_lambda": "0, 0.01, 0.1",
  "training.regularization": "none, l1, l2",
  "training.learning_rate": "0.001, 0.01, 0.05",
  "training.optimizer": "gd, momentum, adam",
  "model.activation": "tanh, sigmoid, relu, linear",
  "model.features": "x1, x2; x1, x2, x1_sq, x2_sq; x1, x2, x1_x2",
  "training.batch_size": "none, 100, 20",
  "dataset.noise": "0.05, 0.2, 0.4",
  "dataset.seed": "0, 1, 2",
};

/** Values text → one text per value: ';' separates values when present (each may then be a
 * list, "3; 8, 8"), else ','. */
export function splitValues(text) {
  const separator = text.includes(";") ? ";" : ",";
  return text
    .split(separator)
    .map((part) => part.trim())
    .filter((part) => part !== "");
}

/** A value as a legend shows it: lists "8,8" (empty: "none"), null "none". */
export function valueLabel(value) {
  if (Array.isArray(value)) return value.length ? value.join(",") : "none";
  return value === null || value === undefined ? "none" : String(value);
}

/**
 * Parse the values typed for `field` (a form field of schema.js).
 * @returns {{value: unknown[]} | {error: string}}
 */
export function parseSweepValues(field, text) {
  const parts = splitValues(String(text ?? ""));
  if (!parts.length) return { error: "Type at least one value." };
  const values = [];
  for (const part of parts) {
    const raw = field.nullable && part.toLowerCase() === "none" ? "" : part;
    const parsed = parseValue(field, raw);
    if (parsed.error) return { error: `${part}: ${parsed.error}` };
    values.push(parsed.value);
  }
  const labels = values.map(valueLabel);
  if (new Set(labels).size !== labels.length) return { error: "Each value only once." };
  return { value: values };
}

/** Ask the server for each cell's config: [{value, label, config}], in order. */
export async function planSweep(base, field, values) {
  const plan = await api.postJSON("api/sweeps", { base, field, values });
  return plan.cells.map((config, i) => ({
    value: plan.values[i],
    label: valueLabel(plan.values[i]),
    config,
  }));
}

/** The sweep part of the form: the field select and the preset buttons. */
export class SweepControls {
  /**
   * @param {HTMLSelectElement} select  @param {HTMLElement} presetBox
   * @param {Record<string, string>} offered  field key → words ("x-sweep".fields)
   * @param {(preset: object) => void} onPreset
   */
  constructor(select, presetBox, offered, onPreset) {
    this.select = select;
    this.offered = offered;
    for (const [key, words] of Object.entries(offered)) {
      select.append(new Option(words, key));
    }
    for (const preset of PRESETS) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "preset";
      button.dataset.preset = preset.id;
      button.textContent = preset.title;
      button.addEventListener("click", () => onPreset(preset));
      presetBox.append(button);
    }
  }

  get field() {
    return this.select.value;
  }

  set field(key) {
    this.select.value = key in this.offered ? key : SIZES;
  }

  get words() {
    return this.offered[this.field] ?? this.field;
  }
}
