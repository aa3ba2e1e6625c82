"""The network: initialisation, forward pass, loss, summed gradients and updates, in NumPy.

Notation follows the article: layer l maps ``a_{l-1}`` (n, fan_in) to ``z_l = a_{l-1} W_l + b_l``
(n, fan_out), ``W_l`` (fan_in, fan_out), ``b_l`` (fan_out,). Hidden layers apply the activation;
the output layer applies softmax (``cross_entropy``) or an element-wise sigmoid
(``squared_error``). Shapes: ``X`` (n, d) float64, ``Y`` (n, K) one-hot float64, ``y`` (n,) int.

Losses, with n points and λ = ``reg_lambda`` (weights only, never biases):

- cross_entropy: ``L = (Σᵢ −log p(yᵢ|xᵢ) + λ/2 · Σ_l ‖W_l‖²) / n`` (article: ``calculate_loss``)
- squared_error: ``L = (½ Σᵢ ‖oᵢ − tᵢ‖² + λ/2 · Σ_l ‖W_l‖²) / n`` with sigmoid outputs ``o`` and
  one-hot targets ``t`` (the L2-norm loss the article derives)

The gradient used for updates is the SUMMED one, ``∂(n·L)/∂θ`` (the article's ``dW``, including
``λW``), and plain gradient descent does ``θ -= ε · ∂(n·L)/∂θ``. Nothing here does I/O or keeps
global random state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from itertools import pairwise

import numpy as np

from boundarylab.engine.optim import OPTIMIZERS

Params = list[tuple[np.ndarray, np.ndarray]]
ACTIVATIONS = ("tanh", "sigmoid", "relu", "linear")
LOSSES = ("cross_entropy", "squared_error")


def _sigmoid(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    # 1 / (1 + exp(-z)); exp overflow for very negative z gives exactly 0, which is right.
    np.negative(z, out=out)
    np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


def _relu(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0, out=out)


def _linear(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    if out is not z:
        out[...] = z
    return out


def _tanh(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    return np.tanh(z, out=out)


# Each derivative is written in terms of the activation's OUTPUT a (as the article's 1 − a²),
# so the backward pass needs no copy of z.
def _d_tanh(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.multiply(a, a, out=out)
    return np.subtract(1.0, out, out=out)


def _d_sigmoid(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.subtract(1.0, a, out=out)
    return np.multiply(out, a, out=out)


def _d_relu(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    return np.greater(a, 0.0, out=out, casting="unsafe")


def _d_linear(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    out.fill(1.0)
    return out


Fn = Callable[[np.ndarray, np.ndarray], np.ndarray]
# name -> f(z, out) writing the activation of z into out; DERIVATIVE: f(a, out) from the output.
ACTIVATE: dict[str, Fn] = {"tanh": _tanh, "sigmoid": _sigmoid, "relu": _relu, "linear": _linear}
DERIVATIVE: dict[str, Fn] = {
    "tanh": _d_tanh,
    "sigmoid": _d_sigmoid,
    "relu": _d_relu,
    "linear": _d_linear,
}


def layer_sizes(n_inputs: int, hidden_sizes: Sequence[int], n_classes: int) -> list[int]:
    """``[d, h_1, …, h_L, K]``: the width of every layer, input first."""
    return [int(n_inputs), *(int(h) for h in hidden_sizes), int(n_classes)]


def init_params(sizes: Sequence[int], seed: int) -> Params:
    """The article's initialisation: ``RandomState(seed)``, then per layer in order
    ``W = randn(fan_in, fan_out) / sqrt(fan_in)`` and ``b = 0`` (fan_out,)."""
    rs = np.random.RandomState(seed)
    params: Params = []
    for fan_in, fan_out in pairwise(sizes):
        params.append((rs.randn(fan_in, fan_out) / np.sqrt(fan_in), np.zeros(fan_out)))
    return params


def output_activation(z: np.ndarray, loss: str, out: np.ndarray | None = None) -> np.ndarray:
    """Output of the last layer from its pre-activation ``z`` (n, K): softmax rows
    (cross_entropy, computed as the article does: ``exp(z) / Σ exp(z)``) or sigmoid."""
    out = np.empty_like(z) if out is None else out
    if loss == "cross_entropy":
        np.exp(z, out=out)
        out /= out.sum(axis=1, keepdims=True)
        return out
    return _sigmoid(z, out)


def forward(params: Params, X: np.ndarray, activation: str, loss: str) -> list[np.ndarray]:
    """All layer outputs ``[a_1, …, a_L, out]``; ``out`` (n, K) is softmax or sigmoid."""
    outs: list[np.ndarray] = []
    a = X
    last = len(params) - 1
    for k, (W, b) in enumerate(params):
        z = a @ W + b
        a = output_activation(z, loss, z) if k == last else ACTIVATE[activation](z, z)
        outs.append(a)
    return outs


def class_probabilities(out: np.ndarray, loss: str) -> np.ndarray:
    """Per-class scores that sum to 1 per row (n, K). Softmax output is already that; sigmoid
    outputs (squared_error) are normalised by their row sum, so argmax is unchanged."""
    if loss == "cross_entropy":
        return out
    total = out.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        probs = out / total
    # All sigmoids at exactly 0 (saturated) carry no preference: spread evenly.
    return np.where(total > 0, probs, 1.0 / out.shape[1])


def weight_penalty(params: Params) -> float:
    """``Σ_l ‖W_l‖²`` (biases excluded)."""
    return float(sum(np.sum(W * W) for W, _ in params))


def data_loss_sum(out: np.ndarray, y: np.ndarray, Y: np.ndarray, loss: str) -> float:
    """Σ over points of the per-point loss, from the network output ``out`` (n, K)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if loss == "cross_entropy":
            return float(-np.sum(np.log(out[np.arange(len(y)), y])))
        diff = out - Y
        return float(0.5 * np.sum(diff * diff))


