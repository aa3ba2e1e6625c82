// The "Compare: vary one setting" panel: the swept field and its values (checked as typed),
// the article's experiments as presets, and starting the comparison (compare.js draws it).

import { Comparison } from "./compare.js";
import { parseValue } from "./schema.js";
import {
  FIELD_KEY,
  SIZES,
  STARTING_VALUES,
  SweepControls,
  VALUES_KEY,
  parseSweepValues,
  planSweep,
} from "./sweep.js";
import { SweepCharts } from "./sweep_charts.js";
import { COMPARE_KEY } from "./urlstate.js";

const $ = (id) => document.getElementById(id);

function showValuesError(error) {
  $("compare-sizes-error").textContent = error || "";
  $("compare-sizes").setAttribute("aria-invalid", error ? "true" : "false");
}

export class SweepPanel {
  /**
   * @param {object} schema  GET /api/schema
   * @param {object} page  the Page: fields, form, validConfig(), preview(), syncUrl()
   * @param {object} compareField  the hidden-size comparison's field (schema.js)
   * @param {(err: Error) => void} onUnreachable  the server could not be reached
   */
  constructor(schema, page, compareField, onUnreachable) {
    this.page = page;
    this.compareField = compareField;
    this.onUnreachable = onUnreachable;
    const charts = new SweepCharts($("sweep-curves"), $("sweep-summary"), $("sweep-exports"));
    this.comparison = new Comparison($("compare-grid"), $("compare-status"), charts);
    const offered = schema["x-sweep"]?.fields ?? { [SIZES]: "hidden layer sizes" };
    this.sweep = new SweepControls($("sweep-field"), $("sweep-presets"), offered, (preset) =>
      this.#preset(preset),
    );
  }

  /** Take the swept field and values from the link's keys, and listen to the panel. */
  init(raw) {
    this.sweep.field = raw[FIELD_KEY] ?? SIZES;
    $("compare-sizes").value =
      this.sweep.field === SIZES
        ? (raw[COMPARE_KEY] ?? raw[VALUES_KEY] ?? (this.compareField?.default || []).join(", "))
        : (raw[VALUES_KEY] ?? STARTING_VALUES[this.sweep.field] ?? "");
    $("sweep-field").addEventListener("change", () => {
      $("compare-sizes").value = STARTING_VALUES[this.sweep.field] ?? "";
      showValuesError("");
      this.page.syncUrl();
    });
    $("compare-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.compare();
    });
    $("compare-sizes").addEventListener("input", () => this.page.syncUrl());
  }

  /** The link's keys for the panel: {sizes} for the article's comparison, else {extra}. */
  urlKeys() {
    if (!this.#singleSizes()) {
      return { extra: { [FIELD_KEY]: this.sweep.field, [VALUES_KEY]: $("compare-sizes").value } };
    }
    const compare = this.#readCompare();
    return { sizes: compare.error ? undefined : compare.value.join(","), extra: {} };
  }

  #readCompare() {
    const parsed = parseValue(this.compareField, $("compare-sizes").value);
    if (!parsed.error && new Set(parsed.value).size !== parsed.value.length) {
      parsed.error = "Each size only once.";
    }
    showValuesError(parsed.error);
    return parsed;
  }

  /** Whether the values are the article's comparison: one single-layer size per comma. */
  #singleSizes() {
    return this.sweep.field === SIZES && !$("compare-sizes").value.includes(";");
  }

  /** The values typed for the swept field: {value} or {error} (shown under the input). */
  #sweepValues() {
    if (this.#singleSizes()) return this.#readCompare();
    const field = this.page.fields.find((f) => f.key === this.sweep.field);
    const parsed = field
      ? parseSweepValues(field, $("compare-sizes").value)
      : { error: `${this.sweep.field} is not a field of this form.` };
    showValuesError(parsed.error);
    return parsed;
  }

  async compare() {
    const config = this.page.validConfig();
    const values = this.#sweepValues();
    if (!config || values.error) return;
    const field = this.sweep.field;
    let specs;
    try {
      specs = await planSweep(config, field, values.value);
    } catch (err) {
      $("compare-sizes-error").textContent = err.message;
      if (err.status === 0) this.onUnreachable(err);
      return;
    }
    // Single hidden layers keep the article's captions ("Hidden size 5").
    for (const spec of specs) {
      if (field === SIZES && spec.value.length === 1) [spec.size] = spec.value;
    }
    await this.comparison.start(specs, field, this.sweep.words);
  }

  /** One of the article's experiments: set its fields, what it varies, and run it. */
  async #preset(preset) {
    const { form } = this.page;
    const { values } = form.read();
    form.setValues({ ...values, ...preset.set });
    this.sweep.field = preset.field;
    $("compare-sizes").value = preset.values;
    this.page.syncUrl();
    this.page.preview(); // the preset may change the split: show the points it trains on
    await this.compare();
  }
}
