"""Two-dimensional toy datasets, seeded and deterministic, with a seeded train/test split.

Every generator takes ``(n, noise, seed)`` and returns ``X`` (n, 2) float64 and ``y`` (n,)
int64. Random numbers come only from generators built from the seed, never from NumPy's global
state. ``moons`` with ``seed=0`` is exactly the article's ``np.random.seed(0);
make_moons(300, noise=0.20)`` (scikit-learn draws from a ``RandomState(0)`` either way).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.datasets import make_circles, make_moons

from boundarylab.engine.config import DatasetConfig
from boundarylab.engine.grid import grid_bounds

CUSTOM_GRID_PAD_SHARE = 0.1


@dataclass(frozen=True)
class Dataset:
    """Points and labels, split into train and test.

    x_train (n_train, 2) float64, y_train (n_train,) int64 in 0..K-1, x_test (n_test, 2),
    y_test (n_test,) (n_test may be 0), n_classes K.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    # Grid padding as a share of the data's extent (grid.grid_bounds). 0 for the generated
    # shapes, whose grid keeps the article's fixed 0.5; own data can be at any scale.
    grid_pad_share: float = 0.0

    @property
    def x_all(self) -> np.ndarray:
        """Train and test points together, (n_train + n_test, 2)."""
        return np.concatenate([self.x_train, self.x_test])

    def grid_bounds(self) -> tuple[float, float, float, float]:
        """The plane a boundary frame covers: all points, padded (grid.grid_bounds)."""
        return grid_bounds(self.x_all, share=self.grid_pad_share)


Generator = Callable[[int, float, int, int], tuple[np.ndarray, np.ndarray]]


