"""The plots: what they draw, how the boundary is painted, and what their toolbars offer."""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from page_support import RUN_DONE, box, overlap, points_drawn, until

pytestmark = pytest.mark.browser

SPLIT_RUN = "?dataset.test_fraction=0.3&training.iterations=2000&training.steps_per_second="


def train_to_the_end(watched: Any, query: str = SPLIT_RUN) -> None:
    watched.open(query)
    watched.page.click("#train")
    watched.page.wait_for_selector(RUN_DONE, timeout=60_000)


def test_no_toolbar_button_sends_anything_off_the_machine(desk: Any) -> None:
    page = desk.page
    train_to_the_end(desk)
    page.fill("#compare-sizes", "2")
    page.click("#compare")
    until(page, "document.querySelector('.compare-cell')?.dataset.status === 'completed'")
    titles = page.evaluate(
        "() => [...document.querySelectorAll('.modebar-btn')].map(b => b.dataset.title)"
    )
    assert len(titles) >= 9  # three plots, each with its toolbar
    assert not [t for t in titles if re.search(r"share|cloud|studio|edit", t, re.I)], titles
    # Press every button of every plot: nothing opens a window or asks another host.
    here = urlsplit(desk.base).netloc
    away: list[str] = []
    popups: list[str] = []
    page.on("popup", lambda p: popups.append(p.url))
    page.context.on(
        "request",
        lambda r: away.append(r.url) if urlsplit(r.url).netloc not in (here, "") else None,
    )
    for plot in page.locator(".js-plotly-plot").all():
        plot.hover()
        for button in plot.locator(".modebar-btn").all():
            if button.get_attribute("data-title") == "Download plot as a PNG":
                with page.expect_download():
                    button.click()
            else:
                button.click()
    page.wait_for_timeout(500)
    assert popups == [] and [u for u in away if not u.startswith(("data:", "blob:"))] == []


def test_boundary_is_painted_in_one_canvas_under_the_plot_area(desk: Any) -> None:
    page = desk.page
    train_to_the_end(desk, "?training.iterations=3000&training.steps_per_second=6000")
    canvas = "#boundary-plot canvas.field-canvas"
    assert page.locator(canvas).count() == 1
    area = box(page, "#boundary-plot .nsewdrag")
    painted = box(page, canvas)
    for side in ("x", "y", "width", "height"):
        assert painted[side] == pytest.approx(area[side], abs=1), side
    # No frame travels as a PNG data URL or a Plotly layout image any more.
    assert page.locator("#boundary-plot .imagelayer image").count() == 0
    assert not page.evaluate("() => document.getElementById('boundary-plot').layout.images?.length")
    # The frames were painted, many of them, into that same element.
    frames = page.evaluate("() => document.querySelector('#boundary-plot canvas').dataset.frames")
    assert int(frames) >= 2
    # What it shows: red where the red moon is, blue where the blue one is (moons: class 0
    # around (0, 1), class 1 around (1, -0.5)).
    red = pixel_at(page, 0.0, 1.0)
    blue = pixel_at(page, 1.0, -0.5)
    assert red[0] > red[2] + 60 and blue[2] > blue[0] + 60, (red, blue)
    # A new size: the canvas follows the plot area.
    page.set_viewport_size({"width": 1000, "height": 760})
    until(
        page,
        "Math.abs(document.querySelector('#boundary-plot canvas').getBoundingClientRect().width"
        " - document.querySelector('#boundary-plot .nsewdrag').getBoundingClientRect().width)"
        " <= 1",
        timeout=5000,
    )
    assert page.locator(canvas).count() == 1


