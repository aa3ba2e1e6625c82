// Advice the form shows next to a field when the other fields make its value a trap, with a
// value that works and a button that applies it. Pure functions of the form's values.

/** The largest of 1, 2, 5 × 10^k that is at most x (x > 0). */
export function roundDownNicely(x) {
  const decade = 10 ** Math.floor(Math.log10(x));
  const m = [5, 2, 1].find((f) => f * decade <= x * (1 + 1e-9)) ?? 1;
  return Number((m * decade).toPrecision(1));
}

/** Points the gradient is summed over at each step: the batch, else the training set. */
function pointsPerStep(values) {
  const n = values["dataset.n_samples"] ?? 300;
  const train = Math.max(1, Math.round(n * (1 - (values["dataset.test_fraction"] ?? 0))));
  const batch = values["training.batch_size"];
  return batch ? Math.min(batch, train) : train;
}

/**
 * Linear hidden layers: with no squashing, the summed gradient grows with the points and the
 * layers multiply it, so plain gradient descent at the article's ε = 0.01 blows up within a
 * few steps (300 points: at step 8). Measured with `boundarylab train --activation linear`:
 * 0.15 / points trains every data set at 1–4 layers (0.0005 for the article's 300 points),
 * deeper stacks need it halved per layer beyond four; momentum (0.9) steps ~10× further.
 * @returns {number | null}  a learning rate that trains, or null when none is needed
 */
export function linearLearningRate(values) {
  const layers = values["model.hidden_sizes"]?.length ?? 0;
  const optimizer = values["training.optimizer"] ?? "gd";
  if (values["model.activation"] !== "linear" || layers === 0 || optimizer === "adam") return null;
  let rate = Math.min(0.005, 0.15 / pointsPerStep(values));
  rate /= 2 ** Math.max(0, layers - 4);
  if (optimizer === "momentum") rate /= 10;
  return roundDownNicely(rate);
}

/**
 * Advice per field key: {text, action (the button's label), value (what it sets)}.
 * @param {Record<string, unknown>} values  the form's parsed values
 */
export function adviceFor(values) {
  const advice = {};
  const rate = linearLearningRate(values);
  const current = values["training.learning_rate"];
  if (rate !== null && typeof current === "number" && current > rate) {
    advice["training.learning_rate"] = {
      text:
        "With linear hidden layers this rate diverges within a few steps (the gradient is " +
        `summed over ${pointsPerStep(values)} points). ${rate} trains.`,
      action: `Use ${rate}`,
      value: rate,
    };
  }
  return advice;
}
