// The sentence under a finished comparison, computed from its results: it says only what the
// numbers show (which size fits best, whether accuracy rises with the size, which size does
// best on held-out points), never a lesson the runs did not teach.

const pct = (p) => `${(100 * p).toFixed(1)}%`;
const shown = (p) => Math.round(1000 * p); // compare as the page shows them: 0.1 % steps

/** "0 of 1 run finished", "3 of 7 runs finished": the count while a comparison trains. */
export function finishedText(done, total) {
  return `${done} of ${total} ${total === 1 ? "run" : "runs"} finished`;
}

/**
 * @param {{size: number, status: string, last: {train_accuracy: number,
 *   test_accuracy?: number} | null}[]} cells  one per hidden size, each run finished
 * @returns {string}
 */
export function summariseComparison(cells) {
  const n = cells.length;
  const parts = [n === 1 ? "The run finished." : `All ${n} runs finished.`];
  const failed = cells.filter((c) => c.status !== "completed" || !c.last);
  if (failed.length) {
    parts.push(`${failed.map((c) => `Hidden size ${c.size} ${c.status}`).join("; ")}.`);
  }
  const done = cells.filter((c) => !failed.includes(c)).sort((a, b) => a.size - b.size);
  if (done.length < 2) return parts.join(" ");
  parts.push(trainSentence(done));
  const tested = done.every((c) => typeof c.last.test_accuracy === "number");
  parts.push(
    tested
      ? testSentence(done)
      : "Set a test fraction to see which size does best on points it never trained on.",
  );
  return parts.join(" ");
}

// Sorted by size, at least two.
function trainSentence(done) {
  const acc = (c) => shown(c.last.train_accuracy);
  const best = done.reduce((a, c) => (acc(c) > acc(a) ? c : a));
  const worst = done.reduce((a, c) => (acc(c) < acc(a) ? c : a));
  if (acc(best) === acc(worst)) {
    return `Every size reaches the same training accuracy, ${pct(best.last.train_accuracy)}.`;
  }
  const extremes =
    `Training accuracy is lowest at size ${worst.size} (${pct(worst.last.train_accuracy)}) ` +
    `and highest at size ${best.size} (${pct(best.last.train_accuracy)})`;
  const drops = [];
  for (let i = 1; i < done.length; i += 1) {
    const [a, b] = [done[i - 1], done[i]];
    if (acc(b) < acc(a)) {
      drops.push(
        `from size ${a.size} to ${b.size} ` +
          `(${pct(a.last.train_accuracy)} → ${pct(b.last.train_accuracy)})`,
      );
    }
  }
  if (!drops.length) {
    const strictly = done.every((c, i) => i === 0 || acc(c) > acc(done[i - 1]));
    return `${extremes}: it ${strictly ? "rises with the size" : "never falls as the size grows"}.`;
  }
  const list = drops.length > 1 ? `${drops.slice(0, -1).join(", ")} and ${drops.at(-1)}` : drops[0];
  return `${extremes}, yet it does not simply rise with the size: it drops ${list}.`;
}

function testSentence(done) {
  const acc = (c) => shown(c.last.test_accuracy);
  const fit = (c) => shown(c.last.train_accuracy);
  // Ties go to the smaller network: it explains the data as well with less.
  const bestTest = done.reduce((a, c) => (acc(c) > acc(a) ? c : a));
  const bestFit = done.reduce((a, c) => (fit(c) > fit(a) ? c : a));
  const score = pct(bestTest.last.test_accuracy);
  let text = `On the held-out test points, size ${bestTest.size} does best (${score})`;
  if (bestFit.size > bestTest.size && acc(bestFit) < acc(bestTest)) {
    text +=
      `; size ${bestFit.size} fits the training points better ` +
      `(${pct(bestFit.last.train_accuracy)}) yet scores ${pct(bestFit.last.test_accuracy)} ` +
      "on the test points: it overfits";
  }
  return `${text}.`;
}
