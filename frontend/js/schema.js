// Turns the server's RunConfig JSON schema (GET /api/schema) into flat field descriptors, and
// parses / validates what a person types against the same bounds, so defaults, limits and
// help text are written once, in the pydantic model.

export const SECTIONS = ["dataset", "model", "training", "view"];

// Fields with their own editor rather than a form input: own data points (owndata.js).
export const NOT_FORM_FIELDS = new Set(["dataset.points"]);

// Page defaults that deliberately differ from the schema's: a person should *watch* the
// article's 20000 steps (about 10 s), not see them finish before the first frame.
export const PAGE_DEFAULTS = { "training.steps_per_second": 2000 };

function resolveRef(schema, node) {
  if (node && node.$ref) {
    const name = node.$ref.split("/").pop();
    return schema.$defs[name];
  }
  return node;
}

// One property of the schema → a descriptor the form and the validator share.
function describe(section, name, prop) {
  const field = {
    section,
    name,
    key: `${section}.${name}`,
    title: prop.title || name,
    description: prop.description || "",
    default: prop.default,
    nullable: false,
    // {"kind": ["blobs"]}: the field means something only while the section's `kind` is one
    // of these; elsewhere the page hides it and leaves it out of the run and the link.
    appliesWhen: prop["x-applies-when"] || null,
  };
  let body = prop;
  if (Array.isArray(prop.anyOf)) {
    field.nullable = prop.anyOf.some((p) => p.type === "null");
    body = prop.anyOf.find((p) => p.type !== "null") || {};
  }
  if (Array.isArray(body.enum) || body.const !== undefined) {
    field.kind = "enum";
    field.choices = body.enum || [body.const];
  } else if (body.type === "array" && Array.isArray(body.items?.enum)) {
    // A list of names (model.features), typed comma-separated, each one of the choices.
    field.kind = "enum-list";
    field.choices = body.items.enum;
    field.maxItems = body.maxItems;
    field.minItems = body.minItems;
  } else if (body.type === "array") {
    field.kind = "int-list";
    field.maxItems = body.maxItems;
    field.minItems = body.minItems;
    field.itemMin = body.items?.minimum;
    field.itemMax = body.items?.maximum;
  } else {
    field.kind = body.type === "integer" ? "int" : "float";
    field.min = body.minimum;
    field.max = body.maximum;
    field.exclusiveMin = body.exclusiveMinimum;
    field.exclusiveMax = body.exclusiveMaximum;
  }
  if (PAGE_DEFAULTS[field.key] !== undefined) {
    field.schemaDefault = field.default;
    field.default = PAGE_DEFAULTS[field.key];
  }
  return field;
}

/** Flat list of field descriptors, in schema order, for the four sections. */
export function fieldsFromSchema(schema) {
  const fields = [];
  for (const section of SECTIONS) {
    const sub = resolveRef(schema, schema.properties?.[section]);
    if (!sub) continue;
    for (const [name, prop] of Object.entries(sub.properties || {})) {
      if (NOT_FORM_FIELDS.has(`${section}.${name}`)) continue;
      fields.push(describe(section, name, prop));
    }
  }
  return fields;
}

/**
 * Per section, the defaults that depend on the section's `kind` ("x-kind-defaults"):
 * {dataset: {spiral: {noise: 0.05}}}.
 */
export function kindDefaultsFromSchema(schema) {
  const out = {};
  for (const section of SECTIONS) {
    const sub = resolveRef(schema, schema.properties?.[section]);
    if (sub?.["x-kind-defaults"]) out[section] = sub["x-kind-defaults"];
  }
  return out;
}

/** The comparison's list of sizes ("x-compare": its bounds and default), as a field. */
export function compareFieldFromSchema(schema) {
  const prop = schema["x-compare"]?.hidden_sizes;
  return prop ? describe("compare", "hidden_sizes", prop) : null;
}

/** Whether a field applies, given the raw values of the other fields ({key: value}). */
export function applies(field, values) {
  if (!field.appliesWhen) return true;
  return Object.entries(field.appliesWhen).every(([name, allowed]) =>
    allowed.includes(values[`${field.section}.${name}`]),
  );
}

