"""What a run costs and how long it will take: the numbers admission and the queue's
expected wait are made of (pool.py). Rough on purpose: a worker's measured load (its
heartbeats) corrects the estimate of a run within a second of its start.

The constants are a REFERENCE machine's (an earlier 2-core box: the default run, 300
points, 2-3-2, 100×100 grid, ~10 µs a step and ~0.6 ms a boundary frame). Machines differ
(~40-47 µs a step on the 2026-11-29 box), so admission and the queue's waits scale them by
a `Calibration` measured on the machine itself when the pool starts (calibration.py). The
checks at submit (`budget_errors`) keep the reference figures: the same config is accepted
or refused alike on every machine (a run past its real CPU budget is still stopped by its
worker, with a message).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from boundarylab.engine.config import RunConfig

STEP_OVERHEAD_S = 9e-6  # Python and NumPy call overhead of one step, whatever its size
STEP_PER_MAC_S = 1e-10  # one multiply-add of the forward and backward pass, per point
FRAME_OVERHEAD_S = 6e-4  # quantising and encoding a 100×100 frame
FRAME_PER_MAC_S = 1.5e-10  # one multiply-add of the forward pass, per grid cell
# (6×256 on 5000 points: ~0.5 s a step, as measured in issue 11; a 300×300 frame ~4 s.)


@dataclass(frozen=True)
class Calibration:
    """How many times this machine's CPU seconds are the reference constants': `step` for a
    training step, `frame` for a boundary frame (2.0: twice as slow as the reference)."""

    step: float = 1.0
    frame: float = 1.0


REFERENCE = Calibration()  # the constants as they stand: what validation at submit uses


def _macs(config: RunConfig, n_outputs: int = 2) -> int:
    """Multiply-adds of one forward pass for one point."""
    sizes = [len(config.model.features), *config.model.hidden_sizes, n_outputs]
    return sum(a * b for a, b in itertools.pairwise(sizes))


def step_seconds(config: RunConfig, calibration: Calibration = REFERENCE) -> float:
    """CPU seconds of one training step (forward + backward over the batch), on a machine
    `calibration` times the reference's."""
    points = config.training.batch_size or config.dataset.n_samples
    return (STEP_OVERHEAD_S + 3 * points * _macs(config) * STEP_PER_MAC_S) * calibration.step


def frame_seconds(config: RunConfig, calibration: Calibration = REFERENCE) -> float:
    """CPU seconds of one boundary frame, on a machine `calibration` times the reference's."""
    cells = config.view.resolution**2
    return (FRAME_OVERHEAD_S + cells * _macs(config) * FRAME_PER_MAC_S) * calibration.frame


def paced_cores(
    config: RunConfig, pace: float | None = None, calibration: Calibration = REFERENCE
) -> float:
    """The share of one CPU a paced run takes (1.0 or more: it cannot keep its pace), at its
    config's pace or at `pace` steps/s (a pace changed while it trains); an unpaced run 1.0."""
    sps = pace if pace is not None else config.training.steps_per_second
    if sps is None:
        return 1.0
    frame = frame_seconds(config, calibration)
    frames = min(config.view.max_fps, 1.0 / max(frame, 1e-9) * 0.25)
    return sps * step_seconds(config, calibration) + frames * frame


def fastest_pace(config: RunConfig, cores: float, calibration: Calibration = REFERENCE) -> float:
    """The pace (steps/s) at which a paced run takes `cores` of a CPU (paced_cores' inverse;
    0 when its frames alone take that much)."""
    frames_only = paced_cores(config, 0.0, calibration)
    return max(0.0, (cores - frames_only) / step_seconds(config, calibration))


def remaining_seconds(
    config: RunConfig,
    iteration: int,
    pace: float | None = None,
    calibration: Calibration = REFERENCE,
) -> float:
    """Wall seconds a run still needs from `iteration` on a core of its own: its pace
    (`pace`, when changed while it trains), or its CPU time alone if that is longer."""
    left = max(0, config.training.iterations - iteration)
    sps = pace if pace is not None else config.training.steps_per_second
    cpu = left * step_seconds(config, calibration)
    return max(left / sps, cpu) if sps is not None else cpu


def pace_error(
    config: RunConfig, iteration: int, elapsed_s: float, pace: float, max_run_seconds: float
) -> str | None:
    """Why a running run cannot take the new `pace` (steps/s), or None: the steps it has left
    at that pace would take it past this server's wall time per run (it would be stopped
    half-way: the same rule budget_errors applies at submit)."""
    left = max(0, config.training.iterations - iteration)
    needed, allowed = left / pace, max_run_seconds - elapsed_s
    if needed <= allowed:
        return None
    return (
        f"At {pace:g} steps/s, the {left} steps this run has left take {needed:.0f} s, but "
        f"this server ends a run after {max_run_seconds:g} s and it has {max(0.0, allowed):.0f} s "
        f"left: use at least {left / max(allowed, 1e-9):.3g} steps/s"
    )


def expected_waits(running: Iterable[float], queued: Iterable[float], slots: int) -> list[float]:
    """Seconds until each queued run starts, in queue order.

    `running`: the seconds each running run still needs; `queued`: how long each queued run
    will take once started; `slots`: how many runs train at once. One run ending lets the
    next one in: a simulation of the queue, not a promise."""
    slots = max(1, slots)
    ends = sorted(running)[:slots]
    heap = [0.0] * (slots - len(ends)) + ends  # sorted: already a heap
    waits: list[float] = []
    for duration in queued:
        start = heapq.heappop(heap)
        waits.append(start)
        heapq.heappush(heap, start + duration)
    return waits


def budget_errors(
    config: RunConfig, max_run_seconds: float, max_cpu_seconds: float, max_frame_seconds: float
) -> list[tuple[tuple[str, ...], str, object]]:
    """Why this run cannot fit the server's time bounds, as (field path, message, input):
    empty when it fits. Checked at submit, so an impossible run is refused up front."""
    errors: list[tuple[tuple[str, ...], str, object]] = []
    t = config.training
    sps = t.steps_per_second
    if sps is not None and t.iterations / sps > max_run_seconds:
        least = t.iterations / max_run_seconds
        errors.append((("training", "steps_per_second"),
                       f"At {sps:g} steps/s, {t.iterations} iterations take "
                       f"{t.iterations / sps:.0f} s, but this server ends a run after "
                       f"{max_run_seconds:g} s: use at least {least:.3g} steps/s or fewer "
                       "training.iterations", sps))  # fmt: skip
    cpu = t.iterations * step_seconds(config)
    if cpu > max_cpu_seconds:
        errors.append((("training", "iterations"),
                       f"This network on this data would need about {cpu:.0f} CPU-seconds for "
                       f"{t.iterations} iterations; this server allows {max_cpu_seconds:g} per "
                       "run: use fewer iterations, fewer or smaller hidden layers, or fewer "
                       "points (dataset.n_samples or training.batch_size)",
                       t.iterations))  # fmt: skip
    frame = frame_seconds(config)
    if frame > max_frame_seconds:
        errors.append((("view", "resolution"),
                       f"One boundary frame of this network at resolution "
                       f"{config.view.resolution} would take about {frame:.1f} s; this server "
                       f"allows {max_frame_seconds:g} s: use a lower resolution or a smaller "
                       "network", config.view.resolution))  # fmt: skip
    return errors
