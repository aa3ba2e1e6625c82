"""GridProbe: a frame's probabilities computed cheaply stay the reference's frame (within a
rounding edge), for every activation and loss, and keep the reference's NaN behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from boundarylab.engine import nn
from boundarylab.engine.config import RunConfig
from boundarylab.engine.grid import quantise_probabilities
from boundarylab.engine.gridprobe import GridProbe
from boundarylab.engine.training import Trainer


def _reference_bytes(trainer: Trainer) -> bytes:
    assert trainer._grid is not None
    points = trainer._grid.points
    net = trainer.net
    probs = nn.predict_proba(net.model_params(0), points, net.activation, net.loss)
    return quantise_probabilities(probs)


@pytest.mark.parametrize(
    ("model", "dataset"),
    [
        ({}, {}),
        ({"hidden_sizes": [8, 8], "activation": "relu"}, {"kind": "spiral", "n_classes": 3}),
        ({"hidden_sizes": [5], "activation": "sigmoid", "loss": "squared_error"}, {}),
        ({"hidden_sizes": [], "features": ["x1", "x2", "x1_sq", "x2_sq"]}, {"kind": "circles"}),
    ],
)
def test_probe_frame_matches_the_reference_frame(model: dict, dataset: dict) -> None:
    config = RunConfig.model_validate({"model": model, "dataset": dataset,
                                       "view": {"resolution": 120}})  # fmt: skip
    trainer = Trainer(config)
    trainer.advance(500)
    cells = np.frombuffer(trainer.boundary().cells, np.uint8).astype(int)
    reference = np.frombuffer(_reference_bytes(trainer), np.uint8).astype(int)
    differ = np.abs(cells - reference)
    assert differ.max() <= 1  # float32 hidden units: at most one step at a rounding edge
    assert np.count_nonzero(differ) <= len(cells) // 1000


def test_probe_matches_nan_behaviour_of_a_diverged_network() -> None:
    points = np.array([[0.0, 0.0], [1.0, -1.0]])
    W1, b1 = np.full((2, 2), 1e200), np.zeros(2)
    W2, b2 = np.array([[1e200, -1e200], [1e200, -1e200]]), np.zeros(2)
    params = [(W1, b1), (W2, b2)]
    probe = GridProbe(points)
    got = quantise_probabilities(probe.probabilities(params, "tanh", "cross_entropy"))
    want = quantise_probabilities(nn.predict_proba(params, points, "tanh", "cross_entropy"))
    assert got == want


def test_probe_keeps_weights_past_float32_range_finite() -> None:
    points = np.array([[0.0, 0.0], [1.0, -1.0], [-2.0, 0.5]])
    params = [(np.array([[1e39, 0.0], [0.0, 1.0]]), np.zeros(2)),
              (np.array([[1.0, -1.0], [-1.0, 1.0]]), np.zeros(2))]  # fmt: skip
    got = quantise_probabilities(GridProbe(points).probabilities(params, "tanh", "cross_entropy"))
    want = quantise_probabilities(nn.predict_proba(params, points, "tanh", "cross_entropy"))
    assert got == want


def test_probe_slices_a_big_grid_as_one() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(20_000, 2))  # more than one GRID_SLICE
    params = [(rng.normal(size=(2, 4)), rng.normal(size=4)),
              (rng.normal(size=(4, 2)), rng.normal(size=2))]  # fmt: skip
    got = GridProbe(points).probabilities(params, "tanh", "cross_entropy")
    want = nn.predict_proba(params, points, "tanh", "cross_entropy")
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) < 1e-5


@pytest.mark.parametrize(
    ("model", "dataset"),
    [
        ({}, {}),
        ({"hidden_sizes": [5], "activation": "sigmoid", "loss": "squared_error"}, {}),
        ({"hidden_sizes": [4, 4], "activation": "relu"}, {"kind": "blobs", "n_classes": 3}),
    ],
)
def test_frame_cells_are_the_quantised_probabilities(model: dict, dataset: dict) -> None:
    """The two-class shortcut (P(class 1) alone) makes the very bytes of the full path."""
    config = RunConfig.model_validate({"model": model, "dataset": dataset,
                                       "view": {"resolution": 130}})  # fmt: skip
    trainer = Trainer(config)
    for _ in range(3):
        trainer.advance(300)
        full = quantise_probabilities(trainer.grid_probabilities())
        assert trainer.boundary().cells == full


def test_frame_cells_of_a_diverged_network_are_the_reference_bytes() -> None:
    points = np.array([[0.0, 0.0], [1.0, -1.0], [-3.0, 2.0]])
    W1, b1 = np.full((2, 2), 1e200), np.zeros(2)
    W2, b2 = np.array([[1e200, -1e200], [1e200, -1e200]]), np.zeros(2)
    params = [(W1, b1), (W2, b2)]
    got = GridProbe(points).cells(params, "tanh", "cross_entropy")
    assert got == quantise_probabilities(nn.predict_proba(params, points, "tanh", "cross_entropy"))


def test_binary_quantising_keeps_the_rule_for_nan_and_infinities() -> None:
    p = np.array([np.nan, np.inf, -np.inf, 0.0, 1.0, 0.5, 0.5 / 255, 1.5 / 255, -0.2, 1.7])
    probs = np.column_stack([1.0 - p, p])
    # The rule written out: NaN undecided (½), ±inf and values outside [0, 1] clipped.
    expected = np.rint(255 * np.clip(np.nan_to_num(p, nan=0.5, posinf=1.0, neginf=0.0), 0, 1))
    assert quantise_probabilities(probs) == expected.astype(np.uint8).tobytes()
