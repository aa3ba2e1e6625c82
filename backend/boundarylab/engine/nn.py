"""The network, written to be read next to the article: init, forward, loss, back-propagation
and the update, in plain NumPy that allocates as it goes.

The fast engine (tape.py) computes the same steps on preallocated buffers; tests hold the two
to each other (gradients, updates) and to finite differences. Everything a run REPORTS (loss,
accuracy, probabilities on the boundary grid) is computed here.

Notation as the article's code, for any number of layers: layer l maps ``a_{l-1}`` (n, fan_in)
to ``z_l = a_{l-1}·W_l + b_l`` (n, fan_out), ``W_l`` (fan_in, fan_out), ``b_l`` (fan_out,), with
``a_0 = X`` (n, d). Hidden layers apply the activation; the output layer applies softmax
(``cross_entropy``) or sigmoid (``squared_error``), see losses.py. With one hidden layer these
are the article's ``W1, b1, z1, a1, W2, b2, z2, probs``.

Losses, with n points, λ = ``reg_lambda`` and the penalty of regularizers.py (weights only):

- cross_entropy: ``L = (Σᵢ −log p(yᵢ|xᵢ) + penalty) / n`` (article: ``calculate_loss``)
- squared_error: ``L = (½ Σᵢ ‖oᵢ − tᵢ‖² + penalty) / n``

The gradient used for updates is the SUMMED one, ``∂(n·L)/∂θ`` (the article's ``dW``), and
gradient descent does ``θ ← θ − ε·∂(n·L)/∂θ``. Nothing here does I/O or keeps global random
state.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from boundarylab.engine.activations import ACTIVATE, DERIVATIVE
from boundarylab.engine.losses import (
    class_probabilities,
    data_loss_sum,
    one_hot,
    output_activation,
    output_delta,
)
from boundarylab.engine.regularizers import Regularizer

Params = list[tuple[np.ndarray, np.ndarray]]


def layer_sizes(n_inputs: int, hidden_sizes: Sequence[int], n_classes: int) -> list[int]:
    """``[d, h_1, …, h_L, K]``: the width of every layer, input first."""
    return [int(n_inputs), *(int(h) for h in hidden_sizes), int(n_classes)]


def init_params(sizes: Sequence[int], seed: int) -> Params:
    """The article's initialisation: ``RandomState(seed)``, then per layer in order
    ``W = randn(fan_in, fan_out) / sqrt(fan_in)`` and ``b = 0`` (fan_out,).

    For [2, 3, 2] that is the article's ``np.random.seed(0)``, ``W1 = randn(2, 3)/sqrt(2)``,
    ``W2 = randn(3, 2)/sqrt(3)``, without touching NumPy's global random state."""
    rs = np.random.RandomState(seed)
    params: Params = []
    for fan_in, fan_out in pairwise(sizes):
        params.append((rs.randn(fan_in, fan_out) / np.sqrt(fan_in), np.zeros(fan_out)))
    return params


def weights(params: Params) -> list[np.ndarray]:
    """The weight matrices ``[W_1, …]``: what a penalty covers (biases never)."""
    return [W for W, _ in params]


def forward(params: Params, X: np.ndarray, activation: str, loss: str) -> list[np.ndarray]:
    """Forward propagation: ``[a_1, …, a_L, probs]``, each (n, width).

    One hidden layer: ``z1 = X·W1 + b1; a1 = tanh(z1); z2 = a1·W2 + b2;
    probs = exp(z2) / Σ exp(z2)``."""
    outputs: list[np.ndarray] = []
    a = X
    last = len(params) - 1
    for layer, (W, b) in enumerate(params):
        z = a @ W + b
        a = output_activation(z, loss, z) if layer == last else ACTIVATE[activation](z, z)
        outputs.append(a)
    return outputs


