"""Hand-made input features: what the network sees of a point (x1, x2).

The article's network reads the two coordinates as they are. It remarks that a network
without a hidden layer can only draw a straight line "unless you hand-engineer non-linear
features (such as polynomials)": this module is those features. ``feature_matrix`` maps
points (n, 2) to the columns named, in the order named; the decision boundary is still drawn
over (x1, x2), because the grid's points go through the same map.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Feature = Callable[[np.ndarray, np.ndarray], np.ndarray]

# name -> f(x1 (n,), x2 (n,)) -> (n,); the order here is the order the page offers them.
FEATURES: dict[str, Feature] = {
    "x1": lambda x1, x2: x1,
    "x2": lambda x1, x2: x2,
    "x1_sq": lambda x1, x2: x1 * x1,
    "x2_sq": lambda x1, x2: x2 * x2,
    "x1_x2": lambda x1, x2: x1 * x2,
    "sin_x1": lambda x1, x2: np.sin(x1),
    "sin_x2": lambda x1, x2: np.sin(x2),
}
DEFAULT_FEATURES = ("x1", "x2")


def feature_matrix(points: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """The features ``names`` of ``points`` (n, 2): a new (n, len(names)) float64 array.

    ``["x1", "x2"]`` gives the points themselves, value for value (the article's network).
    """
    x1, x2 = points[:, 0], points[:, 1]
    columns = [FEATURES[name](x1, x2) for name in names]
    return np.ascontiguousarray(np.column_stack(columns), dtype=np.float64)
