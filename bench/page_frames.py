"""The page's cost per boundary frame, before and after painting into a persistent canvas.

    .venv/bin/python bench/page_frames.py [--frames 120] [--baseline f6abdc9]

Serves two copies of frontend/ side by side on a loopback port: the working tree's, and the
one at --baseline (the last commit that painted each frame as a PNG data URL in a Plotly
layout image). In Chromium (Playwright), each copy's own BoundaryPlot draws 300 moons points,
then takes --frames boundary frames one at a time, exactly as a live run hands them over
(setFrame, then the page's next animation frame draws it). For every frame it records:

  * draw: time inside the plot's draw() (decode, paint, encode or putImageData, Plotly call),
    with performance.now() in the page, median over the frames;
  * main thread: Chromium's own TaskDuration (CDP Performance metrics) over the whole loop,
    divided by the frames: script plus style, layout, paint and image decoding;
  * frame to frame: wall time per frame, which waits two animation frames after each (one
    draws, one shows), so at 60 Hz it is never below 33 ms; above that, the page fell behind.

Scenarios: two classes at 1× (the 1280 × 800 page's plot area, 425 × 363 pixels), two classes
at 2× (a retina or phone screen: 800 × 726), three classes at 1×. Frames are 100 × 100 grids
(the default resolution) that change from one frame to the next.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import http.server
import io
import math
import os
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import plotly
from playwright.sync_api import sync_playwright
from sklearn.datasets import make_moons

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("BOUNDARYLAB_CHROMIUM", "/usr/bin/chromium")
GRID = {"x_min": -1.87, "x_max": 3.05, "y_min": -1.52, "y_max": 1.96, "nx": 100, "ny": 100}

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="stylesheet" href="style.css">
<script src="vendor/plotly.min.js"></script></head>
<body><div id="plot" class="plot" style="width: 481px; height: 433px"></div>
<script type="module">
import { BoundaryPlot } from "./js/plots.js";
const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));
let plot = null; // one plot for the warm-up and the measured run, as on the page
window.runFrames = async (dataset, frames, nClasses) => {
  plot ??= new BoundaryPlot(document.getElementById("plot"));
  plot.setDataset(dataset);
  plot.setFrame(frames[0], nClasses); // the first frame sets the axes: a full draw
  for (let i = 0; i < 5; i += 1) await frame();
  const draws = [];
  const draw = Object.getPrototypeOf(plot).draw.bind(plot);
  plot.draw = async () => {
    const t0 = performance.now();
    await draw();
    draws.push(performance.now() - t0);
  };
  const t0 = performance.now();
  for (const f of frames.slice(1)) {
    plot.setFrame(f, nClasses);
    await frame(); // draws it
    await frame(); // shows it
  }
  return { draws, wall: performance.now() - t0 };
};
document.body.dataset.ready = "true";
</script></body></html>
"""


def binary_frame(t: float) -> dict[str, Any]:
    """P(class 1) over the grid as the server encodes it: round(255·p), rows from y_min up."""
    x = np.linspace(GRID["x_min"], GRID["x_max"], GRID["nx"])
    y = np.linspace(GRID["y_min"], GRID["y_max"], GRID["ny"])
    xx, yy = np.meshgrid(x, y)
    p = 1 / (1 + np.exp(-4 * (np.sin(1.6 * xx + t) * 0.8 - yy + 0.25)))
    data = np.round(255 * p).astype(np.uint8).tobytes()
    return {"grid": GRID, "encoding": "p1-uint8-base64", "data": base64.b64encode(data).decode()}


