"""Hand-made input features (features.py) and what they do to a run."""

from __future__ import annotations

import numpy as np
import pytest

from boundarylab.engine.config import FeatureName
from boundarylab.engine.features import DEFAULT_FEATURES, FEATURES, feature_matrix
from boundarylab.engine.training import Trainer

POINTS = np.array([[0.5, -2.0], [1.5, 3.0], [-1.0, 0.0]])


def test_the_schema_offers_exactly_the_features_computed_here_in_order() -> None:
    assert FeatureName.__args__ == tuple(FEATURES)


def test_default_features_are_the_points_themselves_bit_for_bit() -> None:
    X = np.random.RandomState(0).randn(50, 2)
    assert np.array_equal(feature_matrix(X, DEFAULT_FEATURES), X)


def test_each_feature_and_the_column_order() -> None:
    got = feature_matrix(POINTS, list(FEATURES))
    x1, x2 = POINTS.T
    expected = np.column_stack([x1, x2, x1**2, x2**2, x1 * x2, np.sin(x1), np.sin(x2)])
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    assert np.array_equal(feature_matrix(POINTS, ["x2", "x1"]), POINTS[:, ::-1])


def test_a_run_sees_its_features_and_draws_over_the_plane(make_config) -> None:
    features = ["x1_sq", "x2_sq", "x1_x2"]
    trainer = Trainer(make_config(model={"features": features}, view={"resolution": 25}))
    W1, _ = trainer.net.params[0]
    assert W1.shape == (3, 3)  # one input row per feature
    np.testing.assert_array_equal(trainer.inputs.train, feature_matrix(trainer.data.x_train,
                                                                       features))  # fmt: skip
    frame = trainer.boundary()
    grid = frame.grid
    assert (grid.nx, grid.ny) == (25, 25)
    # A cell of the frame is the network's answer for the features of that (x1, x2) point.
    xs, ys = np.linspace(grid.x_min, grid.x_max, 25), np.linspace(grid.y_min, grid.y_max, 25)
    point = feature_matrix(np.array([[xs[4], ys[17]]]), features)
    p1 = np.frombuffer(frame.cells, dtype=np.uint8).reshape(25, 25)[17, 4]
    assert p1 == round(255 * trainer.net.predict_proba(point)[0, 1])


@pytest.mark.parametrize("features", [["x1", "x2", "sin_x1"], ["x1_x2"]])
def test_runs_with_features_train(make_config, features) -> None:
    trainer = Trainer(make_config(model={"features": features}, training={"iterations": 300}))
    before = trainer.report().loss
    trainer.advance(300)
    assert trainer.report().loss < before and trainer.diverged_message is None
