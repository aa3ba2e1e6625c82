"""Retake the README's screenshots: start a server, drive Chromium through the page as a
person would, and save the pictures into docs/ (or --out). The tests never write there.

Usage: .venv/bin/python scripts/screenshots.py [--out DIR] [--only NAME ...] [--chromium PATH]

  screenshot-run.png      the article's run, finished (1280 × 800)
  screenshot-classes.png  a three-class blobs run, finished (1280 × 800)
  screenshot-compare.png  the hidden-size comparison, every run finished
  screenshot-mobile.png   the article's run on a 390 px phone, the whole page
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import serverproc  # noqa: E402  (bench/serverproc.py: a server on a free loopback port)

DONE = "#status[data-status='completed']"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
DESK = {"viewport": {"width": 1280, "height": 800}}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2}


def open_page(browser: Any, base: str, query: str, context: dict[str, Any]) -> Any:
    page = browser.new_context(**context).new_page()
    page.goto(f"{base}/{query}")
    page.wait_for_selector("body[data-ready='true']", timeout=30_000)
    return page


def train(page: Any) -> None:
    page.click("#train")
    page.wait_for_selector(DONE, timeout=120_000)
    page.mouse.move(0, 0)  # no hover: no toolbar, no tooltip in the picture
    page.wait_for_timeout(400)  # the last frame's paint


def run(browser: Any, base: str, out: Path) -> None:
    page = open_page(browser, base, "?training.steps_per_second=", DESK)
    train(page)
    page.screenshot(path=str(out))


def classes(browser: Any, base: str, out: Path) -> None:
    query = "?dataset.kind=blobs&dataset.n_classes=3&dataset.noise=0.6&model.hidden_sizes=8"
    page = open_page(browser, base, f"{query}&training.steps_per_second=", DESK)
    train(page)
    page.screenshot(path=str(out))


def compare(browser: Any, base: str, out: Path) -> None:
    # Paced so that every plot is seen live, as a person would watch it.
    page = open_page(browser, base, "?training.steps_per_second=40000", DESK)
    page.click("#compare")
    page.wait_for_function(
        # The cells appear only once the sweep is accepted: none yet is not "all done".
        "() => { const cells = [...document.querySelectorAll('.compare-cell')];"
        " return cells.length > 0 && cells.every(c => c.dataset.status === 'completed'); }",
        timeout=180_000,
    )
    page.mouse.move(0, 0)
    page.wait_for_timeout(400)
    page.locator("section.compare").screenshot(path=str(out))


def mobile(browser: Any, base: str, out: Path) -> None:
    page = open_page(browser, base, "?training.steps_per_second=", PHONE)
    train(page)
    page.screenshot(path=str(out), full_page=True)


SHOTS: dict[str, Callable[[Any, str, Path], None]] = {
    "screenshot-run.png": run,
    "screenshot-classes.png": classes,
    "screenshot-compare.png": compare,
    "screenshot-mobile.png": mobile,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="default: docs/")
    parser.add_argument("--only", nargs="+", choices=sorted(SHOTS), help="default: all")
    parser.add_argument(
        "--chromium", default=os.environ.get("BOUNDARYLAB_CHROMIUM", "/usr/bin/chromium")
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    # Niceness 0: the workers' default (19) yields to any other work on the machine, and a
    # busy machine must not make the pictures time out.
    settings = {"max_running": os.cpu_count() or 2, "worker_niceness": 0}
    server = serverproc.start_server(settings=settings)
    base = server.base
    print(f"server ready ({time.monotonic() - start:.0f} s)")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            for name in args.only or SHOTS:
                SHOTS[name](browser, base, args.out / name)
                print(f"wrote {args.out / name} ({time.monotonic() - start:.0f} s)")
            browser.close()
    finally:
        server.stop(timeout=15)


if __name__ == "__main__":
    main()