def predict_proba(params: Params, X: np.ndarray, activation: str, loss: str) -> np.ndarray:
    """Class probabilities (n, K), rows summing to 1 (see losses.class_probabilities)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        return class_probabilities(forward(params, X, activation, loss)[-1], loss)


def data_loss_and_accuracy(
    params: Params, X: np.ndarray, y: np.ndarray, activation: str, loss: str
) -> tuple[float, float]:
    """Σ per-point loss (no penalty) and the share of points whose argmax is their label."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        out = forward(params, X, activation, loss)[-1]
        total = data_loss_sum(out, y, one_hot(y, out.shape[1]), loss)
    return total, float(np.mean(out.argmax(axis=1) == y))


def loss_value(
    params: Params,
    X: np.ndarray,
    y: np.ndarray,
    activation: str,
    loss: str,
    regularizer: Regularizer,
) -> float:
    """The mean loss L on (X (n, d), y (n,)), penalty included (the article's
    ``calculate_loss``); inf/nan when diverged."""
    data, _ = data_loss_and_accuracy(params, X, y, activation, loss)
    return (data + regularizer.penalty(weights(params))) / len(X)


def backprop(
    params: Params,
    X: np.ndarray,
    y: np.ndarray,
    activation: str,
    loss: str,
    regularizer: Regularizer,
) -> Params:
    """The summed gradients ``[(dW_l, db_l), …]`` of n·L, what the optimiser steps on.

    The article's back-propagation, for one hidden layer::

        delta3 = probs − onehot(y)                      # output delta (losses.output_delta)
        dW2 = a1ᵀ·delta3;  db2 = Σ delta3
        delta2 = delta3·W2ᵀ ⊙ (1 − a1²)                 # ⊙ the activation's derivative
        dW1 = Xᵀ·delta2;   db1 = Σ delta2
        dW2 += λ·W2;  dW1 += λ·W1                       # the regulariser's add_gradient

    An L1 penalty adds nothing here: it is its own step after the update (regularizers.py).
    """
    a = [X, *forward(params, X, activation, loss)]  # a[0] = X, a[l] = output of layer l
    delta = output_delta(a[-1], one_hot(y, params[-1][0].shape[1]), loss)
    grads: Params = []
    for layer in range(len(params) - 1, -1, -1):
        W = params[layer][0]
        dW = a[layer].T @ delta
        regularizer.add_gradient(W, dW)
        grads.append((dW, delta.sum(axis=0)))
        if layer > 0:
            derivative = DERIVATIVE[activation](a[layer], np.empty_like(a[layer]))
            delta = (delta @ W.T) * derivative
    grads.reverse()
    return grads


def full_gradient(
    params: Params,
    X: np.ndarray,
    y: np.ndarray,
    activation: str,
    loss: str,
    regularizer: Regularizer,
) -> Params:
    """∂(n·L)/∂θ including the whole penalty (for L1: ``λ·sign(W)``, undefined at 0): what
    finite differences of ``loss_value`` measure."""
    data = backprop(params, X, y, activation, loss, Regularizer(0.0))
    return [
        (dW + regularizer.gradient(W), db) for (dW, db), (W, _) in zip(data, params, strict=True)
    ]


def update(params: Params, grads: Params, learning_rate: float, regularizer: Regularizer) -> None:
    """Gradient descent, in place: ``W += −ε·dW; b += −ε·db`` (the article's update), then the
    regulariser's own step (L1's soft threshold; nothing for L2, already in dW)."""
    for (W, b), (dW, db) in zip(params, grads, strict=True):
        W += -learning_rate * dW
        b += -learning_rate * db
        regularizer.after_step(W, learning_rate)


def train_step(
    params: Params,
    X: np.ndarray,
    y: np.ndarray,
    activation: str,
    loss: str,
    regularizer: Regularizer,
    learning_rate: float,
) -> None:
    """One full-batch step of the article's ``build_model`` loop: back-propagation, update."""
    update(
        params, backprop(params, X, y, activation, loss, regularizer), learning_rate, regularizer
    )