def loss_value(
    params: Params,
    X: np.ndarray,
    y: np.ndarray,
    activation: str,
    loss: str,
    reg_lambda: float,
) -> float:
    """The mean loss L (see module docstring) on (X (n, d), y (n,)); inf/nan when diverged."""
    Y = one_hot(y, params[-1][0].shape[1])
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out = forward(params, X, activation, loss)[-1]
        total = data_loss_sum(out, y, Y, loss) + reg_lambda / 2 * weight_penalty(params)
    return total / len(X)


def one_hot(y: np.ndarray, n_classes: int) -> np.ndarray:
    """(n,) int labels to (n, K) float64 one-hot rows."""
    Y = np.zeros((len(y), n_classes))
    Y[np.arange(len(y)), y] = 1.0
    return Y


def output_delta(out: np.ndarray, Y: np.ndarray, loss: str) -> np.ndarray:
    """∂(Σ per-point loss)/∂z_out (n, K): ``p − t`` for softmax + cross-entropy (the
    article's ``delta3``), ``(o − t)·o·(1 − o)`` for sigmoid + squared error."""
    if loss == "cross_entropy":
        return out - Y
    return (out - Y) * out * (1.0 - out)


def gradients(
    params: Params,
    X: np.ndarray,
    y: np.ndarray,
    activation: str,
    loss: str,
    reg_lambda: float,
) -> Params:
    """Summed gradients ``[(dW_l (fan_in, fan_out), db_l (fan_out,)), …]`` of ``n·L``, i.e. the
    article's backpropagation with ``+ λW`` on the weights. Reference version (allocates);
    ``Network.step`` is the fast in-place equivalent."""
    Y = one_hot(y, params[-1][0].shape[1])
    outs = forward(params, X, activation, loss)
    delta = output_delta(outs[-1], Y, loss)
    grads: Params = []
    for k in range(len(params) - 1, -1, -1):
        a_prev = X if k == 0 else outs[k - 1]
        W = params[k][0]
        grads.append((a_prev.T @ delta + reg_lambda * W, delta.sum(axis=0)))
        if k > 0:
            delta = (delta @ W.T) * DERIVATIVE[activation](a_prev, np.empty_like(a_prev))
    grads.reverse()
    return grads


