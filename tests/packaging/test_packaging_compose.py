"""docker-compose.yml: valid against the compose spec and in step with the Dockerfile and
the server's settings (so a setting added to settings.py cannot be forgotten here)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging_support import REPO, Stage, healthcheck_argv

from boundarylab.server.settings import Settings

COMPOSE = REPO / "docker-compose.yml"
# Defaults that depend on the machine are documented in a comment instead of pinned.
MACHINE_DEPENDENT = {"max_running", "worker_processes"}


@pytest.fixture(scope="module")
def service() -> dict[str, Any]:
    compose = yaml.safe_load(COMPOSE.read_text())
    assert list(compose["services"]) == ["app"], "one service, named app"
    return compose["services"]["app"]


def test_compose_file_matches_the_compose_spec(venv_bin_tool: Callable[[str], Path]) -> None:
    result = subprocess.run(
        [str(venv_bin_tool("check-jsonschema")), "--builtin-schema", "vendor.compose-spec",
         str(COMPOSE)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_service_builds_here_publishes_8000_on_loopback_and_restarts(
    service: dict[str, Any],
) -> None:
    assert service["build"] == "."
    # Loopback by default: the app has no accounts. The README says how to open it wider.
    assert service["ports"] == ["127.0.0.1:8000:8000"]
    assert service["restart"] == "unless-stopped"


def test_service_is_hardened(service: dict[str, Any]) -> None:
    # scripts/docker_check.sh checks that the engine applies these to the running container.
    assert service["read_only"] is True
    # The forkserver of the worker pool makes its socket under /tmp.
    assert "/tmp" in service["tmpfs"]
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    # mem_limit (not deploy.resources), which Debian's docker-compose 1.29 applies too.
    assert re.fullmatch(r"\d+[kmg]", str(service["mem_limit"])), service["mem_limit"]


def test_healthcheck_is_the_dockerfile_one(
    service: dict[str, Any], dockerfile: list[Stage]
) -> None:
    assert service["healthcheck"]["test"] == ["CMD", *healthcheck_argv(dockerfile[-1])]


def test_environment_lists_every_setting(service: dict[str, Any]) -> None:
    env = service["environment"]
    expected = {f"BOUNDARYLAB_{name.upper()}" for name in Settings.model_fields}
    pinned = expected - {f"BOUNDARYLAB_{name.upper()}" for name in MACHINE_DEPENDENT}
    assert set(env) == pinned
    text = COMPOSE.read_text()
    for name in MACHINE_DEPENDENT:
        assert f"# BOUNDARYLAB_{name.upper()}" in text, f"document {name} in a comment"


def test_environment_values_are_the_defaults(
    service: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("BOUNDARYLAB_")]:
        monkeypatch.delenv(key)
    defaults = Settings().model_dump()
    for key, value in service["environment"].items():
        monkeypatch.setenv(key, str(value))
    from_compose = Settings().model_dump()
    # The container must listen on all interfaces; everything else keeps its default.
    assert from_compose.pop("host") == "0.0.0.0"
    defaults.pop("host")
    assert from_compose == defaults
