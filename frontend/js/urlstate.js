// The whole configuration lives in the query string, one flat key per field
// (?dataset.kind=moons&model.hidden_sizes=8,4&…): reload restores it, and a copied link
// reproduces the same run because training is deterministic.

import { formatValue } from "./schema.js";

export const COMPARE_KEY = "compare.hidden_sizes";

/**
 * Read the known keys from a query string. Values stay raw text, so the form can show
 * an invalid one with its error instead of silently replacing it with a default.
 * @returns {Record<string, string>}
 */
export function readQuery(search, fields) {
  const params = new URLSearchParams(search);
  const raw = {};
  for (const field of fields) {
    if (params.has(field.key)) raw[field.key] = params.get(field.key);
  }
  if (params.has(COMPARE_KEY)) raw[COMPARE_KEY] = params.get(COMPARE_KEY);
  return raw;
}

/** Write the configuration into the address bar without adding a history entry. */
export function writeQuery(values, fields, compareText) {
  const params = new URLSearchParams();
  for (const field of fields) {
    if (!(field.key in values)) continue;
    const value = values[field.key];
    params.set(field.key, field.kind === "int-list" ? value.join(",") : formatValue(field, value));
  }
  if (compareText !== undefined) params.set(COMPARE_KEY, compareText);
  // Commas and dots read better unescaped in a link a person copies.
  const query = params.toString().replaceAll("%2C", ",");
  const url = `${location.pathname}?${query}${location.hash}`;
  if (url !== `${location.pathname}${location.search}${location.hash}`) {
    history.replaceState(null, "", url);
  }
}