def class_frame(t: float) -> dict[str, Any]:
    """Three classes: the argmax class bytes, then round(255·max p)."""
    x = np.linspace(GRID["x_min"], GRID["x_max"], GRID["nx"])
    y = np.linspace(GRID["y_min"], GRID["y_max"], GRID["ny"])
    xx, yy = np.meshgrid(x, y)
    logits = np.stack([np.zeros_like(xx), 3 * (xx - yy + math.sin(t)), 3 * (yy - 0.5 * xx)])
    p = np.exp(logits) / np.exp(logits).sum(axis=0)
    cls = p.argmax(axis=0).astype(np.uint8)
    conf = np.round(255 * p.max(axis=0)).astype(np.uint8)
    data = base64.b64encode(cls.tobytes() + conf.tobytes()).decode()
    return {"grid": GRID, "encoding": "class-conf-uint8-base64", "data": data}


def points(n_classes: int) -> dict[str, Any]:
    x, y = make_moons(300, noise=0.2, random_state=0)
    if n_classes > 2:
        y = np.where(x[:, 0] > 1.2, 2, y)
    return {"train": {"x": x.round(4).tolist(), "y": y.tolist()}, "test": {"x": [], "y": []}}


def build_site(root: Path, baseline: str) -> None:
    """root/before: frontend/ at the baseline commit; root/after: the working tree's."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", baseline, "frontend"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(root / "before", filter="data")
    shutil.copytree(REPO / "frontend", root / "after" / "frontend")
    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    for version in ("before", "after"):
        site = root / version / "frontend"
        (site / "vendor").mkdir(exist_ok=True)
        shutil.copy(plotly_js, site / "vendor" / "plotly.min.js")
        (site / "bench.html").write_text(PAGE)


@contextlib.contextmanager
def serve(root: Path) -> Any:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def measure(browser: Any, url: str, scale: int, n_classes: int, n: int) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 900, "height": 700}, device_scale_factor=scale)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector("body[data-ready='true']")
    make = binary_frame if n_classes == 2 else class_frame
    frames = [make(0.05 * i) for i in range(n + 1)]
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")

    def busy() -> float:
        metrics = cdp.send("Performance.getMetrics")["metrics"]
        return next(m["value"] for m in metrics if m["name"] == "TaskDuration")

    page.evaluate(  # warm-up: the first full draw, JIT, fonts
        "([d, f, k]) => window.runFrames(d, f, k)", [points(n_classes), frames[:20], n_classes]
    )
    before = busy()
    result = page.evaluate(
        "([d, f, k]) => window.runFrames(d, f, k)", [points(n_classes), frames, n_classes]
    )
    task = busy() - before
    context.close()
    if errors:
        raise SystemExit(f"the page failed: {errors}")
    draws = result["draws"]
    return {
        "draw": statistics.median(draws),
        "task": 1000 * task / n,
        "wall": result["wall"] / n,
        "frames": len(draws),
    }


SCENARIOS = [("2 classes, 1×", 1, 2), ("2 classes, 2×", 2, 2), ("3 classes, 1×", 1, 3)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--baseline", default="f6abdc9", help="the PNG data URL painter")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, serve(Path(tmp)) as base:
        build_site(Path(tmp), args.baseline)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            print(f"{args.frames} frames of a 100 × 100 grid, after a warm-up; ms per frame")
            head = f"{'scenario':<15} {'version':<28} {'draw':>7} {'main thread':>12} {'f→f':>7}"
            print(head)
            for name, scale, k in SCENARIOS:
                rows = {}
                for version, label in (("before", "PNG data URL (baseline)"), ("after", "canvas")):
                    url = f"{base}/{version}/frontend/bench.html"
                    rows[version] = row = measure(browser, url, scale, k, args.frames)
                    print(
                        f"{name:<15} {label:<28} {row['draw']:7.2f} {row['task']:12.2f} "
                        f"{row['wall']:7.2f}"
                    )
                b, a = rows["before"], rows["after"]
                print(
                    f"{'':<15} {'ratio before / after':<28} {b['draw'] / a['draw']:6.1f}× "
                    f"{b['task'] / a['task']:11.1f}× {b['wall'] / a['wall']:6.2f}×"
                )
            browser.close()


if __name__ == "__main__":
    main()
