"""The plane a decision-boundary frame covers, and how its probabilities become bytes.

A frame covers the data's bounding box padded by ``GRID_PAD`` on each side (as the article's
``plot_decision_boundary``), sampled at nx × ny cell centres, row-major from (x_min, y_min).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

GRID_PAD = 0.5  # as the article's plot_decision_boundary
GRID_SLICE = 8192  # grid points evaluated at once


def grid_bounds(
    x: np.ndarray, pad: float = GRID_PAD, share: float = 0.0
) -> tuple[float, float, float, float]:
    """(x_min, x_max, y_min, y_max) of the points x (n, 2), padded on each side.

    The padding is ``max(pad, share · the larger side of the bounding box)`` on both axes,
    so data at any scale gets room around it, and points on one line or one spot still get
    a plane at least 2·pad wide. share = 0 is the article's fixed padding.
    """
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = max(pad, share * float(np.max(hi - lo))) if share > 0 else pad
    lo, hi = lo - pad, hi + pad
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def grid_points(bounds: tuple[float, float, float, float], nx: int, ny: int) -> np.ndarray:
    """Cell centres (nx·ny, 2) at ``linspace(x_min, x_max, nx)`` × ``linspace(y_min, y_max,
    ny)``, row-major: row 0 is y_min, columns run from x_min right."""
    x_min, x_max, y_min, y_max = bounds
    xx, yy = np.meshgrid(np.linspace(x_min, x_max, nx), np.linspace(y_min, y_max, ny))
    return np.column_stack([xx.ravel(), yy.ravel()])


def sliced(predict: Callable[[np.ndarray], np.ndarray], inputs: np.ndarray) -> np.ndarray:
    """``predict`` over ``inputs`` (m, d) in slices of GRID_SLICE rows, concatenated: a
    300×300 grid through 256-unit layers never holds 90000×256 arrays at once."""
    parts = [predict(inputs[i : i + GRID_SLICE]) for i in range(0, len(inputs), GRID_SLICE)]
    return np.concatenate(parts)


def quantise_probabilities(probs: np.ndarray) -> bytes:
    """One byte per grid cell from class probabilities (m, K) (see events.BoundaryFrame).

    K = 2: round(255·P(class 1)) per cell. K > 2: m argmax bytes, then m bytes
    round(255·max p). Non-finite probabilities (a diverging network) count as undecided.
    """
    if probs.shape[1] == 2:
        return quantise_binary(probs[:, 1])
    probs = np.nan_to_num(probs, nan=1.0 / probs.shape[1], posinf=1.0, neginf=0.0)
    cls = probs.argmax(axis=1).astype(np.uint8)
    conf = np.rint(255.0 * np.clip(probs.max(axis=1), 0.0, 1.0)).astype(np.uint8)
    return cls.tobytes() + conf.tobytes()


def quantise_binary(positive: np.ndarray) -> bytes:
    """The two-class frame: round(255·p) per cell from P(class 1) (m,). NaN (a diverging
    network) is undecided, ½ → 128; ±inf clip to 255 and 0 (as ``quantise_probabilities``,
    without copying both columns to read one)."""
    scaled = np.clip(positive, 0.0, 1.0)  # NaN stays NaN
    scaled *= 255.0
    np.rint(scaled, out=scaled)
    scaled[np.isnan(scaled)] = 128.0  # rint(255 · ½) = rint(127.5) = 128
    return scaled.astype(np.uint8).tobytes()
