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
    page.wait_for_timeout(3000)
    # Record every progress text from the moment of Resume on: none may count the pause.
    page.evaluate(
        """() => {
            window.seenTexts = [];
            const el = document.getElementById('progress-text');
            new MutationObserver(() => window.seenTexts.push(el.textContent))
                .observe(el, {childList: true, characterData: true, subtree: true});
        }"""
    )
    page.click("#pause")  # labelled Resume
    page.wait_for_timeout(1500)
    shown = [t for t in page.evaluate("window.seenTexts") if "steps/s" in t]
    assert shown, page.evaluate("window.seenTexts")
    for text in shown:
        rate = digits(re.search(r"([\d,]+) steps/s", text).group(1))
        # The pause counted in shows a few hundred steps a second at this pace.
        assert rate >= 1000, shown
        left = re.search(r"(\d+) s left", text)
        assert left and int(left.group(1)) <= 20, shown  # < 16000 steps at >= 1000 a second
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
