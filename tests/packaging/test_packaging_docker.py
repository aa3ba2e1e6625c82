"""The Dockerfile and docker-compose.yml, checked without a Docker engine.

These run anywhere pytest runs, in seconds: the files pass hadolint and the compose JSON
schema; their structure is what the issue asks for (slim base, numeric non-root user,
curl-free health check, exec-form CMD); and the Dockerfile's own COPY/RUN/CMD/HEALTHCHECK
lines are replayed, outside a container, in a fresh virtualenv standing in for the image's
Python. What cannot be replayed (user creation, USER) is checked statically here, and for
real by scripts/docker_check.sh, which CI runs after the tests: it builds the image on a
Docker engine and checks the running container.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from docker_replay import Replay
from packaging_support import (
    REPO,
    SHUTDOWN_TIMEOUT_S,
    STARTUP_TIMEOUT_S,
    Stage,
    clean_env,
    exec_form,
    healthcheck_argv,
    parse_dockerfile,
    parse_env,
)

from serverproc import ServerProcess, free_port, start_server


def final_stage(stages: list[Stage]) -> Stage:
    return stages[-1]


# --- static structure ----------------------------------------------------------------------


def test_hadolint_passes(venv_bin_tool: Callable[[str], Path]) -> None:
    result = subprocess.run(
        [str(venv_bin_tool("hadolint")), "Dockerfile"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_build_on_slim_python(dockerfile: list[Stage]) -> None:
    assert len(dockerfile) >= 2, "build the wheel in one stage, install it in another"
    for stage in dockerfile:
        assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", stage.base), stage.base
    builder_runs = " ".join(i.args for i in dockerfile[0].all("RUN"))
    assert "pip wheel" in builder_runs or "-m build" in builder_runs
    final_copy = " ".join(i.args for i in final_stage(dockerfile).all("COPY"))
    assert "--from=" in final_copy, "the runtime stage takes only the built wheel"
    assert "backend" not in final_copy, "the runtime stage must not copy the source tree"


def test_base_image_is_one_build_argument_defaulting_to_the_official_image(
    dockerfile: list[Stage],
) -> None:
    # Users get python:3.11-slim (the default, checked above); scripts/docker_check.sh, on
    # machines that cannot pull it, passes a stand-in through the same argument.
    assert {stage.written_base for stage in dockerfile} == {"${PYTHON_IMAGE}"}
    assert "PYTHON_IMAGE:" in (REPO / "scripts" / "docker_check.sh").read_text()


def test_build_arguments_in_from_resolve_to_their_defaults() -> None:
    stages = parse_dockerfile("ARG BASE=python:3.12-slim\nFROM ${BASE} AS b\nFROM $BASE\n")
    assert [(s.base, s.written_base) for s in stages] == [
        ("python:3.12-slim", "${BASE}"),
        ("python:3.12-slim", "$BASE"),
    ]
    with pytest.raises(ValueError, match="no default"):
        parse_dockerfile("ARG BASE\nFROM ${BASE}\n")
    with pytest.raises(ValueError, match="before FROM"):
        parse_dockerfile("RUN true\nFROM python:3.11-slim\n")


def test_runs_as_numeric_non_root_user(dockerfile: list[Stage]) -> None:
    user = final_stage(dockerfile).last("USER")
    assert user is not None, "the image runs as root"
    uid, _, gid = user.args.partition(":")
    assert uid.isdigit() and int(uid) > 0, f"USER must be a numeric non-root uid: {user.args}"
    assert not gid or (gid.isdigit() and int(gid) > 0), user.args


def test_exposes_8000_and_binds_all_interfaces(dockerfile: list[Stage]) -> None:
    stage = final_stage(dockerfile)
    assert any(i.args.split()[0] == "8000" for i in stage.all("EXPOSE"))
    env: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        env.update(parse_env(instruction.args))
    # Settings default to 127.0.0.1, which is unreachable from outside a container.
    assert env.get("BOUNDARYLAB_HOST") == "0.0.0.0"
    assert env.get("BOUNDARYLAB_PORT", "8000") == "8000"


def test_healthcheck_needs_no_curl(dockerfile: list[Stage]) -> None:
    argv = healthcheck_argv(final_stage(dockerfile))
    assert argv[0] == "python", argv
    assert not {"curl", "wget"} & set(" ".join(argv).split()), argv
    assert "/api/health" in argv[-1]


def test_cmd_is_exec_form_running_the_server(dockerfile: list[Stage]) -> None:
    cmd = final_stage(dockerfile).last("CMD")
    assert cmd is not None
    argv = exec_form(cmd.args)  # exec form: the server is PID 1 and gets SIGTERM itself
    assert argv[:2] == ["boundarylab", "serve"] or argv[0] == "uvicorn", argv
    assert final_stage(dockerfile).last("ENTRYPOINT") is None, "an ENTRYPOINT would wrap CMD"


def test_dockerignore_keeps_the_context_small() -> None:
    patterns = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "tests"} <= patterns


# --- the replay -----------------------------------------------------------------------------


@dataclass
class Container:
    replay: Replay
    server: ServerProcess
    env: dict[str, str]


@pytest.fixture(scope="module")
def container(image: Replay, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    """The replayed image's CMD, started as `docker run -e ...` would start it."""
    replay = image
    root = tmp_path_factory.mktemp("container")
    port = free_port()
    # Like `docker run -e`: loopback only (this is not a container) and a free port.
    run_env = {**replay.env, "BOUNDARYLAB_HOST": "127.0.0.1", "BOUNDARYLAB_PORT": str(port)}
    env = clean_env(replay.venv_dir, run_env)
    executable = shutil.which(replay.cmd[0], path=env["PATH"])
    assert executable and Path(executable).is_relative_to(replay.venv_dir), executable
    server = start_server(
        [executable, *replay.cmd[1:]],
        cwd=replay.workdir,
        env=env,
        port=port,
        log_path=root / "server.log",
        timeout=STARTUP_TIMEOUT_S,
        own_session=True,  # its workers are killed with it if it ignores SIGTERM
    )
    container = Container(replay, server, env)
    yield container
    server.stop(SHUTDOWN_TIMEOUT_S)


