"""Knobs that turn while a run trains, as a person uses them on the page: the learning rate
typed while a run goes applies to it at once, is marked on the loss curve, is in the CSV
export, and the link says the run was changed by hand."""

from __future__ import annotations

import os
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from page_support import RUN_DONE, field, run_id, until

pytestmark = pytest.mark.browser

# 20 s at its pace: still live when Pause is pressed after the first step. (At the page's
# 2000 steps/s it took 3 s, and a busy round saw it end first: a worker behind its pace
# catches up in a burst, so the run was over before the click could pause it.)
SHORT = "?training.iterations=6000&training.report_every=100&training.steps_per_second=300"


def _tag(page: Any, key: str) -> str:
    return page.locator(f".field[data-key='{key}'] .applies").inner_text()


def test_a_learning_rate_typed_mid_run_applies_and_is_marked(desk: Any, tmp_path: Path) -> None:
    page = desk.page
    desk.open(SHORT)
    page.click("#train")
    until(page, "Number(document.getElementById('iteration').textContent) > 0")
    # Paused, so the run is surely live when the change lands, whatever the machine's load.
    page.click("#pause")
    page.wait_for_selector("#status[data-status='paused']")
    assert _tag(page, "training.learning_rate") == "applies now"
    assert _tag(page, "training.iterations") == "next run"
    assert _tag(page, "dataset.noise") == "stops the run"
    field(page, "training.learning_rate").fill("0.03")
    page.wait_for_selector("#knob-note:has-text('Applied from step')", timeout=15_000)
    rid = run_id(page)
    [change] = desk.api(f"/api/runs/{rid}")["changes"]
    assert change["changed"] == {"learning_rate": 0.03}
    assert (
        f"Applied from step {change['iteration'] + 1:,}" in page.locator("#knob-note").inner_text()
    )
    # The loss curve marks it, at the step it applied after, with the new value.
    until(page, "(document.getElementById('loss-plot').layout.shapes || []).length === 1")
    marker = page.evaluate(
        """() => { const l = document.getElementById('loss-plot').layout;
                   return {x: l.shapes[0].x0, text: l.annotations.map(a => a.text)}; }"""
    )
    assert marker == {"x": change["iteration"], "text": ["ε 0.03"]}
    assert page.locator("#loss-plot .annotation-text", has_text="ε 0.03").count() == 1
    # The link keeps the run's starting learning rate and names the change.
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))
    assert query["training.learning_rate"] == "0.01"
    assert query["changed_by_hand"] == f"{change['iteration']}:learning_rate=0.03"
    shot = os.environ.get("KNOBS_SHOT")  # a path to look at the page by hand
    page.screenshot(path=shot or str(tmp_path / "knobs.png"), full_page=True)
    page.click("#pause")  # Resume
    page.wait_for_selector(RUN_DONE, timeout=120_000)
    href = page.locator("#export-history").get_attribute("href")
    with urllib.request.urlopen(f"{desk.base}/{href}", timeout=10) as resp:
        rows = resp.read().decode().splitlines()
    assert rows[0].endswith(",change")
    assert f"{change['iteration']},,,,,learning_rate=0.03" in rows
    assert not page.locator(".field .applies:visible").count()  # the run is over
    link = page.url
    other = page.context.new_page()
    other.goto(link)
    other.wait_for_selector("body[data-ready='true']")
    note = other.locator("#link-changes")
    assert note.is_visible() and "changed by hand" in note.inner_text()
    assert "learning rate ε = 0.03" in note.inner_text()
    assert field(other, "training.learning_rate").input_value() == "0.01"


def test_a_refused_change_says_why_and_the_run_goes_on(desk: Any) -> None:
    page = desk.page
    desk.open(SHORT)
    page.click("#train")
    until(page, "Number(document.getElementById('iteration').textContent) > 0")
    page.click("#pause")
    page.wait_for_selector("#status[data-status='paused']")
    # The form allows a pace this low; the server refuses it for this run (6000 steps at
    # 0.5 steps/s outlast its wall time): a 422 shown where the person typed.
    desk.expected_errors.append("422")
    field(page, "training.steps_per_second").fill("0.5")
    page.wait_for_selector("#knob-note[data-tone='error']", timeout=15_000)
    assert "steps/s" in page.locator("#knob-note").inner_text()
    error = page.locator(".field[data-key='training.steps_per_second'] .field-error")
    assert "this server ends a run after" in error.inner_text()
    assert desk.api(f"/api/runs/{run_id(page)}")["changes"] == []
    assert page.locator("#status").get_attribute("data-status") == "paused"
