"""The reference math (nn.py): gradients against finite differences for every activation ×
loss × regularisation × feature set, the article's initialisation, loss and update."""

from __future__ import annotations

import numpy as np
import pytest

from boundarylab.engine import nn
from boundarylab.engine.activations import ACTIVATIONS
from boundarylab.engine.features import feature_matrix
from boundarylab.engine.losses import LOSSES
from boundarylab.engine.regularizers import REGULARIZATIONS, make_regularizer
from boundarylab.engine.tape import Network

FEATURE_SETS = {
    "article": ["x1", "x2"],
    "squares": ["x1_sq", "x2_sq", "x1_x2"],
    "all": ["x1", "x2", "x1_sq", "x2_sq", "x1_x2", "sin_x1", "sin_x2"],
}


def problem(features: list[str], n_classes: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Seven points' features (7, d) and labels (7,)."""
    rs = np.random.RandomState(seed)
    return feature_matrix(rs.randn(7, 2), features), np.arange(7) % n_classes


def params_away_from_zero(sizes: list[int]) -> nn.Params:
    """Initial parameters with every weight at least 0.05 from 0 (|W| has a kink there) and
    non-zero biases, so every gradient entry is exercised."""
    params = nn.init_params(sizes, seed=1)
    rs = np.random.RandomState(2)
    for W, b in params:
        W[...] = np.sign(W) * (np.abs(W) + 0.05)
        b += rs.uniform(-0.3, 0.3, size=b.shape)
    return params


def numeric_gradient(params, X, y, activation, loss, regularizer, h=1e-6) -> list[np.ndarray]:
    """Central differences of n·L with respect to every entry of every W and b."""
    n = len(X)
    grads = []
    for W, b in params:
        for arr in (W, b):
            g = np.zeros_like(arr)
            for idx in np.ndindex(arr.shape):
                old = arr[idx]
                arr[idx] = old + h
                up = nn.loss_value(params, X, y, activation, loss, regularizer)
                arr[idx] = old - h
                down = nn.loss_value(params, X, y, activation, loss, regularizer)
                arr[idx] = old
                g[idx] = n * (up - down) / (2 * h)
            grads.append(g)
    return grads


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


def flat(grads: nn.Params) -> list[np.ndarray]:
    return [g for pair in grads for g in pair]


@pytest.mark.parametrize("features", sorted(FEATURE_SETS))
@pytest.mark.parametrize("regularization", REGULARIZATIONS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradients_match_central_differences(activation, loss, regularization, features) -> None:
    n_classes, hidden = (3, [4, 3]) if activation in ("tanh", "relu") else (2, [4])
    X, y = problem(FEATURE_SETS[features], n_classes)
    regularizer = make_regularizer(regularization, 0.05)
    params = params_away_from_zero(nn.layer_sizes(X.shape[1], hidden, n_classes))
    numeric = numeric_gradient(params, X, y, activation, loss, regularizer)
    analytic = flat(nn.full_gradient(params, X, y, activation, loss, regularizer))
    for num, ana in zip(numeric, analytic, strict=True):
        assert rel_err(ana, num) <= 1e-6


@pytest.mark.parametrize("hidden", [[], [5]])
def test_no_hidden_layer_and_one_hidden_layer_gradients(hidden) -> None:
    X, y = problem(FEATURE_SETS["article"], 2)
    regularizer = make_regularizer("l2", 0.01)
    params = params_away_from_zero(nn.layer_sizes(2, hidden, 2))
    numeric = numeric_gradient(params, X, y, "tanh", "cross_entropy", regularizer)
    analytic = flat(nn.full_gradient(params, X, y, "tanh", "cross_entropy", regularizer))
    assert all(rel_err(a, b) <= 1e-6 for a, b in zip(analytic, numeric, strict=True))


def test_backprop_is_what_the_optimiser_steps_on() -> None:
    # L2's λW is in it (the article's dW += reg_lambda * W); L1's λ·sign(W) is not: L1 is
    # a step of its own after the update.
    X, y = problem(FEATURE_SETS["article"], 2)
    params = params_away_from_zero([2, 3, 2])
    args = (params, X, y, "tanh", "cross_entropy")
    data = nn.backprop(*args, make_regularizer("none", 0.0))
    l2 = nn.backprop(*args, make_regularizer("l2", 0.5))
    l1 = nn.backprop(*args, make_regularizer("l1", 0.5))
    for (d, _), (two, _), (one, _), (W, _) in zip(data, l2, l1, params, strict=True):
        np.testing.assert_allclose(two, d + 0.5 * W, rtol=1e-12)
        np.testing.assert_array_equal(one, d)


def test_initialisation_is_the_articles() -> None:
    np.random.seed(0)  # the article seeds the global state; the engine must not need to
    W1 = np.random.randn(2, 3) / np.sqrt(2)
    W2 = np.random.randn(3, 2) / np.sqrt(3)
    np.random.seed(12345)
    (V1, c1), (V2, c2) = nn.init_params([2, 3, 2], seed=0)
    assert np.array_equal(V1, W1) and np.array_equal(V2, W2)
    assert not c1.any() and not c2.any()
    assert np.random.randint(10**9) == np.random.RandomState(12345).randint(10**9)


def test_loss_is_the_articles_calculate_loss() -> None:
    X, y = problem(FEATURE_SETS["article"], 2)
    params = params_away_from_zero([2, 3, 2])
    (W1, b1), (W2, b2) = params
    a1 = np.tanh(X.dot(W1) + b1)
    exp_scores = np.exp(a1.dot(W2) + b2)
    probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)
    data_loss = np.sum(-np.log(probs[range(len(X)), y]))
    data_loss += 0.01 / 2 * (np.sum(np.square(W1)) + np.sum(np.square(W2)))
    expected = 1.0 / len(X) * data_loss
    got = nn.loss_value(params, X, y, "tanh", "cross_entropy", make_regularizer("l2", 0.01))
    assert got == pytest.approx(expected, rel=1e-14)


def test_train_step_is_the_articles_update() -> None:
    X, y = problem(FEATURE_SETS["article"], 2)
    params = params_away_from_zero([2, 3, 2])
    (W1, b1), (W2, b2) = (w.copy() for w in params[0]), (w.copy() for w in params[1])
    # The article's build_model loop body, once.
    a1 = np.tanh(X.dot(W1) + b1)
    e = np.exp(a1.dot(W2) + b2)
    delta3 = e / np.sum(e, axis=1, keepdims=True)
    delta3[range(len(X)), y] -= 1
    dW2 = (a1.T).dot(delta3) + 0.01 * W2
    db2 = np.sum(delta3, axis=0)
    delta2 = delta3.dot(W2.T) * (1 - np.power(a1, 2))
    dW1 = np.dot(X.T, delta2) + 0.01 * W1
    db1 = np.sum(delta2, axis=0)
    nn.train_step(params, X, y, "tanh", "cross_entropy", make_regularizer("l2", 0.01), 0.01)
    for got, before, grad in zip(flat(params), (W1, b1, W2, b2), (dW1, db1, dW2, db2),
                                 strict=True):  # fmt: skip
        np.testing.assert_allclose(got, before - 0.01 * grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("regularization", REGULARIZATIONS)
def test_reference_and_tape_train_alike(regularization) -> None:
    # 50 full-batch steps of plain gradient descent: the reference's allocate-as-you-go
    # arithmetic and the tape's bias-row products round differently, so equal to 1e-10.
    X, y = problem(FEATURE_SETS["squares"], 3)
    sizes = nn.layer_sizes(X.shape[1], [5, 4], 3)
    regularizer = make_regularizer(regularization, 0.3)
    reference = nn.init_params(sizes, seed=4)
    tape = Network(sizes, "sigmoid", seed=4, regularization=regularization, reg_lambda=0.3,
                   learning_rate=0.05)  # fmt: skip
    Y = np.eye(3)[y]
    for _ in range(50):
        nn.train_step(reference, X, y, "sigmoid", "cross_entropy", regularizer, 0.05)
        tape.step(X, Y)
    for ref, fast in zip(flat(reference), flat(tape.params), strict=True):
        np.testing.assert_allclose(fast, ref, rtol=1e-10, atol=1e-13)


def test_penalty_covers_weights_only() -> None:
    params = nn.init_params([2, 2, 2], seed=0)
    for _, b in params:
        b += 100.0
    expected = 0.25 * sum(float(np.sum(W**2)) for W, _ in params)
    assert make_regularizer("l2", 0.5).penalty(nn.weights(params)) == pytest.approx(expected)
