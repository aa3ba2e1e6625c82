"""Small helpers the browser tests share: waiting on the page, reading fields and plots."""

from __future__ import annotations

import re
from typing import Any

FAST = "?training.steps_per_second="  # the default config, as fast as the machine goes
RUN_DONE = "#status[data-status='completed']"


def until(page: Any, expression: str, timeout: float = 30_000) -> None:
    """Wait until a JS expression is truthy. Passed as a function: the page's CSP forbids
    eval, which Playwright would use for a bare expression string."""
    page.wait_for_function(f"() => ({expression})", timeout=timeout)


def field(page: Any, key: str) -> Any:
    return page.locator(f"[name='{key}']")


def iteration(page: Any) -> int:
    return int(page.locator("#iteration").inner_text())


def points_drawn(page: Any, plot: str = "#boundary-plot") -> int:
    """Markers actually drawn as SVG points (not just data handed to Plotly)."""
    return page.locator(f"{plot} .scatterlayer path.point").count()


def plot_data(page: Any, plot_id: str) -> list[dict[str, Any]]:
    return page.evaluate(
        "(id) => document.getElementById(id).data.map(t => ({type: t.type, x: t.x, y: t.y}))",
        plot_id,
    )


def run_id(page: Any) -> str:
    href = page.locator("#export-model").get_attribute("href")
    match = re.search(r"api/runs/([^/]+)/model", href or "")
    assert match, f"no run id in the export link {href!r}"
    return match.group(1)


def box(page: Any, selector: str) -> dict[str, float]:
    """The bounding box of the first element matching a selector (it must exist)."""
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not rendered"
    return found


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    """Whether two bounding boxes share any area."""
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )
