// The sentence above a finished sweep, computed from its results: the best test accuracy and
// where train and test accuracy part ways (or, without a test split, the best fit). It says
// only what these numbers show.

const pct = (p) => `${(100 * p).toFixed(1)}%`;
const shown = (p) => Math.round(1000 * p); // compare as the page shows them: 0.1 % steps
// Train and test "part ways" where train accuracy exceeds test accuracy by this many points.
const GAP_POINTS = 3;

/**
 * @param {{label: string, status: string, last: {train_accuracy: number, loss: number,
 *   test_accuracy?: number} | null}[]} cells  in the order swept, each run finished
 * @param {string} words  what the sweep varies ("λ", "learning rate")
 * @returns {string}
 */
export function summariseSweep(cells, words) {
  const name = (c) => `${words} = ${c.label}`;
  const parts = [`All ${cells.length} runs finished.`];
  const failed = cells.filter((c) => c.status !== "completed" || !c.last);
  if (failed.length) parts.push(`${failed.map((c) => `${name(c)} ${c.status}`).join("; ")}.`);
  const done = cells.filter((c) => !failed.includes(c));
  if (!done.length) return parts.join(" ");
  // Ties go to the value listed first.
  const best = (score) => done.reduce((a, c) => (score(c) > score(a) ? c : a));
  const tested = done.every((c) => typeof c.last.test_accuracy === "number");
  if (!tested) {
    const fit = best((c) => shown(c.last.train_accuracy));
    parts.push(`Best training accuracy: ${name(fit)} (${pct(fit.last.train_accuracy)}).`);
    parts.push("Set a test fraction to see which value does best on points it never trained on.");
    return parts.join(" ");
  }
  const top = best((c) => shown(c.last.test_accuracy));
  parts.push(
    `Best test accuracy: ${name(top)} (${pct(top.last.test_accuracy)}; ` +
      `train ${pct(top.last.train_accuracy)}).`,
  );
  const gap = (c) => shown(c.last.train_accuracy) - shown(c.last.test_accuracy);
  const apart = done.filter((c) => gap(c) >= 10 * GAP_POINTS);
  if (!apart.length) {
    parts.push(`Train and test accuracy stay within ${GAP_POINTS} points of each other for every value.`);
  } else {
    const widest = apart.reduce((a, c) => (gap(c) > gap(a) ? c : a));
    const where = apart.map(name).join(", ");
    parts.push(
      `Train and test part ways at ${where}: widest at ${name(widest)}, train ` +
        `${pct(widest.last.train_accuracy)} against test ${pct(widest.last.test_accuracy)}.`,
    );
  }
  return parts.join(" ");
}
