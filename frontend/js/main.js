// Wires the page together: schema → form, URL ↔ form, dataset preview, Train and Compare.

import * as api from "./api.js";
import { ConfigForm } from "./form.js";
import { LiveKnobs } from "./knobs.js";
import { makeOwnData, pointErrors } from "./owndata.js";
import { CHANGES_KEY, changesNote, linkValues, parseChanges } from "./pagelink.js";
import { showFeatureContrast } from "./presetlinks.js";
import { checkHealth, makeRunView } from "./runpanel.js";
import { compareFieldFromSchema, fieldsFromSchema, kindDefaultsFromSchema, nest } from "./schema.js";
import { linkWithPoints, pointsFromLink } from "./sharelink.js";
import { FIELD_KEY, VALUES_KEY } from "./sweep.js";
import { SweepPanel } from "./sweeppanel.js";
import { readQuery, writeQuery } from "./urlstate.js";

const $ = (id) => document.getElementById(id);
const READY = "Ready: these are the points to separate. Press Train.";
const OWN_DATA_FIRST = "Your own data: choose, drop or paste a CSV under “Your own data”.";

function showGeneralError(text) {
  $("form-error").textContent = text || "";
  $("form-error").hidden = !text;
}

class Page {
  constructor(schema) {
    this.fields = fieldsFromSchema(schema);
    this.compareField = compareFieldFromSchema(schema);
    this.view = makeRunView((show) => this.#setShowTest(show));
    this.sweepPanel = new SweepPanel(schema, this, this.compareField, checkHealth);
    this.comparison = this.sweepPanel.comparison;
    this.form = new ConfigForm(
      $("config-form"),
      this.fields,
      kindDefaultsFromSchema(schema),
      (key) => this.#edited(key),
    );
    this.previewTimer = null;
    this.previewSeq = 0;
    this.unknownKeys = [];
    this.ownData = makeOwnData(schema, this);
    this.ownData.attachPlot($("boundary-plot"), this.view.plots.boundary);
    this.knobs = new LiveKnobs(this.form, $("knob-note"), this.view);
    this.view.onState = () => {
      this.knobs.refresh();
      this.syncUrl();
    };
  }

  /** The dataset section to send: the form's fields, plus the points of own data. */
  datasetSection(values) {
    const dataset = this.form.sectionValues(values, "dataset");
    if (dataset.kind === "custom") dataset.points = this.ownData.points;
    return dataset;
  }

  /** New own points: switch the data set to "custom", which previews them. */
  useOwnData() {
    const kind = this.form.inputs.get("dataset.kind");
    kind.value = "custom";
    kind.dispatchEvent(new Event("change"));
  }

  init() {
    const { raw, unknown, showTest, discrete } = readQuery(location.search, this.fields, [
      FIELD_KEY,
      VALUES_KEY,
      CHANGES_KEY,
    ]);
    this.unknownKeys = unknown;
    this.form.setValues(raw);
    this.#readFragment(); // before the URL is written again, which would drop it
    this.sweepPanel.init(raw);
    this.#readChanges(raw[CHANGES_KEY]);
    $("config-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.train();
    });
    $("show-test").checked = showTest;
    this.#setShowTest(showTest);
    $("show-test").addEventListener("change", (e) => this.#setShowTest(e.target.checked));
    $("discretize").checked = discrete;
    this.view.plots.boundary.setDiscrete(discrete);
    $("discretize").addEventListener("change", (e) => {
      this.view.plots.boundary.setDiscrete(e.target.checked);
      this.syncUrl();
    });
    // Nobody can watch a run after its page is gone (the link holds the config, not the
    // run), so leaving cancels it instead of keeping a worker busy for nothing.
    window.addEventListener("pagehide", () => {
      for (const id of this.#liveRunIds()) navigator.sendBeacon(api.controlUrl(id, "cancel"));
    });
    this.syncUrl();
    this.#showReadiness();
    this.preview();
  }

  #setShowTest(show) {
    $("show-test").checked = show;
    this.view.plots.boundary.setShowTest(show);
    this.comparison.setShowTest(show);
    this.syncUrl();
  }

  /**
   * "Ready", or what stops the form from training: a value that fails its field's check
   * (typed, or arrived in a link), named by the field's label, and keys of the link that
   * the page does not know.
   * @returns {boolean} whether the form is ready
   */
  #showReadiness(ready = READY) {
    const { errors } = this.form.read();
    const problems = Object.entries(errors).map(([k, msg]) => `${this.form.labelOf(k)}: ${msg}`);
    const parts = [];
    if (problems.length) {
      const which = problems.length === 1 ? "this field" : "these fields";
      parts.push(`Fix ${which} first — ${problems.join("; ")}`);
    }
    if (this.unknownKeys.length) {
      const keys = this.unknownKeys.join(", ");
      parts.push(`The link names settings this page does not know (ignored): ${keys}.`);
    }
    if (!parts.length) {
      this.view.setStatus(ready);
      return true;
    }
    this.view.setStatus(parts.join(" "), "error");
    return false;
  }

