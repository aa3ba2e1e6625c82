"""README.md stays true: the two commands, every setting, every route, the screenshot."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from packaging_support import REPO

from boundarylab.server.settings import Settings

README = (REPO / "README.md").read_text()


def test_two_commands_are_there() -> None:
    assert "docker compose up --build" in README
    assert "http://localhost:8000" in README
    assert "pip install . && boundarylab serve" in README
    assert "pip install -e '.[test]' && bash scripts/test.sh" in README


def test_every_setting_is_documented() -> None:
    for name in Settings.model_fields:
        assert f"`BOUNDARYLAB_{name.upper()}`" in README, f"document BOUNDARYLAB_{name.upper()}"


def route_paths(routes: list[Any], prefix: str = "") -> list[str]:
    """Every route path, descending into included routers. Recent FastAPI keeps an included
    router as one wrapper route (with `original_router`) instead of copying its routes."""
    paths: list[str] = []
    for route in routes:
        if isinstance(route, APIRoute | APIWebSocketRoute):
            paths.append(prefix + route.path)
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            paths += route_paths(inner.routes, prefix + getattr(context, "prefix", ""))
    return paths


def test_every_route_is_documented() -> None:
    from boundarylab.server.app import create_app

    paths = [p for p in route_paths(create_app().routes) if p.startswith(("/api", "/vendor"))]
    assert len(paths) >= 10, f"found only {paths}: has FastAPI changed how it keeps routes?"
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


def test_run_command_makes_a_venv_first() -> None:
    """Debian's and Ubuntu's Python refuse `pip install .` outside a virtual environment
    (PEP 668, "externally-managed-environment"): the README's block makes one first."""
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    (block,) = [b for b in blocks if "pip install . && boundarylab serve" in b]
    lines = block.splitlines()
    assert lines[0] == "python3 -m venv .venv && . .venv/bin/activate", block
    assert "python3-venv" in README and "externally-managed-environment" in README


def test_the_defaults_json_is_the_schemas() -> None:
    import json

    from boundarylab.engine.config import RunConfig

    lead_in = "A run config, all defaults"
    block = README[README.index(lead_in) :].split("```json\n", 1)[1].split("```", 1)[0]
    assert json.loads(block) == RunConfig().model_dump(mode="json")


def test_limits_and_clients_are_described_as_they_are() -> None:
    # A body over max_body_bytes is a 413, not a 422; say both.
    assert "Anything over a limit is a `422`" not in README
    assert "`413`" in README
    # websocat is in neither Debian nor Ubuntu; websockets' own client comes with the app.
    assert "websocat" not in README
    assert "python -m websockets ws://localhost:8000/api/runs/" in README
