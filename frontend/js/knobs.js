// Knobs that turn while a run trains. The learning rate, λ and pace apply to the live run
// at once (PATCH /api/runs/{id}, debounced, checked by the server as the form checks them);
// while a run is live every other field says what editing it does to that run, before the
// person loses the run to it.

import * as api from "./api.js";

export const LIVE_KEYS = [
  "training.learning_rate",
  "training.reg_lambda",
  "training.steps_per_second",
];
const DEBOUNCE_MS = 400;
// What editing a field does while a run is live (the data fields redraw the points, which
// stops the run: main.js's preview).
// Short, to fit beside a label in a half-width column; the title says it in full.
const APPLIES_NOW = ["applies now", "Applies to the run on show at once."];
const NEXT_RUN = ["next run", "Applies to the next run (press Train); this run goes on as it is."];
const STOPS_RUN = ["stops the run", "New data: editing this stops the run on show."];
const NAMES = {
  learning_rate: "learning rate ε",
  reg_lambda: "λ",
  steps_per_second: "pace",
};

/** "learning rate ε = 0.05, λ = 0" from a change's {name: value}. */
export function describeChanged(changed) {
  return Object.entries(changed)
    .map(([name, value]) => `${NAMES[name] ?? name} = ${value}`)
    .join(", ");
}

export class LiveKnobs {
  /**
   * @param {ConfigForm} form  the configuration form (form.js)
   * @param {HTMLElement} note  where the outcome of a change is said
   * @param {RunView} view  the run on show (run.js)
   */
  constructor(form, note, view) {
    this.form = form;
    this.note = note;
    this.view = view;
    this.timer = null;
    this.live = false;
  }

  /** Whether a change can go to the run on show now: it runs or is paused. */
  get #canChange() {
    return this.view.active && this.view.status !== "queued";
  }

  /** Mark every field with what editing it does to the run on show, or unmark them. */
  refresh() {
    const live = this.view.active;
    if (live !== this.live) this.say("");
    this.live = live;
    for (const [key, row] of this.form.rows) {
      let tag = row.querySelector(".applies");
      if (!tag) {
        // Beside the label, not in it (the field's name stays its name), and read out with
        // the field's description.
        tag = document.createElement("span");
        tag.className = "applies";
        const input = this.form.inputs.get(key);
        tag.id = `${input.id}-applies`;
        row.querySelector("label").after(tag);
        const described = input.getAttribute("aria-describedby") || "";
        input.setAttribute("aria-describedby", `${tag.id} ${described}`.trim());
      }
      const now = LIVE_KEYS.includes(key);
      const [text, title] = now ? APPLIES_NOW : key.startsWith("dataset.") ? STOPS_RUN : NEXT_RUN;
      tag.textContent = text;
      tag.title = title;
      tag.dataset.tone = now ? "now" : "later";
      tag.hidden = !live;
    }
  }

  /**
   * A valid edit of field `key`: a knob goes to the live run (debounced).
   * @returns {boolean} whether the edit is a knob the run on show takes
   */
  edited(key) {
    if (!LIVE_KEYS.includes(key) || !this.view.active) return false;
    clearTimeout(this.timer);
    if (this.view.status === "queued") {
      this.say("The run has not started yet: this applies to the next run.");
      return true;
    }
    this.timer = setTimeout(() => this.send(), DEBOUNCE_MS);
    return true;
  }

  /** The knobs the form holds that differ from the run's, as a PATCH's `training`. */
  #wanted() {
    const { values, errors } = this.form.read();
    const training = {};
    for (const key of LIVE_KEYS) {
      if (errors[key] || !(key in values)) continue; // the form shows the error
      const name = key.split(".")[1];
      const value = values[key];
      if (value === null || value === undefined) continue; // an empty pace: see send()
      if (value !== this.view.knobs?.[name]) training[name] = value;
    }
    return { training, emptyPace: values["training.steps_per_second"] == null };
  }

  async send() {
    if (!this.#canChange) return;
    const { training, emptyPace } = this.#wanted();
    const paced = this.view.knobs?.steps_per_second != null;
    if (!Object.keys(training).length) {
      if (emptyPace && paced) {
        this.say("An empty pace (as fast as possible) applies to the next run only.");
      }
      return;
    }
    const id = this.view.id;
    try {
      const result = await api.changeRun(id, { training });
      if (id !== this.view.id) return;
      const last = result.changes.at(-1);
      this.say(
        result.applied && last
          ? `Applied from step ${(last.iteration + 1).toLocaleString("en-US")}: ` +
              `${describeChanged(last.changed)}.`
          : "Sent: the run applies it at its next step.",
      );
    } catch (err) {
      if (err.status === 422) {
        const errors = api.errorsByField(err.detail);
        this.form.showErrors(errors);
        this.say(`Not applied: ${Object.values(errors).join(" ")}`, "error");
      } else {
        this.say(`Not applied: ${err.message}`, "error");
      }
    }
  }

  say(text, tone = "info") {
    this.note.textContent = text;
    this.note.dataset.tone = tone;
    this.note.hidden = !text;
  }
}
