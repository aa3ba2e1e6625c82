"""Display switches kept in the link: show test points, and "discretize" (hard class
colours instead of probability shading)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from page_support import RUN_DONE, until

pytestmark = pytest.mark.browser

# The share of the painted boundary field (the canvas under the plot) in its two most
# common colours: near 1 with hard colours, well below with probability shading.
TOP_TWO = """() => {
  const c = document.querySelector('#boundary-plot .field-canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const counts = new Map();
  for (let i = 0; i < d.length; i += 4) {
    const key = (d[i] << 16) | (d[i + 1] << 8) | d[i + 2];
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  const top = [...counts.values()].sort((a, b) => b - a);
  return (top[0] + (top[1] || 0)) / (d.length / 4);
}"""


def test_discretize_paints_hard_colours_and_lives_in_the_link(desk: Any, tmp_path: Path) -> None:
    page = desk.page
    desk.open("?training.iterations=2000&training.steps_per_second=&discretize=1")
    assert page.is_checked("#discretize")
    page.click("#train")
    page.wait_for_selector(RUN_DONE, timeout=60_000)
    page.wait_for_timeout(300)  # the last frame's paint
    page.screenshot(path=str(tmp_path / "discrete.png"))
    hard = page.evaluate(TOP_TWO)
    page.uncheck("#discretize")
    until(page, "!location.search.includes('discretize')")
    page.wait_for_timeout(300)
    shaded = page.evaluate(TOP_TWO)
    assert hard > 0.9 and shaded < 0.8, (hard, shaded)  # measured: 0.98 and 0.64
    page.check("#discretize")
    until(page, "location.search.includes('discretize=1')")


def test_show_test_points_checkbox_lives_in_the_link(desk: Any) -> None:
    page = desk.page
    desk.open("?dataset.test_fraction=0.3&show_test_points=0")
    assert not page.is_checked("#show-test")
    page.check("#show-test")
    until(page, "!location.search.includes('show_test_points')")
