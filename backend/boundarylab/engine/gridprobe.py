"""A network's class probabilities over a boundary grid, cheaply: what a frame is made of.

A live run draws its boundary up to 20 times a second over 100×100 cells, so the grid's
forward pass is most of what a frame costs. Profiled in a worker (issue 15): at the
article's size float64 ``tanh`` is ~45 ns an element on a CPU without AVX-512 (NumPy only
vectorises it for float32 there), and the reference forward pass allocates fresh
(m, width) arrays per layer. Here the grid is kept once, as float32 columns (features ×
points), and the hidden layers run in float32 into reused buffers (float32 ``tanh`` is ~5×
faster); the output layer and softmax run in float64 exactly as the reference
(``losses.output_activation``), so saturation and overflow behave as in training.

A frame is one byte per cell (grid.quantise_probabilities), a step of 1/255; float32
hidden units move a probability by ~1e-7, so a byte can differ from the float64 reference
only where 255·p sits within ~1e-5 of a rounding edge (tests/engine/test_gridprobe.py
bounds it). Training never uses this: a run's numbers are the reference's, bit for bit.
"""

from __future__ import annotations

import numpy as np

from boundarylab.engine.activations import ACTIVATE
from boundarylab.engine.grid import GRID_SLICE, quantise_binary, quantise_probabilities
from boundarylab.engine.losses import class_probabilities, output_activation

Params = list[tuple[np.ndarray, np.ndarray]]
FLOAT32_SAFE = 1e3  # larger |weights| (a run diverging) take float64: no float32 overflow


class GridProbe:
    """Class probabilities of any network over one fixed set of points (a grid).

    ``points`` (m, d): the grid's feature rows (features.feature_matrix of grid points).
    Each hidden layer's buffer is made at the first call and reused.
    """

    def __init__(self, points: np.ndarray) -> None:
        self.points = points
        self.size = len(points)
        self._columns: dict[type, np.ndarray] = {}  # (d, m) per dtype
        self._buffers: dict[tuple[type, int, int], np.ndarray] = {}

    def _columns_of(self, dtype: type) -> np.ndarray:
        if dtype not in self._columns:
            self._columns[dtype] = np.ascontiguousarray(self.points.T, dtype=dtype)
        return self._columns[dtype]

    def probabilities(self, params: Params, activation: str, loss: str) -> np.ndarray:
        """(m, K) float64 class probabilities (rows sum to 1, as nn.predict_proba), computed
        in column slices of GRID_SLICE points so a big network on a fine grid stays small."""
        K = params[-1][0].shape[1]
        out = np.empty((self.size, K))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            weights = self._hidden_weights(params)
            for start in range(0, self.size, GRID_SLICE):
                end = min(start + GRID_SLICE, self.size)
                z = self._output(params, weights, activation, start, end)
                out[start:end] = self._probabilities(z, loss)
        return out

    def cells(self, params: Params, activation: str, loss: str) -> bytes:
        """A boundary frame's bytes (grid.quantise_probabilities of ``probabilities``).

        Two classes with softmax (the article's case) take a shorter way to the same bytes:
        only P(class 1) is divided out and quantised, ``e₁ / (e₀ + e₁)`` with the very
        operations of the full softmax, so no (m, 2) array is divided, transposed and copied
        to be read one column of (a third of a frame's cost, profiled in a worker)."""
        K = params[-1][0].shape[1]
        if K != 2 or loss != "cross_entropy":
            return quantise_probabilities(self.probabilities(params, activation, loss))
        positive = np.empty(self.size)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            weights = self._hidden_weights(params)
            for start in range(0, self.size, GRID_SLICE):
                end = min(start + GRID_SLICE, self.size)
                z = self._output(params, weights, activation, start, end)
                np.exp(z, out=z)
                total = z[0].copy()
                total += z[1]
                np.divide(z[1], total, out=positive[start:end])
        return quantise_binary(positive)

    @staticmethod
    def _hidden_weights(params: Params) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each layer's ``(Wᵀ, b)`` as columns, in float32 unless a hidden weight is past
        FLOAT32_SAFE: weights past float32's range (a network on its way to diverging) take
        float64, since an overflow here would draw a finite network as undecided."""
        big = max((float(np.max(np.abs(W), initial=0.0)) for W, _ in params[:-1]),
                  default=0.0)  # fmt: skip
        dtype = np.float32 if big < FLOAT32_SAFE else np.float64
        return [(W.T.astype(dtype), b.astype(dtype)[:, None]) for W, b in params]

    def _output(self, params: Params, weights: list[tuple[np.ndarray, np.ndarray]],
                activation: str, start: int, end: int) -> np.ndarray:  # fmt: skip
        """The output layer's pre-activation (K, end − start) float64 at points start..end."""
        dtype = weights[0][0].dtype.type
        a = self._columns_of(dtype)[:, start:end]
        act = ACTIVATE[activation]
        for layer, (Wt, b) in enumerate(weights[:-1]):
            z = self._hidden(dtype, layer, Wt.shape[0], end - start)
            np.matmul(Wt, a, out=z)
            z += b
            a = act(z, z)
        W, b = params[-1]
        # The output layer in float64 as the reference (so softmax overflows where it does).
        return W.T @ a.astype(np.float64) + b[:, None]

    @staticmethod
    def _probabilities(z: np.ndarray, loss: str) -> np.ndarray:
        """Class probabilities (points, K) from the output pre-activation ``z`` (K, points)."""
        if loss != "cross_entropy":
            return class_probabilities(output_activation(z.T, loss), loss)
        # Softmax over columns: contiguous rows, the row sum added in the order sum() adds.
        np.exp(z, out=z)
        total = z[0].copy()
        for row in z[1:]:
            total += row
        z /= total
        return z.T

    def _hidden(self, dtype: type, layer: int, width: int, points: int) -> np.ndarray:
        """Layer ``layer``'s reused (width, points) buffer."""
        key = (dtype, layer, width)
        buf = self._buffers.get(key)
        if buf is None or buf.shape[1] < points:
            buf = self._buffers[key] = np.empty((width, points), dtype=dtype)
        return buf[:, :points]
