"""What a default step and a boundary frame cost on THIS machine, as a capacity.Calibration
(how many times the reference constants' figures), for admission and the queue's waits.

Measured once per server process when its pool starts (`resolve("auto")`): the engine's own
default run for a few hundred steps and a few frames, best of a few, ~30-60 ms in all. In
the server rather than in each worker: the figure must be there before the first POST (a
flood arriving while nice-19 workers wait seconds for a CPU would otherwise be admitted on
the reference figures, the very bug), it needs no change to the worker protocol, and it is
taken once rather than per worker. It counts CPU time of this thread (`time.thread_time`),
not wall time, so a busy machine slows it little; the best of several repeats drops the
ones a cache-cold start or an interruption inflated. Where the machine is busier than
that, the workers' heartbeats (measured load) and waits.py's observed rates correct it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache

from boundarylab.engine.config import RunConfig
from boundarylab.server.capacity import Calibration, frame_seconds, step_seconds

STEPS = 256  # steps a repeat trains: two finiteness checks' worth (training.CHECK_EVERY)
FRAMES = 4  # boundary frames a repeat draws
REPEATS = 3
# A measured scale outside this is not a real machine but a broken measurement (a clock
# that did not move, a process stopped mid-way): clamp rather than refuse every run.
SCALE_BOUNDS = (0.05, 50.0)


def _best(action: Callable[[], object], repeats: int) -> float:
    """The fewest CPU seconds (this thread's) `action` took over `repeats` calls."""
    best = float("inf")
    for _ in range(repeats):
        started = time.thread_time()
        action()
        best = min(best, time.thread_time() - started)
    return best


def _clamp(scale: float) -> float:
    low, high = SCALE_BOUNDS
    return min(high, max(low, scale))


def measure(steps: int = STEPS, frames: int = FRAMES, repeats: int = REPEATS) -> Calibration:
    """Train the default run (the article's) for `steps` steps and draw `frames` boundary
    frames, best of `repeats`; each figure over the reference constants' for that run."""
    from boundarylab.engine.training import Trainer

    config = RunConfig.model_validate({"training": {"iterations": steps * (repeats + 1)}})
    trainer = Trainer(config)
    trainer.advance(8)  # first touches: buffers, the first check
    trainer.boundary()  # the grid is made at the first frame and kept
    step = _best(lambda: trainer.advance(steps), repeats) / steps
    frame = _best(lambda: [trainer.boundary() for _ in range(frames)], repeats) / frames
    return Calibration(
        step=_clamp(step / step_seconds(config)), frame=_clamp(frame / frame_seconds(config))
    )


@lru_cache(maxsize=1)
def measured() -> Calibration:
    """This machine's calibration, measured at the first call of the process."""
    return measure()


def resolve(setting: float | str) -> Calibration:
    """The calibration a `cpu_calibration` setting asks for: "auto" measures it (once per
    process); a number pins both figures to that many times the reference's."""
    if setting == "auto":
        return measured()
    scale = float(setting)
    return Calibration(step=scale, frame=scale)
