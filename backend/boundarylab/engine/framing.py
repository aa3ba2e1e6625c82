"""A live run's frames: ``Framer`` decides when a boundary frame (and, while asked for, a unit
view) is made, and makes it. Part of runloop.RunStepper (pacing.py owns the pace).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from boundarylab.engine.config import RunConfig
from boundarylab.engine.events import RunEvent
from boundarylab.engine.training import Trainer

# Frames may take at most about this share of a run's time: a big network on a fine grid
# costs seconds per frame, and max_fps alone would then leave no time for training.
FRAME_SHARE = 0.25


class Framer:
    """Frame throttling for one run: at most ``view.max_fps`` frames a second by ``clock``,
    at most FRAME_SHARE of the run's time by what the last frame cost (``timer``), and for
    a paced run at most the frames its steps would have on pace.

    ``wanted`` False skips the throttled frames (nobody watches them); whoever drives the run
    still makes the first, each stepped and the final frame with ``make``. ``units`` adds
    the unit view (engine/unitview.py, a forward pass per frame) to each frame while a viewer
    asked for it.
    """

    def __init__(self, config: RunConfig, emit: Callable[[RunEvent], None],
                 clock: Callable[[], float]) -> None:  # fmt: skip
        self.config = config
        self.emit = emit
        self.clock = clock
        self.timer: Callable[[], float] = time.perf_counter
        self.wanted = True
        self.units = False
        self.last_iteration = -1
        self._last_time = -math.inf
        self._cost = 0.0

    def make(self, trainer: Trainer) -> None:
        """Emit a frame of the trainer's current state (and its unit view when asked for)."""
        started = self.timer()
        self.emit(trainer.boundary())
        if self.units:
            self.emit(trainer.units())
        self._cost = self.timer() - started
        self.last_iteration = trainer.iteration
        self._last_time = self.clock()

    def after_chunk(self, trainer: Trainer) -> None:
        """Make a frame after a chunk of training if one is due (see the class)."""
        if not self.wanted or trainer.done:
            return  # the final frame comes with the end
        view = self.config.view
        gap = max(1.0 / view.max_fps, self._cost / FRAME_SHARE)
        if self.clock() - self._last_time < gap:
            return
        sps = self.config.training.steps_per_second
        # A paced run that has fallen behind (its worker is overloaded) gets at most the
        # frames its steps would have had on pace at max_fps: frames by the wall clock alone
        # would make a slowed run cost more per step, and slow every run on its worker.
        # (Not by `gap`: one slow frame on a busy machine would then starve a short run.)
        steps_per_frame = None if sps is None else sps / view.max_fps
        if steps_per_frame is not None and trainer.iteration - self.last_iteration < (
            steps_per_frame - 0.5
        ):
            return
        self.make(trainer)

    def final_units(self, trainer: Trainer) -> None:
        """The run's last unit view, so a finished run's snapshot can show it (already sent
        when viewers were watching and the last frame is current)."""
        if not (self.units and self.last_iteration == trainer.iteration):
            self.emit(trainer.units())
