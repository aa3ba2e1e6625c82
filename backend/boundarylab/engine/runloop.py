"""Running a training run live: ``RunStepper``, one run's pacing, report cadence, frame
throttling and control as a state machine that never blocks, and ``RunLoop``, which drives
one stepper in a blocking loop fed by a command source.

A worker that interleaves many runs drives many steppers itself; the command line and the
tests use ``RunLoop``. Both emit the typed events of events.py.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from boundarylab.engine.config import RunConfig
from boundarylab.engine.events import (
    UNITS_OFF,
    UNITS_ON,
    RunEvent,
    StatusChanged,
)
from boundarylab.engine.knobs import Retune
from boundarylab.engine.training import Trainer

Emit = Callable[[RunEvent], None]
Command = str | Retune  # a control action (events.ACTIONS, UNITS_ON/OFF) or a change of knobs
NextCommand = Callable[[float], "Command | None"]

PAUSE_WAIT = 0.5  # seconds one wait for a command blocks while paused
PACE_TICK = 0.05  # a paced run takes steps in slices of about this many seconds
CHUNK_SECONDS = 0.02  # one tick of a run trains for about this long, so others get a turn
# Frames may take at most about this share of a run's time: a big network on a fine grid
# costs seconds per frame, and max_fps alone would then leave no time for training.
FRAME_SHARE = 0.25


class RunStepper:
    """One run's pacing, report cadence, frame throttling and control, never blocking.

    Whoever drives it (``RunLoop`` below, or a worker that interleaves many runs) calls
    ``start()`` once, then ``tick()`` whenever ``due_in()`` says a tick is due, and
    ``command(action)`` for "pause" | "resume" | "step" | "cancel", or a ``knobs.Retune``
    (new learning rate, λ or pace from the next step on). Each tick trains for
    about CHUNK_SECONDS at most (a paced run: the steps due, in slices of PACE_TICK), so a
    driver can share a CPU between many runs and stay responsive to commands; a ``step``
    while paused is trained over as many ticks as it needs, and a cancel stops it.
    ``final`` is the run's end status once it has ended. ``emit`` receives every event.
    ``clock`` (seconds) paces the run and throttles frames to ``view.max_fps``; chunk sizing
    and frame cost use real time (``timer``). ``frames_wanted`` False skips the throttled
    frames (nobody watches them); the first, each stepped and the final frame are always made.
    """

    def __init__(
        self,
        config: RunConfig,
        emit: Emit,
        *,
        clock: Callable[[], float] = time.monotonic,
        trainer: Trainer | None = None,
    ) -> None:
        self.config = config
        self.emit = emit
        self.clock = clock
        self.trainer = trainer
        self.status = "queued"
        self.final: str | None = None
        self.frames_wanted = True
        self.paused = False
        self._step_target: int | None = None  # a step while paused trains up to here
        self._steps_queued = 0  # steps asked for while one was still being trained
        self._last_progress = -1
        self._last_frame = -1
        self._last_frame_time = -math.inf
        self._frame_cost = 0.0
        self.timer = time.perf_counter  # real time: frame cost and chunk sizing
        self._chunk = 16
        self._pace_t0 = 0.0
        self._pace_k0 = 0
        # Unit views (engine/unitview.py) cost a forward pass per frame: computed only while
        # a viewer asked for them (UNITS_ON), and once at the end for the run's snapshot.
        self.units_wanted = False
        self.pace = config.training.steps_per_second  # a Retune may change it

    # -- the driver's side -------------------------------------------------------------------
    def start(self) -> None:
        """Build the trainer (if not given) and send the first status, progress and frame."""
        self._guard(self._start)

    def tick(self) -> None:
        """Train one bounded slice (when one is due) and report what it reached."""
        if self.final is None:
            self._guard(self._tick)

    def command(self, action: Command) -> None:
        """Apply a control action; the run may end because of it (see ``final``)."""
        if self.final is None:
            self._guard(lambda: self._handle(action))

    def stop(self, message: str) -> None:
        """End the run now, ``cancelled`` with ``message`` (why: a time bound, say)."""
        if self.final is None:
            self._guard(lambda: self._status("cancelled", message))
            self.final = self.final or "cancelled"

    def due_in(self) -> float | None:
        """Seconds until the next tick is due (0: now; ``math.inf``: only a command moves this
        run, it is paused); None once the run has ended."""
        if self.final is not None:
            return None
        if self.paused:
            return 0.0 if self._step_target is not None else math.inf
        return self._pace_wait()

    @property
    def paced(self) -> bool:
        return self.pace is not None

    # -- internals ---------------------------------------------------------------------------
    def _guard(self, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as exc:  # a run must end with a status, whatever went wrong
            message = f"Training failed: {type(exc).__name__}: {exc}"
            try:
                self._status("failed", message)
            except Exception:
                self.status = "failed"
            self.final = "failed"

    def _status(self, status: Any, message: str | None = None) -> None:
        self.status = status
        self.emit(StatusChanged(status, message))

    def _progress(self) -> None:
        assert self.trainer is not None
        self.emit(self.trainer.report())
        self._last_progress = self.trainer.iteration

    def _frame(self) -> None:
        assert self.trainer is not None
        started = self.timer()
        self.emit(self.trainer.boundary())
        if self.units_wanted:
            self.emit(self.trainer.units())
        self._frame_cost = self.timer() - started
        self._last_frame = self.trainer.iteration
        self._last_frame_time = self.clock()

    def _start(self) -> None:
        self._status("running")
        if self.trainer is None:
            self.trainer = Trainer(self.config)
        self._progress()
        self._frame()
        self._reset_pace()
        self._check_end()

    def _tick(self) -> None:
        assert self.trainer is not None
        if self.paused:
            if self._step_target is not None:
                self._advance_step()
            return
        if self._pace_wait() > 0:
            return
        self._advance_chunk()
        self._check_end()

    def _check_end(self) -> None:
        assert self.trainer is not None
        if self.final is not None:
            return
        if self.trainer.diverged_message is not None:
            self.final = self._diverged()
        elif self.trainer.done:
            self.final = self._finish()

    def _reset_pace(self) -> None:
        assert self.trainer is not None
        self._pace_t0, self._pace_k0 = self.clock(), self.trainer.iteration

    def _pace_wait(self) -> float:
        """Seconds until the next chunk is due; 0 when unpaced or late."""
        sps = self.pace
        if sps is None or self.trainer is None:
            return 0.0
        due = self._pace_t0 + (self.trainer.iteration - self._pace_k0) / sps
        return max(0.0, due - self.clock())

    def _chunk_size(self, limit: int) -> int:
        assert self.trainer is not None
        every = self.config.training.report_every
        n = min(every - self.trainer.iteration % every, self._chunk, limit)
        sps = self.pace
        if sps is not None and not self.paused:
            n = min(n, max(1, round(sps * PACE_TICK)))
        return max(1, n)

    def _train(self, limit: int) -> int:
        """Advance one timed chunk of at most ``limit`` steps; resize the next chunk."""
        assert self.trainer is not None
        started = self.timer()
        taken = self.trainer.advance(self._chunk_size(limit))
        elapsed = self.timer() - started
        if taken > 0:
            # Size the next chunk to take about CHUNK_SECONDS, so commands stay responsive.
            rate = taken / max(elapsed, 1e-6)
            self._chunk = int(min(max(1, rate * CHUNK_SECONDS), 4 * self._chunk + 16))
        return taken

    def _advance_chunk(self) -> None:
        assert self.trainer is not None
        trainer = self.trainer
        self._train(trainer.total)
        if trainer.diverged_message is not None:
            return
        if trainer.iteration % self.config.training.report_every == 0:
            self._progress()
        if not self.frames_wanted or trainer.done:
            return  # the final frame comes with the end
        gap = max(1.0 / self.config.view.max_fps, self._frame_cost / FRAME_SHARE)
        if self.clock() - self._last_frame_time < gap:
            return
        sps = self.config.training.steps_per_second
        # A paced run that has fallen behind (its worker is overloaded) gets at most the
        # frames its steps would have had on pace at max_fps: frames by the wall clock alone
        # would make a slowed run cost more per step, and slow every run on its worker.
        # (Not by `gap`: one slow frame on a busy machine would then starve a short run.)
        steps_per_frame = None if sps is None else sps / self.config.view.max_fps
        if steps_per_frame is not None and trainer.iteration - self._last_frame < (
            steps_per_frame - 0.5
        ):
            return
        self._frame()

    def _advance_step(self) -> None:
        assert self.trainer is not None and self._step_target is not None
        trainer = self.trainer
        self._train(self._step_target - trainer.iteration)
        if trainer.diverged_message is not None:
            self._step_target = None
            self._check_end()
            return
        if trainer.iteration < self._step_target and not trainer.done:
            return
        self._step_target = None
        self._progress()
        self._frame()
        self._check_end()
        if self._steps_queued and self.final is None:
            self._steps_queued -= 1
            self._begin_step()

    def _begin_step(self) -> None:
        assert self.trainer is not None
        every = self.config.training.report_every
        self._step_target = min(self.trainer.total, self.trainer.iteration + every)
        self._advance_step()  # a small step is over at once; a big one goes on in ticks

    def _handle(self, command: Command) -> None:
        assert self.trainer is not None
        if isinstance(command, Retune):
            self.emit(self.trainer.retune(command))
            if command.steps_per_second is not None:
                self.pace = command.steps_per_second
                self._reset_pace()  # the new pace counts from now, not from the start
            return None
        if command in (UNITS_ON, UNITS_OFF):
            self.units_wanted = command == UNITS_ON
            if self.units_wanted:
                self.emit(self.trainer.units())  # now, not at the next frame: it may be paused
            return None
        if command == "cancel":
            k, total = self.trainer.iteration, self.trainer.total
            self._final_units()
            self._status("cancelled", f"Cancelled at step {k} of {total}.")
            self.final = "cancelled"
        elif command == "pause" and not self.paused:
            self.paused = True
            self._status("paused")
        elif command == "resume" and self.paused:
            self.paused = False
            self._step_target, self._steps_queued = None, 0
            self._status("running")
            self._reset_pace()
        elif command == "step" and self.paused:
            if self._step_target is None:
                self._begin_step()
            else:
                self._steps_queued += 1

    def _final_units(self) -> None:
        """The run's last unit view, so a finished run's snapshot can show it (already sent
        when viewers were watching and the last frame is current)."""
        assert self.trainer is not None
        if not (self.units_wanted and self._last_frame == self.trainer.iteration):
            self.emit(self.trainer.units())

    def _diverged(self) -> str:
        assert self.trainer is not None and self.trainer.diverged_message is not None
        self._progress()
        self._final_units()
        self._status("diverged", self.trainer.diverged_message)
        return "diverged"

    def _finish(self) -> str:
        assert self.trainer is not None
        if self._last_progress != self.trainer.iteration:
            self._progress()
        if self._last_frame != self.trainer.iteration:
            self._frame()
        self._final_units()
        self._status("completed")
        return "completed"


class RunLoop:
    """A RunStepper driven to its end, blocking: one run alone in a thread or process.

    ``next_command(timeout_s)`` blocks up to timeout_s for "pause" | "resume" | "step" |
    "cancel" and returns it, or None on timeout; it is also how the loop sleeps when paced
    or paused, so control stays responsive. ``clock`` and ``trainer``: see RunStepper.
    """

    def __init__(
        self,
        config: RunConfig,
        emit: Emit,
        next_command: NextCommand,
        *,
        clock: Callable[[], float] = time.monotonic,
        trainer: Trainer | None = None,
    ) -> None:
        self.next_command = next_command
        self.stepper = RunStepper(config, emit, clock=clock, trainer=trainer)

    @property
    def status(self) -> str:
        return self.stepper.status

    @property
    def trainer(self) -> Trainer | None:
        return self.stepper.trainer

    @property
    def timer(self) -> Callable[[], float]:
        return self.stepper.timer

    @timer.setter
    def timer(self, timer: Callable[[], float]) -> None:
        self.stepper.timer = timer

    def run(self) -> str:
        """Train to the end; returns "completed" | "cancelled" | "diverged" | "failed"."""
        stepper = self.stepper
        stepper.start()
        while (due := stepper.due_in()) is not None:
            try:
                command = self.next_command(min(due, PAUSE_WAIT))
            except Exception as exc:
                stepper._guard(lambda exc=exc: _raise(exc))
                break
            if command is not None:
                stepper.command(command)
            elif due <= PAUSE_WAIT:
                stepper.tick()
        assert stepper.final is not None
        return stepper.final


def _raise(exc: Exception) -> None:
    raise exc