def test_saved_png_shows_the_painted_boundary(desk: Any, tmp_path: Any) -> None:
    """The camera button saves the plot with its canvas-painted field, not just the points
    (Plotly's own export cannot see a canvas outside its SVG)."""
    page = desk.page
    train_to_the_end(desk, "?training.iterations=2000&training.steps_per_second=")
    page.locator("#boundary-plot").hover()
    with page.expect_download() as download:
        page.locator("#boundary-plot .modebar-btn[data-title='Download plot as a PNG']").click()
    download.value.save_as(tmp_path / "boundary.png")
    saved = tmp_path / "boundary.png"
    assert download.value.suggested_filename == "boundary.png"
    share = page.evaluate(
        """async (b64) => {
            const image = new Image();
            image.src = `data:image/png;base64,${b64}`;
            await image.decode();
            const canvas = document.createElement('canvas');
            canvas.width = image.width; canvas.height = image.height;
            const ctx = canvas.getContext('2d');
            ctx.drawImage(image, 0, 0);
            const d = ctx.getImageData(0, 0, image.width, image.height).data;
            let red = 0, blue = 0;
            for (let o = 0; o < d.length; o += 4) {
              if (d[o] > 180 && d[o + 2] < 130) red += 1;
              if (d[o + 2] > 150 && d[o] < 140) blue += 1;
            }
            return [red / (d.length / 4), blue / (d.length / 4)];
        }""",
        base64.b64encode(saved.read_bytes()).decode(),
    )
    # The field fills most of the plot area: far more than the points alone would colour.
    assert share[0] > 0.15 and share[1] > 0.15, share


def pixel_at(page: Any, x: float, y: float) -> list[int]:
    """The canvas colour at data coordinates (x, y) of the main boundary plot."""
    return page.evaluate(
        """([x, y]) => {
            const el = document.getElementById('boundary-plot');
            const canvas = el.querySelector('canvas.field-canvas');
            const [x0, x1] = el.layout.xaxis.range, [y0, y1] = el.layout.yaxis.range;
            const c = Math.floor(((x - x0) / (x1 - x0)) * canvas.width);
            const r = Math.floor(((y1 - y) / (y1 - y0)) * canvas.height);
            return [...canvas.getContext('2d').getImageData(c, r, 1, 1).data];
        }""",
        [x, y],
    )


def test_class_regions_have_smooth_edges(desk: Any) -> None:
    """K > 2: a straight class edge on a coarse 20 × 20 grid is drawn as a straight line, not
    as a staircase of cells."""
    desk.open()
    result = desk.page.evaluate(
        """async () => {
            const { decodeFrame, paintField } = await import('./js/boundary.js');
            const n = 20, W = 400, H = 400;
            const bytes = new Uint8Array(2 * n * n);
            for (let r = 0; r < n; r += 1) {
              for (let c = 0; c < n; c += 1) {
                const x = -1 + (2 * c) / (n - 1), y = -1 + (2 * r) / (n - 1);
                // Softmax over logits (0, 4(x - y), -2): classes 0 and 1 meet on y = x.
                const e = [1, Math.exp(4 * (x - y)), Math.exp(-2)];
                const sum = e[0] + e[1] + e[2];
                const best = e[1] > e[0] ? 1 : 0;
                bytes[r * n + c] = best;
                bytes[n * n + r * n + c] = Math.round((255 * e[best]) / sum);
              }
            }
            const data = btoa(String.fromCharCode(...bytes));
            const grid = { x_min: -1, x_max: 1, y_min: -1, y_max: 1, nx: n, ny: n };
            const field = decodeFrame({ grid, encoding: 'class-conf-uint8-base64', data });
            const pixels = new Uint8ClampedArray(W * H * 4);
            paintField(field, 3, pixels, W, H);
            let dark = 0, far = 0;
            for (let r = 0; r < H; r += 1) {
              for (let c = 0; c < W; c += 1) {
                const o = (r * W + c) * 4;
                if (pixels[o] > 110 || pixels[o + 1] > 110 || pixels[o + 2] > 110) continue;
                dark += 1;
                // Distance in pixels from the line y = x (row 0 is the top, y = 1).
                const px = c + 0.5, py = H - (r + 0.5);
                far = Math.max(far, Math.abs(px - py) / Math.SQRT2);
              }
            }
            return { dark, far };
        }"""
    )
    assert result["dark"] >= 400, result  # a continuous line across the 400 px square
    assert result["far"] <= 3, result  # and a straight one: a cell staircase strays ~14 px


