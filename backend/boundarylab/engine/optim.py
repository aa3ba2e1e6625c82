"""Optimisers over a flat parameter vector ``theta`` (P,) and its summed gradient (P,).

The gradient already includes ``λW`` (see nn.py). ``gd`` is the article's update; momentum and
Adam are element-wise too, so a fused network of several models (compare.py) updates each model
exactly as a separate run would.
"""

from __future__ import annotations

import numpy as np


class Optimizer:
    """Updates the flat parameter vector ``theta`` (P,) from the summed gradient ``grad`` (P,)
    (which already includes ``λW``). ``gd``: ``θ -= ε g`` (the article)."""

    def __init__(self, size: int, learning_rate: float) -> None:
        self.lr = float(learning_rate)
        self._tmp = np.empty(size)

    def update(self, theta: np.ndarray, grad: np.ndarray) -> None:
        # θ += (−ε)·g is bit-identical to the article's `W += -epsilon * dW`.
        np.multiply(grad, -self.lr, out=self._tmp)
        theta += self._tmp

    def state(self) -> tuple:
        """A copy of the optimiser's internal state (to undo steps)."""
        return ()

    def set_state(self, state: tuple) -> None:
        """Restore what ``state()`` returned."""


class Momentum(Optimizer):
    """Classical momentum 0.9: ``v = 0.9 v − ε g``, ``θ += v``."""

    beta = 0.9

    def __init__(self, size: int, learning_rate: float) -> None:
        super().__init__(size, learning_rate)
        self._v = np.zeros(size)

    def update(self, theta: np.ndarray, grad: np.ndarray) -> None:
        self._v *= self.beta
        np.multiply(grad, self.lr, out=self._tmp)
        self._v -= self._tmp
        theta += self._v

    def state(self) -> tuple:
        return (self._v.copy(),)

    def set_state(self, state: tuple) -> None:
        self._v[...] = state[0]


class Adam(Optimizer):
    """Adam (β1 = 0.9, β2 = 0.999, ε̂ = 1e-8) with the learning rate as step size, on the
    summed gradient."""

    b1, b2, eps = 0.9, 0.999, 1e-8

    def __init__(self, size: int, learning_rate: float) -> None:
        super().__init__(size, learning_rate)
        self._m = np.zeros(size)
        self._v = np.zeros(size)
        self._t = 0

    def update(self, theta: np.ndarray, grad: np.ndarray) -> None:
        self._t += 1
        self._m *= self.b1
        self._m += (1.0 - self.b1) * grad
        self._v *= self.b2
        self._v += (1.0 - self.b2) * (grad * grad)
        m_hat = self._m / (1.0 - self.b1**self._t)
        v_hat = self._v / (1.0 - self.b2**self._t)
        theta -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def state(self) -> tuple:
        return (self._m.copy(), self._v.copy(), self._t)

    def set_state(self, state: tuple) -> None:
        self._m[...], self._v[...], self._t = state


OPTIMIZERS: dict[str, type[Optimizer]] = {"gd": Optimizer, "momentum": Momentum, "adam": Adam}
