// The configuration form: built from the schema's field descriptors, it owns the inputs,
// their labels, help text and error messages. It knows nothing about runs or plots.

import { crossFieldErrors, formatValue, parseValue } from "./schema.js";

// Short labels a person reads at a glance; the schema's description is the longer help.
const LABELS = {
  "dataset.kind": "Data set",
  "dataset.n_samples": "Points",
  "dataset.noise": "Noise",
  "dataset.seed": "Data seed",
  "dataset.test_fraction": "Test fraction",
  "dataset.n_classes": "Classes",
  "model.hidden_sizes": "Hidden layer sizes",
  "model.activation": "Activation",
  "model.loss": "Loss",
  "training.learning_rate": "Learning rate ε",
  "training.reg_lambda": "Regularisation λ",
  "training.iterations": "Iterations",
  "training.optimizer": "Optimiser",
  "training.batch_size": "Batch size",
  "training.seed": "Weight seed",
  "training.report_every": "Report every",
  "training.steps_per_second": "Pace (steps / s)",
  "view.resolution": "Boundary resolution",
  "view.max_fps": "Frames / s (max)",
};

const PLACEHOLDERS = {
  "model.hidden_sizes": "e.g. 3 or 8, 4 — empty: no hidden layer",
  "training.batch_size": "empty = full batch",
  "training.steps_per_second": "empty = as fast as possible",
};

// Rarely changed knobs go under "More options" so the first look stays simple.
const ADVANCED = new Set([
  "dataset.seed",
  "training.optimizer",
  "training.batch_size",
  "training.seed",
  "training.report_every",
  "view.max_fps",
]);

export const inputId = (key) => `f-${key.replace(".", "-")}`;

function buildInput(field) {
  let input;
  if (field.kind === "enum") {
    input = document.createElement("select");
    for (const choice of field.choices) {
      const option = document.createElement("option");
      option.value = choice;
      option.textContent = choice.replaceAll("_", " ");
      input.append(option);
    }
  } else {
    // type="text" (not "number") so we see exactly what was typed and can explain it.
    input = document.createElement("input");
    input.type = "text";
    input.inputMode = field.kind === "int-list" || field.kind === "int" ? "numeric" : "decimal";
    input.autocomplete = "off";
    input.spellcheck = false;
    if (PLACEHOLDERS[field.key]) input.placeholder = PLACEHOLDERS[field.key];
  }
  input.id = inputId(field.key);
  input.name = field.key;
  return input;
}

function buildRow(field) {
  const row = document.createElement("div");
  row.className = "field";
  row.dataset.key = field.key;
  const label = document.createElement("label");
  label.htmlFor = inputId(field.key);
  label.textContent = LABELS[field.key] || field.title;
  const input = buildInput(field);
  const help = document.createElement("p");
  help.className = "help";
  help.id = `${input.id}-help`;
  help.textContent = field.description;
  const error = document.createElement("p");
  error.className = "field-error";
  error.id = `${input.id}-error`;
  error.setAttribute("aria-live", "polite");
  input.setAttribute("aria-describedby", `${error.id} ${help.id}`);
  row.append(label, input, error, help);
  return { row, input, error };
}

export class ConfigForm {
  /**
   * @param {HTMLElement} root  element holding one [data-section] container per section
   * @param {object[]} fields  descriptors from fieldsFromSchema()
   * @param {(key: string) => void} onChange  called with the field key after a valid edit
   */
  constructor(root, fields, onChange) {
    this.fields = fields;
    this.inputs = new Map();
    this.errors = new Map();
    this.rows = new Map();
    for (const field of fields) {
      const { row, input, error } = buildRow(field);
      const where = ADVANCED.has(field.key) ? "advanced" : field.section;
      const container = root.querySelector(`[data-section="${where}"]`);
      (container || root).append(row);
      this.inputs.set(field.key, input);
      this.errors.set(field.key, error);
      this.rows.set(field.key, row);
      const event = input.tagName === "SELECT" ? "change" : "input";
      input.addEventListener(event, () => this.#edited(field, onChange));
    }
  }

  #edited(field, onChange) {
    const { errors } = this.read();
    this.showErrors(errors);
    this.#syncVisibility();
    if (!errors[field.key]) onChange(field.key);
  }

  // The number of classes only matters for blobs; hide it elsewhere rather than confuse.
  #syncVisibility() {
    const kind = this.inputs.get("dataset.kind")?.value;
    const row = this.rows.get("dataset.n_classes");
    if (row) row.hidden = kind !== "blobs";
  }

  /** Set inputs from flat values; keys not given fall back to the defaults. */
  setValues(values) {
    for (const field of this.fields) {
      let value = field.key in values ? values[field.key] : field.default;
      if (typeof value === "string" && field.kind !== "enum") {
        // Text from a link: tidy it when valid, keep it verbatim (to show its error) when not.
        const parsed = parseValue(field, value);
        if (!parsed.error) value = parsed.value;
      }
      this.inputs.get(field.key).value =
        typeof value === "string" ? value : formatValue(field, value);
    }
    this.showErrors(this.read().errors);
    this.#syncVisibility();
  }

  /** Parse every input: {values: {key: value}, errors: {key: message}}. */
  read() {
    const values = {};
    const errors = {};
    for (const field of this.fields) {
      const parsed = parseValue(field, this.inputs.get(field.key).value);
      if (parsed.error) errors[field.key] = parsed.error;
      else values[field.key] = parsed.value;
    }
    for (const [key, message] of Object.entries(crossFieldErrors(values))) {
      if (!errors[key]) errors[key] = message;
    }
    return { values, errors };
  }

  /** Show messages next to their fields (and clear the others). */
  showErrors(errors) {
    for (const [key, element] of this.errors) {
      const message = errors[key] || "";
      element.textContent = message;
      this.inputs.get(key).setAttribute("aria-invalid", message ? "true" : "false");
      this.rows.get(key).classList.toggle("invalid", Boolean(message));
      // An error inside the closed "More options" must not stay invisible.
      if (message) this.rows.get(key).closest("details")?.setAttribute("open", "");
    }
  }

  focusFirstError(errors) {
    const key = this.fields.find((f) => errors[f.key])?.key;
    if (key) this.inputs.get(key).focus();
  }

  sectionValues(values, section) {
    const out = {};
    for (const field of this.fields) {
      if (field.section === section && field.key in values) out[field.name] = values[field.key];
    }
    return out;
  }
}