def test_log_scale_labels_read_as_numbers(desk: Any) -> None:
    page = desk.page
    train_to_the_end(desk, "?training.iterations=3000&training.steps_per_second=")
    page.check("#log-scale")
    until(page, "document.getElementById('loss-plot').layout.yaxis.type === 'log'")
    page.wait_for_timeout(300)
    ticks = page.evaluate(
        """() => [...document.querySelectorAll('#loss-plot .ytick text')]
            .map(t => [t.getBoundingClientRect().y, t.textContent])
            .sort((a, b) => b[0] - a[0]).map(([, text]) => text)"""
    )
    values = [float(t.replace("−", "-")) for t in ticks]  # bottom to top
    assert len(values) >= 3, ticks
    assert values == sorted(values) and len(set(values)) == len(values), ticks


def test_empty_loss_chart_shows_no_made_up_axes(desk: Any) -> None:
    page = desk.page
    desk.open()
    until(page, "document.querySelector('#loss-plot .main-svg')")
    assert page.locator("#loss-plot .xtick, #loss-plot .ytick").count() == 0
    assert "Train" in (page.locator("#loss-plot .annotation").text_content() or "")
    page.click("#train")
    until(page, "document.querySelectorAll('#loss-plot .ytick').length > 0")
    assert page.locator("#loss-plot .annotation").count() == 0
    page.click("#stop")


@pytest.mark.parametrize("size", ["desk", "phone"])
def test_toolbars_cover_no_legend_and_no_title(size: str, request: pytest.FixtureRequest) -> None:
    watched = request.getfixturevalue(size)
    page = watched.page
    train_to_the_end(watched)  # with a test split: three legend entries, two loss curves
    page.fill("#compare-sizes", "3, 50")
    page.click("#compare")
    until(
        page,
        "[...document.querySelectorAll('.compare-cell')]"
        ".every(c => c.dataset.status === 'completed')",
    )
    for plot in ("#boundary-plot", "#loss-plot"):
        page.locator(plot).hover()
        assert not overlap(box(page, f"{plot} .modebar"), box(page, f"{plot} .legend")), plot
    for cell in page.locator(".compare-cell").all():
        cell.hover()
        toolbar = cell.locator(".modebar").bounding_box()
        title = cell.locator("figcaption").bounding_box()
        assert toolbar and title and not overlap(toolbar, title)
        assert re.match(r"Hidden size \d+ · loss", cell.locator("figcaption").inner_text())


def test_test_points_can_be_hidden_with_a_checkbox_kept_in_the_link(desk: Any) -> None:
    page = desk.page
    box_ = page.locator("#show-test")
    desk.open()  # no test split: nothing to show or hide
    assert box_.is_visible() and box_.is_disabled()
    desk.open("?dataset.test_fraction=0.3")
    until(page, "document.querySelectorAll('#boundary-plot path.point').length === 300")
    assert box_.is_checked() and box_.is_enabled()
    box_.uncheck()
    until(page, "document.querySelectorAll('#boundary-plot path.point').length === 210")
    until(page, "location.search.includes('show_test_points=0')")
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    assert not box_.is_checked()
    until(page, "document.querySelectorAll('#boundary-plot path.point').length === 210")
    # The legend entry and the checkbox agree.
    entry = page.locator("#boundary-plot .legend .traces", has_text="test points")
    entry.locator(".legendtoggle").click()
    until(page, "document.getElementById('show-test').checked")
    assert points_drawn(page) == 300
    until(page, "!location.search.includes('show_test_points')")
