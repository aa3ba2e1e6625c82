"""Input features on the page: checkboxes, the link, and the article's remark made visible
(no hidden layer on circles: a line with x1, x2, a circle once x1², x2² are added)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from page_support import RUN_DONE, until

pytestmark = pytest.mark.browser


def box(page: Any, name: str) -> Any:
    return page.locator(f"[data-key='model.features'] input[data-choice='{name}']")


def query(page: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query, keep_blank_values=True)


def test_feature_checkboxes_follow_and_write_the_link(desk: Any) -> None:
    page = desk.page
    desk.open("?model.features=x1,x2,x1_x2")
    assert [box(page, n).is_checked() for n in ("x1", "x2", "x1_x2", "x1_sq")] == [
        True, True, True, False,
    ]  # fmt: skip
    box(page, "x1_x2").uncheck()
    box(page, "sin_x2").check()
    until(page, "location.search.includes('model.features=x1,x2,sin_x2')")
    box(page, "x1").uncheck()
    box(page, "x2").uncheck()
    box(page, "sin_x2").uncheck()  # nothing checked: the field says so, nothing is sent
    error = page.locator("#f-model-features-error")
    until(page, "document.querySelector('#f-model-features-error').textContent.length > 0")
    assert error.inner_text()
    assert query(page)["model.features"] == ["sin_x2"]  # the link keeps the last valid list


def train_accuracy(desk: Any, preset: str) -> float:
    page = desk.page
    desk.open("")
    page.click(f"a[data-preset='{preset}']")
    page.wait_for_selector("body[data-ready='true']", timeout=15_000)
    page.fill("[name='training.steps_per_second']", "")  # as fast as it goes
    page.click("#train")
    page.wait_for_selector(RUN_DONE, timeout=90_000)
    return float(page.locator("#train-accuracy").inner_text().rstrip("%")) / 100


def test_the_feature_contrast_links_reproduce_the_articles_remark(desk: Any) -> None:
    page = desk.page
    desk.open("")
    links = page.locator("#feature-contrast a")
    assert links.count() == 2
    straight = train_accuracy(desk, "circles-no-hidden-layer")
    assert query(page)["model.hidden_sizes"] == [""]
    assert query(page)["model.features"] == ["x1,x2"]
    squared = train_accuracy(desk, "circles-squared-features")
    assert box(page, "x1_sq").is_checked() and box(page, "x2_sq").is_checked()
    assert straight <= 0.75, straight
    assert squared >= 0.95, squared