  #liveRunIds() {
    const ids = this.comparison.liveRunIds();
    if (this.view.active) ids.push(this.view.id);
    return ids;
  }

  /** The form (and the run on show, when changed by hand: pagelink.js) into the link. */
  syncUrl() {
    const { values, errors } = this.form.read();
    if (Object.keys(errors).length) return;
    const showTest = $("show-test").checked;
    const discrete = $("discretize").checked;
    const { sizes, extra } = this.sweepPanel.urlKeys();
    const link = linkValues(values, this.view);
    // A link of a changed run keeps saying so until a run of this page is on show.
    if (!this.view.id && this.linkChanges) link.extra[CHANGES_KEY] = this.linkChanges;
    writeQuery(link.values, this.fields, sizes, showTest, discrete, { ...extra, ...link.extra });
    this.#writeFragment(values["dataset.kind"] === "custom" ? this.ownData.points : null);
  }

  /** A link of a run changed by hand says so (the form holds its starting values). */
  #readChanges(text) {
    const changes = parseChanges(text);
    this.linkChanges = changes ? text : null;
    $("link-changes").textContent = changes ? changesNote(changes) : "";
    $("link-changes").hidden = !changes;
  }

  // Own points travel in the link's fragment (sharelink.js): never in a server log.
  #writeFragment(points) {
    const { url, note } = linkWithPoints(location, points);
    this.ownData.showLinkNote(note);
    if (url !== `${location.pathname}${location.search}${location.hash}`) {
      history.replaceState(null, "", url);
    }
  }

  /** Points a shared link brought, if any: they become the own data. */
  #readFragment() {
    const found = pointsFromLink(location.hash);
    if (found?.error) this.ownData.showError(found.error);
    else if (found) this.ownData.setPoints(found.points, null, "the link");
  }

  #edited(key) {
    showGeneralError("");
    this.unknownKeys = []; // said once; an edit means the person has moved on
    this.syncUrl();
    if (key.startsWith("dataset.")) {
      clearTimeout(this.previewTimer);
      this.previewTimer = setTimeout(() => this.preview(), 150);
    } else if (this.knobs.edited(key)) {
      // A knob the live run takes at once (knobs.js says how it went).
    } else if (this.view.active) {
      this.view.setStatus("Settings changed: press Train to start a new run with them.");
    }
  }

  /** Draw the data of the dataset fields at once, before any training. */
  async preview() {
    const { values, errors } = this.form.read();
    const datasetErrors = Object.keys(errors).filter((k) => k.startsWith("dataset."));
    if (datasetErrors.length) return;
    const dataset = this.datasetSection(values);
    if (dataset.kind === "custom" && !dataset.points) {
      this.view.setStatus(OWN_DATA_FIRST);
      return;
    }
    const problem = dataset.kind === "custom" ? this.ownData.problem() : "";
    if (problem) {
      // Too few points for the server yet: draw them here, and say what is missing.
      this.previewSeq += 1;
      this.view.showPreview(this.ownData.localDataset());
      this.view.setStatus(problem);
      return;
    }
    const seq = ++this.previewSeq;
    try {
      const data = await api.previewDataset(dataset);
      if (seq !== this.previewSeq) return; // a newer edit already asked again
      const wasActive = this.view.active;
      this.view.showPreview(data);
      this.#showReadiness(
        wasActive
          ? "Data changed, so the run was stopped. Press Train to learn the new points."
          : READY,
      );
    } catch (err) {
      if (err.status === 422) this.#showServerErrors(err.detail, "dataset");
      else if (err.status === 0) checkHealth();
      else showGeneralError(err.message);
    }
  }

  #showServerErrors(detail, prefix = "") {
    this.ownData.showError(pointErrors(detail));
    const errors = api.errorsByField(detail, prefix);
    delete errors["dataset.points"];
    const general = errors[""];
    delete errors[""];
    this.form.showErrors(errors);
    this.form.focusFirstError(errors);
    showGeneralError(general || "");
  }

  /** Nothing is sent while a field is invalid; the server's 422 is shown per field too. */
  validConfig() {
    const { values, errors } = this.form.read();
    this.form.showErrors(errors);
    if (Object.keys(errors).length) {
      this.form.focusFirstError(errors);
      showGeneralError("Fix the highlighted fields first.");
      return null;
    }
    showGeneralError("");
    const config = nest(values);
    if (config.dataset?.kind === "custom") {
      const problem = this.ownData.points ? this.ownData.problem() : OWN_DATA_FIRST;
      if (problem) {
        showGeneralError(problem);
        return null;
      }
      config.dataset.points = this.ownData.points;
    }
    return config;
  }

  async train() {
    const config = this.validConfig();
    if (!config) return;
    // A preview still on its way (the data changed just before) would replace the new
    // run's points and stop it: the run brings its own points, so drop the preview.
    clearTimeout(this.previewTimer);
    this.previewSeq += 1;
    try {
      const run = await api.createRun(config);
      $("link-changes").hidden = true; // a new run: the link's changes are history
      this.linkChanges = null;
      this.view.attach(run);
    } catch (err) {
      if (err.status === 422) this.#showServerErrors(err.detail);
      else {
        this.view.setStatus(err.message, "error");
        if (err.status === 0) checkHealth();
      }
    }
  }
}

async function main() {
  let schema;
  try {
    schema = await api.schema();
  } catch (err) {
    await checkHealth();
    $("status").textContent = `Could not load the form from the server: ${err.message}`;
    setTimeout(main, 3000);
    return;
  }
  showFeatureContrast($("feature-contrast"), schema);
  const page = new Page(schema);
  page.init();
  checkHealth();
  window.boundaryLab = page; // handy in the console and for the browser tests
  document.body.dataset.ready = "true";
}

main();
