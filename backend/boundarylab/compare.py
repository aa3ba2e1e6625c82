"""Train several single-hidden-layer networks side by side (the article's hidden-size figure).

``FusedComparison`` trains M networks of hidden sizes h_1..h_M as ONE network: the hidden
layer is the concatenation of all models' units, W1 (d+1, H = Σh) (bias row last), and the
output layer W2 (H+1, M·K) is block-diagonal, with a softmax (or sigmoid) over each group of K
outputs. The gradient of a block only involves its own model, and off-block gradients are
masked to zero, so every model follows exactly the updates of a separate run with the same seed
(up to the order of float summation). One step costs a few NumPy calls for all M models instead
of M times the per-call overhead, which is what dominates at 300 points.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from itertools import pairwise

import numpy as np

from boundarylab.config import RunConfig
from boundarylab.datasets import Dataset, make_dataset
from boundarylab.nn import ACTIVATE, Network, init_params, one_hot
from boundarylab.training import (
    CHECK_EVERY,
    Trainer,
    encode_probabilities,
    finite_or_none,
    grid_bounds,
    grid_points,
)


class FusedComparison:
    """M single-hidden-layer runs of ``base`` (its ``model.hidden_sizes`` replaced by each
    size) trained together on the same data, batches and seed, as one ``Network`` with
    ``groups=M`` and a block-diagonal gradient mask on the output layer."""

    def __init__(self, base: RunConfig, hidden_sizes: list[int], data: Dataset | None = None):
        self.base = base
        self.hidden_sizes = [int(h) for h in hidden_sizes]
        self.data = make_dataset(base.dataset) if data is None else data
        t = base.training
        self.activation, self.loss = base.model.activation, base.model.loss
        self.iteration, self.total = 0, t.iterations
        self.diverged = False
        K, M, H = self.data.n_classes, len(self.hidden_sizes), sum(self.hidden_sizes)
        self._K, self._M, self._H = K, M, H
        mask = np.zeros((H + 1, M * K))
        mask[-1] = 1.0  # output biases are per model already
        for j, (lo, hi) in enumerate(self._spans()):
            mask[lo:hi, j * K : (j + 1) * K] = 1.0
        self.net = Network([2, H, M * K], self.activation, self.loss, seed=t.seed,
                           reg_lambda=t.reg_lambda, learning_rate=t.learning_rate,
                           optimizer=t.optimizer, groups=M, grad_mask=mask)  # fmt: skip
        (W1, _), (W2, _) = self.net.params
        for j, (lo, hi) in enumerate(self._spans()):
            # Each model starts where a separate run with the same seed would.
            (V1, _), (V2, _) = init_params([2, hi - lo, K], t.seed)
            W1[:, lo:hi] = V1
            W2[lo:hi, j * K : (j + 1) * K] = V2
        self._Y = np.tile(one_hot(self.data.y_train, K), M)  # (n, M·K): targets per group
        n = len(self.data.y_train)
        self._batch = t.batch_size if t.batch_size and t.batch_size < n else None
        self._rng = np.random.default_rng([t.seed, 2])  # the same batches as Trainer draws
        self._order, self._pos = np.arange(n), n
        self._full = (
            self.net.load_batch(self.data.x_train, self._Y) if self._batch is None else None
        )
        self._grid: np.ndarray | None = None

    def _spans(self) -> list[tuple[int, int]]:
        """Column range [lo, hi) of each model's hidden units in the fused hidden layer."""
        return list(pairwise(np.cumsum([0, *self.hidden_sizes]).tolist()))

    @property
    def done(self) -> bool:
        return self.iteration >= self.total or self.diverged

    def _step(self) -> None:
        if self._full is not None:
            self.net.step_loaded(self._full)
            return
        n, b = len(self._order), self._batch
        if self._pos + b > n:
            self._order, self._pos = self._rng.permutation(n), 0
        idx = self._order[self._pos : self._pos + b]
        self._pos += b
        self.net.step(self.data.x_train[idx], self._Y[idx])

    def advance(self, n_steps: int) -> int:
        """Up to ``n_steps`` updates of every model; stops (``diverged``) as soon as any
        parameter is non-finite, checked every CHECK_EVERY steps. Returns steps taken."""
        n_steps = max(0, min(int(n_steps), self.total - self.iteration))
        taken = 0
        with np.errstate(all="ignore"):
            while taken < n_steps and not self.diverged:
                chunk = min(CHECK_EVERY, n_steps - taken)
                for _ in range(chunk):
                    self._step()
                self.iteration += chunk
                taken += chunk
                self.diverged = not self.net.is_finite()
        return taken

    def _outputs(self, X: np.ndarray) -> np.ndarray:
        """Each model's output for X (m, 2): (m, M, K) softmax or sigmoid values."""
        H, M, K = self._H, self._M, self._K
        (W1, b1), (W2, b2) = self.net.params
        with np.errstate(all="ignore"):
            a1 = np.empty((len(X), H))
            ACTIVATE[self.activation](X @ W1 + b1, a1)
            z2 = (a1 @ W2 + b2).reshape(len(X), M, K)
            if self.loss == "cross_entropy":
                e = np.exp(z2)
                return e / e.sum(axis=2, keepdims=True)
            return ACTIVATE["sigmoid"](z2, z2)

    def _penalties(self) -> np.ndarray:
        """λ/2 Σ‖W‖² of each model (M,)."""
        lam, K = self.base.training.reg_lambda, self._K
        (W1, _), (W2, _) = self.net.params
        out = []
        for j, (lo, hi) in enumerate(self._spans()):
            V1, V2 = W1[:, lo:hi], W2[lo:hi, j * K : (j + 1) * K]
            out.append(lam / 2 * (np.sum(V1 * V1) + np.sum(V2 * V2)))
        return np.array(out)

    def _metrics(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-model summed data loss (M,) and accuracy (M,) on (X (m, 2), y (m,))."""
        out = self._outputs(X)
        with np.errstate(all="ignore"):
            if self.loss == "cross_entropy":
                loss = -np.log(out[np.arange(len(y)), :, y]).sum(axis=0)
            else:
                diff = out - one_hot(y, self._K)[:, None, :]
                loss = 0.5 * (diff * diff).sum(axis=(0, 2))
        return loss, (out.argmax(axis=2) == y[:, None]).mean(axis=0)

    def reports(self) -> list[dict]:
        """A progress dict per model, as Trainer.report, plus ``hidden_size``."""
        d = self.data
        loss, acc = self._metrics(d.x_train, d.y_train)
        loss = (loss + self._penalties()) / len(d.y_train)
        out = []
        for j, h in enumerate(self.hidden_sizes):
            report = {"type": "progress", "hidden_size": h, "iteration": self.iteration}
            report.update(loss=finite_or_none(loss[j]), train_accuracy=float(acc[j]))
            out.append(report)
        if len(d.y_test):
            test_loss, test_acc = self._metrics(d.x_test, d.y_test)
            for j, report in enumerate(out):
                report["test_loss"] = finite_or_none(test_loss[j] / len(d.y_test))
                report["test_accuracy"] = float(test_acc[j])
        return out

    def boundaries(self) -> list[dict]:
        """A boundary frame per model (as Trainer.boundary), plus ``hidden_size``."""
        bounds = grid_bounds(self.data.x_all)
        n = self.base.view.resolution
        if self._grid is None:
            self._grid = grid_points(bounds, n, n)
        outs = self._outputs(self._grid)
        if self.loss == "squared_error":
            outs = outs / outs.sum(axis=2, keepdims=True)
        grid = dict(zip(("x_min", "x_max", "y_min", "y_max"), bounds, strict=True))
        frames = []
        for j, h in enumerate(self.hidden_sizes):
            encoding, data = encode_probabilities(outs[:, j, :])
            frames.append({"type": "boundary", "hidden_size": h, "iteration": self.iteration,
                           "grid": {**grid, "nx": n, "ny": n}, "encoding": encoding,
                           "data": data})  # fmt: skip
        return frames


def _train_group(base: RunConfig, sizes: list[int]) -> list[dict]:
    """Train one fused group to the end; per model its final report, ``seconds`` (the group's
    wall time, shared by its models) and ``message`` (None, or why it diverged). A group that
    goes non-finite is retrained model by model, so one diverging size cannot spoil the rest."""
    started = time.perf_counter()
    fused = FusedComparison(base, sizes)
    fused.advance(fused.total)
    if not fused.diverged:
        seconds = time.perf_counter() - started
        return [{**r, "seconds": seconds, "message": None} for r in fused.reports()]
    results = []
    for h in sizes:
        started = time.perf_counter()
        trainer = Trainer(base.model_copy(update={"model": _single(base, h)}))
        trainer.advance(trainer.total)
        report = {**trainer.report(), "hidden_size": h}
        report.update(seconds=time.perf_counter() - started, message=trainer.diverged_message)
        results.append(report)
    return results


def _single(base: RunConfig, hidden: int):
    return base.model.model_copy(update={"hidden_sizes": [hidden]})


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