def output_delta_tape(
    out: np.ndarray,
    target: np.ndarray,
    delta: np.ndarray,
    sums: np.ndarray,
    loss: str,
    groups: int = 1,
) -> list[Callable[[], object]]:
    """Calls turning the output layer's pre-activation ``out`` (K·groups, m) into its output
    (in place) and ``delta`` (K·groups, m) = ∂(Σ loss)/∂z, given one-hot ``target`` (K·groups,
    m); ``sums`` (groups, m) is scratch. Softmax per group of K rows, as the article computes
    it (``exp(z) / Σ exp(z)``), then ``p − t``; or sigmoid then ``(o − t)·o·(1 − o)``."""
    if loss == "squared_error":
        # The last factor is written over o, which is not needed after this.
        return [partial(_sigmoid, out, out), partial(np.subtract, out, target, out=delta),
                partial(np.multiply, delta, out, out=delta),
                partial(np.subtract, 1.0, out, out=out),
                partial(np.multiply, delta, out, out=delta)]  # fmt: skip
    m = out.shape[1]
    grouped = out.reshape(groups, -1, m)  # (groups, K, m)
    sums = sums.reshape(groups, 1, m)
    # Row by row: the additions of sum(axis=…) in the same order, in far fewer calls.
    tape = [partial(np.exp, out, out=out),
            partial(np.add, grouped[:, 0:1], grouped[:, 1:2], out=sums)]  # fmt: skip
    for j in range(2, grouped.shape[1]):
        tape.append(partial(np.add, sums, grouped[:, j : j + 1], out=sums))
    tape.append(partial(np.divide, grouped, sums, out=grouped))
    tape.append(partial(np.subtract, out, target, out=delta))
    return tape


class _Workspace:
    """Buffers for batches of m points, stored transposed (features × points) so every
    element-wise operation runs over contiguous rows. ``inp`` (d+1, m) is the batch with a row
    of ones below it; ``hidden[k]`` (h_k+1, m) likewise, so each layer's ``[W; b]`` is one
    matrix product and ``[dW; db]`` another (the bias sums come out of the same product).
    ``target`` (K, m) holds the one-hot targets; ``tape`` is the step as a list of bound
    NumPy calls, built once, replayed without Python-level dispatch."""

    def __init__(self, m: int, sizes: list[int]) -> None:
        self.inp = np.ones((sizes[0] + 1, m))
        self.hidden = [np.ones((s + 1, m)) for s in sizes[1:-1]]
        self.out = np.empty((sizes[-1], m))
        self.target = np.empty((sizes[-1], m))
        self.deltas = [np.empty((s, m)) for s in sizes[1:]]
        self.tmp = [np.empty((s, m)) for s in sizes[1:]]
        self.tape: list[Callable[[], object]] = []


