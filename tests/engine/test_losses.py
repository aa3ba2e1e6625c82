"""The output layer and data loss (losses.py): softmax as the article, deltas, probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from boundarylab.engine.config import LossName
from boundarylab.engine.losses import (
    LOSSES,
    class_probabilities,
    data_loss_sum,
    one_hot,
    output_activation,
    output_delta,
)


def test_every_schema_loss_is_implemented() -> None:
    assert set(LOSSES) == set(LossName.__args__)


def test_softmax_is_the_articles_formula() -> None:
    z = np.random.RandomState(0).randn(6, 3)
    exp_scores = np.exp(z)
    expected = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)
    assert np.array_equal(output_activation(z.copy(), "cross_entropy"), expected)


@pytest.mark.parametrize("loss", LOSSES)
def test_output_delta_is_the_derivative_of_the_summed_loss(loss) -> None:
    rs = np.random.RandomState(1)
    z = rs.randn(5, 3)
    y = np.array([0, 2, 1, 1, 0])
    Y = one_hot(y, 3)

    def total(zz: np.ndarray) -> float:
        return data_loss_sum(output_activation(zz.copy(), loss), y, Y, loss)

    h, numeric = 1e-6, np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        up, down = z.copy(), z.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (total(up) - total(down)) / (2 * h)
    analytic = output_delta(output_activation(z.copy(), loss), Y, loss)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_squared_error_probabilities_sum_to_one_and_keep_the_argmax() -> None:
    out = np.array([[0.9, 0.3, 0.1], [0.0, 0.0, 0.0]])
    probs = class_probabilities(out, "squared_error")
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert probs[0].argmax() == 0 and np.allclose(probs[1], 1 / 3)  # saturated: undecided
