// The run panel's wiring: the RunView (run.js) with its elements, the boundary plot (with
// the unit focus that stands in for it), the loss curve and the network view; and the
// server-reachable banner.

import * as api from "./api.js";
import { LossPlot } from "./lossplot.js";
import { NetworkView, UnitFocus } from "./netview.js";
import { BoundaryPlot } from "./plots.js";
import { RunView } from "./run.js";

const $ = (id) => document.getElementById(id);

/** Whether the server answers; shows or hides the banner that says it does not. */
export async function checkHealth() {
  try {
    await api.health();
    $("banner").hidden = true;
    return true;
  } catch {
    $("banner").textContent = "Server unreachable: is `boundarylab serve` running? Retrying…";
    $("banner").hidden = false;
    return false;
  }
}

/** The page's RunView, its plots built on the page's elements. */
export function makeRunView(onTestLegend) {
  const els = {
    showTest: $("show-test"),
    status: $("status"),
    caption: $("boundary-caption"),
    banner: $("banner"),
    progress: $("progress"),
    progressText: $("progress-text"),
    iteration: $("iteration"),
    trainAcc: $("train-accuracy"),
    testAcc: $("test-accuracy"),
    loss: $("loss-value"),
    pause: $("pause"),
    step: $("step"),
    stop: $("stop"),
    exportModel: $("export-model"),
    exportHistory: $("export-history"),
    exportScript: $("export-script"),
  };
  const loss = new LossPlot($("loss-plot"));
  $("log-scale").addEventListener("change", (e) => loss.setLog(e.target.checked));
  const boundary = new UnitFocus(
    new BoundaryPlot($("boundary-plot"), { onTestLegend }),
    $("unit-focus"),
  );
  let view = null;
  const network = new NetworkView($("netview"), {
    onOpen: (open) => view?.wantUnits(open),
    onPick: (unit) => boundary.show(unit),
  });
  $("unit-back").addEventListener("click", () => network.clearPick());
  view = new RunView(els, { boundary, loss, network });
  return view;
}
