"""A live run's pace and chunk sizes: ``Pacer``, how many steps a tick trains and when the
next tick is due. Part of runloop.RunStepper (which owns control; framing.py owns frames).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from boundarylab.engine.training import Trainer

PACE_TICK = 0.05  # a paced run takes steps in slices of about this many seconds
CHUNK_SECONDS = 0.02  # one tick of a run trains for about this long, so others get a turn


class Pacer:
    """Steps per second (``pace``; None: as fast as the CPU allows), counted from the last
    ``reset`` (``clock`` seconds), and the chunk a tick trains: up to the next report, at
    most PACE_TICK of the pace, and about CHUNK_SECONDS of real time (``timer``) as measured
    on the chunks before, so a driver can share a CPU between many runs and stay responsive.
    """

    def __init__(self, pace: float | None, clock: Callable[[], float]) -> None:
        self.pace = pace
        self.clock = clock
        self.timer: Callable[[], float] = time.perf_counter
        self._chunk = 16
        self._t0 = 0.0
        self._k0 = 0

    @property
    def paced(self) -> bool:
        return self.pace is not None

    def reset(self, iteration: int) -> None:
        """Count the pace from now, at ``iteration`` (a start, a resume, a new pace)."""
        self._t0, self._k0 = self.clock(), iteration

    def wait(self, iteration: int) -> float:
        """Seconds until the chunk after ``iteration`` is due; 0 when unpaced or late."""
        if self.pace is None:
            return 0.0
        due = self._t0 + (iteration - self._k0) / self.pace
        return max(0.0, due - self.clock())

    def chunk_size(self, iteration: int, report_every: int, limit: int, paused: bool) -> int:
        """Steps the next chunk takes from ``iteration``: at most ``limit``, never past the
        next report, at most a PACE_TICK of the pace unless paused (a step is not paced)."""
        n = min(report_every - iteration % report_every, self._chunk, limit)
        if self.pace is not None and not paused:
            n = min(n, max(1, round(self.pace * PACE_TICK)))
        return max(1, n)

    def train(self, trainer: Trainer, limit: int, report_every: int, paused: bool) -> int:
        """Advance ``trainer`` one timed chunk of at most ``limit`` steps (see
        ``chunk_size``); returns the steps taken and resizes the next chunk."""
        every = report_every
        started = self.timer()
        taken = trainer.advance(self.chunk_size(trainer.iteration, every, limit, paused))
        elapsed = self.timer() - started
        if taken > 0:
            # Size the next chunk to take about CHUNK_SECONDS, so commands stay responsive.
            rate = taken / max(elapsed, 1e-6)
            self._chunk = int(min(max(1, rate * CHUNK_SECONDS), 4 * self._chunk + 16))
        return taken
