"""Weight penalties (regularizers.py): values, gradients, the L1 soft threshold, tape calls."""

from __future__ import annotations

from functools import reduce

import numpy as np
import pytest

from boundarylab.engine.config import Regularization
from boundarylab.engine.regularizers import REGULARIZATIONS, REGULARIZERS, make_regularizer

WEIGHTS = [np.array([[0.5, -2.0], [1.5, 0.25]]), np.array([[-0.75], [3.0]])]


def test_every_schema_kind_is_implemented() -> None:
    assert set(REGULARIZATIONS) == set(Regularization.__args__) == set(REGULARIZERS)


def test_penalties() -> None:
    squares = sum(float(np.sum(W * W)) for W in WEIGHTS)
    absolutes = sum(float(np.sum(np.abs(W))) for W in WEIGHTS)
    assert make_regularizer("l2", 0.3).penalty(WEIGHTS) == pytest.approx(0.15 * squares)
    assert make_regularizer("l1", 0.3).penalty(WEIGHTS) == pytest.approx(0.3 * absolutes)
    assert make_regularizer("none", 0.3).penalty(WEIGHTS) == 0.0


@pytest.mark.parametrize("kind", REGULARIZATIONS)
def test_gradient_is_the_penalty_derivative_away_from_zero(kind) -> None:
    reg, h = make_regularizer(kind, 0.3), 1e-6
    W = WEIGHTS[0].copy()
    numeric = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        up, down = W.copy(), W.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (reg.penalty([up]) - reg.penalty([down])) / (2 * h)
    np.testing.assert_allclose(reg.gradient(W), numeric, rtol=1e-6, atol=1e-9)


def test_l1_step_shrinks_by_epsilon_lambda_and_stops_at_zero() -> None:
    W = np.array([0.5, -0.5, 0.02, -0.02, 0.0, 0.03])
    make_regularizer("l1", 1.0).after_step(W, 0.03)
    # ε·λ = 0.03: large weights move 0.03 toward 0; those it would push across 0 stop at 0.
    np.testing.assert_allclose(W, [0.47, -0.47, 0.0, 0.0, 0.0, 0.0], atol=1e-15)
    assert np.count_nonzero(W == 0.0) == 4


def test_l2_and_none_have_no_step_of_their_own() -> None:
    for kind in ("l2", "none"):
        W = WEIGHTS[0].copy()
        make_regularizer(kind, 5.0).after_step(W, 0.1)
        assert np.array_equal(W, WEIGHTS[0])


def _run(calls) -> None:
    reduce(lambda _, call: call(), calls, None)


def test_tape_calls_do_what_the_reference_does_on_weights_only() -> None:
    theta = np.array([0.5, -0.02, 0.01, -3.0])  # entries 0, 1, 3 weights; 2 a bias
    mask = np.array([1.0, 1.0, 0.0, 1.0])
    scratch = np.empty(4)
    # L2: grad += λW on weights.
    grad = np.ones(4)
    _run(make_regularizer("l2", 0.5).gradient_calls(theta, grad, mask, scratch))
    assert grad.tolist() == [1.25, 0.99, 1.0, -0.5]
    # L1: soft threshold of ε·λ on weights, bias bit for bit unchanged.
    after = theta.copy()
    _run(make_regularizer("l1", 0.5).after_step_calls(after, mask, 0.1, scratch))
    ref = theta[[0, 1, 3]].copy()
    make_regularizer("l1", 0.5).after_step(ref, 0.1)
    assert np.array_equal(after[[0, 1, 3]], ref) and after[2] == theta[2]
    assert after[1] == 0.0
    # none: no calls at all.
    none = make_regularizer("none", 0.5)
    assert none.gradient_calls(theta, grad, mask, scratch) == []
    assert none.after_step_calls(theta, mask, 0.1, scratch) == []
