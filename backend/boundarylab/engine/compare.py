"""Train several single-hidden-layer networks side by side (the article's hidden-size figure).

``FusedComparison`` trains M networks of hidden sizes h_1..h_M as one: their hidden layers are
computed by ONE matrix product with W1 (d+1, H') whose columns are every model's units in turn,
each model's block followed by a unit fixed at 1 (its output bias input). Each model's output
layer is its own small product over its own rows, and the update is one call over a flat
vector. Every model follows the updates of a separate run with the same seed (up to the order
of float summation), while a step costs a few NumPy calls for all M models instead of M times
the per-call overhead that dominates at 300 points.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import numpy as np

from boundarylab.engine.config import RunConfig
from boundarylab.engine.datasets import Dataset, make_dataset
from boundarylab.engine.events import BoundaryFrame, Grid, Progress
from boundarylab.engine.nn import ACTIVATE, DERIVATIVE, init_params, one_hot, output_delta_tape
from boundarylab.engine.optim import OPTIMIZERS
from boundarylab.engine.training import (
    CHECK_EVERY,
    Trainer,
    grid_bounds,
    grid_points,
    quantise_probabilities,
)


class _FusedNet:
    """Parameters in one flat vector ``theta``: B1 (3, H') = [W1; b1] over all models (H' = Σh
    + M; the column after each model's units stays 0 and its activation is reset to 1), then
    each model's [W2_j; b2_j] (h_j+1, K). Activations are stored (units × points)."""

    def __init__(self, sizes: list[int], K: int, activation: str, loss: str, t) -> None:
        self.sizes, self.K, self.activation, self.loss = sizes, K, activation, loss
        starts = np.cumsum([0] + [h + 1 for h in sizes])[:-1].tolist()
        self.rows = [(s, s + h) for s, h in zip(starts, sizes, strict=True)]  # ones row at hi
        width = sum(sizes) + len(sizes)
        total = 3 * width + sum((h + 1) * K for h in sizes)
        self.theta, self.grad = np.zeros(total), np.zeros(total)
        self._reg, self._tmp = np.zeros(total), np.empty(total)
        self.B1, self.G1 = (v[: 3 * width].reshape(3, width) for v in (self.theta, self.grad))
        self._reg[: 2 * width] = t.reg_lambda
        self.B2, self.G2, pos = [], [], 3 * width
        for h in sizes:
            for store, flat in ((self.B2, self.theta), (self.G2, self.grad)):
                store.append(flat[pos : pos + (h + 1) * K].reshape(h + 1, K))
            self._reg[pos : pos + h * K] = t.reg_lambda
            pos += (h + 1) * K
        for j, ((lo, hi), h) in enumerate(zip(self.rows, sizes, strict=True)):
            # Each model starts where a separate run with the same seed would.
            (W1, _), (W2, _) = init_params([2, h, K], t.seed)
            self.B1[:2, lo:hi] = W1
            self.B2[j][:h] = W2
        self.optimizer = OPTIMIZERS[t.optimizer](total, t.learning_rate)
        self._ws: dict[int, tuple[list[np.ndarray], list[Callable[[], object]]]] = {}

    def model_params(self, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Model j's W1 (2, h), b1 (h,), W2 (h, K), b2 (K,) (views)."""
        lo, hi = self.rows[j]
        return self.B1[:2, lo:hi], self.B1[2, lo:hi], self.B2[j][:-1], self.B2[j][-1]

    def load_batch(self, X: np.ndarray, Y: np.ndarray) -> list[Callable[[], object]]:
        """Copy X (m, 2) and targets Y (m, M·K) in; returns the tape of one step on them."""
        if len(X) not in self._ws:
            self._ws[len(X)] = self._build(len(X))
        bufs, tape = self._ws[len(X)]
        bufs[0][:2] = X.T
        bufs[1][...] = Y.T
        return tape

    def _build(self, m: int) -> tuple[list[np.ndarray], list[Callable[[], object]]]:
        K, M, width = self.K, len(self.sizes), self.B1.shape[1]
        Xa, target, A = np.ones((3, m)), np.empty((M * K, m)), np.empty((width, m))
        out, delta = np.empty((M * K, m)), np.empty((M * K, m))
        D2, tmp = np.zeros((width, m)), np.empty((width, m))  # D2's ones rows stay 0
        tape: list[Callable[[], object]] = [partial(np.dot, self.B1.T, Xa, out=A),
                                            partial(ACTIVATE[self.activation], A, A)]  # fmt: skip
        tape += [partial(A[hi].fill, 1.0) for _, hi in self.rows]  # the ones rows
        outs = [slice(j * K, (j + 1) * K) for j in range(M)]
        for j, (lo, hi) in enumerate(self.rows):
            tape.append(partial(np.dot, self.B2[j].T, A[lo : hi + 1], out=out[outs[j]]))
        tape += output_delta_tape(out, target, delta, np.empty((M, m)), self.loss, M)
        for j, (lo, hi) in enumerate(self.rows):
            tape.append(partial(np.dot, A[lo : hi + 1], delta[outs[j]].T, out=self.G2[j]))
            tape.append(partial(np.dot, self.B2[j][:-1], delta[outs[j]], out=D2[lo:hi]))
        tape += [partial(DERIVATIVE[self.activation], A, tmp),
                 partial(np.multiply, D2, tmp, out=D2),
                 partial(np.dot, Xa, D2.T, out=self.G1),
                 partial(np.multiply, self.theta, self._reg, out=self._tmp),
                 partial(np.add, self.grad, self._tmp, out=self.grad),
                 partial(self.optimizer.update, self.theta, self.grad)]  # fmt: skip
        return [Xa, target], tape


class FusedComparison:
    """M single-hidden-layer runs of ``base`` (its ``model.hidden_sizes`` replaced by each
    size) trained together on the same data, batches and seed."""

    def __init__(self, base: RunConfig, hidden_sizes: list[int], data: Dataset | None = None):
        self.base = base
        self.hidden_sizes = [int(h) for h in hidden_sizes]
        self.data = make_dataset(base.dataset) if data is None else data
        t = base.training
        self.activation, self.loss = base.model.activation, base.model.loss
        self.iteration, self.total = 0, t.iterations
        self.diverged = False
        K, M = self.data.n_classes, len(self.hidden_sizes)
        self._K, self._M = K, M
        self.net = _FusedNet(self.hidden_sizes, K, self.activation, self.loss, t)
        self._Y = np.tile(one_hot(self.data.y_train, K), M)  # (n, M·K): targets per model
        n = len(self.data.y_train)
        self._batch = t.batch_size if t.batch_size and t.batch_size < n else None
        self._rng = np.random.default_rng([t.seed, 2])  # the same batches as Trainer draws
        self._order, self._pos = np.arange(n), n
        full = self._batch is None
        self._full = self.net.load_batch(self.data.x_train, self._Y) if full else None
        self._grid: np.ndarray | None = None

    @property
    def done(self) -> bool:
        return self.iteration >= self.total or self.diverged

    def _step(self) -> None:
        tape = self._full
        if tape is None:
            n, b = len(self._order), self._batch
            if self._pos + b > n:
                self._order, self._pos = self._rng.permutation(n), 0
            idx = self._order[self._pos : self._pos + b]
            self._pos += b
            tape = self.net.load_batch(self.data.x_train[idx], self._Y[idx])
        for call in tape:
            call()

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
                self.diverged = not np.isfinite(self.net.theta.sum())
        return taken

    def _outputs(self, X: np.ndarray) -> np.ndarray:
        """Each model's output for X (m, 2): (m, M, K) softmax or sigmoid values."""
        out = np.empty((len(X), self._M, self._K))
        with np.errstate(all="ignore"):
            for j in range(self._M):
                W1, b1, W2, b2 = self.net.model_params(j)
                a1 = ACTIVATE[self.activation](X @ W1 + b1, np.empty((len(X), len(b1))))
                z2 = a1 @ W2 + b2
                if self.loss == "cross_entropy":
                    e = np.exp(z2)
                    out[:, j] = e / e.sum(axis=1, keepdims=True)
                else:
                    out[:, j] = ACTIVATE["sigmoid"](z2, z2)
        return out

    def _penalties(self) -> np.ndarray:
        """λ/2 Σ‖W‖² of each model (M,)."""
        lam = self.base.training.reg_lambda
        out = []
        for j in range(self._M):
            W1, _, W2, _ = self.net.model_params(j)
            out.append(lam / 2 * (np.sum(W1 * W1) + np.sum(W2 * W2)))
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

    def reports(self) -> list[Progress]:
        """One Progress per model, in the order of ``hidden_sizes`` (as Trainer.report)."""
        d = self.data
        loss, acc = self._metrics(d.x_train, d.y_train)
        loss = (loss + self._penalties()) / len(d.y_train)
        test_loss: list[float | None] = [None] * self._M
        test_acc: list[float | None] = [None] * self._M
        if len(d.y_test):
            t_loss, t_acc = self._metrics(d.x_test, d.y_test)
            test_loss = [float(v) for v in t_loss / len(d.y_test)]
            test_acc = [float(v) for v in t_acc]
        return [
            Progress(self.iteration, float(loss[j]), float(acc[j]), test_loss[j], test_acc[j])
            for j in range(self._M)
        ]

    def boundaries(self) -> list[BoundaryFrame]:
        """One frame per model, in the order of ``hidden_sizes`` (as Trainer.boundary)."""
        bounds = grid_bounds(self.data.x_all)
        n = self.base.view.resolution
        if self._grid is None:
            self._grid = grid_points(bounds, n, n)
        outs = self._outputs(self._grid)
        if self.loss == "squared_error":
            outs = outs / outs.sum(axis=2, keepdims=True)
        grid = Grid(*bounds, nx=n, ny=n)
        return [
            BoundaryFrame(self.iteration, grid, self._K, quantise_probabilities(outs[:, j, :]))
            for j in range(self._M)
        ]


def result_row(hidden_size: int, report: Progress, seconds: float, message: str | None) -> dict:
    """One row of ``compare``'s result (test metrics only with a test split)."""
    row = {"hidden_size": hidden_size, "iteration": report.iteration, "loss": report.loss,
           "train_accuracy": report.train_accuracy}  # fmt: skip
    if report.test_loss is not None:
        row.update(test_loss=report.test_loss, test_accuracy=report.test_accuracy)
    return {**row, "seconds": seconds, "message": message}


def _train_group(base: RunConfig, sizes: list[int]) -> list[dict]:
    """Train one fused group to the end; per model its final report, ``seconds`` (the group's
    wall time, shared by its models) and ``message`` (None, or why it diverged). A group that
    goes non-finite is retrained model by model, so one diverging size cannot spoil the rest."""
    started = time.perf_counter()
    fused = FusedComparison(base, sizes)
    fused.advance(fused.total)
    if not fused.diverged:
        seconds = time.perf_counter() - started
        return [
            result_row(h, r, seconds, None) for h, r in zip(sizes, fused.reports(), strict=True)
        ]
    results = []
    for h in sizes:
        started = time.perf_counter()
        trainer = Trainer(base.model_copy(update={"model": _single(base, h)}))
        trainer.advance(trainer.total)
        seconds = time.perf_counter() - started
        results.append(result_row(h, trainer.report(), seconds, trainer.diverged_message))
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
