"""The fast engine: the reference's math (nn.py) on preallocated buffers, as a "tape".

At the article's size (300 points, 3 hidden units) NumPy's per-call overhead, not arithmetic,
is what a step costs. So a step is built once as a list of NumPy calls bound to fixed buffers
(the tape) and replayed: no allocation, no Python-level dispatch beyond the calls themselves.

Layout. Buffers hold points as columns (features × points) so element-wise work runs over
contiguous rows. Each layer's parameters are one block ``[W; b]`` (fan_in+1, fan_out) and each
layer input carries a row of ones below it, so ``z = [W; b]ᵀ·[a; 1]`` is one matrix product and
``[dW; db] = [a; 1]·deltaᵀ`` another (the bias sums come out of the same product).

Stacks. A ``Network`` holds M ≥ 1 models of the same depth that see the same points (the
hidden-size comparison trains M at once). Their parameters live in one flat vector ``theta``
(model after model, layer after layer), so the regulariser and the optimiser update every
model in a few calls; element-wise work (activations, derivatives, softmax) runs once over
all models' rows. Every matrix product is made per model, with exactly the shapes and memory
layout a model alone would have: a model in a stack therefore computes, bit for bit, what it
computes alone (a product over all models at once would sum in a different order).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from boundarylab.engine import nn
from boundarylab.engine.activations import ACTIVATE, DERIVATIVE, sigmoid
from boundarylab.engine.optim import OPTIMIZERS
from boundarylab.engine.regularizers import Regularizer, make_regularizer

Call = Callable[[], object]


def output_delta_tape(out: np.ndarray, target: np.ndarray, delta: np.ndarray, sums: np.ndarray,
                      loss: str, groups: int = 1) -> list[Call]:  # fmt: skip
    """Calls turning the output layers' pre-activations ``out`` (groups·K, m) into their
    outputs (in place) and ``delta`` (groups·K, m) = ∂(Σ loss)/∂z for each group of K rows,
    given one-hot ``target`` (K, m) shared by every group; ``sums`` (groups, m) is scratch.
    Softmax per group as the article computes it (``exp(z) / Σ exp(z)``), then ``p − t``; or
    sigmoid, then ``(o − t)·o·(1 − o)`` (see losses.py)."""
    m = out.shape[1]
    grouped, deltas = out.reshape(groups, -1, m), delta.reshape(groups, -1, m)  # (groups, K, m)
    shared = target.reshape(1, -1, m)
    if loss == "squared_error":
        # The last factor is written over o, which is not needed after this.
        return [partial(sigmoid, out, out), partial(np.subtract, grouped, shared, out=deltas),
                partial(np.multiply, delta, out, out=delta),
                partial(np.subtract, 1.0, out, out=out),
                partial(np.multiply, delta, out, out=delta)]  # fmt: skip
    sums = sums.reshape(groups, 1, m)
    # Row by row: the additions of sum(axis=…) in the same order, in far fewer calls.
    tape = [partial(np.exp, out, out=out),
            partial(np.add, grouped[:, 0:1], grouped[:, 1:2], out=sums)]  # fmt: skip
    for j in range(2, grouped.shape[1]):
        tape.append(partial(np.add, sums, grouped[:, j : j + 1], out=sums))
    tape.append(partial(np.divide, grouped, sums, out=grouped))
    tape.append(partial(np.subtract, grouped, shared, out=deltas))
    return tape


@dataclass(frozen=True)
class StackLayout:
    """Where each model's parameters and units live.

    ``models[j]`` is model j's layer widths ``[d, h_1, …, K]`` (same d, K and depth for all).
    Hidden layer l stacks every model's units in ``rows[l]`` rows: model j's ``h`` units at
    ``unit_rows(l, j)``, then one row of ones (its next layer's bias input)."""

    models: tuple[tuple[int, ...], ...]

    @property
    def depth(self) -> int:
        """Number of weight layers (hidden layers + 1)."""
        return len(self.models[0]) - 1

    def block_shapes(self, j: int) -> list[tuple[int, int]]:
        """(fan_in + 1, fan_out) of model j's ``[W; b]`` blocks, input side first."""
        sizes = self.models[j]
        return [(sizes[k] + 1, sizes[k + 1]) for k in range(self.depth)]

    def param_slices(self) -> list[slice]:
        """Model j's parameters in ``theta``: ``theta[param_slices()[j]]``."""
        out, pos = [], 0
        for j in range(len(self.models)):
            size = sum(i * o for i, o in self.block_shapes(j))
            out.append(slice(pos, pos + size))
            pos += size
        return out

    def rows(self, layer: int) -> int:
        """Rows of hidden layer ``layer`` (0-based): every model's units plus its ones row."""
        return sum(sizes[layer + 1] + 1 for sizes in self.models)

    def unit_rows(self, layer: int, j: int) -> tuple[int, int]:
        """(first, end) rows of model j's units in hidden layer ``layer``; ``end`` is its ones
        row."""
        first = sum(self.models[i][layer + 1] + 1 for i in range(j))
        return first, first + self.models[j][layer + 1]


class Workspace:
    """Buffers for batches of m points (see the module docstring for the layout).

    ``inp`` (d+1, m): the batch, ones below. ``hidden[l]`` (rows, m): layer l's outputs.
    ``out`` (M·K, m): outputs; ``target`` (K, m): one-hot targets shared by the models;
    ``delta_out`` (M·K, m), ``deltas[l]``/``tmp[l]`` (rows, m): back-propagation. The ones rows
    of ``deltas`` stay 0. ``gradient`` and ``step`` are the tapes (``step`` = ``gradient`` +
    the update)."""

    def __init__(self, m: int, layout: StackLayout) -> None:
        d, K, M = layout.models[0][0], layout.models[0][-1], len(layout.models)
        hidden_rows = [layout.rows(layer) for layer in range(layout.depth - 1)]
        self.inp = np.ones((d + 1, m))
        self.hidden = [np.ones((r, m)) for r in hidden_rows]
        self.out, self.delta_out = np.empty((M * K, m)), np.empty((M * K, m))
        self.target = np.empty((K, m))
        self.sums = np.empty((M, m))
        self.deltas = [np.zeros((r, m)) for r in hidden_rows]
        self.tmp = [np.empty((r, m)) for r in hidden_rows]
        self.gradient: list[Call] = []
        self.step: list[Call] = []


class Network:
    """M ≥ 1 fully connected models (one for a run, several for the comparison) whose
    parameters live in one flat float64 vector ``theta``.

    ``blocks[j][l]`` is model j's ``[W_l; b_l]`` (a view of ``theta``); ``grad_blocks`` the same
    for ``grad``; ``model_params(j)`` gives nn.py's ``[(W, b), …]`` as views. Each model starts
    where a run with the same seed starts (nn.init_params)."""

    def __init__(
        self,
        sizes: Sequence[int] | Sequence[Sequence[int]],
        activation: str = "tanh",
        loss: str = "cross_entropy",
        *,
        seed: int = 0,
        regularization: str = "l2",
        reg_lambda: float = 0.0,
        learning_rate: float = 0.01,
        optimizer: str = "gd",
    ) -> None:
        # A flat list of widths is one model; a list of such lists is a stack.
        models = [list(sizes)] if not isinstance(sizes[0], Sequence) else [list(s) for s in sizes]
        self.layout = StackLayout(tuple(tuple(int(w) for w in s) for s in models))  # type: ignore[arg-type]
        self.activation, self.loss = activation, loss
        self.learning_rate = float(learning_rate)
        self.regularizer: Regularizer = make_regularizer(regularization, reg_lambda)
        self.slices = self.layout.param_slices()
        total = self.slices[-1].stop
        self.theta, self.grad = np.zeros(total), np.zeros(total)
        self.blocks = self._blocks(self.theta)
        self.grad_blocks = self._blocks(self.grad)
        self.weight_mask = np.zeros(total)  # 1.0 on weight entries, 0.0 on biases
        for blocks in self._blocks(self.weight_mask):
            for B in blocks:
                B[:-1] = 1.0
        self.scratch = np.empty(total)
        for j, sizes_j in enumerate(self.layout.models):
            self.set_params(nn.init_params(sizes_j, seed), j)
        self.optimizer = OPTIMIZERS[optimizer](total, learning_rate)
        self._workspaces: dict[int, Workspace] = {}

    @property
    def n_models(self) -> int:
        return len(self.layout.models)

    @property
    def params(self) -> nn.Params:
        """The first (for a single network: the only) model's ``[(W, b), …]``."""
        return self.model_params(0)

    def _blocks(self, flat: np.ndarray) -> list[list[np.ndarray]]:
        out = []
        for j, where in enumerate(self.slices):
            blocks, pos = [], where.start
            for rows, cols in self.layout.block_shapes(j):
                blocks.append(flat[pos : pos + rows * cols].reshape(rows, cols))
                pos += rows * cols
            out.append(blocks)
        return out

    def model_params(self, j: int) -> nn.Params:
        """Model j's ``[(W_l (fan_in, fan_out), b_l (fan_out,)), …]``, views of ``theta``."""
        return [(B[:-1], B[-1]) for B in self.blocks[j]]

    def model_grads(self, j: int) -> nn.Params:
        """Model j's ``[(dW_l, db_l), …]`` from the last gradient, views of ``grad``."""
        return [(G[:-1], G[-1]) for G in self.grad_blocks[j]]

    def set_params(self, params: nn.Params, j: int = 0) -> None:
        """Copy ``params`` (model j's shapes) into model j."""
        for (W, b), (W0, b0) in zip(self.model_params(j), params, strict=True):
            W[...] = W0
            b[...] = np.reshape(b0, b.shape)

    def load_batch(self, X: np.ndarray, Y: np.ndarray) -> Workspace:
        """Copy a batch X (m, d) and its one-hot targets Y (m, K) into the workspace for m
        points; returns it, ready for ``step_loaded``."""
        ws = self._workspaces.get(len(X))
        if ws is None:
            ws = self._workspaces[len(X)] = Workspace(len(X), self.layout)
            ws.gradient = _gradient_tape(self, ws)
            ws.step = ws.gradient + self._update_tape()
        ws.inp[:-1] = X.T
        ws.target[...] = Y.T
        return ws

    def _update_tape(self) -> list[Call]:
        update = [partial(self.optimizer.update, self.theta, self.grad)]
        return update + self.regularizer.after_step_calls(
            self.theta, self.weight_mask, self.learning_rate, self.scratch
        )

    def retune(self, learning_rate: float | None = None, reg_lambda: float | None = None) -> None:
        """Step with a new learning rate and/or λ from the next step on (None: unchanged).
        The optimiser's state (momentum's velocity, Adam's moments and step count) carries on.
        """
        if learning_rate is not None:
            self.learning_rate = self.optimizer.lr = float(learning_rate)
        if reg_lambda is not None:
            self.regularizer.lam = float(reg_lambda)
        # A tape binds λ (and, for L1, ε·λ) when it is built: rebuild every workspace's tapes
        # in place, since the batch stepper holds on to the full batch's workspace.
        for ws in self._workspaces.values():
            ws.gradient = _gradient_tape(self, ws)
            ws.step = ws.gradient + self._update_tape()

    def compute_gradient(self, ws: Workspace) -> np.ndarray:
        """Fill ``grad`` (P,) with what the optimiser steps on for the batch in ``ws`` (the
        summed data gradient, plus λW for L2; see nn.backprop); returns it."""
        for call in ws.gradient:
            call()
        return self.grad

    def step(self, X: np.ndarray, Y: np.ndarray) -> None:
        """One update on the batch (X (m, d), one-hot Y (m, K))."""
        self.step_loaded(self.load_batch(X, Y))

    @staticmethod
    def step_loaded(ws: Workspace) -> None:
        """One update on the batch already in ``ws`` (the fast path for full batches)."""
        for call in ws.step:
            call()

    def forward(self, X: np.ndarray, j: int = 0) -> list[np.ndarray]:
        """Model j's layer outputs for X (m, d) (nn.forward; allocates: for evaluation)."""
        return nn.forward(self.model_params(j), X, self.activation, self.loss)

    def predict_proba(self, X: np.ndarray, j: int = 0) -> np.ndarray:
        """Model j's class probabilities (m, K), rows summing to 1."""
        return nn.predict_proba(self.model_params(j), X, self.activation, self.loss)

    def penalty(self, j: int = 0) -> float:
        """Model j's penalty term of the summed loss (regularizers.py)."""
        return self.regularizer.penalty(nn.weights(self.model_params(j)))

    def is_finite(self) -> bool:
        """True when every parameter is finite (one reduction over ``theta``)."""
        return bool(np.isfinite(self.theta.sum()))

    def finite_models(self) -> list[bool]:
        """Per model: are all its parameters finite?"""
        return [bool(np.isfinite(self.theta[s].sum())) for s in self.slices]


def _gradient_tape(net: Network, ws: Workspace) -> list[Call]:
    """The calls of one forward + backward pass over every model, leaving in ``net.grad`` what
    the optimiser steps on, in the article's order of operations."""
    tape = _forward_tape(net, ws)
    tape += output_delta_tape(ws.out, ws.target, ws.delta_out, ws.sums, net.loss, net.n_models)
    tape += _backward_tape(net, ws)
    return tape + net.regularizer.gradient_calls(net.theta, net.grad, net.weight_mask, net.scratch)


def _layer_input(net: Network, ws: Workspace, layer: int, j: int) -> np.ndarray:
    """Model j's input to weight layer ``layer``, with its row of ones (fan_in+1, m)."""
    if layer == 0:
        return ws.inp
    first, end = net.layout.unit_rows(layer - 1, j)
    return ws.hidden[layer - 1][first : end + 1]


def _layer_delta(net: Network, ws: Workspace, layer: int, j: int) -> np.ndarray:
    """Model j's delta of weight layer ``layer`` (fan_out, m)."""
    if layer == net.layout.depth - 1:
        K = net.layout.models[0][-1]
        return ws.delta_out[j * K : (j + 1) * K]
    first, end = net.layout.unit_rows(layer, j)
    return ws.deltas[layer][first:end]


def _forward_tape(net: Network, ws: Workspace) -> list[Call]:
    act, last = ACTIVATE[net.activation], net.layout.depth - 1
    K = net.layout.models[0][-1]
    tape: list[Call] = []
    for layer in range(net.layout.depth):
        for j in range(net.n_models):
            if layer == last:
                z = ws.out[j * K : (j + 1) * K]
            else:
                first, end = net.layout.unit_rows(layer, j)
                z = ws.hidden[layer][first:end]
            B = net.blocks[j][layer]
            tape.append(partial(np.dot, B.T, _layer_input(net, ws, layer, j), out=z))
        if layer < last:
            # Each model's units only, never its ones row: as many calls as one activation
            # over every row plus a refill of the ones rows, with less to compute.
            for j in range(net.n_models):
                first, end = net.layout.unit_rows(layer, j)
                units = ws.hidden[layer][first:end]
                tape.append(partial(act, units, units))
    return tape


def _backward_tape(net: Network, ws: Workspace) -> list[Call]:
    deriv = DERIVATIVE[net.activation]
    tape: list[Call] = []
    for layer in range(net.layout.depth - 1, -1, -1):
        for j in range(net.n_models):
            delta, a_prev = _layer_delta(net, ws, layer, j), _layer_input(net, ws, layer, j)
            tape.append(partial(np.dot, a_prev, delta.T, out=net.grad_blocks[j][layer]))
        if layer == 0:
            break
        for j in range(net.n_models):
            W = net.blocks[j][layer][:-1]
            prev = _layer_delta(net, ws, layer - 1, j)
            tape.append(partial(np.dot, W, _layer_delta(net, ws, layer, j), out=prev))
        # Element-wise over all models at once; a ones row has delta 0, and stays 0.
        a, tmp, prev = (buf[layer - 1][:-1] for buf in (ws.hidden, ws.tmp, ws.deltas))
        tape.append(partial(deriv, a, tmp))
        tape.append(partial(np.multiply, prev, tmp, out=prev))
    return tape
