"""The output layer and the data loss, in the reference layout (points × classes).

Two pairings, each chosen so that the output delta ``∂(Σ per-point loss)/∂z_out`` is simple:

- ``cross_entropy``: softmax outputs ``p`` (computed as the article does, ``exp(z) / Σ exp(z)``)
  and the per-point loss ``−log p(y)``; the delta is ``p − t`` (the article's ``delta3``).
- ``squared_error``: element-wise sigmoid outputs ``o`` and the per-point loss ``½‖o − t‖²``
  (the L2-norm loss the article derives on paper); the delta is ``(o − t)·o·(1 − o)``.

``t`` is the one-hot target. Shapes: ``z``, ``out``, ``Y`` (n, K) float64, ``y`` (n,) int.
"""

from __future__ import annotations

import numpy as np

from boundarylab.engine.activations import sigmoid

LOSSES = ("cross_entropy", "squared_error")


def one_hot(y: np.ndarray, n_classes: int) -> np.ndarray:
    """(n,) int labels to (n, K) float64 one-hot rows."""
    Y = np.zeros((len(y), n_classes))
    Y[np.arange(len(y)), y] = 1.0
    return Y


def output_activation(z: np.ndarray, loss: str, out: np.ndarray | None = None) -> np.ndarray:
    """The last layer's output from its pre-activation ``z`` (n, K): softmax rows for
    cross_entropy (``exp(z) / Σ exp(z)``, unshifted, exactly as the article), else sigmoid."""
    out = np.empty_like(z) if out is None else out
    if loss == "cross_entropy":
        np.exp(z, out=out)
        out /= out.sum(axis=1, keepdims=True)
        return out
    return sigmoid(z, out)


def data_loss_sum(out: np.ndarray, y: np.ndarray, Y: np.ndarray, loss: str) -> float:
    """Σ over points of the per-point loss, from the network output ``out`` (n, K)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if loss == "cross_entropy":
            return float(-np.sum(np.log(out[np.arange(len(y)), y])))
        diff = out - Y
        return float(0.5 * np.sum(diff * diff))


def output_delta(out: np.ndarray, Y: np.ndarray, loss: str) -> np.ndarray:
    """∂(Σ per-point loss)/∂z_out (n, K): ``p − t`` or ``(o − t)·o·(1 − o)``."""
    if loss == "cross_entropy":
        return out - Y
    return (out - Y) * out * (1.0 - out)


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
