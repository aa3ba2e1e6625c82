"""Honest expected waits for queued runs (issue 15): from the rate running runs actually make.

capacity.remaining_seconds says how long a run takes at its pace (or at its estimated CPU
time, unpaced) on a core of its own. On a full machine runs make far less than that: 200
default runs at once, each told a wait from its pace, waited 4.6 times longer than told. So
here a running run's remaining time comes from the steps per second it made over its last
few seconds (RateWindow), and a queued run's duration is its nominal one stretched by how
much slower than nominal the running runs go right now (`slowdown`). A run too new to have
been measured counts at its nominal rate times that slowdown.

Before any running run has been measured (the first seconds of a flood: the very waits a
viewer is told on connecting), the slowdown is predicted instead: the CPU the running runs
ask for on this machine (capacity.paced_cores under its `Calibration`: an unpaced run asks
for a whole core) over the cores the workers have; and nominal times use the calibrated
cost of a step, not the reference machine's.

All rates are steps per second, all times seconds; `now` is time.monotonic().
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from boundarylab.engine.config import RunConfig
from boundarylab.server.capacity import (
    REFERENCE,
    Calibration,
    expected_waits,
    paced_cores,
    remaining_seconds,
)

WINDOW_S = 10.0  # a run's rate is measured over (about) its last this many seconds
MARK_EVERY_S = 1.0  # the window keeps one mark a second, so it costs O(WINDOW_S) memory
MIN_OBSERVED_S = 2.0  # a run younger than this is judged by its nominal rate: its first
# reports say more about its start (data set, first frame) than about its pace
STALLED = 0.02  # below this share of its nominal rate a run is paused or stuck: not a
# sample of what the machine achieves


class RateWindow:
    """The steps/s one run made over about its last WINDOW_S seconds, from its progress
    reports (iteration counts at times)."""

    def __init__(self, started: float) -> None:
        self._started = started
        self._marks: deque[tuple[float, int]] = deque([(started, 0)])
        self._last = (started, 0)

    def record(self, now: float, iteration: int) -> None:
        """The run reported `iteration` steps done at `now`."""
        self._last = (now, iteration)
        if now - self._marks[-1][0] >= MARK_EVERY_S:
            self._marks.append(self._last)
            while len(self._marks) > 1 and now - self._marks[1][0] >= WINDOW_S:
                self._marks.popleft()  # the next mark still spans a whole window

    def rate(self, now: float) -> float | None:
        """Steps/s from the window's oldest mark to `now` (a run that stopped reporting
        slows down in it), or None while the run is younger than MIN_OBSERVED_S."""
        if now - self._started < MIN_OBSERVED_S:
            return None
        since, done = self._marks[0]
        return (self._last[1] - done) / max(now - since, 1e-9)


@dataclass(frozen=True)
class Progress:
    """What the pool knows of one running run: its config, steps done, its pace if changed
    while it trains (None: the config's), and its observed steps/s (None: too new)."""

    config: RunConfig
    iteration: int
    pace: float | None = None
    rate: float | None = None


def nominal_rate(
    config: RunConfig, pace: float | None = None, calibration: Calibration = REFERENCE
) -> float:
    """Steps/s the run would make on a core of its own: its pace, or what its estimated CPU
    time per step allows, whichever is lower (capacity.remaining_seconds' rate)."""
    seconds = remaining_seconds(config, 0, pace, calibration)
    return config.training.iterations / max(seconds, 1e-9)


def _measured(run: Progress, calibration: Calibration = REFERENCE) -> bool:
    nominal = nominal_rate(run.config, run.pace, calibration)
    return run.rate is not None and run.rate > STALLED * nominal


def predicted_slowdown(
    running: Iterable[Progress], cores: float, calibration: Calibration = REFERENCE
) -> float:
    """How many times longer than nominal runs should take when none has been measured yet:
    the CPU the running runs ask for (each at most a core: paced_cores under `calibration`)
    over the `cores` the workers have; at least 1.0."""
    demand = sum(min(1.0, paced_cores(run.config, run.pace, calibration)) for run in running)
    return max(1.0, demand / max(cores, 1e-9))


def slowdown(
    running: Iterable[Progress],
    calibration: Calibration = REFERENCE,
    cores: float | None = None,
) -> float:
    """How many times longer than nominal runs take on this machine now: the median over the
    measured, not stalled, running runs of nominal / observed rate; when none is, the
    `predicted_slowdown` over `cores` (None: 1.0)."""
    running = list(running)
    ratios = [
        nominal_rate(run.config, run.pace, calibration) / run.rate
        for run in running
        if _measured(run, calibration) and run.rate is not None
    ]
    if ratios:
        return statistics.median(ratios)
    return 1.0 if cores is None else predicted_slowdown(running, cores, calibration)


def remaining(run: Progress, slow: float, calibration: Calibration = REFERENCE) -> float:
    """Seconds the running `run` still needs: its steps left at its observed rate, or (too
    new or stalled) its nominal remaining time stretched by the machine's `slow`down."""
    left = max(0, run.config.training.iterations - run.iteration)
    if _measured(run, calibration) and run.rate is not None:
        return left / run.rate
    return remaining_seconds(run.config, run.iteration, run.pace, calibration) * slow


def honest_waits(
    running: Sequence[Progress],
    queued: Iterable[RunConfig],
    slots: int,
    calibration: Calibration = REFERENCE,
    cores: float | None = None,
) -> list[float]:
    """Seconds until each queued run starts, in queue order: capacity.expected_waits over
    the running runs' remaining time at the rates they make and the queued runs' durations
    at the machine's current slowdown; `slots`: how many runs train at once (at least the
    ones running now); `calibration`: this machine's cost of a step against the reference;
    `cores`: what the workers have, for the slowdown predicted before any run is measured
    (None: no prediction, nominal times)."""
    slow = slowdown(running, calibration, cores)
    left = [remaining(run, slow, calibration) for run in running]
    durations = [remaining_seconds(config, 0, None, calibration) * slow for config in queued]
    return expected_waits(left, durations, max(len(left), slots))
