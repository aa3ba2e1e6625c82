"""Replays a Dockerfile outside a container: the packaging tests' stand-in for `docker build`.

Each stage gets its own directory as its filesystem; COPY copies from the repository (the
build context) or from an earlier stage's directory; RUN lines made of pip/python/rm run for
real with a fresh virtualenv's `python` and `pip` first on PATH, their absolute container
paths rewritten into the stage's directory. User creation is skipped (it only makes sense
inside an image; the USER line is checked statically). Any other RUN command fails the
replay, so a new install step cannot slip past it.
"""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging_support import (
    REPO,
    Stage,
    clean_env,
    exec_form,
    healthcheck_argv,
    make_venv,
    parse_env,
    run_checked,
)

# Commands the replay runs for real, and commands that only make sense inside an image.
REPLAYED_COMMANDS = {"pip", "python", "rm"}
CONTAINER_ONLY_COMMANDS = {"groupadd", "useradd"}
CONTEXT_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules")


@dataclass
class Replay:
    """What replaying the Dockerfile left behind: the stand-in image and how to start it."""

    venv_dir: Path
    rootfs: Path  # the runtime stage's filesystem
    stage_roots: dict[str, Path]  # every stage's filesystem, by index and by name
    workdir: Path  # the runtime stage's WORKDIR under rootfs
    env: dict[str, str]  # the runtime stage's ENV
    cmd: list[str]
    healthcheck: list[str]


def host_path(rootfs: Path, workdir: str, path: str) -> Path:
    """Where the container path `path` (relative to `workdir`) lies under `rootfs`."""
    return rootfs / str(PurePosixPath(workdir) / path).lstrip("/")


def replay_copy(args: str, rootfs: Path, workdir: str, stage_roots: dict[str, Path]) -> None:
    words = shlex.split(args)
    from_stage = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
    *sources, dest = [w for w in words if not w.startswith("--")]
    target = host_path(rootfs, workdir, dest)
    for source in sources:
        # --from=<stage> reads that stage's filesystem; otherwise the build context (the repo).
        src = (
            REPO / source if from_stage is None else host_path(stage_roots[from_stage], "/", source)
        )
        if src.is_dir():
            shutil.copytree(src, target, dirs_exist_ok=True, ignore=CONTEXT_IGNORE)
        else:
            if dest.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / src.name if target.is_dir() else target)


def replay_run(args: str, rootfs: Path, workdir: str, env: dict[str, str]) -> None:
    commands = [part.split()[0] for part in re.split(r"&&|;", args) if part.strip()]
    if set(commands) <= CONTAINER_ONLY_COMMANDS:
        return  # user creation: meaningful only inside the image; USER is checked statically
    unknown = set(commands) - REPLAYED_COMMANDS
    assert not unknown, f"teach this replay about {unknown} (RUN {args})"
    # Absolute container paths (/dist, ...) become paths under rootfs.
    command = re.sub(r"(?<=\s)/(?=[\w.*])", f"{rootfs}/", args)
    run_checked(["bash", "-c", command], cwd=host_path(rootfs, workdir, "."), env=env)


def replay_dockerfile(stages: list[Stage], root: Path) -> Replay:
    venv_dir = make_venv(root / "venv")  # stands in for python:3.11-slim's interpreter
    stage_roots: dict[str, Path] = {}  # each stage has its own filesystem, as in Docker
    for index, stage in enumerate(stages):
        rootfs = root / f"stage{index}"
        rootfs.mkdir()
        stage_roots[str(index)] = rootfs
        if stage.name:
            stage_roots[stage.name] = rootfs
        stage_env: dict[str, str] = {}
        workdir = "/"
        for instruction in stage.instructions:
            keyword, args = instruction.keyword, instruction.args
            if keyword == "ENV":
                stage_env.update(parse_env(args))
            elif keyword == "WORKDIR":
                workdir = str(PurePosixPath(workdir) / args)
                host_path(rootfs, workdir, ".").mkdir(parents=True, exist_ok=True)
            elif keyword == "COPY":
                replay_copy(args, rootfs, workdir, stage_roots)
            elif keyword == "RUN":
                replay_run(args, rootfs, workdir, clean_env(venv_dir, stage_env))
    cmd = stages[-1].last("CMD")
    assert cmd is not None
    return Replay(
        venv_dir=venv_dir,
        rootfs=rootfs,
        stage_roots=stage_roots,
        workdir=host_path(rootfs, workdir, "."),
        env=stage_env,
        cmd=exec_form(cmd.args),
        healthcheck=healthcheck_argv(stages[-1]),
    )


def built_wheels(replay: Replay) -> list[Path]:
    """The wheels the build stage produced (they stay in its filesystem after the replay)."""
    return sorted(replay.stage_roots["0"].rglob("boundarylab-*.whl"))
