"""Train several single-hidden-layer networks side by side (the article's hidden-size figure).

``FusedComparison`` trains M networks of hidden sizes h_1..h_M as one stack (tape.Network):
one flat parameter vector, one batch sampler, element-wise work and the update done once for
all M, every matrix product made per model with the shapes it has alone. So each model's
numbers are bit for bit those of a separate run of the same config (``Trainer``), while a step
costs far fewer NumPy calls than M separate steps, which is what a step costs at 300 points.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from boundarylab.engine.build import build_learner
from boundarylab.engine.config import ModelConfig, RunConfig
from boundarylab.engine.datasets import Dataset, make_dataset
from boundarylab.engine.events import BoundaryFrame, Grid, Progress
from boundarylab.engine.features import feature_matrix
from boundarylab.engine.grid import grid_points, quantise_probabilities
from boundarylab.engine.gridprobe import GridProbe
from boundarylab.engine.training import CHECK_EVERY, Inputs, Trainer, progress, train_loss


class FusedComparison:
    """M single-hidden-layer runs of ``base`` (its ``model.hidden_sizes`` replaced by each
    size) trained together on the same data, batches and seed.

    ``failed[j]`` turns True when model j's parameters or loss stop being finite at a check
    (every CHECK_EVERY steps, where a separate run checks too); the others train on."""

    def __init__(self, base: RunConfig, hidden_sizes: list[int], data: Dataset | None = None):
        self.base = base
        self.hidden_sizes = [int(h) for h in hidden_sizes]
        self.data = make_dataset(base.dataset) if data is None else data
        t, m = base.training, base.model
        self.inputs = Inputs.of(self.data, m.features)
        self.iteration, self.total = 0, t.iterations
        self.net, self.batches = build_learner(
            base, self.inputs.train, self.inputs.Y_train, [[h] for h in self.hidden_sizes]
        )
        self.failed = [False] * len(self.hidden_sizes)
        self._grid: GridProbe | None = None

    @property
    def done(self) -> bool:
        return self.iteration >= self.total or all(self.failed)

    def advance(self, n_steps: int) -> int:
        """Up to ``n_steps`` updates of every model; stops early when every model has failed.
        Returns the steps taken."""
        n_steps = max(0, min(int(n_steps), self.total - self.iteration))
        taken = 0
        with np.errstate(all="ignore"):
            while taken < n_steps and not all(self.failed):
                chunk = min(CHECK_EVERY, n_steps - taken)
                for _ in range(chunk):
                    self.batches.step()
                self.iteration += chunk
                taken += chunk
                self._check()
        return taken

    def _check(self) -> None:
        finite = self.net.finite_models()
        for j, ok in enumerate(finite):
            if not self.failed[j]:
                loss = train_loss(self.net, j, self.inputs) if ok else np.nan
                self.failed[j] = not np.isfinite(loss)

    def reports(self) -> list[Progress]:
        """One Progress per model, in the order of ``hidden_sizes`` (as Trainer.report)."""
        return [progress(self.net, j, self.inputs, self.iteration) for j in range(len(self.failed))]

    def boundaries(self) -> list[BoundaryFrame]:
        """One frame per model, in the order of ``hidden_sizes`` (as Trainer.boundary)."""
        bounds = self.data.grid_bounds()
        n = self.base.view.resolution
        if self._grid is None:
            self._grid = GridProbe(feature_matrix(grid_points(bounds, n, n), self.inputs.features))
        grid, K = Grid(*bounds, nx=n, ny=n), self.data.n_classes
        frames = []
        for j in range(len(self.failed)):
            params = self.net.model_params(j)
            probs = self._grid.probabilities(params, self.net.activation, self.net.loss)
            frames.append(BoundaryFrame(self.iteration, grid, K, quantise_probabilities(probs)))
        return frames


def result_row(hidden_size: int, report: Progress, seconds: float, message: str | None) -> dict:
    """One row of ``compare``'s result (test metrics only with a test split)."""
    row = {"hidden_size": hidden_size, "iteration": report.iteration, "loss": report.loss,
           "train_accuracy": report.train_accuracy}  # fmt: skip
    if report.test_loss is not None:
        row.update(test_loss=report.test_loss, test_accuracy=report.test_accuracy)
    return {**row, "seconds": seconds, "message": message}


def _train_group(base: RunConfig, sizes: list[int]) -> list[dict]:
    """Train one fused group to the end; per model its final report, ``seconds`` (the group's
    wall time, shared by its models) and ``message`` (None, or why it diverged). A model that
    failed is trained again alone, so its row says at which step it diverged, as a single
    run's would; the others keep their fused results (bit for bit a single run's)."""
    started = time.perf_counter()
    fused = FusedComparison(base, sizes)
    fused.advance(fused.total)
    seconds = time.perf_counter() - started
    results = []
    for h, report, failed in zip(sizes, fused.reports(), fused.failed, strict=True):
        if not failed:
            results.append(result_row(h, report, seconds, None))
            continue
        alone_started = time.perf_counter()
        trainer = Trainer(base.model_copy(update={"model": single_layer(base.model, h)}))
        trainer.advance(trainer.total)
        alone = time.perf_counter() - alone_started
        results.append(result_row(h, trainer.report(), alone, trainer.diverged_message))
    return results


def single_layer(model: ModelConfig, hidden: int) -> ModelConfig:
    """``model`` with one hidden layer of ``hidden`` units."""
    return model.model_copy(update={"hidden_sizes": [hidden]})


def split_groups(hidden_sizes: list[int], n_groups: int) -> list[list[int]]:
    """Partition sizes into at most n_groups groups of about equal cost (cost ~ units + a
    per-step overhead worth ~30 units), largest first into the currently cheapest group."""
    n_groups = max(1, min(n_groups, len(hidden_sizes)))
    groups: list[list[int]] = [[] for _ in range(n_groups)]
    costs = [0.0] * n_groups
    for h in sorted(hidden_sizes, reverse=True):
        i = costs.index(min(costs))
        groups[i].append(h)
        costs[i] += h + (30.0 if len(groups[i]) == 1 else 0.0)
    return [g for g in groups if g]


def compare(base: RunConfig, hidden_sizes: list[int], *, processes: int = 1) -> list[dict]:
    """Train ``base`` once per hidden size (one hidden layer each) and return, in the order
    given, per size: ``hidden_size``, ``iteration``, ``loss``, ``train_accuracy`` (and
    ``test_loss``/``test_accuracy`` with a split), ``seconds`` and ``message``.

    ``processes`` > 1 splits the sizes into that many fused groups trained in parallel worker
    processes (worth it only when the groups are big enough to outweigh starting them)."""
    groups = split_groups(list(hidden_sizes), processes)
    if len(groups) == 1:
        results = _train_group(base, groups[0])
    else:
        with ProcessPoolExecutor(max_workers=len(groups)) as pool:
            parts = list(pool.map(_train_group, [base] * len(groups), groups))
        results = [r for part in parts for r in part]
    by_size = {r["hidden_size"]: r for r in results}
    return [by_size[h] for h in hidden_sizes]
