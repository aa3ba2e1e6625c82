"""Training runs: a synchronous ``Trainer`` and the ``RunLoop`` that paces and controls it.

Iteration k is the state after k completed updates (k = 0 before any). What a run reports
are the typed events of events.py; turning them into wire messages is the server's job.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from boundarylab.engine import nn
from boundarylab.engine.batches import BatchStepper
from boundarylab.engine.config import RunConfig
from boundarylab.engine.datasets import Dataset, make_dataset
from boundarylab.engine.events import (
    UNITS_OFF,
    UNITS_ON,
    BoundaryFrame,
    Grid,
    Progress,
    RunEvent,
    StatusChanged,
    UnitsFrame,
)
from boundarylab.engine.features import feature_matrix
from boundarylab.engine.grid import grid_points, quantise_probabilities, sliced
from boundarylab.engine.losses import one_hot
from boundarylab.engine.tape import Network
from boundarylab.engine.unitview import UNIT_GRID, unit_names, units_frame

# Steps between finiteness checks. A failed check replays the chunk one step at a time from
# a snapshot to name the exact step, so a check per step is never paid on healthy runs.
CHECK_EVERY = 64


@dataclass(frozen=True)
class Inputs:
    """A data set as the network sees it: each point's features (see features.py).

    ``train`` (n_train, d) and ``test`` (n_test, d) with d = len(features); ``Y_train``
    (n_train, K) one-hot labels. The labels themselves stay in the Dataset."""

    data: Dataset
    features: tuple[str, ...]
    train: np.ndarray
    test: np.ndarray
    Y_train: np.ndarray

    @classmethod
    def of(cls, data: Dataset, features: list[str]) -> Inputs:
        train, test = (feature_matrix(x, features) for x in (data.x_train, data.x_test))
        return cls(data, tuple(features), train, test, one_hot(data.y_train, data.n_classes))


def progress(net: Network, j: int, inputs: Inputs, iteration: int) -> Progress:
    """Model j's Progress: the article's loss on the training set (penalty included) and its
    accuracy; with a test split the test set's mean data loss (no penalty) and accuracy."""
    d = inputs.data
    params, act, loss_name = net.model_params(j), net.activation, net.loss
    with np.errstate(all="ignore"):
        data, accuracy = nn.data_loss_and_accuracy(params, inputs.train, d.y_train, act, loss_name)
        loss = (data + net.penalty(j)) / len(d.y_train)
        test_loss = test_accuracy = None
        if len(d.y_test):
            test, test_accuracy = nn.data_loss_and_accuracy(
                params, inputs.test, d.y_test, act, loss_name
            )
            test_loss = float(test / len(d.y_test))
    return Progress(iteration, float(loss), accuracy, test_loss, test_accuracy)


def train_loss(net: Network, j: int, inputs: Inputs) -> float:
    """Model j's loss on the training set (penalty included): ``progress(…).loss`` alone."""
    params, regularizer = net.model_params(j), net.regularizer
    with np.errstate(all="ignore"):
        return nn.loss_value(params, inputs.train, inputs.data.y_train, net.activation,
                             net.loss, regularizer)  # fmt: skip


