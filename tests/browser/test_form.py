"""The configuration form as a person fills it in: help, links, schema-driven fields, hints."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from page_support import RUN_DONE, field, until

pytestmark = pytest.mark.browser


def layout(page: Any) -> list[list[float]]:
    """Where every form row, the "More options" summary and the Compare button are."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.field, .more summary, #compare')]
            .filter(el => el.offsetParent !== null)
            .map(el => { const r = el.getBoundingClientRect();
                         return [el.dataset.key || el.id || 'summary', r.x, r.y, r.width]; })"""
    )


def test_focus_and_blur_never_move_the_form(desk: Any) -> None:
    """Help shows for the focused field without pushing anything: blurring a field (pressing
    the mouse elsewhere) must not move what the pointer is over."""
    page = desk.page
    desk.open()
    page.click(".more summary")  # every field visible, the advanced ones too
    still = layout(page)
    keys = page.evaluate("() => [...document.querySelectorAll('.field')].map(f => f.dataset.key)")
    visible = [k for k in keys if field(page, k).is_visible()]
    assert len(visible) >= 15
    for key in visible:
        # Focused as a click or Tab would, but without scrolling it into view (that moves
        # the form by design; the layout must not move on its own).
        field(page, key).evaluate("el => el.focus({preventScroll: true})")
        help_text = page.locator(f".field[data-key='{key}'] .help")
        assert help_text.is_visible(), f"no help shows for {key}"
        assert layout(page) == still, f"focusing {key} moved the form"
        page.evaluate("() => document.activeElement.blur()")
        assert layout(page) == still, f"blurring {key} moved the form"


def test_first_click_after_typing_lands(desk: Any) -> None:
    page = desk.page
    desk.open()
    for key in ("dataset.noise", "training.learning_rate", "view.resolution"):
        field(page, key).click()
        field(page, key).press("End")
        field(page, key).type("0")  # 0.20, 0.010, 1000 → then back
        field(page, key).press("Backspace")
        page.click(".more summary")
        assert page.locator("details.more").get_attribute("open") is not None, key
        page.click(".more summary")
        assert page.locator("details.more").get_attribute("open") is None, key
    field(page, "training.iterations").fill("300")
    page.click("#compare")
    until(page, "document.querySelectorAll('.compare-cell').length === 7", timeout=10_000)


def test_link_with_an_invalid_value_says_what_to_fix(desk: Any) -> None:
    page = desk.page
    status = page.locator("#status")
    desk.open("?dataset.n_samples=lots&training.learning_rate=0.01")
    text = status.inner_text()
    assert "Ready" not in text
    assert "Points" in text and "whole number" in text, text  # the field's label, its error
    assert status.get_attribute("data-tone") == "error"
    assert field(page, "dataset.n_samples").get_attribute("aria-invalid") == "true"
    # Fixing the field draws the points and says so.
    field(page, "dataset.n_samples").fill("200")
    until(page, "document.getElementById('status').textContent.startsWith('Ready')")
    until(page, "document.querySelectorAll('#boundary-plot path.point').length === 200")

    # A value the page parses but the schema's bounds refuse, and a key it does not know.
    desk.open("?training.learning_rate=-1&training.learnig_rate=0.1")
    text = status.inner_text()
    assert "Learning rate" in text and "greater than 0" in text, text
    assert "learnig_rate" in text, text  # the unknown key is named, not silently dropped
    assert status.get_attribute("data-tone") == "error"


def test_n_classes_shows_and_travels_only_with_blobs(desk: Any) -> None:
    page = desk.page
    desk.open()
    row = page.locator(".field[data-key='dataset.n_classes']")
    assert not row.is_visible()
    until(page, "location.search.includes('dataset.kind=moons')")
    assert "n_classes" not in page.evaluate("location.search")
    field(page, "dataset.kind").select_option("blobs")
    row.wait_for(state="visible")
    until(page, "location.search.includes('dataset.n_classes=3')")
    field(page, "dataset.kind").select_option("circles")
    row.wait_for(state="hidden")
    until(page, "!location.search.includes('n_classes')")
    # The run a person starts does not carry the field either.
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/runs")) as req:
        page.click("#train")
    sent = json.loads(req.value.post_data or "{}")
    assert "n_classes" not in sent["dataset"] and sent["dataset"]["kind"] == "circles"
    page.wait_for_selector("#status[data-status]")
    page.click("#stop")


def edit_schema(desk: Any, change: Callable[[dict[str, Any]], None]) -> None:
    """Serve the page a schema changed by `change`, to show the form reads it generically."""

    def handle(route: Any) -> None:
        schema = route.fetch().json()
        change(schema)
        route.fulfill(content_type="application/json", body=json.dumps(schema))

    desk.page.route("**/api/schema", handle)


def test_applies_when_is_read_from_the_schema(desk: Any) -> None:
    def noise_only_for_moons(schema: dict[str, Any]) -> None:
        noise = schema["$defs"]["DatasetConfig"]["properties"]["noise"]
        noise["x-applies-when"] = {"kind": ["moons", "circles"]}

    edit_schema(desk, noise_only_for_moons)
    desk.open()
    page = desk.page
    noise = page.locator(".field[data-key='dataset.noise']")
    assert noise.is_visible()
    field(page, "dataset.kind").select_option("xor")
    noise.wait_for(state="hidden")
    until(page, "location.search.includes('dataset.kind=xor')")
    assert "dataset.noise" not in page.evaluate("location.search")
    field(page, "dataset.kind").select_option("circles")
    noise.wait_for(state="visible")


def test_kind_defaults_fill_fields_the_person_left_alone(desk: Any) -> None:
    page = desk.page
    desk.open()
    noise = field(page, "dataset.noise")
    assert noise.input_value() == "0.2"
    field(page, "dataset.kind").select_option("spiral")
    assert noise.input_value() == "0.05"  # the schema's x-kind-defaults for the spiral
    until(page, "location.search.includes('dataset.noise=0.05')")
    field(page, "dataset.kind").select_option("moons")
    assert noise.input_value() == "0.2"  # back to the general default
    # A value the person typed is theirs: picking another kind keeps it.
    noise.fill("0.3")
    field(page, "dataset.kind").select_option("spiral")
    assert noise.input_value() == "0.3"
    # A link naming the spiral without a noise gets the spiral's own default.
    desk.open("?dataset.kind=spiral")
    assert noise.input_value() == "0.05"


def test_kind_defaults_are_read_from_the_schema(desk: Any) -> None:
    def circles_with_fewer_points(schema: dict[str, Any]) -> None:
        schema["$defs"]["DatasetConfig"]["x-kind-defaults"]["circles"] = {"n_samples": 120}

    edit_schema(desk, circles_with_fewer_points)
    desk.open()
    page = desk.page
    field(page, "dataset.kind").select_option("circles")
    assert field(page, "dataset.n_samples").input_value() == "120"
    field(page, "dataset.kind").select_option("moons")
    assert field(page, "dataset.n_samples").input_value() == "300"


def test_comparison_bounds_come_from_the_schema(desk: Any) -> None:
    def three_sizes_at_most(schema: dict[str, Any]) -> None:
        sizes = schema["x-compare"]["hidden_sizes"]
        sizes["maxItems"] = 3
        sizes["default"] = [2, 8]

    edit_schema(desk, three_sizes_at_most)
    desk.open()
    page = desk.page
    sizes = page.locator("#compare-sizes")
    assert sizes.input_value().replace(" ", "") == "2,8"
    sizes.fill("1, 2, 3, 4")
    assert "At most 3 sizes" in page.locator("#compare-sizes-error").inner_text()
    page.click("#compare")
    page.wait_for_timeout(300)
    assert not desk.posts_to("/api/runs")


def test_linear_activation_offers_a_learning_rate_that_trains(desk: Any) -> None:
    page = desk.page
    desk.open("?training.steps_per_second=")
    advice = page.locator(".field[data-key='training.learning_rate'] .advice")
    assert not advice.is_visible()
    field(page, "model.activation").select_option("linear")
    advice.wait_for(state="visible")
    assert "linear" in advice.inner_text().lower()
    advice.locator("button").click()
    rate = float(field(page, "training.learning_rate").input_value())
    assert 0 < rate < 0.01
    advice.wait_for(state="hidden")  # the rate it offered is in place: nothing left to say
    page.click("#train")
    page.wait_for_selector("#status[data-status='completed'], #status[data-status='diverged']")
    assert page.locator(RUN_DONE).count() == 1, page.locator("#status").inner_text()
    # Back to tanh: no advice, whatever the rate.
    field(page, "model.activation").select_option("tanh")
    field(page, "training.learning_rate").fill("0.01")
    assert not advice.is_visible()


@pytest.mark.parametrize("size", ["desk", "phone"])
def test_placeholders_fit_their_inputs(size: str, request: pytest.FixtureRequest) -> None:
    watched = request.getfixturevalue(size)
    watched.open()
    page = watched.page
    page.click(".more summary")
    cut = page.evaluate(
        """() => {
            const ctx = document.createElement('canvas').getContext('2d');
            return [...document.querySelectorAll('input[placeholder]')]
              .filter(el => el.offsetParent !== null)
              .map(el => {
                const s = getComputedStyle(el);
                ctx.font = `${s.fontStyle} ${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;
                const room = el.clientWidth - parseFloat(s.paddingLeft)
                             - parseFloat(s.paddingRight);
                return [el.name || el.id, ctx.measureText(el.placeholder).width, room];
              })
              .filter(([, width, room]) => width > room);
        }"""
    )
    assert cut == []


LOWERED = {"BOUNDARYLAB_MAX_SAMPLES": "400", "BOUNDARYLAB_MAX_ITERATIONS": "1000"}


@pytest.mark.parametrize("own_server", [LOWERED], indirect=True)
def test_form_follows_the_servers_lowered_limits(desk_own: Any, own_server: Any) -> None:
    """A deployment with lower limits: the form's maxima are the server's, the points still
    preview (the preview checks the dataset alone), and a value over the limit is named."""
    page = desk_own.page
    desk_own.open("?training.iterations=500")
    until(page, "document.querySelectorAll('#boundary-plot path.point').length === 300")
    assert page.locator("#status").inner_text().startswith("Ready")
    for key, over, limit in [("training.iterations", "5000", "1000"),
                             ("dataset.n_samples", "401", "400")]:  # fmt: skip
        row = f"document.querySelector(`.field[data-key='{key}']`).textContent"
        field(page, key).fill(over)
        until(page, f"{row}.includes('at most {limit}')")
        assert field(page, key).get_attribute("aria-invalid") == "true"
        field(page, key).fill(limit)
        until(page, f"!{row}.includes('at most')")
    page.click("#train")  # at both limits: the server takes it
    page.wait_for_selector("#status[data-status='running'], " + RUN_DONE)
