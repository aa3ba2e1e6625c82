"""The hidden-size comparison: one live plot per size, and a summary that says what is true."""

from __future__ import annotations

import re
from typing import Any

import pytest
from page_support import until

pytestmark = pytest.mark.browser


def test_comparison_draws_seven_live_plots(desk: Any, tmp_path: Any) -> None:
    # 4000 steps at 2000 steps/s: about two seconds a run, so a plot whose socket joined
    # while its network trained shows it live. A run may still finish (or start) before its
    # page joins on a busy machine: such a cell got its result in the snapshot. And a worker
    # that fell behind its pace takes the steps in bursts, while a viewer slower than the
    # frames gets only the newest one (frames are latest-wins): a cell that joined a queued
    # run may see just the final frame. So every cell must have a frame, and the cells that
    # joined a live run must, between them, show one drawn more than once.
    page = desk.page
    desk.open("?training.iterations=4000&training.steps_per_second=2000")
    assert page.locator("#compare-sizes").input_value().replace(" ", "") == "1,2,3,4,5,20,50"
    page.click("#compare")
    cells = page.locator(".compare-cell")
    cells.first.wait_for()
    assert cells.count() == 7
    until(
        page,
        "[...document.querySelectorAll('.compare-cell')]"
        ".every(c => c.dataset.status === 'completed')",
        timeout=120_000,
    )
    assert len(desk.posts_to("/api/runs")) == 7
    joined_live, redrawn = 0, 0
    for i, size in enumerate([1, 2, 3, 4, 5, 20, 50]):
        cell = cells.nth(i)
        title = cell.locator("figcaption").inner_text()
        assert re.match(rf"Hidden size {size} · loss \d\.\d+ · train \d+\.\d%", title), title
        frames = int(cell.get_attribute("data-frames") or 0)
        assert frames >= 1
        if cell.get_attribute("data-joined") in ("queued", "running"):
            joined_live += 1
            redrawn += frames >= 2
        assert cell.locator("canvas.field-canvas").count() == 1
        assert cell.locator(".scatterlayer path.point").count() == 300
    assert joined_live >= 1  # 7 runs POSTed at once: the sockets join before most finish
    assert redrawn >= 1, f"none of the {joined_live} plots that joined a live run was redrawn"
    summary = page.locator("#compare-status").inner_text()
    assert summary.startswith("All 7 runs finished.")
    page.locator("section.compare").screenshot(path=str(tmp_path / "compare.png"))


SUMMARY = """async (cells) => {
    const { summariseComparison } = await import('./js/compare_summary.js');
    return summariseComparison(cells);
}"""


def result(size: int, train: float, test: float | None = None, status: str = "completed") -> Any:
    last = {"loss": 0.1, "train_accuracy": train}
    if test is not None:
        last["test_accuracy"] = test
    return {"size": size, "status": status, "last": last}


def test_summary_claims_a_rise_only_when_there_is_one(desk: Any) -> None:
    desk.open()
    summarise = lambda cells: desk.page.evaluate(SUMMARY, cells)  # noqa: E731
    # The default comparison's shape: 3 beats 4, so accuracy does not simply rise.
    text = summarise(
        [result(1, 0.86), result(2, 0.87), result(3, 0.983), result(4, 0.977), result(50, 0.997)]
    )
    assert "rises" not in text
    assert "size 50" in text and "99.7%" in text  # the best, named with its figure
    assert "size 1" in text and "86.0%" in text  # the worst
    assert "4" in text and "97.7%" in text  # where it falls back
    rising = summarise([result(1, 0.8), result(2, 0.9), result(5, 0.95)])
    assert "rises with the size" in rising
    # With a test split: the best on the test points is named; here a middle size.
    split = summarise([result(1, 0.8, 0.78), result(5, 0.97, 0.95), result(50, 1.0, 0.9)])
    assert "test" in split and "size 5" in split and "95.0%" in split
    # A run that did not complete is said, not averaged in.
    failed = summarise([result(1, 0.8), result(2, 0.9, status="diverged")])
    assert "size 2" in failed and "diverged" in failed


def test_counts_of_runs_agree_with_their_number(desk: Any) -> None:
    desk.open()
    one = desk.page.evaluate(SUMMARY, [result(3, 0.98)])
    assert one.startswith("The run finished."), one
    counted = """async ([done, total]) => {
        const { finishedText } = await import('./js/compare_summary.js');
        return finishedText(done, total);
    }"""
    assert desk.page.evaluate(counted, [0, 1]) == "0 of 1 run finished"
    assert desk.page.evaluate(counted, [1, 7]) == "1 of 7 runs finished"