class Trainer:
    """One run's network, stepped synchronously. No threads, no I/O.

    Batches come from batches.BatchStepper (full batch as the article, or seeded
    mini-batches)."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.data: Dataset = make_dataset(config.dataset)
        t, m = config.training, config.model
        self.inputs = Inputs.of(self.data, m.features)
        self.net = Network(
            nn.layer_sizes(len(m.features), m.hidden_sizes, self.data.n_classes),
            m.activation,
            m.loss,
            seed=t.seed,
            regularization=t.regularization,
            reg_lambda=t.reg_lambda,
            learning_rate=t.learning_rate,
            optimizer=t.optimizer,
        )
        self.batches = BatchStepper(self.net, self.inputs.train, self.inputs.Y_train,
                                    t.batch_size, t.seed)  # fmt: skip
        self.iteration = 0
        self.total = t.iterations
        self.diverged_message: str | None = None
        self._grid: np.ndarray | None = None
        self._unit_grid: np.ndarray | None = None
        self._bounds = self.data.grid_bounds()

    @property
    def done(self) -> bool:
        return self.iteration >= self.total or self.diverged_message is not None

    def _snapshot(self) -> tuple:
        return (self.net.theta.copy(), self.net.optimizer.state(), self.batches.state())

    def _restore(self, snap: tuple) -> None:
        theta, opt, batches = snap
        self.net.theta[...] = theta
        self.net.optimizer.set_state(opt)
        self.batches.set_state(batches)

    def _problem(self) -> str | None:
        """What went non-finite in the current state, or None when all is finite."""
        if not self.net.is_finite():
            return "the weights became NaN or infinite"
        loss = train_loss(self.net, 0, self.inputs)
        if math.isnan(loss):
            return "the loss became NaN"
        return "the loss became infinite" if math.isinf(loss) else None

    def advance(self, n_steps: int) -> int:
        """Take up to ``n_steps`` updates; stops early at ``total`` or at divergence (which sets
        ``diverged_message``). Returns the number of updates taken."""
        n_steps = max(0, min(int(n_steps), self.total - self.iteration))
        if self.diverged_message is not None:
            return 0
        taken = 0
        with np.errstate(all="ignore"):
            while taken < n_steps:
                chunk = min(CHECK_EVERY, n_steps - taken)
                snap = self._snapshot()
                for _ in range(chunk):
                    self.batches.step()
                if self._problem() is None:
                    self.iteration += chunk
                    taken += chunk
                    continue
                self._restore(snap)
                return taken + self._locate(chunk)
        return taken

    def _locate(self, chunk: int) -> int:
        """Replay a chunk known to go bad step by step; stop at the first bad state."""
        for i in range(1, chunk + 1):
            self.batches.step()
            self.iteration += 1
            problem = self._problem()
            if problem is not None:
                self.diverged_message = divergence_message(self.config, self.iteration, problem)
                return i
        return chunk  # not reproducible (cannot happen: the steps are deterministic)

    def report(self) -> Progress:
        """Progress at the current iteration (see ``progress``)."""
        return progress(self.net, 0, self.inputs, self.iteration)

    def grid(self) -> Grid:
        """The boundary grid's geometry (see grid.grid_points)."""
        n = self.config.view.resolution
        return Grid(*self._bounds, nx=n, ny=n)

    def grid_probabilities(self) -> np.ndarray:
        """Class probabilities (ny·nx, K) over the grid, row-major from (x_min, y_min)."""
        if self._grid is None:
            n = self.config.view.resolution
            self._grid = feature_matrix(grid_points(self._bounds, n, n), self.inputs.features)
        return sliced(self.net.predict_proba, self._grid)

    def boundary(self) -> BoundaryFrame:
        """A decision-boundary frame at the current iteration."""
        cells = quantise_probabilities(self.grid_probabilities())
        return BoundaryFrame(self.iteration, self.grid(), self.data.n_classes, cells)

    def units(self) -> UnitsFrame:
        """The unit view (unitview.py) at the current iteration, over the boundary's plane
        on a UNIT_GRID × UNIT_GRID grid."""
        if self._unit_grid is None:
            points = grid_points(self._bounds, UNIT_GRID, UNIT_GRID)
            self._unit_grid = feature_matrix(points, self.inputs.features)
        m = self.config.model
        grid = Grid(*self._bounds, nx=UNIT_GRID, ny=UNIT_GRID)
        names = unit_names(m.features, m.hidden_sizes)
        params = self.net.model_params(0)
        return units_frame(self.iteration, grid, params, self._unit_grid, m.activation, names)

    def export_model(self) -> dict[str, Any]:
        """Config, iteration and a copy of each layer's ``W`` (fan_in, fan_out) and ``b``
        (fan_out,) as float64 arrays (non-finite entries kept: the wire format decides).
        The first layer's rows follow ``model.features``."""
        return {
            "config": self.config.model_dump(mode="json"),
            "iteration": self.iteration,
            "layers": [{"W": W.copy(), "b": b.copy()} for W, b in self.net.params],
        }


def divergence_message(config: RunConfig, step: int, problem: str) -> str:
    """What went wrong at ``step`` and what to change."""
    t = config.training
    advice = f"lower training.learning_rate (now {t.learning_rate:g})"
    if t.regularization != "none" and t.reg_lambda > 0:
        advice += f" or training.reg_lambda (now {t.reg_lambda:g})"
    return f"Training diverged: {problem} at step {step}; {advice}."


Emit = Callable[[RunEvent], None]
NextCommand = Callable[[float], "str | None"]

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
    ``command(action)`` for "pause" | "resume" | "step" | "cancel". Each tick trains for
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

    # -- the driver's side -------------------------------------------------------------------
    def start(self) -> None:
        """Build the trainer (if not given) and send the first status, progress and frame."""
        self._guard(self._start)

    def tick(self) -> None:
        """Train one bounded slice (when one is due) and report what it reached."""
        if self.final is None:
            self._guard(self._tick)

    def command(self, action: str) -> None:
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
        return self.config.training.steps_per_second is not None

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
        sps = self.config.training.steps_per_second
        if sps is None or self.trainer is None:
            return 0.0
        due = self._pace_t0 + (self.trainer.iteration - self._pace_k0) / sps
        return max(0.0, due - self.clock())

    def _chunk_size(self, limit: int) -> int:
        assert self.trainer is not None
        every = self.config.training.report_every
        n = min(every - self.trainer.iteration % every, self._chunk, limit)
        sps = self.config.training.steps_per_second
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
        if self.clock() - self._last_frame_time >= gap:
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

    def _handle(self, command: str) -> None:
        assert self.trainer is not None
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
