"""Your own data on the page: upload (the real file chooser), paste, a bad file refused with
its line while the data stays, and download → upload → train giving the same run."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from page_support import FAST, RUN_DONE, field, points_drawn, run_id, until

pytestmark = pytest.mark.browser

NAMED = "x1,x2,label\n" + "\n".join(
    f"{x / 10:.2f},{(x * 7 % 10) / 10:.2f},{'cat' if x < 10 else 'dog'}" for x in range(20)
)


def _drawn(page: Any, n: int) -> None:
    until(
        page, f"document.querySelectorAll('#boundary-plot .scatterlayer path.point').length === {n}"
    )


def _run(desk: Any) -> dict:
    with urllib.request.urlopen(f"{desk.base}/api/runs/{run_id(desk.page)}", timeout=10) as r:
        return json.loads(r.read())


def test_an_uploaded_csv_with_named_labels_trains(desk: Any, tmp_path: Path) -> None:
    desk.open(FAST + "&training.iterations=2000")
    _drawn(desk.page, 300)
    csv_file = tmp_path / "pets.csv"
    csv_file.write_text(NAMED)
    desk.page.set_input_files("#own-file", str(csv_file))
    _drawn(desk.page, 20)
    assert field(desk.page, "dataset.kind").input_value() == "custom"
    info = desk.page.locator("#own-info").inner_text()
    assert '"cat" → class 0' in info and '"dog" → class 1' in info and "pets.csv" in info
    # Noise and the number of points do not apply to own data: the form hides them.
    assert field(desk.page, "dataset.noise").is_hidden()
    assert field(desk.page, "dataset.n_samples").is_hidden()
    desk.page.click("#train")
    desk.page.wait_for_selector(RUN_DONE, timeout=60_000)
    run = _run(desk)
    assert len(run["config"]["dataset"]["points"]) == 20
    assert run["metrics"]["train_accuracy"] == 1.0


def test_a_bad_csv_names_its_line_and_the_data_stays(desk: Any, tmp_path: Path) -> None:
    desk.open(FAST)
    desk.page.fill("#own-paste", NAMED)
    desk.page.click("#own-paste-use")
    _drawn(desk.page, 20)
    for text, line, words in [
        ("1,2,a\n3,4,b\n5,six,a\n7,8,b\n", 3, 'x2 "six" is not a number'),
        ("x1,x2,label\n1,2,a\n3,4,b,9\n", 3, "expected 3 columns"),
        ("\n".join(f"{i},0,{'abcdef'[i % 6]}" for i in range(12)), 6, "at most 5 classes"),
    ]:
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        desk.page.set_input_files("#own-file", str(bad))
        until(desk.page, "!document.getElementById('own-error').hidden")
        error = desk.page.locator("#own-error").inner_text()
        assert f"Line {line}:" in error and words in error and "unchanged" in error
        assert points_drawn(desk.page) == 20
        assert field(desk.page, "dataset.kind").input_value() == "custom"
    too_many = tmp_path / "big.csv"
    too_many.write_text("\n".join(f"{i % 100},{i // 100},{i % 2}" for i in range(5001)))
    desk.page.set_input_files("#own-file", str(too_many))
    until(desk.page, "document.getElementById('own-error').textContent.includes('5001')")
    assert "more than 5000 points" in desk.page.locator("#own-error").inner_text()
    assert points_drawn(desk.page) == 20


def test_download_then_upload_then_train_is_the_same_run(desk: Any, tmp_path: Path) -> None:
    desk.open(FAST + "&dataset.n_samples=150&dataset.test_fraction=0.3&training.iterations=3000")
    _drawn(desk.page, 150)
    desk.page.click("#train")
    desk.page.wait_for_selector(RUN_DONE, timeout=60_000)
    original = _run(desk)
    with desk.page.expect_download() as download:
        desk.page.click("#own-download")
    download.value.save_as(tmp_path / "data.csv")
    saved = tmp_path / "data.csv"
    lines = saved.read_text().splitlines()
    assert lines[0] == "x1,x2,label,split" and len(lines) == 151
    assert sum(line.endswith(",test") for line in lines) == 45
    desk.page.set_input_files("#own-file", str(saved))
    until(desk.page, "document.getElementById('own-info').textContent.includes('150 points')")
    desk.page.click("#train")
    # The link names the new run only once its POST has answered (a busy server is slow).
    link = "document.getElementById('export-model').getAttribute('href')"
    until(desk.page, f"(h => !!h && !h.includes('{original['id']}'))({link})")
    desk.page.wait_for_selector(RUN_DONE, timeout=60_000)
    again = _run(desk)
    assert again["config"]["dataset"]["kind"] == "custom"
    assert again["history"] == original["history"]


def _click(page: Any, fx: float, fy: float, shift: bool = False) -> None:
    until(page, "document.querySelector('#boundary-plot .nsewdrag')")
    area = page.evaluate(
        """() => { const r = document.querySelector('#boundary-plot .nsewdrag')
                     .getBoundingClientRect();
                   return {x: r.left, y: r.top, width: r.width, height: r.height}; }"""
    )
    assert area["width"] > 100 and area["height"] > 100, area
    if shift:
        page.keyboard.down("Shift")
    page.mouse.click(area["x"] + area["width"] * fx, area["y"] + area["height"] * fy)
    if shift:
        page.keyboard.up("Shift")


def _own_points(page: Any) -> list:
    return page.evaluate("() => window.boundaryLab.ownData.points")


def test_ten_clicked_points_of_two_classes_train_a_boundary_between_them(desk: Any) -> None:
    desk.open(FAST + "&training.iterations=3000")
    _drawn(desk.page, 300)
    desk.page.click("#own-clear")
    _drawn(desk.page, 0)
    until(desk.page, "document.querySelector('#boundary-plot .nsewdrag')")
    desk.page.check("#own-edit")
    for i in range(10):
        label = i % 2
        desk.page.check(f"#own-classes input[value='{label}']")
        _click(desk.page, 0.2 if label == 0 else 0.8, 0.2 + 0.06 * i)
        until(desk.page, f"window.boundaryLab.ownData.points.length === {i + 1}")
    _drawn(desk.page, 10)
    points = _own_points(desk.page)
    left = [p for p in points if p[2] == 0]
    right = [p for p in points if p[2] == 1]
    assert len(left) == len(right) == 5
    assert max(p[0] for p in left) < min(p[0] for p in right)
    # Shift-click removes the nearest point; Undo brings it back.
    _click(desk.page, 0.8, 0.26, shift=True)
    until(desk.page, "window.boundaryLab.ownData.points.length === 9")
    desk.page.click("#own-undo")
    until(desk.page, "window.boundaryLab.ownData.points.length === 10")
    assert _own_points(desk.page) == points
    desk.page.click("#train")
    desk.page.wait_for_selector(RUN_DONE, timeout=60_000)
    run = _run(desk)
    assert run["config"]["dataset"]["points"] == points
    assert run["metrics"]["train_accuracy"] == 1.0  # every point on its class's side


def test_edit_these_points_makes_the_generated_set_editable(desk: Any) -> None:
    desk.open(FAST + "&dataset.n_samples=50")
    _drawn(desk.page, 50)
    desk.page.click("#own-edit-these")
    until(desk.page, "window.boundaryLab.ownData.points?.length === 50")
    assert field(desk.page, "dataset.kind").input_value() == "custom"
    assert desk.page.is_checked("#own-edit")
    _click(desk.page, 0.5, 0.5)
    until(desk.page, "window.boundaryLab.ownData.points.length === 51")
    _drawn(desk.page, 51)


def _paste(page: Any, text: str) -> None:
    # Set at once: Playwright's fill of a long text into a textarea can outlast its timeout.
    page.evaluate("(text) => { document.getElementById('own-paste').value = text; }", text)


def test_a_share_link_restores_1000_points_exactly_after_quantising(
    desk: Any, browser: Any
) -> None:
    desk.open(FAST)
    # Past what a link carries, the page says so and points to the CSV.
    many = [f"{i % 50},{i // 50},{i % 2}" for i in range(2001)]
    _paste(desk.page, "\n".join(many))
    desk.page.click("#own-paste-use")
    until(desk.page, "!document.getElementById('own-link-note').hidden")
    assert "Download data CSV" in desk.page.locator("#own-link-note").inner_text()
    assert "points=" not in desk.page.evaluate("() => location.hash")
    rows = [
        f"{(i * 37 % 1000) / 97.3:.5f},{(i * 91 % 1000) / -13.1:.5f},{i % 3}" for i in range(1000)
    ]
    _paste(desk.page, "\n".join(rows))
    desk.page.click("#own-paste-use")
    until(desk.page, "location.hash.startsWith('#points=')")
    assert desk.page.locator("#own-link-note").is_hidden()
    link = desk.page.evaluate("() => location.href")
    expected = desk.page.evaluate(
        """async () => (await import('./js/sharelink.js'))
             .quantise(window.boundaryLab.ownData.points)"""
    )
    assert len(link) < 10_000
    other = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = other.new_page()
        page.goto(link)
        page.wait_for_selector("body[data-ready='true']")
        until(page, "window.boundaryLab.ownData.points?.length === 1000")
        assert page.evaluate("() => window.boundaryLab.ownData.points") == expected
        assert page.locator("[name='dataset.kind']").input_value() == "custom"
        _drawn(page, 1000)
    finally:
        other.close()
