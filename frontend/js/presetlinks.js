// Links that load a preset (engine/presets.py, served in the schema as "x-presets") into
// the page: the link's query string holds the preset's fields, the form fills in the rest
// with defaults, as for any shared link.

/** The query string of a preset: its sections flattened to the page's keys. */
export function presetQuery(preset) {
  const params = new URLSearchParams();
  for (const [section, values] of Object.entries(preset.sections || {})) {
    for (const [name, value] of Object.entries(values)) {
      params.set(`${section}.${name}`, Array.isArray(value) ? value.join(",") : String(value));
    }
  }
  return `?${params.toString().replaceAll("%2C", ",")}`;
}

/**
 * Fill `el` with links to the schema's feature contrast (the article's remark: no hidden
 * layer, with and without squared features); hidden when the server offers none.
 */
export function showFeatureContrast(el, schema) {
  const presets = schema["x-presets"] || {};
  const names = (schema["x-feature-contrast"] || []).filter((name) => presets[name]);
  el.hidden = !names.length;
  if (!names.length) return;
  const links = names.map((name) => {
    const a = document.createElement("a");
    a.href = presetQuery(presets[name]);
    a.dataset.preset = name;
    a.textContent = presets[name].title;
    a.title = presets[name].description;
    return a;
  });
  el.replaceChildren("Hand-made features, as the article remarks: ", links[0]);
  for (const link of links.slice(1)) el.append(" versus ", link);
  el.append(". Press Train on each and compare the train accuracy.");
}
