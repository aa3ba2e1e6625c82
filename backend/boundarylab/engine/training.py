"""Training runs: a synchronous ``Trainer`` (runloop.py paces and controls one live).

Iteration k is the state after k completed updates (k = 0 before any). What a run reports
are the typed events of events.py; turning them into wire messages is the server's job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from boundarylab.engine import nn
from boundarylab.engine.build import build_learner
from boundarylab.engine.config import RunConfig
from boundarylab.engine.datasets import Dataset, make_dataset
from boundarylab.engine.events import (
    BoundaryFrame,
    Grid,
    KnobsChanged,
    Progress,
    UnitsFrame,
)
from boundarylab.engine.features import feature_matrix
from boundarylab.engine.grid import grid_points
from boundarylab.engine.gridprobe import GridProbe
from boundarylab.engine.knobs import Retune
from boundarylab.engine.losses import one_hot
from boundarylab.engine.tape import Network
from boundarylab.engine.unitview import UNIT_GRID, unit_names, units_frame

# Steps between finiteness checks. A failed check replays the chunk one step at a time from
# a snapshot to name the exact step, so a check per step is never paid on healthy runs.
# At least the default report_every (100): a live run advances to its next report in one
# call, and at 64 that call paid two checks (a check is a loss over the training set, as
# dear as several steps at the article's size; profiled in a worker, issue 15).
CHECK_EVERY = 128


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

    The network and its batches (full batch as the article, or seeded mini-batches) are
    built by build.build_learner, as the comparison's are."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.data: Dataset = make_dataset(config.dataset)
        t, m = config.training, config.model
        self.inputs = Inputs.of(self.data, m.features)
        self.net, self.batches = build_learner(
            config, self.inputs.train, self.inputs.Y_train, [m.hidden_sizes]
        )
        self.iteration = 0
        self.total = t.iterations
        self.diverged_message: str | None = None
        self._report: Progress | None = None  # the last check's Progress (see _problem)
        self._grid: GridProbe | None = None
        self._unit_grid: np.ndarray | None = None
        self._bounds = self.data.grid_bounds()
        self.steps_per_second = t.steps_per_second
        # The knobs turned while it trained, in order (each applied from step iteration + 1
        # on); the model export carries them.
        self.changes: list[KnobsChanged] = []

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
        self._report = None

    def _problem(self, at: int) -> str | None:
        """What went non-finite in the current state (after ``at`` updates), or None.

        At a report step the check's loss is the report's (the same sum, also kept for
        ``report``): a live run reports where it checks, and one pass over the training
        set then serves both."""
        if not self.net.is_finite():
            return "the weights became NaN or infinite"
        if at % self.config.training.report_every == 0 or at == self.total:
            self._report = progress(self.net, 0, self.inputs, at)
            loss = self._report.loss
        else:
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
                if self._problem(self.iteration + chunk) is None:
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
            problem = self._problem(self.iteration)
            if problem is not None:
                self.diverged_message = divergence_message(
                    self.config, self.iteration, problem, self.knobs()
                )
                return i
        return chunk  # not reproducible (cannot happen: the steps are deterministic)

    def retune(self, change: Retune) -> KnobsChanged:
        """Apply ``change`` from the next step on and record it (see knobs.py); the pace is
        only recorded here (whoever paces the run reads ``steps_per_second``)."""
        self.net.retune(change.learning_rate, change.reg_lambda)
        if change.steps_per_second is not None:
            self.steps_per_second = change.steps_per_second
        self.changes.append(KnobsChanged(self.iteration, change.given(), self.knobs()))
        return self.changes[-1]

    def knobs(self) -> dict[str, float | None]:
        """The learning rate, λ and pace in force now."""
        return {
            "learning_rate": self.net.learning_rate,
            "reg_lambda": self.net.regularizer.lam,
            "steps_per_second": self.steps_per_second,
        }

    def report(self) -> Progress:
        """Progress at the current iteration (see ``progress``)."""
        if self._report is not None and self._report.iteration == self.iteration:
            return self._report  # computed by the finiteness check of this very state
        return progress(self.net, 0, self.inputs, self.iteration)

    def grid(self) -> Grid:
        """The boundary grid's geometry (see grid.grid_points)."""
        n = self.config.view.resolution
        return Grid(*self._bounds, nx=n, ny=n)

    def grid_probabilities(self) -> np.ndarray:
        """Class probabilities (ny·nx, K) over the grid, row-major from (x_min, y_min)."""
        return self._probe().probabilities(self.net.model_params(0), self.net.activation,
                                           self.net.loss)  # fmt: skip

    def _probe(self) -> GridProbe:
        """The boundary grid's points, made at the first frame and kept."""
        if self._grid is None:
            n = self.config.view.resolution
            self._grid = GridProbe(feature_matrix(grid_points(self._bounds, n, n),
                                                  self.inputs.features))  # fmt: skip
        return self._grid

    def boundary(self) -> BoundaryFrame:
        """A decision-boundary frame at the current iteration."""
        cells = self._probe().cells(self.net.model_params(0), self.net.activation,
                                    self.net.loss)  # fmt: skip
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
        """Config (as the run started), iteration, the knobs turned since (``changes``, see
        ``retune``) and a copy of each layer's ``W`` (fan_in, fan_out) and ``b`` (fan_out,)
        as float64 arrays (non-finite entries kept: the wire format decides). The first
        layer's rows follow ``model.features``."""
        return {
            "config": self.config.model_dump(mode="json"),
            "iteration": self.iteration,
            "changes": [
                {"iteration": c.iteration, "changed": c.changed, "current": c.current}
                for c in self.changes
            ],
            "layers": [{"W": W.copy(), "b": b.copy()} for W, b in self.net.params],
        }


def divergence_message(
    config: RunConfig, step: int, problem: str, knobs: dict[str, float | None] | None = None
) -> str:
    """What went wrong at ``step`` and what to change; ``knobs``: the learning rate and λ in
    force (Trainer.knobs), when they were changed since the config."""
    t = config.training
    lr, lam = (
        (t.learning_rate, t.reg_lambda)
        if knobs is None
        else (knobs["learning_rate"], knobs["reg_lambda"])
    )
    advice = f"lower training.learning_rate (now {lr:g})"
    if t.regularization != "none" and lam:
        advice += f" or training.reg_lambda (now {lam:g})"
    return f"Training diverged: {problem} at step {step}; {advice}."
