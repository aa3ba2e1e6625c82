"""scripts/test.sh and scripts/junit_summary.py: a red or empty test run must never pass.

test.sh is run for real, with a stand-in `python` (a small bash stub on a fake virtualenv)
that records its calls and plays pytest/ruff with the exit codes and JUnit reports a test
sets, so every path of the script runs in milliseconds without recursing into the suite.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from packaging_support import REPO

STUB = """#!/usr/bin/env bash
echo "$*" >> "$STUB_LOG"
if [[ "$1 $2" == "-m ruff" ]]; then exit "${STUB_RUFF_RC:-0}"; fi
if [[ "$1 $2" == "-m pytest" ]]; then
    suite='<testsuite tests="%s" failures="0" errors="0" skipped="%s"/>'
    for arg in "$@"; do
        if [[ "$arg" == --junitxml=* ]]; then
            printf "<testsuites>$suite</testsuites>" "${STUB_TESTS:-2}" "${STUB_SKIPPED:-0}" \\
                > "${arg#--junitxml=}"
        fi
    done
    exit "${STUB_PYTEST_RC:-0}"
fi
exec "$REAL_PYTHON" "$@"
"""


def load_junit_summary() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "junit_summary", REPO / "scripts" / "junit_summary.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["junit_summary"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def run_test_sh(tmp_path: Path, **stub: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run scripts/test.sh against the stub; returns the result and the stub's call log."""
    fake_venv = tmp_path / "venv"
    (fake_venv / "bin").mkdir(parents=True, exist_ok=True)
    python = fake_venv / "bin" / "python"
    python.write_text(STUB)
    python.chmod(0o755)
    log = tmp_path / "calls.log"
    log.write_text("")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(
        VIRTUAL_ENV=str(fake_venv),
        REAL_PYTHON=sys.executable,
        STUB_LOG=str(log),
        TEST_RESULTS_DIR=str(tmp_path / "results"),
        **stub,
    )
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "test.sh")], env=env, capture_output=True, text=True
    )
    return result, log.read_text()


def test_all_green_passes_and_prints_the_closing_line(tmp_path: Path) -> None:
    result, calls = run_test_sh(tmp_path, STUB_TESTS="3")
    assert result.returncode == 0, result.stderr
    assert "total: 6 passed, 0 failed, 0 skipped" in result.stdout
    assert "-m ruff check ." in calls and "-m ruff format --check ." in calls
    pytest_calls = [line for line in calls.splitlines() if line.startswith("-m pytest")]
    assert pytest_calls[0].startswith("-m pytest tests --ignore=tests/browser")
    assert pytest_calls[1].startswith("-m pytest tests/browser")


def test_no_tests_collected_fails(tmp_path: Path) -> None:
    result, _ = run_test_sh(tmp_path, STUB_PYTEST_RC="5", STUB_TESTS="0")
    assert result.returncode != 0
    assert "no test ran" in result.stderr


def test_a_failing_step_fails_but_the_later_steps_still_run(tmp_path: Path) -> None:
    result, calls = run_test_sh(tmp_path, STUB_RUFF_RC="1")
    assert result.returncode != 0
    assert "FAILED: ruff check" in result.stderr
    assert "-m pytest tests/browser" in calls, "one run should show every red step"


def test_skips_fail_in_ci_only(tmp_path: Path) -> None:
    local, _ = run_test_sh(tmp_path, STUB_SKIPPED="1")
    assert local.returncode == 0, local.stderr
    ci, _ = run_test_sh(tmp_path, STUB_SKIPPED="1", CI="true")
    assert ci.returncode != 0
    assert "skipped" in ci.stderr


def write_report(
    path: Path, tests: int, failures: int = 0, errors: int = 0, skipped: int = 0
) -> Path:
    path.write_text(
        f'<testsuites><testsuite name="pytest" tests="{tests}" failures="{failures}" '
        f'errors="{errors}" skipped="{skipped}"/></testsuites>'
    )
    return path


@pytest.mark.parametrize(
    ("counts", "no_skips", "ok"),
    [
        ({"tests": 4}, False, True),
        ({"tests": 0}, False, False),
        ({"tests": 4, "failures": 1}, False, False),
        ({"tests": 4, "errors": 1}, False, False),
        ({"tests": 4, "skipped": 1}, False, True),
        ({"tests": 4, "skipped": 1}, True, False),
    ],
)
def test_junit_summary_verdicts(
    tmp_path: Path, counts: dict[str, int], no_skips: bool, ok: bool
) -> None:
    summary = load_junit_summary()
    report = write_report(tmp_path / "r.xml", **counts)
    argv = [*(["--no-skips"] if no_skips else []), str(report)]
    assert (summary.main(argv) == 0) is ok


def test_junit_summary_fails_on_a_missing_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = load_junit_summary()
    good = write_report(tmp_path / "good.xml", tests=2)
    assert summary.main([str(good), str(tmp_path / "absent.xml")]) == 1
    assert "total: 2 passed, 0 failed, 0 skipped" in capsys.readouterr().out


def test_ci_script_runs_the_readme_test_command_and_the_container_checks() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci
    assert "bash scripts/test.sh" in ci
    assert "hadolint Dockerfile" in ci
    assert "check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml" in ci
    assert "apt-get install" in ci and "chromium" in ci
    # Redis mode's tests start their own redis-server, which CI must have before they run.
    assert "install -y -qq --no-install-recommends redis-server" in ci
    assert ci.index("redis-server") < ci.index("bash scripts/test.sh")
    readme = (REPO / "README.md").read_text()
    assert "bash scripts/test.sh" in readme


def test_ci_script_runs_the_docker_check_as_its_own_step() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert 'bash scripts/docker_check.sh || failed+=("scripts/docker_check.sh")' in ci
    assert ci.index("bash scripts/test.sh") < ci.index("bash scripts/docker_check.sh")


@pytest.mark.parametrize("ci", [False, True])
def test_docker_check_that_cannot_run_fails_in_ci_and_explains_elsewhere(
    tmp_path: Path, ci: bool
) -> None:
    # A virtualenv whose python has no httpx/websockets: the check cannot run (as a user who
    # is not root it stops one step earlier, the same way). Nothing is installed or started.
    fake_venv = tmp_path / "venv"
    (fake_venv / "bin").mkdir(parents=True)
    python = fake_venv / "bin" / "python"
    python.write_text("#!/usr/bin/env bash\nexit 1\n")
    python.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(VIRTUAL_ENV=str(fake_venv), **({"CI": "true"} if ci else {}))
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "docker_check.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if ci:
        assert result.returncode == 1, result.stdout + result.stderr
        assert "FAIL: docker check cannot run:" in result.stderr
    else:
        assert result.returncode == 0, result.stdout + result.stderr
        assert "docker check not run:" in result.stderr
        assert "with CI=true this is a failure" in result.stderr
