// The configuration form: built from the schema's field descriptors, it owns the inputs,
// their labels, help text and error messages. It knows nothing about runs or plots.

import { adviceFor } from "./advice.js";
import { buildChoiceList } from "./choicelist.js";
import { applies, crossFieldErrors, formatValue, parseValue } from "./schema.js";

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
  "model.features": "Input features",
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
  "model.hidden_sizes": "e.g. 3 or 8, 4 — empty: none",
  "training.batch_size": "empty: all",
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
  if (field.kind === "enum-list") {
    input = buildChoiceList(field);
  } else if (field.kind === "enum") {
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
  // Advice that depends on other fields (advice.js), with a button that applies it.
  const advice = document.createElement("p");
  advice.className = "advice";
  advice.id = `${input.id}-advice`;
  advice.hidden = true;
  advice.setAttribute("aria-live", "polite");
  input.setAttribute("aria-describedby", `${error.id} ${advice.id} ${help.id}`);
  row.append(label, input, error, advice, help);
  return { row, input, error, advice };
}

export class ConfigForm {
  /**
   * @param {HTMLElement} root  element holding one [data-section] container per section
   * @param {object[]} fields  descriptors from fieldsFromSchema()
   * @param {Record<string, Record<string, object>>} kindDefaults  from kindDefaultsFromSchema()
   * @param {(key: string) => void} onChange  called with the field key after a valid edit
   */
  constructor(root, fields, kindDefaults, onChange) {
    this.fields = fields;
    this.kindDefaults = kindDefaults;
    this.onChange = onChange;
    this.inputs = new Map();
    this.errors = new Map();
    this.rows = new Map();
    this.advice = new Map();
    this.typed = new Set(); // keys the person edited: kind defaults leave them alone
    this.kinds = {}; // section → its kind when last seen, to tell a kind change
    for (const field of fields) {
      const { row, input, error, advice } = buildRow(field);
      const where = ADVANCED.has(field.key) ? "advanced" : field.section;
      const container = root.querySelector(`[data-section="${where}"]`);
      (container || root).append(row);
      this.inputs.set(field.key, input);
      this.errors.set(field.key, error);
      this.rows.set(field.key, row);
      this.advice.set(field.key, advice);
      const event = input.tagName === "SELECT" ? "change" : "input";
      input.addEventListener(event, () => {
        if (field.name !== "kind") this.typed.add(field.key);
        this.#edited(field);
      });
    }
  }

  #edited(field) {
    if (field.name === "kind") this.#applyKindDefaults(field.section);
    const { errors } = this.read();
    this.showErrors(errors);
    this.#sync();
    if (!errors[field.key]) this.onChange(field.key);
  }

  /** The default of a field while its section's kind is `kind`. */
  #defaultFor(field, kind) {
    const own = this.kindDefaults[field.section]?.[kind];
    return own && field.name in own ? own[field.name] : field.default;
  }

  // A new kind: each field that still shows the old kind's default (the person left it
  // alone) takes the new kind's; a value the person typed stays.
  #applyKindDefaults(section) {
    const kind = this.inputs.get(`${section}.kind`)?.value;
    const before = this.kinds[section];
    this.kinds[section] = kind;
    if (before === undefined || before === kind) return;
    for (const field of this.fields) {
      if (field.section !== section || field.name === "kind" || this.typed.has(field.key)) continue;
      const input = this.inputs.get(field.key);
      const parsed = parseValue(field, input.value);
      const old = this.#defaultFor(field, before);
      if (parsed.error || JSON.stringify(parsed.value) !== JSON.stringify(old)) continue;
      input.value = formatValue(field, this.#defaultFor(field, kind));
    }
  }

  /** The label a person sees for a field. */
  labelOf(key) {
    return LABELS[key] || this.fields.find((f) => f.key === key)?.title || key;
  }

  /** Raw values of every input, for deciding which fields apply. */
  #raw() {
    const raw = {};
    for (const [key, input] of this.inputs) raw[key] = input.value;
    return raw;
  }

  /** Whether a field means anything with the other fields as they are now. */
  applies(key) {
    const field = this.fields.find((f) => f.key === key);
    return Boolean(field) && applies(field, this.#raw());
  }

  // Fields that do not apply are hidden ("x-applies-when"); advice follows the values.
  #sync() {
    const raw = this.#raw();
    for (const field of this.fields) this.rows.get(field.key).hidden = !applies(field, raw);
    const { values } = this.read();
    const advice = adviceFor(values);
    for (const [key, element] of this.advice) {
      const item = advice[key];
      element.hidden = !item;
      if (!item) continue;
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = item.action;
      button.addEventListener("click", () => {
        const input = this.inputs.get(key);
        const field = this.fields.find((f) => f.key === key);
        input.value = formatValue(field, item.value);
        this.typed.add(key);
        this.#edited(field);
        input.focus();
      });
      element.replaceChildren(`${item.text} `, button);
    }
  }

  /** Set inputs from flat values; keys not given fall back to the (kind's) defaults. */
  setValues(values) {
    this.typed.clear();
    const kindOf = (section) => {
      const key = `${section}.kind`;
      const field = this.fields.find((f) => f.key === key);
      return key in values ? values[key] : field?.default;
    };
    for (const field of this.fields) {
      let value =
        field.key in values ? values[field.key] : this.#defaultFor(field, kindOf(field.section));
      if (typeof value === "string" && field.kind !== "enum") {
        // Text from a link: tidy it when valid, keep it verbatim (to show its error) when not.
        const parsed = parseValue(field, value);
        if (!parsed.error) value = parsed.value;
      }
      this.inputs.get(field.key).value =
        typeof value === "string" ? value : formatValue(field, value);
    }
    for (const field of this.fields) {
      if (field.name === "kind") this.kinds[field.section] = this.inputs.get(field.key).value;
    }
    this.showErrors(this.read().errors);
    this.#sync();
  }

  /** Parse every input: {values: {key: value}, errors: {key: message}}. */
  read() {
    const values = {};
    const errors = {};
    const raw = this.#raw();
    for (const field of this.fields) {
      if (!applies(field, raw)) continue; // not part of the run, not in the link
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
