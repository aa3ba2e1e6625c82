"""Weight penalties: the term each adds to the loss, its gradient, and how it enters a step.

With n points, λ = ``reg_lambda``, ε = the learning rate and the sums over every weight
matrix W (biases are never penalised), the summed loss n·L gains:

- ``l2`` (the article's): ``λ/2 · Σ‖W‖²``, gradient ``λW``. It is added to the data
  gradient before the optimiser step, as the article's ``dW2 += reg_lambda * W2``, so with
  plain gradient descent a step is ``W ← W − ε(dW + λW)``.
- ``l1``: ``λ · Σ|W|``, gradient ``λ·sign(W)`` (not defined at 0). It is applied as its own
  step AFTER the optimiser's data step, a proximal (soft-threshold) step of size ε·λ:
  ``W ← sign(W) · max(|W| − ε·λ, 0)``. So a weight the penalty would push across zero stops
  at exactly 0 and stays there while ``|∂(data loss)/∂W| ≤ λ``: the sparsity is visible. The
  step is ε·λ for every optimiser (the penalty never enters momentum's velocity or Adam's
  moments).
- ``none``: nothing.

A kind is one subclass here: the reference (nn.py), the tape (tape.py) and the fused
comparison all call these methods, so adding a kind touches this file only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial

import numpy as np

Call = Callable[[], object]
REGULARIZATIONS = ("none", "l1", "l2")


class Regularizer:
    """No penalty (``none``); the base of the others. ``lam`` is λ."""

    kind = "none"

    def __init__(self, lam: float) -> None:
        self.lam = float(lam)

    def penalty(self, weights: Iterable[np.ndarray]) -> float:
        """The term added to the summed loss n·L, over the weight matrices given."""
        return 0.0

    def gradient(self, W: np.ndarray) -> np.ndarray:
        """∂penalty/∂W (same shape as W)."""
        return np.zeros_like(W)

    def add_gradient(self, W: np.ndarray, dW: np.ndarray) -> None:
        """Reference: add what belongs in the optimiser's gradient to ``dW``, in place."""

    def after_step(self, W: np.ndarray, learning_rate: float) -> None:
        """Reference: the step applied to ``W`` after the optimiser's step, in place."""

    def gradient_calls(self, theta: np.ndarray, grad: np.ndarray, weights: np.ndarray,
                       scratch: np.ndarray) -> list[Call]:  # fmt: skip
        """Tape: calls that add this penalty's share of the gradient to ``grad`` (P,), for
        parameters ``theta`` (P,); ``weights`` (P,) is 1.0 on weights, 0.0 on biases;
        ``scratch`` (P,) is free to use."""
        return []

    def after_step_calls(self, theta: np.ndarray, weights: np.ndarray, learning_rate: float,
                         scratch: np.ndarray) -> list[Call]:  # fmt: skip
        """Tape: calls applying ``after_step`` to every weight in ``theta`` (P,)."""
        return []


class L2(Regularizer):
    """``λ/2 · Σ‖W‖²`` through the gradient (the article's)."""

    kind = "l2"

    def penalty(self, weights: Iterable[np.ndarray]) -> float:
        return self.lam / 2 * float(sum(np.sum(W * W) for W in weights))

    def gradient(self, W: np.ndarray) -> np.ndarray:
        return self.lam * W

    def add_gradient(self, W: np.ndarray, dW: np.ndarray) -> None:
        dW += self.lam * W

    def gradient_calls(self, theta: np.ndarray, grad: np.ndarray, weights: np.ndarray,
                       scratch: np.ndarray) -> list[Call]:  # fmt: skip
        # λ on weight entries and 0 on biases, so one multiply regularises every layer.
        lam = weights * self.lam
        return [partial(np.multiply, theta, lam, out=scratch),
                partial(np.add, grad, scratch, out=grad)]  # fmt: skip


class L1(Regularizer):
    """``λ · Σ|W|`` as a soft-threshold step of ε·λ after the optimiser's step."""

    kind = "l1"

    def penalty(self, weights: Iterable[np.ndarray]) -> float:
        return self.lam * float(sum(np.sum(np.abs(W)) for W in weights))

    def gradient(self, W: np.ndarray) -> np.ndarray:
        return self.lam * np.sign(W)

    def after_step(self, W: np.ndarray, learning_rate: float) -> None:
        shrunk = np.maximum(np.abs(W) - learning_rate * self.lam, 0.0)
        np.copysign(shrunk, W, out=W)

    def after_step_calls(self, theta: np.ndarray, weights: np.ndarray, learning_rate: float,
                         scratch: np.ndarray) -> list[Call]:  # fmt: skip
        # A threshold of 0 on biases leaves them bit for bit: copysign(|b|, b) == b.
        threshold = weights * (learning_rate * self.lam)
        return [partial(np.abs, theta, out=scratch),
                partial(np.subtract, scratch, threshold, out=scratch),
                partial(np.maximum, scratch, 0.0, out=scratch),
                partial(np.copysign, scratch, theta, out=theta)]  # fmt: skip


REGULARIZERS: dict[str, type[Regularizer]] = {"none": Regularizer, "l1": L1, "l2": L2}


def make_regularizer(kind: str, lam: float) -> Regularizer:
    """The regulariser of ``kind`` ("none", "l1" or "l2") with strength λ = ``lam``."""
    return REGULARIZERS[kind](lam)