def _class_sizes(n: int, k: int) -> list[int]:
    """n points over k classes as evenly as possible, earlier classes getting the remainder."""
    return [n // k + (1 if c < n % k else 0) for c in range(k)]


def _shuffled(rs: np.random.RandomState, X: np.ndarray, y: np.ndarray) -> tuple:
    order = rs.permutation(len(y))
    return X[order], y[order]


def _moons(n: int, noise: float, seed: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return make_moons(n, noise=noise, random_state=seed)


def _circles(n: int, noise: float, seed: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return make_circles(n, noise=noise, factor=0.5, random_state=seed)


def _xor(n: int, noise: float, seed: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    # Uniform in [-1, 1]², label = sign(x1·x2) taken before the noise, so noise blurs the
    # quadrant borders the way it blurs the moons.
    rs = np.random.RandomState(seed)
    X = rs.uniform(-1.0, 1.0, size=(n, 2))
    y = (X[:, 0] * X[:, 1] < 0).astype(np.int64)
    X += noise * rs.randn(n, 2)
    return X, y


def _blob_points(
    rs: np.random.RandomState, centres: np.ndarray, n: int, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    # Each blob has its own spread 0.5; the noise adds an independent gaussian on top.
    spread = float(np.hypot(0.5, noise))
    sizes = _class_sizes(n, len(centres))
    y = np.repeat(np.arange(len(centres), dtype=np.int64), sizes)
    X = centres[y] + spread * rs.randn(n, 2)
    return _shuffled(rs, X, y)


def _gaussian(n: int, noise: float, seed: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    centres = np.array([[-1.0, -1.0], [1.0, 1.0]])
    return _blob_points(np.random.RandomState(seed), centres, n, noise)


def _blobs(n: int, noise: float, seed: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    angles = 2 * np.pi * np.arange(k) / k + np.pi / 4
    centres = 2.0 * np.column_stack([np.cos(angles), np.sin(angles)])
    return _blob_points(np.random.RandomState(seed), centres, n, noise)


def _spiral(n: int, noise: float, seed: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    # Two arms, each turning 1.75 times around the origin out to radius 1; arm c is arm 0
    # rotated by π. sqrt spreads the points evenly along the arm's length.
    rs = np.random.RandomState(seed)
    sizes = _class_sizes(n, 2)
    y = np.repeat(np.arange(2, dtype=np.int64), sizes)
    t = np.sqrt(rs.uniform(0.0, 1.0, size=n)) * 0.95 + 0.05
    theta = 1.75 * 2 * np.pi * t + np.pi * y
    X = np.column_stack([t * np.cos(theta), t * np.sin(theta)]) + noise * rs.randn(n, 2)
    return _shuffled(rs, X, y)


GENERATORS: dict[str, Generator] = {
    "moons": _moons,
    "circles": _circles,
    "xor": _xor,
    "gaussian": _gaussian,
    "spiral": _spiral,
    "blobs": _blobs,
}


def make_dataset(cfg: DatasetConfig) -> Dataset:
    """Generate (or take) the points of ``cfg`` and split them.

    ``cfg`` is trusted to be valid (its schema checks every range). The split draws from its
    own generator, ``default_rng([seed, 1])``, so changing ``test_fraction`` never changes the
    points themselves. ``n_test = round(n·test_fraction)``. Raises ValueError naming the field
    for what only the points can tell: fewer points than classes, or a split that leaves a
    class without training points.
    """
    X, y, is_test = all_points(cfg)
    k = cfg.class_count
    share = CUSTOM_GRID_PAD_SHARE if cfg.points is not None else 0.0
    if not is_test.any():
        empty = np.empty((0, 2))
        return Dataset(X, y, empty, np.empty(0, dtype=np.int64), k, share)
    train = ~is_test
    missing = sorted(set(range(k)) - set(y[train].tolist()))
    if missing:
        more = "add points of that class" if cfg.points is not None else "raise dataset.n_samples"
        raise ValueError(
            f"dataset.test_fraction {cfg.test_fraction} leaves class {missing[0]} with no "
            f"training points out of {len(y)}; lower it or {more}"
        )
    return Dataset(X[train], y[train], X[is_test], y[is_test], k, share)


def all_points(cfg: DatasetConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every point in its own order, before the split: X (n, 2) float64, y (n,) int64 and
    is_test (n,) bool. Train and test keep this order (indices sorted), so writing the
    points in this order and reading them back as custom points with the same seed and
    test_fraction gives the same split, point for point."""
    if cfg.points is not None:
        X, y = custom_points(cfg.points)
    else:
        X, y = _generated(cfg, cfg.class_count)
    is_test = np.zeros(len(y), dtype=bool)
    n_test = round(len(y) * cfg.test_fraction)
    if n_test:
        order = np.random.default_rng([int(cfg.seed), 1]).permutation(len(y))
        is_test[order[:n_test]] = True
    return X, y, is_test


def custom_points(points: list[tuple[float, float, int]]) -> tuple[np.ndarray, np.ndarray]:
    """A person's own points [x1, x2, label] as X (n, 2) float64 and y (n,) int64, in the
    order given (the split permutes indices, so the same list always splits the same way)."""
    rows = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    X = np.ascontiguousarray(rows[:, :2])
    y = np.ascontiguousarray(rows[:, 2].astype(np.int64))
    return X, y


def _generated(cfg: DatasetConfig, k: int) -> tuple[np.ndarray, np.ndarray]:
    if cfg.n_samples < k:
        raise ValueError(
            f"dataset.n_samples ({cfg.n_samples}) must be at least the {k} classes of "
            "dataset.n_classes"
        )
    # "+ 0.0" turns -0.0 (a valid noise, ≥ 0) into 0.0: NumPy's normal() checks the sign bit
    # and would refuse scale=-0.0 with "scale < 0".
    noise = float(cfg.noise) + 0.0
    X, y = GENERATORS[cfg.kind](cfg.n_samples, noise, int(cfg.seed), k)
    return np.ascontiguousarray(X, dtype=np.float64), np.ascontiguousarray(y, dtype=np.int64)
