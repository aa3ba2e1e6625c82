"""Training runs: a synchronous ``Trainer`` and the ``RunLoop`` that paces and controls it.

Iteration k is the state after k completed updates (k = 0 before any). What a run reports
are the typed events of events.py; turning them into wire messages is the server's job.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from boundarylab.engine.config import RunConfig
from boundarylab.engine.datasets import Dataset, make_dataset
from boundarylab.engine.events import BoundaryFrame, Grid, Progress, RunEvent, StatusChanged
from boundarylab.engine.nn import Network, data_loss_sum, layer_sizes, one_hot

# Steps between finiteness checks. A failed check replays the chunk one step at a time from
# a snapshot to name the exact step, so a check per step is never paid on healthy runs.
CHECK_EVERY = 64
GRID_PAD = 0.5  # as the article's plot_decision_boundary
GRID_SLICE = 8192  # grid points evaluated at once


def grid_bounds(x: np.ndarray, pad: float = GRID_PAD) -> tuple[float, float, float, float]:
    """(x_min, x_max, y_min, y_max) of the points x (n, 2), padded on each side."""
    lo, hi = x.min(axis=0) - pad, x.max(axis=0) + pad
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def grid_points(bounds: tuple[float, float, float, float], nx: int, ny: int) -> np.ndarray:
    """Cell centres (nx·ny, 2) at ``linspace(x_min, x_max, nx)`` × ``linspace(y_min, y_max,
    ny)``, row-major: row 0 is y_min, columns run from x_min right."""
    x_min, x_max, y_min, y_max = bounds
    xx, yy = np.meshgrid(np.linspace(x_min, x_max, nx), np.linspace(y_min, y_max, ny))
    return np.column_stack([xx.ravel(), yy.ravel()])


def quantise_probabilities(probs: np.ndarray) -> bytes:
    """One byte per grid cell from class probabilities (m, K) (see events.BoundaryFrame).

    K = 2: round(255·P(class 1)) per cell. K > 2: m argmax bytes, then m bytes
    round(255·max p). Non-finite probabilities (a diverging network) count as undecided.
    """
    probs = np.nan_to_num(probs, nan=1.0 / probs.shape[1], posinf=1.0, neginf=0.0)
    if probs.shape[1] == 2:
        return np.rint(255.0 * np.clip(probs[:, 1], 0.0, 1.0)).astype(np.uint8).tobytes()
    cls = probs.argmax(axis=1).astype(np.uint8)
    conf = np.rint(255.0 * np.clip(probs.max(axis=1), 0.0, 1.0)).astype(np.uint8)
    return cls.tobytes() + conf.tobytes()


class Trainer:
    """One run's network, stepped synchronously. No threads, no I/O.

    Full batch (``batch_size`` null, or not smaller than the training set) steps on buffers
    loaded once. Mini-batches are drawn without replacement, epoch by epoch, from
    ``default_rng([training.seed, 2])``: a stream apart from the initialisation's RandomState.
    """

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.data: Dataset = make_dataset(config.dataset)
        t, m = config.training, config.model
        self.net = Network(
            layer_sizes(2, m.hidden_sizes, self.data.n_classes),
            m.activation,
            m.loss,
            seed=t.seed,
            reg_lambda=t.reg_lambda,
            learning_rate=t.learning_rate,
            optimizer=t.optimizer,
        )
        self.iteration = 0
        self.total = t.iterations
        self.diverged_message: str | None = None
        K = self.data.n_classes
        self._Y_train = one_hot(self.data.y_train, K)
        self._Y_test = one_hot(self.data.y_test, K)
        n_train = len(self.data.y_train)
        self._batch = t.batch_size if t.batch_size and t.batch_size < n_train else None
        self._full_ws = None
        if self._batch is None:
            self._full_ws = self.net.load_batch(self.data.x_train, self._Y_train)
        self._rng = np.random.default_rng([t.seed, 2])
        self._order = np.arange(n_train)
        self._pos = n_train  # forces a shuffle before the first mini-batch
        self._grid: np.ndarray | None = None
        self._bounds = grid_bounds(self.data.x_all)

    @property
    def done(self) -> bool:
        return self.iteration >= self.total or self.diverged_message is not None

    def _step(self) -> None:
        if self._full_ws is not None:
            self.net.step_loaded(self._full_ws)
            return
        n, b = len(self._order), self._batch
        if self._pos + b > n:
            self._order = self._rng.permutation(n)
            self._pos = 0
        idx = self._order[self._pos : self._pos + b]
        self._pos += b
        self.net.step(self.data.x_train[idx], self._Y_train[idx])

    def _train_loss(self) -> float:
        X, y = self.data.x_train, self.data.y_train
        total = self.net.loss_sum(X, y, self._Y_train) + self.net.penalty()
        return total / len(y)

    def _snapshot(self) -> tuple:
        return (self.net.theta.copy(), self.net.optimizer.state(), self._rng.bit_generator.state,
                self._order.copy(), self._pos)  # fmt: skip

    def _restore(self, snap: tuple) -> None:
        theta, opt, rng, order, pos = snap
        self.net.theta[...] = theta
        self.net.optimizer.set_state(opt)
        self._rng.bit_generator.state = rng
        self._order, self._pos = order, pos

    def _problem(self) -> str | None:
        """What went non-finite in the current state, or None when all is finite."""
        if not self.net.is_finite():
            return "the weights became NaN or infinite"
        loss = self._train_loss()
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
                    self._step()
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
            self._step()
            self.iteration += 1
            problem = self._problem()
            if problem is not None:
                self.diverged_message = self._divergence_message(problem)
                return i
        return chunk  # not reproducible (cannot happen: the steps are deterministic)

    def _divergence_message(self, problem: str) -> str:
        t = self.config.training
        advice = f"lower training.learning_rate (now {t.learning_rate:g})"
        if t.reg_lambda > 0:
            advice += f" or training.reg_lambda (now {t.reg_lambda:g})"
        return f"Training diverged: {problem} at step {self.iteration}; {advice}."

    def report(self) -> Progress:
        """Progress at the current iteration: loss (the article's, λ term included) and
        accuracy on the training set; with a test split also test_loss (mean data loss, no λ
        term) and test_accuracy."""
        d = self.data
        test_loss = test_accuracy = None
        with np.errstate(all="ignore"):
            out = self.net.forward(d.x_train)[-1]
            data = data_loss_sum(out, d.y_train, self._Y_train, self.net.loss)
            loss = (data + self.net.penalty()) / len(d.y_train)
            accuracy = float(np.mean(out.argmax(axis=1) == d.y_train))
            if len(d.y_test):
                out = self.net.forward(d.x_test)[-1]
                test = data_loss_sum(out, d.y_test, self._Y_test, self.net.loss)
                test_loss = float(test / len(d.y_test))
                test_accuracy = float(np.mean(out.argmax(axis=1) == d.y_test))
        return Progress(self.iteration, float(loss), accuracy, test_loss, test_accuracy)

    def grid(self) -> Grid:
        """The boundary grid's geometry (see ``grid_points``)."""
        n = self.config.view.resolution
        return Grid(*self._bounds, nx=n, ny=n)

    def grid_probabilities(self) -> np.ndarray:
        """Class probabilities (ny·nx, K) over the grid, row-major from (x_min, y_min)."""
        if self._grid is None:
            n = self.config.view.resolution
            self._grid = grid_points(self._bounds, n, n)
        # In slices, so a 300×300 grid through 256-unit layers never holds 90000×256 arrays.
        parts = [self.net.predict_proba(self._grid[i : i + GRID_SLICE])
                 for i in range(0, len(self._grid), GRID_SLICE)]  # fmt: skip
        return np.concatenate(parts)

    def boundary(self) -> BoundaryFrame:
        """A decision-boundary frame at the current iteration."""
        cells = quantise_probabilities(self.grid_probabilities())
        return BoundaryFrame(self.iteration, self.grid(), self.data.n_classes, cells)

    def export_model(self) -> dict[str, Any]:
        """Config, iteration and a copy of each layer's ``W`` (fan_in, fan_out) and ``b``
        (fan_out,) as float64 arrays (non-finite entries kept: the wire format decides)."""
        return {
            "config": self.config.model_dump(mode="json"),
            "iteration": self.iteration,
            "layers": [{"W": W.copy(), "b": b.copy()} for W, b in self.net.params],
        }


Emit = Callable[[RunEvent], None]
NextCommand = Callable[[float], "str | None"]

PAUSE_WAIT = 0.5  # seconds one wait for a command blocks while paused
PACE_TICK = 0.05  # a paced run takes steps in slices of about this many seconds
CHUNK_SECONDS = 0.02  # an unpaced run checks for commands about this often
# Frames may take at most about this share of a run's time: a big network on a fine grid
# costs seconds per frame, and max_fps alone would then leave no time for training.
FRAME_SHARE = 0.25


class RunLoop:
    """Drives a Trainer with pacing, report cadence, frame throttling and control.

    Blocking: meant to run in a worker thread or process. ``emit`` receives every event
    (events.RunEvent). ``next_command(timeout_s)`` blocks up to timeout_s for
    "pause" | "resume" | "step" | "cancel" and returns it, or None on timeout; it is also how
    the loop sleeps when paced or paused, so control stays responsive. ``clock`` (seconds)
    paces the run and throttles frames to ``view.max_fps``; chunk sizing uses real time.
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
        self.config = config
        self.emit = emit
        self.next_command = next_command
        self.clock = clock
        self.trainer = trainer
        self.status = "queued"
        self._paused = False
        self._last_progress = -1
        self._last_frame = -1
        self._last_frame_time = -math.inf
        self._frame_cost = 0.0
        self.timer = time.perf_counter  # real time: frame cost and chunk sizing
        self._chunk = 16
        self._pace_t0 = 0.0
        self._pace_k0 = 0

    def run(self) -> str:
        """Train to the end; returns "completed" | "cancelled" | "diverged" | "failed"."""
        try:
            return self._run()
        except Exception as exc:  # a run must end with a status, whatever went wrong
            message = f"Training failed: {type(exc).__name__}: {exc}"
            try:
                self._status("failed", message)
            except Exception:
                self.status = "failed"
            return "failed"

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
        self._frame_cost = self.timer() - started
        self._last_frame = self.trainer.iteration
        self._last_frame_time = self.clock()

    def _run(self) -> str:
        self._status("running")
        if self.trainer is None:
            self.trainer = Trainer(self.config)
        trainer = self.trainer
        self._progress()
        self._frame()
        self._reset_pace()
        while not trainer.done:
            if self._paused:
                command = self.next_command(PAUSE_WAIT)
            else:
                command = self.next_command(self._pace_wait())
                if command is None:
                    self._advance_chunk()
            final = self._handle(command) if command is not None else None
            if final is None and trainer.diverged_message is not None:
                final = self._diverged()
            if final is not None:
                return final
        return self._finish()

    def _reset_pace(self) -> None:
        assert self.trainer is not None
        self._pace_t0, self._pace_k0 = self.clock(), self.trainer.iteration

    def _pace_wait(self) -> float:
        """Seconds until the next chunk is due; 0 when unpaced or late."""
        sps = self.config.training.steps_per_second
        if sps is None:
            return 0.0
        assert self.trainer is not None
        due = self._pace_t0 + (self.trainer.iteration - self._pace_k0) / sps
        return max(0.0, due - self.clock())

    def _chunk_size(self) -> int:
        assert self.trainer is not None
        every = self.config.training.report_every
        n = min(every - self.trainer.iteration % every, self._chunk)
        sps = self.config.training.steps_per_second
        if sps is not None:
            n = min(n, max(1, round(sps * PACE_TICK)))
        return max(1, n)

    def _advance_chunk(self) -> None:
        assert self.trainer is not None
        trainer = self.trainer
        started = self.timer()
        taken = trainer.advance(self._chunk_size())
        elapsed = self.timer() - started
        if taken > 0:
            # Size the next chunk to take about CHUNK_SECONDS, so commands stay responsive.
            rate = taken / max(elapsed, 1e-6)
            self._chunk = int(min(max(1, rate * CHUNK_SECONDS), 4 * self._chunk + 16))
        if trainer.diverged_message is not None:
            return
        if trainer.iteration % self.config.training.report_every == 0:
            self._progress()
        gap = max(1.0 / self.config.view.max_fps, self._frame_cost / FRAME_SHARE)
        if self.clock() - self._last_frame_time >= gap:
            self._frame()

    def _handle(self, command: str) -> str | None:
        """Apply a control command; returns a final status when the run ends because of it."""
        assert self.trainer is not None
        if command == "cancel":
            k, total = self.trainer.iteration, self.trainer.total
            self._status("cancelled", f"Cancelled at step {k} of {total}.")
            return "cancelled"
        if command == "pause" and not self._paused:
            self._paused = True
            self._status("paused")
        elif command == "resume" and self._paused:
            self._paused = False
            self._status("running")
            self._reset_pace()
        elif command == "step" and self._paused:
            self.trainer.advance(self.config.training.report_every)
            if self.trainer.diverged_message is not None:
                return self._diverged()
            self._progress()
            self._frame()
            if self.trainer.done:
                return self._finish()
        return None

    def _diverged(self) -> str:
        assert self.trainer is not None and self.trainer.diverged_message is not None
        self._progress()
        self._status("diverged", self.trainer.diverged_message)
        return "diverged"

    def _finish(self) -> str:
        assert self.trainer is not None
        if self._last_progress != self.trainer.iteration:
            self._progress()
        if self._last_frame != self.trainer.iteration:
            self._frame()
        self._status("completed")
        return "completed"