class Network:
    """A fully connected network whose parameters live in one flat float64 vector ``theta``.

    Layer k's parameters are the block ``[W_k; b_k]`` (fan_in+1, fan_out), row-major, so
    ``params`` ``[(W_k (fan_in, fan_out), b_k (fan_out,)), …]`` and ``blocks`` are views of
    ``theta``: an optimiser updates every layer in a handful of NumPy calls. At 300×3 NumPy's
    per-call overhead, not arithmetic, is the cost, so a step is a prebuilt tape of calls.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "tanh",
        loss: str = "cross_entropy",
        *,
        seed: int = 0,
        reg_lambda: float = 0.0,
        learning_rate: float = 0.01,
        optimizer: str = "gd",
    ) -> None:
        if activation not in ACTIVATE:
            raise ValueError(f"model.activation: unknown activation {activation!r}")
        if loss not in LOSSES:
            raise ValueError(f"model.loss: unknown loss {loss!r}")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"training.optimizer: unknown optimizer {optimizer!r}")
        self.sizes = [int(s) for s in sizes]
        self.activation, self.loss = activation, loss
        self.reg_lambda = float(reg_lambda)
        shapes = list(pairwise(self.sizes))
        total = sum((i + 1) * o for i, o in shapes)
        self.theta, self.grad = np.zeros(total), np.zeros(total)
        self.blocks = self._blocks(self.theta, shapes)
        self.grad_blocks = self._blocks(self.grad, shapes)
        self.params: Params = [(B[:-1], B[-1]) for B in self.blocks]
        self.grads: Params = [(G[:-1], G[-1]) for G in self.grad_blocks]
        self.set_params(init_params(self.sizes, seed))
        # λ on weight entries and 0 on biases, so one multiply regularises every layer.
        self._reg = np.zeros(total)
        for R in self._blocks(self._reg, shapes):
            R[:-1] = self.reg_lambda
        self._tmp = np.empty(total)
        self.optimizer = OPTIMIZERS[optimizer](total, learning_rate)
        self._ws: dict[int, _Workspace] = {}

    @staticmethod
    def _blocks(flat: np.ndarray, shapes: list[tuple[int, int]]) -> list[np.ndarray]:
        blocks, pos = [], 0
        for i, o in shapes:
            blocks.append(flat[pos : pos + (i + 1) * o].reshape(i + 1, o))
            pos += (i + 1) * o
        return blocks

    def set_params(self, params: Params) -> None:
        """Copy ``params`` (same shapes) into the network."""
        for (W, b), (W0, b0) in zip(self.params, params, strict=True):
            W[...] = W0
            b[...] = np.reshape(b0, b.shape)

    def load_batch(self, X: np.ndarray, Y: np.ndarray) -> _Workspace:
        """Copy a batch X (m, d) and its one-hot targets Y (m, K) into the workspace
        for m points; returns it, ready for ``step_loaded``."""
        ws = self._ws.get(len(X))
        if ws is None:
            ws = self._ws[len(X)] = _Workspace(len(X), self.sizes)
            ws.tape = self._gradient_tape(ws) + self._update_tape()
        ws.inp[:-1] = X.T
        ws.target[...] = Y.T
        return ws

    def _gradient_tape(self, ws: _Workspace) -> list[Callable[[], object]]:
        """The calls of one forward + backward pass leaving ``grad`` (λW included), in the
        article's order of operations."""
        act, deriv = ACTIVATE[self.activation], DERIVATIVE[self.activation]
        tape: list[Callable[[], object]] = []
        a = ws.inp
        for k, B in enumerate(self.blocks):
            z = ws.hidden[k][:-1] if k < len(ws.hidden) else ws.out
            tape.append(partial(np.dot, B.T, a, out=z))
            if k < len(ws.hidden):
                tape.append(partial(act, z, z))
                a = ws.hidden[k]
        tape += self._output_delta_tape(ws)
        delta = ws.deltas[-1]
        for k in range(len(self.blocks) - 1, -1, -1):
            a_prev = ws.inp if k == 0 else ws.hidden[k - 1]
            tape.append(partial(np.dot, a_prev, delta.T, out=self.grad_blocks[k]))
            if k > 0:
                prev, tmp = ws.deltas[k - 1], ws.tmp[k - 1]
                tape.append(partial(np.dot, self.params[k][0], delta, out=prev))
                tape.append(partial(deriv, a_prev[:-1], tmp))
                tape.append(partial(np.multiply, prev, tmp, out=prev))
                delta = prev
        tape.append(partial(np.multiply, self.theta, self._reg, out=self._tmp))
        tape.append(partial(np.add, self.grad, self._tmp, out=self.grad))
        return tape

    def _output_delta_tape(self, ws: _Workspace) -> list[Callable[[], object]]:
        sums = ws.tmp[-1][:1]
        return output_delta_tape(ws.out, ws.target, ws.deltas[-1], sums, self.loss)

    def _update_tape(self) -> list[Callable[[], object]]:
        return [partial(self.optimizer.update, self.theta, self.grad)]

    def compute_gradient(self, ws: _Workspace) -> np.ndarray:
        """Fill ``self.grad`` (P,) with the summed gradient of ``m·L`` (λW included) on the
        batch loaded in ``ws``; returns it."""
        for call in ws.tape[:-1]:
            call()
        return self.grad

    def step(self, X: np.ndarray, Y: np.ndarray) -> None:
        """One update on the batch (X (m, d), one-hot Y (m, K))."""
        self.step_loaded(self.load_batch(X, Y))

    @staticmethod
    def step_loaded(ws: _Workspace) -> None:
        """One update on the batch already in ``ws`` (the fast path for full batches)."""
        for call in ws.tape:
            call()

    def forward(self, X: np.ndarray) -> list[np.ndarray]:
        """Layer outputs ``[a_1, …, out]`` for X (m, d); allocates (use for evaluation)."""
        return forward(self.params, X, self.activation, self.loss)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (m, K), rows summing to 1 (see ``class_probabilities``)."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            return class_probabilities(self.forward(X)[-1], self.loss)

    def loss_sum(self, X: np.ndarray, y: np.ndarray, Y: np.ndarray) -> float:
        """Σ per-point loss on (X (m, d), y (m,)), without the weight penalty."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            return data_loss_sum(self.forward(X)[-1], y, Y, self.loss)

    def penalty(self) -> float:
        """``λ/2 · Σ‖W‖²``."""
        return self.reg_lambda / 2 * weight_penalty(self.params)

    def is_finite(self) -> bool:
        """True when every parameter is finite (one reduction over ``theta``)."""
        return bool(np.isfinite(self.theta.sum()))