/** The text a field's input shows for a value (null → empty, lists → "8, 4"). */
export function formatValue(field, value) {
  if (value === null || value === undefined) return "";
  if (field.kind === "int-list" || field.kind === "enum-list") return value.join(", ");
  return String(value);
}

function checkNumber(field, n) {
  const what = field.kind === "int" ? "a whole number" : "a number";
  if (!Number.isFinite(n)) return `Must be ${what}.`;
  if (field.kind === "int" && !Number.isInteger(n)) return "Must be a whole number.";
  if (field.min !== undefined && n < field.min) return `Must be at least ${field.min}.`;
  if (field.exclusiveMin !== undefined && n <= field.exclusiveMin) {
    return `Must be greater than ${field.exclusiveMin}.`;
  }
  if (field.max !== undefined && n > field.max) return `Must be at most ${field.max}.`;
  if (field.exclusiveMax !== undefined && n >= field.exclusiveMax) {
    return `Must be less than ${field.exclusiveMax}.`;
  }
  return null;
}

function parseList(field, text) {
  const parts = text.split(/[\s,]+/).filter((p) => p !== "");
  const sizes = [];
  for (const part of parts) {
    const n = Number(part);
    if (!Number.isInteger(n)) return { error: `"${part}" is not a whole number.` };
    if (field.itemMin !== undefined && n < field.itemMin) {
      return { error: `Each size must be at least ${field.itemMin}.` };
    }
    if (field.itemMax !== undefined && n > field.itemMax) {
      return { error: `Each size must be at most ${field.itemMax}.` };
    }
    sizes.push(n);
  }
  if (field.maxItems !== undefined && sizes.length > field.maxItems) {
    return { error: `At most ${field.maxItems} sizes.` };
  }
  if (field.minItems !== undefined && sizes.length < field.minItems) {
    return { error: `At least ${field.minItems} size${field.minItems > 1 ? "s" : ""}.` };
  }
  return { value: sizes };
}

function parseNames(field, text) {
  const names = text.split(/[\s,]+/).filter((p) => p !== "");
  const unknown = names.find((name) => !field.choices.includes(name));
  if (unknown !== undefined) return { error: `Choose from ${field.choices.join(", ")}.` };
  if (new Set(names).size !== names.length) return { error: "Each name may appear once." };
  if (field.minItems !== undefined && names.length < field.minItems) {
    return { error: `At least ${field.minItems}.` };
  }
  if (field.maxItems !== undefined && names.length > field.maxItems) {
    return { error: `At most ${field.maxItems}.` };
  }
  return { value: names };
}

/** Parse the text of an input: {value} when valid, {error: message} when not. */
export function parseValue(field, raw) {
  const text = String(raw ?? "").trim();
  if (field.kind === "enum") {
    return field.choices.includes(text)
      ? { value: text }
      : { error: `Choose one of ${field.choices.join(", ")}.` };
  }
  if (field.kind === "int-list") return parseList(field, text);
  if (field.kind === "enum-list") return parseNames(field, text);
  if (text === "") {
    return field.nullable ? { value: null } : { error: "Required." };
  }
  const n = Number(text);
  const error = checkNumber(field, n);
  return error ? { error } : { value: n };
}

/** Nest flat {"training.learning_rate": v} values into a RunConfig object. */
export function nest(values) {
  const config = {};
  for (const [key, value] of Object.entries(values)) {
    const [section, name] = key.split(".");
    config[section] = config[section] || {};
    config[section][name] = value;
  }
  return config;
}

/** Checks that span fields (the server's model validators), keyed by the field to blame. */
export function crossFieldErrors(values) {
  const errors = {};
  const batch = values["training.batch_size"];
  const n = values["dataset.n_samples"];
  if (batch !== null && batch !== undefined && n !== undefined && batch > n) {
    errors["training.batch_size"] = `Larger than the ${n} points; leave empty for the full batch.`;
  }
  return errors;
}
