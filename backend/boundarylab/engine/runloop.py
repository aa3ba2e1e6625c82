"""Running a training run live: ``RunStepper``, one run's control (start, pause, step,
resume, cancel, knobs, its end) as a state machine that never blocks, and ``RunLoop``, which
drives one stepper in a blocking loop fed by a command source. A stepper's pace and chunk
sizes are pacing.Pacer's; when it makes frames framing.Framer's; what it sends (status,
progress, frames, the end) reporting.RunReports'.

A worker that interleaves many runs drives many steppers itself; the command line and the
tests use ``RunLoop``. Both emit the typed events of events.py.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from boundarylab.engine.config import RunConfig
from boundarylab.engine.events import UNITS_OFF, UNITS_ON, RunEvent
from boundarylab.engine.framing import FRAME_SHARE, Framer
from boundarylab.engine.knobs import Retune
from boundarylab.engine.pacing import CHUNK_SECONDS, PACE_TICK, Pacer
from boundarylab.engine.reporting import RunReports
from boundarylab.engine.training import Trainer

__all__ = ["CHUNK_SECONDS", "FRAME_SHARE", "PACE_TICK", "PAUSE_WAIT", "RunLoop", "RunStepper"]

Emit = Callable[[RunEvent], None]
Command = str | Retune  # a control action (events.ACTIONS, UNITS_ON/OFF) or a change of knobs
NextCommand = Callable[[float], "Command | None"]

PAUSE_WAIT = 0.5  # seconds one wait for a command blocks while paused


class RunStepper:
    """One run's control, never blocking.

    Its driver (``RunLoop`` below, or a worker interleaving many runs) calls ``start()`` once,
    ``tick()`` whenever ``due_in()`` says one is due, and ``command(action)`` for "pause" |
    "resume" | "step" | "cancel" or a ``knobs.Retune``. A tick trains one bounded chunk
    (pacing.Pacer), so a driver can share a CPU between runs and stay responsive; a ``step``
    while paused goes on over ticks until done or cancelled. ``final``: the end status once
    ended. ``emit`` gets every event (reporting.RunReports). ``clock`` paces the run and
    throttles frames; ``timer`` (real time) sizes chunks and measures frames (framing.Framer;
    ``frames_wanted`` False: only the first, stepped and final frames).
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
        self.final: str | None = None
        self.paused = False
        self._step_target: int | None = None  # a step while paused trains up to here
        self._steps_queued = 0  # steps asked for while one was still being trained
        self.pacer = Pacer(config.training.steps_per_second, clock)  # a Retune may change it
        self.framer = Framer(config, emit, clock)
        self.reports = RunReports(emit, self.framer)

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
            self._guard(lambda: self.reports.status_changed("cancelled", message))
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
    def status(self) -> str:
        """The last status sent ("queued" before the start)."""
        return str(self.reports.status)

    @property
    def paced(self) -> bool:
        return self.pacer.paced

    @property
    def pace(self) -> float | None:
        """Steps per second now (None: unpaced); a Retune may change it."""
        return self.pacer.pace

    @property
    def frames_wanted(self) -> bool:
        return self.framer.wanted

    @frames_wanted.setter
    def frames_wanted(self, wanted: bool) -> None:
        self.framer.wanted = wanted

    @property
    def timer(self) -> Callable[[], float]:
        """Real time: what chunk sizing and frame cost are measured by."""
        return self.pacer.timer

    @timer.setter
    def timer(self, timer: Callable[[], float]) -> None:
        self.pacer.timer = self.framer.timer = timer

    # -- internals ---------------------------------------------------------------------------
    def _guard(self, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as exc:  # a run must end with a status, whatever went wrong
            message = f"Training failed: {type(exc).__name__}: {exc}"
            try:
                self.reports.status_changed("failed", message)
            except Exception:
                self.reports.status = "failed"
            self.final = "failed"

    def _start(self) -> None:
        self.reports.status_changed("running")
        if self.trainer is None:
            self.trainer = Trainer(self.config)
        self.reports.progress_and_frame(self.trainer)
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
        if self.final is None:
            self.final = self.reports.end(self.trainer)

    def _reset_pace(self) -> None:
        assert self.trainer is not None
        self.pacer.reset(self.trainer.iteration)

    def _pace_wait(self) -> float:
        """Seconds until the next chunk is due; 0 when unpaced or late."""
        return 0.0 if self.trainer is None else self.pacer.wait(self.trainer.iteration)

    def _train(self, limit: int) -> int:
        assert self.trainer is not None
        every = self.config.training.report_every
        return self.pacer.train(self.trainer, limit, every, self.paused)

    def _advance_chunk(self) -> None:
        assert self.trainer is not None
        trainer = self.trainer
        self._train(trainer.total)
        if trainer.diverged_message is not None:
            return
        if trainer.iteration % self.config.training.report_every == 0:
            self.reports.progress(trainer)
        self.framer.after_chunk(trainer)

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
        self.reports.progress_and_frame(trainer)
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
                self.pacer.pace = command.steps_per_second
                self._reset_pace()  # the new pace counts from now, not from the start
        elif command in (UNITS_ON, UNITS_OFF):
            self.framer.units = command == UNITS_ON
            if self.framer.units:
                self.emit(self.trainer.units())  # now, not at the next frame: it may be paused
        elif command == "cancel":
            self.reports.cancelled(self.trainer)
            self.final = "cancelled"
        elif command == "pause" and not self.paused:
            self.paused = True
            self.reports.status_changed("paused")
        elif command == "resume" and self.paused:
            self.paused = False
            self._step_target, self._steps_queued = None, 0
            self.reports.status_changed("running")
            self._reset_pace()
        elif command == "step" and self.paused:
            if self._step_target is None:
                self._begin_step()
            else:
                self._steps_queued += 1


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
