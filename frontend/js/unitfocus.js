// A unit shown large: stands in for the boundary plot while the person looks at one unit.

import { discretize } from "./discretize.js";
import { fmt } from "./netview_text.js";

/**
 * Stands in for the boundary plot: forwards everything to it, except that while a unit is
 * picked the plot shows that unit's heatmap (as a frame whose 50 % line is the unit's zero),
 * and the latest boundary frame waits for the person to go back.
 */
export class UnitFocus {
  constructor(boundary, bar) {
    this.boundary = boundary;
    this.bar = bar;
    this.frame = null;
    this.nClasses = 2;
    this.unit = null;
    this.discrete = false;
  }

  /** Hard class colours (true) or probability shading (false), for frames and units. */
  setDiscrete(on) {
    this.discrete = on;
    this.show(this.unit);
  }

  #paint(frame, nClasses) {
    this.boundary.setFrame(this.discrete ? discretize(frame) : frame, nClasses);
  }

  setDataset(dataset) {
    this.boundary.setDataset(dataset);
  }

  setShowTest(show) {
    this.boundary.setShowTest(show);
  }

  /** Keep the axes still while points are clicked in (owndata.js). */
  holdAxes(on) {
    this.boundary.holdAxes(on);
  }

  setFrame(frame, nClasses = 2) {
    this.frame = frame;
    this.nClasses = nClasses;
    if (!this.unit) this.#paint(frame, nClasses);
  }

  /** A picked unit ({name, scale, data, grid}) or null. */
  show(unit) {
    this.unit = unit;
    this.bar.hidden = !unit;
    if (!unit) {
      this.#paint(this.frame, this.nClasses);
      return;
    }
    this.bar.querySelector(".focus-text").textContent =
      `Showing unit ${unit.name}: its activation over the plane, red −${fmt(unit.scale)}, ` +
      `white 0, blue +${fmt(unit.scale)}; the line is where it crosses 0.`;
    const frame = { grid: unit.grid, encoding: "p1-uint8-base64", data: unit.data };
    this.#paint(frame, 2);
  }
}
