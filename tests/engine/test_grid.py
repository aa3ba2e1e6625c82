"""The boundary grid (grid.py): its bounds, point order, slicing and the bytes of a frame."""

from __future__ import annotations

import numpy as np

from boundarylab.engine import grid
from boundarylab.engine.grid import grid_bounds, grid_points, quantise_probabilities, sliced


def test_bounds_pad_the_data_by_half_a_unit() -> None:
    x = np.array([[0.0, -1.0], [2.0, 3.0]])
    assert grid_bounds(x) == (-0.5, 2.5, -1.5, 3.5)


def test_points_are_row_major_from_the_lower_left() -> None:
    points = grid_points((0.0, 1.0, 10.0, 12.0), nx=2, ny=3)
    assert points.tolist() == [[0, 10], [1, 10], [0, 11], [1, 11], [0, 12], [1, 12]]


def test_sliced_evaluation_is_whole_evaluation(monkeypatch) -> None:
    monkeypatch.setattr(grid, "GRID_SLICE", 7)
    calls: list[int] = []

    def predict(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        return x * 2

    inputs = np.arange(40.0).reshape(20, 2)
    assert np.array_equal(sliced(predict, inputs), inputs * 2)
    assert calls == [7, 7, 6]


def test_two_classes_are_one_byte_of_p1_per_cell() -> None:
    probs = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [np.nan, np.nan]])
    assert list(quantise_probabilities(probs)) == [0, 128, 255, 128]  # NaN counts as undecided


def test_more_classes_are_argmax_bytes_then_confidence_bytes() -> None:
    probs = np.array([[0.2, 0.7, 0.1], [0.1, 0.1, 0.8]])
    assert list(quantise_probabilities(probs)) == [1, 2, round(255 * 0.7), round(255 * 0.8)]
