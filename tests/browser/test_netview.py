"""The network view: a unit per feature and hidden unit, live heatmaps, edges by weight,
values on hover and focus, a unit shown large, and wide or missing hidden layers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from page_support import RUN_DONE, until

pytestmark = pytest.mark.browser

HIDDEN_4_3 = (
    "?model.hidden_sizes=4,3&training.iterations=6000&training.report_every=100"
    "&training.steps_per_second=1500"
)
MAPS = "document.querySelectorAll('#netview [data-neuron] canvas').length"


def tab_to(page: Any, selector: str, limit: int = 400) -> None:
    """Press Tab (the keyboard only) until the element matching `selector` has the focus."""
    for _ in range(limit):
        if page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{limit} presses of Tab never reached {selector}")


def canvas_url(page: Any, key: str) -> str:
    return page.evaluate(
        "k => document.querySelector(`[data-neuron='${k}'] canvas`).toDataURL()", key
    )


def test_hidden_4_3_shows_live_units_edges_and_values(desk: Any, tmp_path: Path) -> None:
    page = desk.page
    desk.open(HIDDEN_4_3)
    page.click("#train")
    until(page, f"{MAPS} === 9")  # 2 inputs + 4 + 3 hidden units, each with a heatmap
    assert page.locator("#netview [data-neuron^='3:']").count() == 2  # the two classes
    # Canvas rows run top down, the grid's from y_min up: x2's top row is its largest value
    # (blue), its bottom row its smallest (red below zero).
    top, bottom = page.evaluate(
        """() => {
          const c = document.querySelector("[data-neuron='0:1'] canvas");
          const px = (y) => [...c.getContext("2d").getImageData(0, y, 1, 1).data];
          return [px(0), px(c.height - 1)];
        }"""
    )
    assert top[2] > top[0] and bottom[0] > bottom[2], (top, bottom)
    first = canvas_url(page, "1:0")
    # The heatmap moves while the run trains (or the run ended, and then it moved anyway).
    until(
        page,
        f"document.querySelector(\"[data-neuron='1:0'] canvas\").toDataURL() !== {first!r}",
    )
    page.wait_for_selector(RUN_DONE, timeout=60_000)
    until(page, "document.querySelector('.netview-iteration').textContent.includes('6000')")
    run_id = page.evaluate("window.boundaryLab.view.id")
    model = desk.api(f"/api/runs/{run_id}/model")
    W1 = model["layers"][1]["W"]
    # Hovering the edge h1.3 → h2.2 names its weight as the model export has it.
    page.locator("[data-edge='1:2:1']").dispatch_event("mouseover")
    expected = page.evaluate("w => Number(w).toPrecision(4)", W1[2][1])
    tip = page.locator(".netview-tip").inner_text()
    assert "h1.3 → h2.2" in tip and expected in tip, (tip, expected)
    # Edge width follows |w| (0.5 px + 5.5 px · |w| / the largest |w|), colour its sign.
    heaviest = max(abs(w) for layer in model["layers"] for row in layer["W"] for w in row)
    ink = page.locator(".edge-ink").nth(
        page.evaluate("() => [...document.querySelectorAll('.edge')].findIndex(e => "
                      "e.dataset.edge === '1:2:1')")
    )  # fmt: skip
    width = float(ink.get_attribute("stroke-width"))
    assert width == pytest.approx(0.5 + 5.5 * abs(W1[2][1]) / heaviest, abs=0.01)
    assert ink.get_attribute("stroke") == ("rgb(215,48,39)" if W1[2][1] < 0 else "rgb(69,117,180)")
    # Clicking a unit shows it large in the boundary plot until the person goes back.
    page.click("[data-neuron='1:1']")
    assert page.locator("#unit-focus").is_visible()
    assert "h1.2" in page.locator("#unit-focus").inner_text()
    page.screenshot(path=str(tmp_path / "netview.png"), full_page=True)
    page.click("#unit-back")
    assert not page.locator("#unit-focus").is_visible()


def test_wide_and_empty_hidden_layers(desk: Any) -> None:
    page = desk.page
    desk.open("?model.hidden_sizes=20&training.iterations=200")
    page.click("#train")
    page.wait_for_selector(RUN_DONE, timeout=60_000)
    until(page, f"{MAPS} === 18")  # 2 inputs + the first 16 of 20
    more = page.locator(".netview-more")
    assert more.inner_text() == "+ 4 more"
    more.click()
    assert page.locator("#netview [data-neuron^='1:']").count() == 20
    assert "bias" in page.get_attribute("[data-neuron='1:19']", "aria-label")
    desk.open("?model.hidden_sizes=&training.iterations=200")
    page.click("#train")
    page.wait_for_selector(RUN_DONE, timeout=60_000)
    until(page, f"{MAPS} === 2 && document.querySelectorAll('[data-edge]').length === 4")


def test_keyboard_reaches_a_units_bias_and_every_incoming_weight(desk: Any, tmp_path: Path) -> None:
    page = desk.page
    desk.open("?model.hidden_sizes=4,3&training.iterations=300&training.steps_per_second=")
    tab_to(page, "#train")
    page.keyboard.press("Enter")
    page.wait_for_selector(RUN_DONE, timeout=60_000)
    until(page, "document.querySelector('.netview-iteration').textContent.includes('300')")
    model = desk.api(f"/api/runs/{page.evaluate('window.boundaryLab.view.id')}/model")
    W1, b1 = model["layers"][1]["W"], model["layers"][1]["b"]
    tab_to(page, "[data-neuron='2:1']")  # h2.2: four incoming edges, from h1.1 … h1.4
    tip, label = (
        page.locator(".netview-tip"),
        page.get_attribute("[data-neuron='2:1']", "aria-label"),
    )
    assert tip.is_visible()
    bias = page.evaluate("b => Number(b).toPrecision(4)", b1[1])
    assert f"bias {bias}" in tip.inner_text() and f"bias {bias}" in label
    # Every incoming weight in the words hovering its edge reads, in the tip and the name.
    for i in range(4):
        weight = page.evaluate("w => Number(w).toPrecision(4)", W1[i][1])
        words = f"weight h1.{i + 1} → h2.2: {weight}"
        assert words in tip.inner_text() and words in label, (words, tip.inner_text())
    # Those four edges are lit in the diagram, no others.
    lit = page.evaluate("() => [...document.querySelectorAll('.edge-ink.lit')].length")
    assert lit == 4
    page.screenshot(path=str(tmp_path / "netview-keyboard.png"), full_page=True)
    page.keyboard.press("Tab")  # on to h2.3: the tip follows the focus
    assert "h2.3 (hidden layer 2, unit 3)" in tip.inner_text()
    page.keyboard.press("Enter")  # the keyboard picks a unit too, and Escape goes back
    assert "h2.3" in page.locator("#unit-focus").inner_text()
    page.keyboard.press("Escape")
    assert not page.locator("#unit-focus").is_visible()


def test_units_past_what_the_stream_carries_are_counted(desk: Any, tmp_path: Path) -> None:
    page = desk.page
    # A light run (few points, a coarse grid): only the width of its layer matters here.
    desk.open(
        "?model.hidden_sizes=256&training.iterations=20&dataset.n_samples=60&view.resolution=20"
    )
    page.click("#train")
    page.wait_for_selector(RUN_DONE, timeout=60_000)
    until(page, f"{MAPS} === 18")  # 2 inputs + the first 16 of 256
    layer = page.locator(".netview-layer").nth(1)
    note = "+192 more units not drawn (the stream carries the first 64 of 256)"
    assert layer.locator(".netview-note").inner_text() == note
    more = layer.locator(".netview-more")
    assert more.inner_text() == "+ 48 more"
    page.locator("#netview").screenshot(path=str(tmp_path / "netview-wide.png"))
    more.click()
    assert page.locator("#netview [data-neuron^='1:']").count() == 64
    assert layer.locator(".netview-note").inner_text() == note  # still said when expanded
    # An output unit's weights in: the 64 carried, and how many are not.
    label = page.get_attribute("[data-neuron='2:0']", "aria-label")
    assert "weight h1.64 → class 0" in label and "h1.65" not in label
    assert "(and 192 more inputs the stream does not carry)" in label
    assert page.locator(".netview-note").count() == 1  # inputs and outputs: all carried
