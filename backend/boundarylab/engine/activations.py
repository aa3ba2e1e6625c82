"""Activation functions and their derivatives: the one copy the reference and the tape share.

Every function has the form ``f(x, out) -> out``: it writes its result into ``out`` (which may
be ``x`` itself) and returns it, so the reference can call it on a fresh array and the tape
can bind it once to preallocated buffers. Shapes are whatever the caller passes; everything
is element-wise.

Each derivative is written in terms of the activation's OUTPUT ``a`` (as the article's
``1 − a²`` for tanh), so back-propagation needs no copy of the pre-activation ``z``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Fn = Callable[[np.ndarray, np.ndarray], np.ndarray]
ACTIVATIONS = ("tanh", "sigmoid", "relu", "linear")


def tanh(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    return np.tanh(z, out=out)


def sigmoid(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(−z))``; exp overflowing for very negative z gives exactly 0: right."""
    np.negative(z, out=out)
    np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


def relu(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0, out=out)


def linear(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    if out is not z:
        out[...] = z
    return out


def d_tanh(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``1 − a²`` (the article's ``1 - np.power(a1, 2)``)."""
    np.multiply(a, a, out=out)
    return np.subtract(1.0, out, out=out)


def d_sigmoid(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``a·(1 − a)``, written as ``(1 − a)·a``."""
    np.subtract(1.0, a, out=out)
    return np.multiply(out, a, out=out)


def d_relu(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """1 where the unit is active (a > 0), else 0."""
    return np.greater(a, 0.0, out=out, casting="unsafe")


def d_linear(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    out.fill(1.0)
    return out


# name -> f(z, out) writing the activation of z into out.
ACTIVATE: dict[str, Fn] = {"tanh": tanh, "sigmoid": sigmoid, "relu": relu, "linear": linear}
# name -> f(a, out) writing the derivative, from the activation's output a, into out.
DERIVATIVE: dict[str, Fn] = {
    "tanh": d_tanh,
    "sigmoid": d_sigmoid,
    "relu": d_relu,
    "linear": d_linear,
}
