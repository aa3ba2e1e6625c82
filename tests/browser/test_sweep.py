"""Sweeping any one setting on the page: live cells, the overlaid curves, the accuracy
summary, a computed sentence, the article's presets, and a link that restores the sweep."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from page_support import until

pytestmark = pytest.mark.browser

ALL_DONE = (
    "document.querySelectorAll('.compare-cell').length > 0 && "
    "[...document.querySelectorAll('.compare-cell')].every(c => c.dataset.status === 'completed')"
)


def downloaded(page: Any, link: str) -> str:
    """What a person gets by clicking the link."""
    with page.expect_download(timeout=10_000) as info:
        page.click(link)
    return Path(info.value.path()).read_text()


def test_lambda_sweep_draws_three_cells_curves_summary_and_a_sentence(desk: Any, tmp_path) -> None:
    page = desk.page
    desk.open("?training.iterations=3000&training.steps_per_second=3000&dataset.test_fraction=0.3")
    page.select_option("#sweep-field", "training.reg_lambda")
    page.fill("#compare-sizes", "0, 0.01, 1")
    # The server is shared by the module's tests: this sweep's runs are the ones it adds.
    before = {r["id"] for r in desk.api("/api/runs")}
    page.click("#compare")
    cells = page.locator(".compare-cell")
    cells.first.wait_for()
    assert cells.count() == 3
    until(page, ALL_DONE, timeout=120_000)
    ids = [r["id"] for r in desk.api("/api/runs") if r["id"] not in before]
    runs = [desk.api(f"/api/runs/{run_id}") for run_id in ids]
    lambdas = sorted(r["config"]["training"]["reg_lambda"] for r in runs)
    assert lambdas == [0.0, 0.01, 1.0]
    for i, value in enumerate(["0", "0.01", "1"]):
        title = cells.nth(i).locator("figcaption").inner_text()
        assert title.startswith(f"λ = {value} · loss"), title
        assert int(cells.nth(i).get_attribute("data-frames") or 0) >= 1
    # The overlaid curves: train solid and test dashed per cell, legend = the value.
    until(page, "document.getElementById('sweep-curves').data?.length === 6")
    curves = page.evaluate(
        "document.getElementById('sweep-curves').data.map(t => [t.name, t.line.dash || ''])"
    )
    assert curves[:2] == [["0 train", ""], ["0 test", "dash"]]
    # Its log axis labels read as numbers, rising bottom to top ("0.1, 0.2"), never
    # Plotly's bare minor digits ("0.1, 2, 3").
    ticks = page.evaluate(
        """() => [...document.querySelectorAll('#sweep-curves .ytick text')]
            .map(t => [t.getBoundingClientRect().y, t.textContent])
            .sort((a, b) => b[0] - a[0]).map(([, text]) => text)"""
    )
    values = [float(t.replace("−", "-")) for t in ticks]
    assert len(values) >= 3 and values == sorted(set(values)), ticks
    summary = page.evaluate(
        "document.getElementById('sweep-summary').data.map(t => [t.name, t.x, t.y])"
    )
    assert [s[0] for s in summary] == ["train accuracy", "test accuracy"]
    assert summary[0][1] == ["0", "0.01", "1"]
    # The sentence is computed from these runs' final test accuracies.
    best = max(
        runs,
        key=lambda r: (r["history"][-1]["test_accuracy"], -r["config"]["training"]["reg_lambda"]),
    )
    text = page.locator("#compare-status").inner_text()
    assert text.startswith("All 3 runs finished. Best test accuracy: λ = ")
    percent = f"{100 * best['history'][-1]['test_accuracy']:.1f}%"
    assert percent in text, (text, percent)
    # The exports: a CSV row per cell and a JSON of configs and histories.
    csv_text = downloaded(page, "#sweep-csv")
    assert csv_text.splitlines()[0].startswith("field,value,status,iteration,loss")
    assert len(csv_text.splitlines()) == 4
    exported = json.loads(downloaded(page, "#sweep-json"))
    assert exported["field"] == "training.reg_lambda"
    assert [c["config"]["training"]["reg_lambda"] for c in exported["cells"]] == [0.0, 0.01, 1.0]
    assert exported["cells"][0]["history"][-1]["iteration"] == 3000
    page.locator("section.compare").screenshot(path=str(tmp_path / "sweep.png"))
    # The link restores the sweep.
    query = parse_qs(urlparse(page.url).query)
    assert query["sweep.field"] == ["training.reg_lambda"]
    assert query["sweep.values"] == ["0, 0.01, 1"]
    desk.open(f"?{urlparse(page.url).query}")
    assert page.locator("#sweep-field").input_value() == "training.reg_lambda"
    assert page.locator("#compare-sizes").input_value() == "0, 0.01, 1"


def test_a_bad_value_is_named_under_the_input(desk: Any) -> None:
    page = desk.page
    desk.open()
    page.select_option("#sweep-field", "training.learning_rate")
    page.fill("#compare-sizes", "0.01, -2")
    page.click("#compare")
    error = page.locator("#compare-sizes-error")
    until(page, "document.getElementById('compare-sizes-error').textContent !== ''")
    assert "-2" in error.inner_text()
    assert page.locator(".compare-cell").count() == 0


@pytest.mark.parametrize("preset", ["hidden-size", "generalisation", "regularisation"])
def test_each_preset_runs_to_the_end(desk: Any, preset: str) -> None:
    page = desk.page
    # Shorter than the article's 20000 steps so the test stays minutes, not tens of them.
    desk.open("?training.iterations=1500&training.steps_per_second=")
    page.click(f"button[data-preset='{preset}']")
    page.locator(".compare-cell").first.wait_for()
    until(page, ALL_DONE, timeout=240_000)
    text = page.locator("#compare-status").inner_text()
    assert text.startswith("All ")
    if preset == "regularisation":
        assert page.locator(".compare-cell").count() == 5
        assert page.locator("#sweep-field").input_value() == "training.reg_lambda"
        assert page.locator("[name='model.hidden_sizes']").input_value() == "50"
        assert "Best test accuracy: λ = " in text
    else:
        assert page.locator(".compare-cell").count() == 7
    if preset == "generalisation":
        assert "On the held-out test points" in text


SENTENCE = """async ([cells, words]) => {
    const { summariseSweep } = await import('./js/sweep_summary.js');
    return summariseSweep(cells, words);
}"""


def cell(label: str, train: float, test: float | None = None, status: str = "completed") -> Any:
    last: dict[str, float] = {"loss": 0.1, "train_accuracy": train}
    if test is not None:
        last["test_accuracy"] = test
    return {"label": label, "status": status, "last": last}


def test_the_sentence_says_what_the_numbers_show(desk: Any) -> None:
    desk.open()
    say = lambda cells: desk.page.evaluate(SENTENCE, [cells, "λ"])  # noqa: E731
    apart = say([cell("0", 1.0, 0.9), cell("0.1", 0.97, 0.96), cell("1", 0.9, 0.89)])
    assert apart == (
        "All 3 runs finished. Best test accuracy: λ = 0.1 (96.0%; train 97.0%). Train and "
        "test part ways at λ = 0: widest at λ = 0, train 100.0% against test 90.0%."
    )
    close = say([cell("0", 0.95, 0.94), cell("1", 0.9, 0.91)])
    assert "Best test accuracy: λ = 0 (94.0%" in close and "stay within 3 points" in close
    untested = say([cell("0", 0.95), cell("1", 0.99), cell("2", 0.5, status="diverged")])
    assert "λ = 2 diverged" in untested and "Best training accuracy: λ = 1 (99.0%)" in untested
    assert "Set a test fraction" in untested


def test_sizes_with_several_layers_are_separated_by_semicolons(desk: Any) -> None:
    page = desk.page
    desk.open("?training.iterations=300&training.steps_per_second=")
    page.fill("#compare-sizes", "3; 8, 8")
    page.click("#compare")
    until(page, ALL_DONE, timeout=120_000)
    titles = page.locator(".compare-cell figcaption").all_inner_texts()
    assert [t.split(" · ")[0] for t in titles] == [
        "Hidden size 3",
        "hidden layer sizes = 8,8",
    ]
    assert "sweep.values=3;+8,+8" in page.url or "sweep.values=3;%208,%208" in page.url
    desk.open(f"?{urlparse(page.url).query}")
    assert page.locator("#compare-sizes").input_value() == "3; 8, 8"
