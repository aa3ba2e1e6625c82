"""Helpers of the packaging tests: fresh virtualenvs, a started server, the Dockerfile model.

These tests install the project the way a user or the container does (from a built wheel,
in a virtualenv that shares nothing with the development one) and talk to the real server
process over loopback HTTP, so they catch what an editable install hides: files missing from
the wheel, dependencies missing from pyproject, code that only works from the repo root.
The server process is started by bench/serverproc.py, as every other test's is.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import venv
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60.0
SHUTDOWN_TIMEOUT_S = 15.0  # what `docker stop` waits before it kills


def clean_env(venv_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment with `venv_dir` first on PATH and nothing that would let
    the child import the repository's source (PYTHONPATH) or the development venv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "BOUNDARYLAB_"))}
    env.pop("VIRTUAL_ENV", None)
    dev_bin = str(Path(sys.executable).parent)
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != dev_bin]
    env["PATH"] = os.pathsep.join([str(venv_dir / "bin"), *path])
    env["VIRTUAL_ENV"] = str(venv_dir)
    env.update(extra or {})
    return env


def make_venv(path: Path) -> Path:
    """A new virtualenv with pip and no system site-packages; returns its directory."""
    venv.EnvBuilder(with_pip=True, clear=True, system_site_packages=False).create(path)
    return path


def run_checked(args: list[str] | str, *, cwd: Path, env: Mapping[str, str]) -> None:
    """Run a command; on failure, fail the test with its output instead of a bare exit code."""
    result = subprocess.run(
        args,
        cwd=cwd,
        env=dict(env),
        shell=isinstance(args, str),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        pytest.fail(
            f"command failed ({result.returncode}): {args}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )


# --- the Dockerfile, read as data so tests can replay it ----------------------------------


@dataclass
class Instruction:
    keyword: str  # upper-case: FROM, RUN, COPY, ...
    args: str  # the rest of the (continuation-joined) line


@dataclass
class Stage:
    base: str  # the image FROM names, build arguments replaced by their defaults
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)
    written_base: str = ""  # FROM's image as written, e.g. ${PYTHON_IMAGE}

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


def parse_dockerfile(text: str) -> list[Stage]:
    """Split a Dockerfile into stages of instructions (comments dropped, `\\` lines joined)."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    build_args: dict[str, str] = {}  # ARGs before the first FROM: what FROM lines may use
    for line in logical:
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            words = args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            base = expand_build_args(words[0], build_args)
            stages.append(Stage(base=base, name=name, written_base=words[0]))
        elif not stages and keyword.upper() == "ARG":
            arg, _, default = args.strip().partition("=")
            build_args[arg] = default.strip("\"'")
        elif not stages:
            raise ValueError(f"instruction before FROM: {line}")
        else:
            stages[-1].instructions.append(Instruction(keyword.upper(), args.strip()))
    return stages


def expand_build_args(text: str, build_args: dict[str, str]) -> str:
    """`${NAME}` or `$NAME` replaced by that build argument's default, as `docker build`
    does without --build-arg; a name with no default is an error."""

    def default(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        if not build_args.get(name):
            raise ValueError(f"{text}: build argument {name} has no default")
        return build_args[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", default, text)


def parse_env(args: str) -> dict[str, str]:
    """`ENV A=1 B="two words"` -> {"A": "1", "B": "two words"}."""
    pairs = shlex.split(args)
    return dict(pair.split("=", 1) for pair in pairs)


def exec_form(args: str) -> list[str]:
    """The JSON argv of an exec-form CMD/HEALTHCHECK; fails the test on shell form."""
    try:
        argv = json.loads(args)
    except json.JSONDecodeError:
        pytest.fail(f"not exec form (a JSON array): {args}")
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv), args
    return argv


def healthcheck_argv(stage: Stage) -> list[str]:
    instruction = stage.last("HEALTHCHECK")
    assert instruction is not None, "the runtime stage has no HEALTHCHECK"
    _options, sep, command = instruction.args.partition("CMD ")
    assert sep, f"HEALTHCHECK without CMD: {instruction.args}"
    return exec_form(command)
