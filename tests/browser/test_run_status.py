"""The status line, progress text and counters always tell the same, current story."""

from __future__ import annotations

import re
from typing import Any

import pytest
from page_support import RUN_DONE, iteration, run_id, until

pytestmark = pytest.mark.browser


def digits(text: str) -> int:
    return int(text.replace(",", ""))


def test_paused_status_follows_each_step(desk: Any) -> None:
    page = desk.page
    desk.open("?training.report_every=100")  # paced at 2000 steps/s: 10 s of training
    page.click("#train")
    until(page, "Number(document.getElementById('iteration').textContent) > 0")
    page.click("#pause")
    page.wait_for_selector("#status[data-status='paused']")
    for _ in range(3):
        before = iteration(page)
        page.click("#step")
        until(page, f"Number(document.getElementById('iteration').textContent) > {before}")
        shown = re.search(r"Paused at iteration ([\d,]+)", page.locator("#status").inner_text())
        assert shown, page.locator("#status").inner_text()
        server = desk.api(f"/api/runs/{run_id(page)}")["iteration"]
        assert digits(shown.group(1)) == iteration(page) == server
    page.click("#stop")
    page.wait_for_selector("#status[data-status='cancelled']")


def test_rate_after_resume_leaves_out_the_pause(desk: Any) -> None:
    """Right after Resume, the rate is the run's pace, not the steps over pause + training."""
    page = desk.page
    desk.open()  # the page's pace: 2000 steps a second
    page.click("#train")
    # Long enough that the rate window holds only training, not the start.
    until(page, "Number(document.getElementById('iteration').textContent) >= 4000")
    page.click("#pause")
    page.wait_for_selector("#status[data-status='paused']")
    assert "steps/s" not in page.locator("#progress-text").inner_text()
    paused_at, paused_k = page.evaluate("performance.now()"), iteration(page)
    page.wait_for_timeout(3000)
    # Record every progress text from the moment of Resume on, with the time and iteration
    # it was shown at: none may count the pause.
    page.evaluate(
        """() => {
            window.seen = [];
            const el = document.getElementById('progress-text');
            const it = document.getElementById('iteration');
            new MutationObserver(() => window.seen.push(
                [performance.now(), Number(it.textContent), el.textContent]))
                .observe(el, {childList: true, characterData: true, subtree: true});
        }"""
    )
    resumed_at = page.evaluate("performance.now()")
    page.click("#pause")  # labelled Resume
    # At least three rates shown after Resume, over 2 s or more: on a busy machine progress
    # comes in bursts (a worker behind its pace catches up), and two messages 50 ms apart
    # say nothing about the rate. A busy machine may take a while to show them.
    until(
        page,
        """(() => { const r = window.seen.filter(s => s[2].includes('steps/s'));
            return r.length >= 3 && r[r.length - 1][0] - r[0][0] >= 2000; })()""",
        120_000,
    )
    seen = page.evaluate("window.seen")
    shown = [(t, k, text) for t, k, text in seen if "steps/s" in text]
    for t, k, text in shown:
        rate = digits(re.search(r"([\d,]+) steps/s", text).group(1))
        # Counted from the pause, the rate would be the steps since then over the 3 s pause
        # and the time since Resume: within 3 s of Resume that is half the rate or less of
        # one that leaves the pause out, however slowly a busy machine trains.
        with_pause = (k - paused_k) / ((t - paused_at) / 1000)
        if t - resumed_at <= 3000:
            assert rate >= 1.5 * with_pause, (with_pause, shown)
        # The time left is what that rate gives for the steps left.
        left = re.search(r"(?:(\d+) min )?(\d+) s left", text)
        assert left, shown
        seconds = int(left.group(1) or 0) * 60 + int(left.group(2))
        assert abs(seconds - (20000 - k) / rate) <= 1 + 0.1 * seconds, (rate, shown)
    page.click("#stop")
    page.wait_for_selector("#status[data-status='cancelled']")


def test_counts_are_pluralised(desk: Any) -> None:
    page = desk.page
    desk.open("?training.iterations=1&training.report_every=1&training.steps_per_second=")
    page.click("#train")
    page.wait_for_selector(RUN_DONE, timeout=30_000)
    status = page.locator("#status").inner_text()
    assert status.startswith("Completed: 1 iteration,"), status
    # A paused run with one step per report says so in the singular too.
    desk.open("?training.report_every=1&training.steps_per_second=50")
    page.click("#train")
    until(page, "Number(document.getElementById('iteration').textContent) > 0")
    page.click("#pause")
    page.wait_for_selector("#status[data-status='paused']")
    assert "Step advances 1 iteration." in page.locator("#status").inner_text()
    page.click("#stop")
    page.wait_for_selector("#status[data-status='cancelled']")


def test_new_data_clears_the_finished_runs_status(desk: Any) -> None:
    """Data changed after a run: the status line is about the new points, and nothing on it
    (text or data-status) still says the old run completed, so a new run's end is its own."""
    page = desk.page
    desk.open("?training.iterations=200&training.steps_per_second=")
    page.click("#train")
    page.wait_for_selector(RUN_DONE, timeout=60_000)
    page.fill("[name='dataset.noise']", "0.3")
    page.wait_for_selector("#status:not([data-status])", timeout=30_000)
    assert "Completed" not in page.locator("#status").inner_text()
    assert page.locator("#export-model").get_attribute("href") is None
