"""README.md stays true: the two commands, every setting, every route, the screenshot."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from packaging_support import REPO

from boundarylab.settings import Settings

README = (REPO / "README.md").read_text()


def test_two_commands_are_there() -> None:
    assert "docker compose up --build" in README
    assert "http://localhost:8000" in README
    assert "pip install . && boundarylab serve" in README
    assert "pip install -e '.[test]' && bash scripts/test.sh" in README


def test_every_setting_is_documented() -> None:
    for name in Settings.model_fields:
        assert f"`BOUNDARYLAB_{name.upper()}`" in README, f"document BOUNDARYLAB_{name.upper()}"


def test_every_route_is_documented() -> None:
    from boundarylab.api import create_app

    paths = [
        route.path
        for route in create_app().routes
        if isinstance(route, APIRoute | APIWebSocketRoute)
        and route.path.startswith(("/api", "/vendor"))
    ]
    assert paths, "the app has no routes"
    for path in paths:
        documented = path.replace("{run_id}", "{id}")
        last = "/" + documented.rsplit("/", 1)[1]
        # Control routes share a row: `POST /api/runs/{id}/pause` · `/resume` · ...
        assert documented in README or f"`{last}`" in README, f"document {path}"


@pytest.mark.parametrize("image", re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README))
def test_images_exist(image: str) -> None:
    assert (REPO / image).is_file(), image


def test_benchmark_commands_are_listed() -> None:
    for script in ("bench/engine.py", "bench/stream.py", "bench/load.py"):
        assert f"python {script}" in README
