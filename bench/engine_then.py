"""The engine then and now, side by side in one process (a benchmark, not a test).

    .venv/bin/python bench/engine_then.py [--rev 993593a] [--repeat 7] [--steps 20000]

Checks an older commit's engine out of git into a temporary directory (its package renamed
``boundarylab_then`` so both import in one interpreter) and times, in turn, best of
``--repeat`` by CPU time (wall time is noise on a shared machine):

- ``plain``: the article's loop as written (bench/engine.py's ``plain_loop``);
- ``then trainer`` / ``now trainer``: ``Trainer.advance(steps)`` of the default run, with its
  finiteness checks, as bench/engine.py times it;
- ``then tape`` / ``now tape``: the bare fast path, the full-batch step replayed ``steps``
  times with nothing around it.

The default ``--rev`` is the last commit before the engine was restructured (flat
``nn.Network`` with its tape, 2026-11-29 00:30). Both engines must end on the same weights,
bit for bit, or the script says so.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import make_moons

from boundarylab.engine.config import RunConfig
from boundarylab.engine.training import Trainer
from engine import plain_loop

ROOT = Path(__file__).resolve().parent.parent
THEN = "boundarylab_then"


def check_out(rev: str, into: Path) -> None:
    """``backend/boundarylab`` of ``rev`` as the package ``boundarylab_then`` under ``into``."""
    archive = into / "then.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(ROOT), "archive", rev, "backend/boundarylab"],
                       stdout=out, check=True)  # fmt: skip
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    (into / "backend" / "boundarylab").rename(into / THEN)
    for path in (into / THEN).rglob("*.py"):
        text = path.read_text()
        path.write_text(re.sub(r"\bboundarylab(?=[. ])", THEN, text))


def trainer_run(module: Any, config: Any, steps: int) -> Callable[[], tuple[float, np.ndarray]]:
    def run() -> tuple[float, np.ndarray]:
        trainer = module.Trainer(config)
        started = time.process_time()
        trainer.advance(steps)
        return time.process_time() - started, trainer.net.theta

    return run


def tape_run(make: Callable[[], Any], steps: int) -> Callable[[], tuple[float, np.ndarray]]:
    def run() -> tuple[float, np.ndarray]:
        net, workspace = make()
        step = net.step_loaded
        started = time.process_time()
        with np.errstate(all="ignore"):
            for _ in range(steps):
                step(workspace)
        return time.process_time() - started, net.theta

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="993593a", help="the older commit (default 993593a)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20000)
    args = parser.parse_args()
    steps = args.steps
    with tempfile.TemporaryDirectory() as tmp:
        check_out(args.rev, Path(tmp))
        sys.path.insert(0, tmp)
        then = importlib.import_module(f"{THEN}.engine.training")
        then_config = importlib.import_module(f"{THEN}.engine.config").RunConfig
        body = {"training": {"iterations": steps}}
        old_cfg, new_cfg = then_config.model_validate(body), RunConfig.model_validate(body)
        X, y = make_moons(300, noise=0.20, random_state=0)

        def old_net() -> tuple[Any, Any]:
            trainer = then.Trainer(old_cfg)
            return trainer.net, trainer._full_ws

        def new_net() -> tuple[Any, Any]:
            trainer = Trainer(new_cfg)
            return trainer.net, trainer.batches._full

        def plain() -> tuple[float, np.ndarray]:
            started = time.process_time()
            plain_loop(X, y, 3, steps)
            return time.process_time() - started, np.zeros(0)

        fns = {
            "plain": plain,
            "then trainer": trainer_run(then, old_cfg, steps),
            "now trainer": trainer_run(sys.modules[Trainer.__module__], new_cfg, steps),
            "then tape": tape_run(old_net, steps),
            "now tape": tape_run(new_net, steps),
        }
        best = dict.fromkeys(fns, float("inf"))
        weights: dict[str, np.ndarray] = {}
        for _ in range(args.repeat):
            for name, fn in fns.items():
                seconds, weights[name] = fn()
                best[name] = min(best[name], seconds)
    print(f"engine of {args.rev} ('then') vs this tree ('now'), default run, {steps} steps, "
          f"best of {args.repeat} by CPU time; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")  # fmt: skip
    for name, seconds in best.items():
        ratio = best["plain"] / seconds
        print(f"  {name:13s} {seconds:7.3f} CPU-s  {steps / seconds:7.0f} steps/s  "
              f"{ratio:5.2f}x the plain loop")  # fmt: skip
    print(
        f"  now / then, trainer: {best['now trainer'] / best['then trainer']:.3f} of the time;"
        f" tape: {best['now tape'] / best['then tape']:.3f}"
    )
    same = all(np.array_equal(weights["then trainer"], weights[k])
               for k in ("now trainer", "then tape", "now tape"))  # fmt: skip
    print(f"  same weights after {steps} steps, then and now, bit for bit: {same}")


if __name__ == "__main__":
    main()