@pytest.mark.slow
def test_replayed_image_installs_only_the_wheel(container: Container) -> None:
    assert not (container.replay.rootfs / "dist").exists(), "the wheel is removed after install"
    site = next((container.replay.venv_dir / "lib").glob("python3*/site-packages"))
    assert (site / "boundarylab" / "frontend" / "index.html").is_file()


@pytest.mark.slow
def test_healthcheck_command_passes_against_the_running_server(container: Container) -> None:
    result = subprocess.run(
        container.replay.healthcheck,
        cwd=container.replay.workdir,
        env=container.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_healthcheck_command_fails_when_nothing_listens(container: Container) -> None:
    env = {**container.env, "BOUNDARYLAB_PORT": str(free_port())}
    result = subprocess.run(
        container.replay.healthcheck,
        cwd=container.replay.workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0


@pytest.mark.slow
def test_started_image_serves_page_and_api(container: Container) -> None:
    base = container.server.base
    page = httpx.get(f"{base}/", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    health = httpx.get(f"{base}/api/health", timeout=10).json()
    assert health["status"] == "ok"


@pytest.mark.slow
def test_sigterm_stops_the_server_cleanly(container: Container) -> None:
    # What `docker stop` does: SIGTERM to PID 1, which exec-form CMD makes the server itself.
    code = container.server.stop(SHUTDOWN_TIMEOUT_S)
    log = container.server.log()
    # uvicorn re-raises the signal after its graceful shutdown, so -SIGTERM is a clean exit;
    # None would mean it ignored SIGTERM and had to be killed.
    assert code in (0, -signal.SIGTERM), f"exit code {code} after SIGTERM:\n{log}"
    assert "Application shutdown complete" in log, log
