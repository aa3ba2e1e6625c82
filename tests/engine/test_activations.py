"""Activations and their derivatives (written from the output a), shared by reference and tape."""

from __future__ import annotations

import numpy as np
import pytest

from boundarylab.engine.activations import ACTIVATE, ACTIVATIONS, DERIVATIVE
from boundarylab.engine.config import Activation


def test_every_schema_activation_has_a_function_and_a_derivative() -> None:
    assert set(ACTIVATIONS) == set(Activation.__args__) == set(ACTIVATE) == set(DERIVATIVE)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_derivative_from_the_output_matches_central_differences(name) -> None:
    z = np.linspace(-3.0, 3.0, 41)
    z = z[np.abs(z) > 0.05]  # relu has a kink at 0
    h = 1e-6
    numeric = ACTIVATE[name](z + h, np.empty_like(z)) - ACTIVATE[name](z - h, np.empty_like(z))
    numeric /= 2 * h
    a = ACTIVATE[name](z, np.empty_like(z))
    np.testing.assert_allclose(DERIVATIVE[name](a, np.empty_like(a)), numeric, atol=1e-8)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_in_place_and_fresh_output_agree(name) -> None:
    z = np.random.RandomState(0).randn(4, 5)
    fresh = ACTIVATE[name](z, np.empty_like(z))
    inplace = z.copy()
    assert ACTIVATE[name](inplace, inplace) is inplace
    assert np.array_equal(fresh, inplace)


def test_sigmoid_saturates_without_nan() -> None:
    z = np.array([-1000.0, 0.0, 1000.0])
    with np.errstate(over="ignore"):
        out = ACTIVATE["sigmoid"](z, np.empty_like(z))
    assert out.tolist() == [0.0, 0.5, 1.0]


def test_tanh_derivative_is_the_articles_one_minus_a_squared() -> None:
    a = np.tanh(np.array([-0.7, 0.1, 2.0]))
    assert np.array_equal(DERIVATIVE["tanh"](a, np.empty_like(a)), 1 - np.power(a, 2))
