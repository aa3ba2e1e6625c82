"""How long the page takes to draw own data: 300, 1000 and 5000 points, side by side.

    .venv/bin/python bench/own_points.py [--repeats 5]

Starts a server (serverproc) and opens the page in Chromium (Playwright). For each size it
measures, in the page with performance.now(), the median over --repeats of:

  * draw: BoundaryPlot.setDataset(points) until the points are drawn (SVG markers present),
    i.e. Plotly's own work for that many markers;
  * to screen: OwnData.setPoints(points) (what a paste, an upload or a link does) until the
    server's preview of them is drawn: parsing aside, this adds the 150 ms edit debounce, the
    preview request (validation and the split on the server) and the redraw.

Printed as milliseconds and as ratios to 300 points (the article's data set), so the numbers
read the same on a faster or busier machine.
"""

from __future__ import annotations

import argparse
import os
import statistics

from playwright.sync_api import sync_playwright

import serverproc

CHROMIUM = os.environ.get("BOUNDARYLAB_CHROMIUM", "/usr/bin/chromium")
SIZES = (300, 1000, 5000)

# Runs in the page: resolves with the milliseconds from `start()` to `count` markers drawn.
TIMED = """async ([how, n]) => {
  const page = window.boundaryLab;
  const points = Array.from({length: n}, (_, i) =>
    [Math.sin(i * 12.9898) * 3, Math.cos(i * 78.233) * 3, i % 3]);
  const drawn = () => document.querySelectorAll(
    '#boundary-plot .scatterlayer path.point').length === n;
  // Start from a different picture, so the count really changes.
  page.view.plots.boundary.setDataset({train: {x: [[0, 0]], y: [0]}, test: {x: [], y: []}});
  await new Promise((r) => setTimeout(r, 300));
  const t0 = performance.now();
  if (how === 'draw') {
    page.view.plots.boundary.setDataset({
      train: {x: points.map((p) => [p[0], p[1]]), y: points.map((p) => p[2])},
      test: {x: [], y: []},
    });
  } else {
    page.ownData.setPoints(points, null, 'bench');
  }
  while (!drawn()) await new Promise((r) => setTimeout(r, 2));
  return performance.now() - t0;
}"""


def measure(repeats: int) -> dict[tuple[str, int], float]:
    results: dict[tuple[str, int], float] = {}
    with serverproc.running_server() as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{server.base}/?training.steps_per_second=")
        page.wait_for_selector("body[data-ready='true']")
        for how in ("draw", "to screen"):
            for n in SIZES:
                times = [page.evaluate(TIMED, [how, n]) for _ in range(repeats)]
                results[(how, n)] = statistics.median(times)
        browser.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    results = measure(args.repeats)
    print(f"{'points':>8} {'draw ms':>9} {'ratio':>6} {'to screen ms':>13} {'ratio':>6}")
    for n in SIZES:
        draw, shown = results[("draw", n)], results[("to screen", n)]
        base_draw, base_shown = results[("draw", 300)], results[("to screen", 300)]
        print(
            f"{n:>8} {draw:>9.1f} {draw / base_draw:>6.2f} "
            f"{shown:>13.1f} {shown / base_shown:>6.2f}"
        )


if __name__ == "__main__":
    main()
