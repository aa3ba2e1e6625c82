"""The page as a person uses it, in a real Chromium against a real server."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from page_support import FAST, RUN_DONE, field, iteration, plot_data, points_drawn, run_id, until

pytestmark = pytest.mark.browser


def test_form_shows_the_schema_defaults(desk: Any) -> None:
    desk.open()
    schema = desk.api("/api/schema")
    checked = 0
    for section in ("dataset", "model", "training", "view"):
        name = schema["properties"][section]["$ref"].split("/")[-1]
        for key, prop in schema["$defs"][name]["properties"].items():
            if f"{section}.{key}" == "dataset.points":
                continue  # own points have their own panel (test_own_data.py)
            if f"{section}.{key}" == "model.features":  # checkboxes, not a text box
                boxes = f"[data-key='{section}.{key}'] input:checked"
                shown = ", ".join(b.get_attribute("value") for b in desk.page.locator(boxes).all())
            else:
                shown = field(desk.page, f"{section}.{key}").input_value()
            default = prop.get("default")
            if f"{section}.{key}" == "training.steps_per_second":
                # The page's one deliberate override: 20000 steps in about 10 s, to watch.
                assert float(shown) == 2000
            elif default is None:
                assert shown == ""
            elif isinstance(default, list):
                items = [s for s in re.split(r"[,\s]+", shown) if s]
                assert [type(d)(s) for s, d in zip(items, default, strict=True)] == default
            elif isinstance(default, str):
                assert shown == default
            else:
                assert float(shown) == pytest.approx(default), key
            checked += 1
    assert checked >= 15
    # Every control has a name a screen reader reads: a <label>, aria-label, or its text.
    unnamed = desk.page.evaluate(
        """() => [...document.querySelectorAll('input, select, button')]
            .filter(el => !(el.labels?.length || el.getAttribute('aria-label')
                            || el.textContent.trim()))
            .map(el => el.id || el.name || el.outerHTML)"""
    )
    assert unnamed == []


def test_preview_draws_the_points_and_redraws_on_change(desk: Any) -> None:
    desk.open()
    until(desk.page, "document.querySelectorAll('#boundary-plot path.point').length")
    assert points_drawn(desk.page) == 300
    field(desk.page, "dataset.n_samples").fill("120")
    until(
        desk.page,
        "document.querySelectorAll('#boundary-plot .scatterlayer path.point').length === 120",
    )
    assert not desk.posts_to("/api/runs")


def test_default_run_completes_and_shows_the_servers_final_loss(desk: Any, tmp_path: Path) -> None:
    desk.open(FAST)
    desk.page.click("#train")
    desk.page.wait_for_selector(RUN_DONE, timeout=90_000)
    accuracy = float(desk.page.locator("#train-accuracy").inner_text().rstrip("%"))
    assert accuracy >= 98.0
    run = desk.api(f"/api/runs/{run_id(desk.page)}")
    assert run["status"] == "completed"
    assert iteration(desk.page) == run["iteration"] == 20000
    # The curve's last point is the server's final loss, exactly (JSON round-trips floats).
    until(
        desk.page, "document.getElementById('loss-plot').data[0].x.at(-1) === 20000", timeout=5000
    )
    curve = plot_data(desk.page, "loss-plot")[0]
    assert curve["x"][-1] == 20000
    assert curve["y"][-1] == run["history"][-1]["loss"]
    # The export links hand over the server's model and history.
    model = desk.page.request.get(f"{desk.base}/{desk.page.get_attribute('#export-model', 'href')}")
    assert model.ok and len(model.json()["layers"]) == 2
    csv = desk.page.request.get(f"{desk.base}/{desk.page.get_attribute('#export-history', 'href')}")
    assert csv.ok and csv.text().splitlines()[0].startswith("iteration")
    script_href = desk.page.get_attribute("#export-script", "href")
    script = desk.page.request.get(f"{desk.base}/{script_href}")
    assert script.ok and "def build_model" in script.text()
    assert "num_passes = 20000" in script.text()
    # The final frame is painted under the points.
    assert desk.page.locator("#boundary-plot canvas.field-canvas").count() == 1
    assert points_drawn(desk.page) == 300
    desk.page.wait_for_timeout(300)  # let the last animation frame paint
    desk.page.screenshot(path=str(tmp_path / "run.png"))


def test_pause_really_stops_the_iteration_counter(desk: Any) -> None:
    # The page's pace (2000 steps a second) over ten times the steps, so that on a busy
    # machine the run is still going when the test's clicks arrive.
    desk.open("?training.iterations=200000")
    desk.page.click("#train")
    until(desk.page, "Number(document.getElementById('iteration').textContent) > 0")
    desk.page.click("#pause")
    desk.page.wait_for_selector("#status[data-status='paused']")
    paused_at = iteration(desk.page)
    server_at = desk.api(f"/api/runs/{run_id(desk.page)}")["iteration"]
    desk.page.wait_for_timeout(1000)
    assert iteration(desk.page) == paused_at
    assert desk.api(f"/api/runs/{run_id(desk.page)}")["iteration"] == server_at
    assert 0 < paused_at < 200000
    # Step advances one report's worth (100 steps) and stays paused.
    desk.page.click("#step")
    until(desk.page, f"Number(document.getElementById('iteration').textContent) > {paused_at}")
    assert desk.page.locator("#status").get_attribute("data-status") == "paused"
    stepped = iteration(desk.page)
    # From where the run paused, which may lie past its last report (server_at, a multiple
    # of 100) when a paced slice was cut short: so 100 steps on lands before the next-but-one.
    assert 100 <= stepped - server_at < 200
    desk.page.click("#pause")  # now labelled Resume
    until(desk.page, f"Number(document.getElementById('iteration').textContent) > {stepped}")
    desk.page.click("#stop")
    desk.page.wait_for_selector("#status[data-status='cancelled']")


def test_train_right_after_a_data_change_keeps_its_run(desk: Any) -> None:
    """The preview of the changed data, still on its way, must not replace (and stop) the
    run that Train has just started."""
    desk.open()
    until(desk.page, "document.querySelectorAll('#boundary-plot path.point').length === 300")
    field(desk.page, "dataset.n_samples").fill("120")
    desk.page.click("#train")  # well within the preview's 150 ms debounce
    desk.page.wait_for_selector("#status[data-status='running']")
    desk.page.wait_for_timeout(1000)
    assert desk.page.locator("#status").get_attribute("data-status") == "running"
    assert desk.api(f"/api/runs/{run_id(desk.page)}")["status"] == "running"
    assert points_drawn(desk.page) == 120
    desk.page.click("#stop")


def test_invalid_learning_rate_shows_the_error_and_sends_nothing(desk: Any) -> None:
    desk.open()
    field(desk.page, "training.learning_rate").fill("-0.5")
    error = desk.page.locator("#f-training-learning_rate-error")
    assert "greater than 0" in error.inner_text()
    desk.page.click("#train")
    desk.page.wait_for_timeout(300)
    assert not desk.posts_to("/api/runs")
    assert field(desk.page, "training.learning_rate").get_attribute("aria-invalid") == "true"
    # Fixing it clears the message.
    field(desk.page, "training.learning_rate").fill("0.02")
    assert error.inner_text() == ""


def test_server_422_is_shown_next_to_its_field(desk: Any) -> None:
    """Limits only the server knows (deployment settings) come back as 422 per field."""
    detail = [
        {
            "loc": ["body", "training", "iterations"],
            "msg": "Input should be less than or equal to 5000",
            "type": "less_than_equal",
        }
    ]

    def reject(route: Any) -> None:
        if route.request.method == "POST":
            route.fulfill(
                status=422, content_type="application/json", body=json.dumps({"detail": detail})
            )
        else:
            route.continue_()

    desk.expected_errors.append("status of 422")  # Chromium logs every failed request
    desk.page.route("**/api/runs", reject)
    desk.open()
    desk.page.click("#train")
    error = desk.page.locator("#f-training-iterations-error")
    error.wait_for(state="visible")
    assert "less than or equal to 5000" in error.inner_text()
    assert desk.page.locator("#status").get_attribute("data-status") is None


def test_url_restores_the_form(desk: Any) -> None:
    query = (
        "?dataset.kind=circles&dataset.noise=0.1&model.hidden_sizes=8,4"
        "&training.learning_rate=0.003&training.optimizer=adam&training.batch_size=32"
        "&compare.hidden_sizes=2,4"
    )
    desk.open(query)
    page = desk.page
    assert field(page, "dataset.kind").input_value() == "circles"
    assert field(page, "dataset.noise").input_value() == "0.1"
    assert field(page, "model.hidden_sizes").input_value() == "8, 4"
    assert field(page, "training.learning_rate").input_value() == "0.003"
    assert field(page, "training.optimizer").input_value() == "adam"
    assert field(page, "training.batch_size").input_value() == "32"
    assert page.locator("#compare-sizes").input_value() == "2,4"
    # An edit goes into the address bar, so a reload (or a copied link) keeps it.
    field(page, "training.reg_lambda").fill("0.05")
    until(page, "location.search.includes('training.reg_lambda=0.05')")
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    assert field(page, "training.reg_lambda").input_value() == "0.05"
    assert field(page, "dataset.kind").input_value() == "circles"


def test_reconnects_after_the_socket_drops(desk: Any) -> None:
    desk.open("?training.steps_per_second=20000")
    desk.page.click("#train")
    until(desk.page, "Number(document.getElementById('iteration').textContent) > 0")
    desk.page.evaluate("window.boundaryLab.view.stream.socket.close()")
    desk.page.wait_for_selector(RUN_DONE, timeout=60_000)
    curve = plot_data(desk.page, "loss-plot")[0]
    assert curve["x"] == sorted(set(curve["x"]))  # the snapshot replay adds no duplicates
    assert curve["x"][-1] == 20000


def test_usable_on_a_phone(phone: Any, tmp_path: Path) -> None:
    phone.open(FAST)
    page = phone.page
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    train = page.locator("#train")
    assert train.is_visible()
    box = train.bounding_box()
    assert box is not None and box["y"] < 844  # Train is on the first screen
    page.click("#train")
    page.wait_for_selector(RUN_DONE, timeout=90_000)
    # The two plots stack: the loss plot sits below the boundary plot.
    boundary = page.locator("#boundary-plot").bounding_box()
    loss = page.locator("#loss-plot").bounding_box()
    assert boundary and loss and loss["y"] >= boundary["y"] + boundary["height"]
    time.sleep(0.3)
    page.screenshot(path=str(tmp_path / "mobile.png"), full_page=True)


def test_says_when_the_server_is_gone_and_when_it_forgot_the_run(
    desk_own: Any, own_server: Any
) -> None:
    page = desk_own.page
    # Chromium logs each failed request and socket while the server is down.
    desk_own.expected_errors += ["ERR_CONNECTION_REFUSED", "WebSocket connection", "404"]
    desk_own.open()  # paced: 20000 steps take 10 s, so it is still training below
    page.click("#train")
    until(page, "Number(document.getElementById('iteration').textContent) > 0")
    own_server.stop()
    banner = page.locator("#banner")
    banner.wait_for(state="visible", timeout=15_000)
    assert "unreachable" in banner.inner_text().lower()
    # A fresh server does not know the run: the page says so instead of retrying forever.
    own_server.start()
    until(
        page,
        "document.getElementById('banner').textContent.includes('no longer exists')",
        timeout=60_000,
    )
    # And training again works against the new server.
    page.click("#train")
    page.wait_for_selector("#status[data-status='running']")
    banner.wait_for(state="hidden")


def test_leaving_the_page_cancels_its_run(desk: Any) -> None:
    desk.open()  # paced: still training when the page goes
    desk.page.click("#train")
    until(desk.page, "Number(document.getElementById('iteration').textContent) > 0")
    rid = run_id(desk.page)
    desk.page.goto("about:blank")
    status = None
    for _ in range(100):
        status = desk.api(f"/api/runs/{rid}")["status"]
        if status != "running":
            break
        time.sleep(0.1)
    assert status == "cancelled"


def test_three_classes_are_painted_by_class(desk: Any) -> None:
    desk.open(
        "?dataset.kind=blobs&dataset.n_classes=3&training.iterations=300"
        "&training.steps_per_second=&model.hidden_sizes=8"
    )
    desk.page.click("#train")
    desk.page.wait_for_selector(RUN_DONE, timeout=60_000)
    assert "predicted class" in desk.page.locator("#boundary-caption").inner_text()
    names = desk.page.evaluate(
        "() => document.getElementById('boundary-plot').data.map(t => t.name)"
    )
    assert names == ["class 0", "class 1", "class 2"]
    assert desk.page.locator("#boundary-plot canvas.field-canvas").count() == 1


@pytest.mark.parametrize("own_server", [{"BOUNDARYLAB_MAX_RUNNING": "1"}], indirect=True)
def test_a_queued_run_shows_its_place_in_line(desk_own: Any, own_server: Any) -> None:
    page = desk_own.page
    desk_own.open("?compare.hidden_sizes=1,2")  # paced: each takes about 10 s
    page.click("#compare")
    until(page, "document.querySelectorAll('.compare-cell[data-status=\"running\"]').length")
    page.click("#train")  # behind the running comparison run and the queued one
    page.wait_for_selector("#status[data-status='queued']")
    assert "place 2 in line" in page.locator("#status").inner_text()
    assert "place 1" in page.locator(".compare-cell").nth(1).locator("figcaption").inner_text()
    page.click("#stop")
    page.wait_for_selector("#status[data-status='cancelled']")
