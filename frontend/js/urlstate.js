// The whole configuration lives in the query string, one flat key per field
// (?dataset.kind=moons&model.hidden_sizes=8,4&…): reload restores it, and a copied link
// reproduces the same run because training is deterministic. Fields that do not apply (the
// number of classes of the moons) are left out; so is the default of the test-points
// checkbox, which appears only as show_test_points=0.

import { formatValue } from "./schema.js";

export const COMPARE_KEY = "compare.hidden_sizes";
export const SHOW_TEST_KEY = "show_test_points";
export const DISCRETE_KEY = "discretize"; // written only when on, as discretize=1

/**
 * Read the known keys from a query string. Values stay raw text, so the form can show
 * an invalid one with its error instead of silently replacing it with a default.
 * @returns {{raw: Record<string, string>, unknown: string[], showTest: boolean}}
 *   unknown: keys the page does not know (a typo in a link), to say so
 */
export function readQuery(search, fields, extraKeys = []) {
  const params = new URLSearchParams(search);
  const known = new Set([...fields.map((f) => f.key), COMPARE_KEY, SHOW_TEST_KEY, DISCRETE_KEY, ...extraKeys]);
  const raw = {};
  for (const [key, value] of params) {
    if (known.has(key) && key !== SHOW_TEST_KEY && key !== DISCRETE_KEY) raw[key] = value;
  }
  const unknown = [...new Set(params.keys())].filter((key) => !known.has(key));
  const discrete = params.get(DISCRETE_KEY) === "1";
  return { raw, unknown, showTest: params.get(SHOW_TEST_KEY) !== "0", discrete };
}

/**
 * Write the configuration into the address bar without adding a history entry.
 * @param {Record<string, unknown>} values  the form's valid values (fields that apply)
 * @param {string | undefined} compareText  the comparison's sizes, when valid
 * @param {boolean} showTest  the test-points checkbox
 * @param {boolean} discrete  the "discretize" checkbox (hard class colours)
 * @param {Record<string, string>} extra  more keys (the sweep's field and values)
 */
export function writeQuery(values, fields, compareText, showTest = true, discrete = false, extra = {}) {
  const params = new URLSearchParams();
  for (const field of fields) {
    if (!(field.key in values)) continue;
    const value = values[field.key];
    const list = field.kind === "int-list" || field.kind === "enum-list";
    params.set(field.key, list ? value.join(",") : formatValue(field, value));
  }
  if (compareText !== undefined) params.set(COMPARE_KEY, compareText);
  for (const [key, text] of Object.entries(extra)) params.set(key, text);
  if (!showTest) params.set(SHOW_TEST_KEY, "0");
  if (discrete) params.set(DISCRETE_KEY, "1");
  // Commas and dots read better unescaped in a link a person copies.
  const query = params.toString().replaceAll("%2C", ",").replaceAll("%3B", ";");
  const url = `${location.pathname}?${query}${location.hash}`;
  if (url !== `${location.pathname}${location.search}${location.hash}`) {
    history.replaceState(null, "", url);
  }
}
