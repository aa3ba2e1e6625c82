"""Which training points each step learns from: the one batch sampler every run uses.

Full batch (``batch_size`` empty, or not smaller than the training set) is the article's:
every step sees every point, and the tape's buffers are loaded once. Mini-batches are drawn
without replacement, epoch by epoch: a permutation from ``default_rng([seed, 2])`` (a stream
apart from the initialisation's ``RandomState(seed)``), cut into consecutive batches; a
remainder too small for a batch is skipped and the next epoch reshuffles.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class SteppedNetwork(Protocol):
    """What a sampler drives: tape.Network (one model or a stack of them)."""

    def load_batch(self, X: np.ndarray, Y: np.ndarray) -> Any: ...

    def step_loaded(self, workspace: Any) -> None: ...


class BatchSampler:
    """Indices of the next mini-batch among ``n`` training points."""

    def __init__(self, n: int, batch_size: int | None, seed: int) -> None:
        self.n = int(n)
        self.size = batch_size if batch_size and batch_size < n else None
        self._rng = np.random.default_rng([int(seed), 2])
        self._order = np.arange(self.n)
        self._pos = self.n  # forces a shuffle before the first batch

    @property
    def full(self) -> bool:
        """True when every step uses every point."""
        return self.size is None

    def next_indices(self) -> np.ndarray:
        """The next batch's indices (size,) into the training points (mini-batches only)."""
        assert self.size is not None, "a full batch has no indices to draw"
        if self._pos + self.size > self.n:
            self._order = self._rng.permutation(self.n)
            self._pos = 0
        idx = self._order[self._pos : self._pos + self.size]
        self._pos += self.size
        return idx

    def state(self) -> tuple:
        """A copy of the sampler's position (to undo steps)."""
        return (self._rng.bit_generator.state, self._order.copy(), self._pos)

    def set_state(self, state: tuple) -> None:
        """Restore what ``state()`` returned."""
        rng, order, pos = state
        self._rng.bit_generator.state = rng
        self._order, self._pos = order, pos


class BatchStepper:
    """Steps ``net`` on the training set (X (n, d), one-hot Y (n, K)), batch by batch."""

    def __init__(
        self, net: SteppedNetwork, X: np.ndarray, Y: np.ndarray, batch_size: int | None, seed: int
    ) -> None:
        self.net, self.X, self.Y = net, X, Y
        self.sampler = BatchSampler(len(X), batch_size, seed)
        self._full = net.load_batch(X, Y) if self.sampler.full else None

    def step(self) -> None:
        """One update of every parameter on the next batch."""
        if self._full is not None:
            self.net.step_loaded(self._full)
            return
        idx = self.sampler.next_indices()
        self.net.step_loaded(self.net.load_batch(self.X[idx], self.Y[idx]))

    def state(self) -> tuple:
        return self.sampler.state()

    def set_state(self, state: tuple) -> None:
        self.sampler.set_state(state)
