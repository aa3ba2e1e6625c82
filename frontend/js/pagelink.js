// What a run's link says when its knobs were turned by hand while it trained: the query
// keeps the values the run STARTED with (so the link reproduces its config) and names the
// changes under CHANGES_KEY; a page opened from it says so, and that the changes are not
// replayed (they were made by hand, at moments a new run would not meet again).

import { describeChanged, LIVE_KEYS } from "./knobs.js";

export const CHANGES_KEY = "changed_by_hand";

/** "100:learning_rate=0.05,reg_lambda=0;500:steps_per_second=50" */
export function changesText(changes) {
  return changes
    .map((c) => {
      const values = Object.entries(c.changed).map(([name, value]) => `${name}=${value}`);
      return `${c.iteration}:${values.join(",")}`;
    })
    .join(";");
}

/** The changes a link names, [{iteration, changed}], or null when it names none or is garbled. */
export function parseChanges(text) {
  if (!text) return null;
  const changes = [];
  for (const part of text.split(";")) {
    const [at, values] = part.split(":");
    const iteration = Number(at);
    if (!Number.isInteger(iteration) || iteration < 0 || !values) return null;
    const changed = {};
    for (const item of values.split(",")) {
      const [name, value] = item.split("=");
      if (!LIVE_KEYS.includes(`training.${name}`) || !Number.isFinite(Number(value))) return null;
      changed[name] = Number(value);
    }
    changes.push({ iteration, changed });
  }
  return changes;
}

/** What the page says of a link whose run was changed by hand. */
export function changesNote(changes) {
  const list = changes
    .map((c) => `after step ${c.iteration.toLocaleString("en-US")}: ${describeChanged(c.changed)}`)
    .join("; ");
  return (
    `This link is of a run that was changed by hand while it trained (${list}). The form ` +
    "holds the settings it started with; a new run does not replay the changes: make them " +
    "yourself while it trains."
  );
}

/**
 * The form's values as the link should hold them: when the run on show was changed by
 * hand, its starting learning rate, λ and pace in place of the form's, plus the changes.
 * @returns {{values: object, extra: Record<string, string>}}
 */
export function linkValues(values, view) {
  if (!view.changes.length || !view.config) return { values, extra: {} };
  const shown = { ...values };
  for (const key of LIVE_KEYS) {
    const name = key.split(".")[1];
    if (key in shown) shown[key] = view.config.training?.[name] ?? null;
  }
  return { values: shown, extra: { [CHANGES_KEY]: changesText(view.changes) } };
}
