"""The network's math: gradients against finite differences, initialisation, optimisers."""

from __future__ import annotations

import numpy as np
import pytest

from boundarylab.engine import nn

ACTIVATIONS = ["tanh", "sigmoid", "relu", "linear"]
LOSSES = ["cross_entropy", "squared_error"]


def _problem(n_classes: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rs = np.random.RandomState(seed)
    X = rs.randn(7, 2)
    y = np.arange(7) % n_classes
    return X, y


def _numeric_gradient(params, X, y, activation, loss, lam, h=1e-6) -> list[np.ndarray]:
    """Central differences of n·L with respect to every entry of every W and b."""
    n = len(X)
    grads = []
    for W, b in params:
        for arr in (W, b):
            g = np.zeros_like(arr)
            for idx in np.ndindex(arr.shape):
                old = arr[idx]
                arr[idx] = old + h
                up = nn.loss_value(params, X, y, activation, loss, lam)
                arr[idx] = old - h
                down = nn.loss_value(params, X, y, activation, loss, lam)
                arr[idx] = old
                g[idx] = n * (up - down) / (2 * h)
            grads.append(g)
    return grads


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("hidden", [[], [4], [4, 3]])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradients_match_central_differences(activation, loss, hidden, n_classes) -> None:
    X, y = _problem(n_classes)
    lam = 0.05
    sizes = nn.layer_sizes(2, hidden, n_classes)
    params = nn.init_params(sizes, seed=1)
    # Non-zero biases so the bias gradients are exercised away from the origin.
    for _, b in params:
        b += np.random.RandomState(2).uniform(-0.3, 0.3, size=b.shape)
    numeric = _numeric_gradient(params, X, y, activation, loss, lam)
    reference = [g for pair in nn.gradients(params, X, y, activation, loss, lam) for g in pair]
    net = nn.Network(sizes, activation, loss, seed=1, reg_lambda=lam)
    net.set_params(params)
    net.compute_gradient(net.load_batch(X, nn.one_hot(y, n_classes)))
    fast = [g for pair in net.grads for g in pair]
    for num, ref, fst in zip(numeric, reference, fast, strict=True):
        assert _rel_err(ref, num) <= 1e-6
        assert _rel_err(fst, num) <= 1e-6


def test_initialisation_is_the_articles() -> None:
    np.random.seed(0)  # the article seeds the global state; the engine must not need to
    W1 = np.random.randn(2, 3) / np.sqrt(2)
    W2 = np.random.randn(3, 2) / np.sqrt(3)
    np.random.seed(12345)
    net = nn.Network([2, 3, 2], seed=0)
    (V1, c1), (V2, c2) = net.params
    assert np.array_equal(V1, W1) and np.array_equal(V2, W2)
    assert not c1.any() and not c2.any()
    assert net.theta.dtype == np.float64


def test_weight_penalty_skips_biases() -> None:
    net = nn.Network([2, 2, 2], seed=0, reg_lambda=0.5)
    for _, b in net.params:
        b += 100.0
    expected = 0.25 * sum(float(np.sum(W**2)) for W, _ in net.params)
    assert net.penalty() == pytest.approx(expected)


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
def test_every_optimizer_lowers_the_loss(optimizer) -> None:
    rs = np.random.RandomState(0)
    X = rs.randn(40, 2)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    Y = nn.one_hot(y, 2)
    net = nn.Network([2, 8, 2], seed=0, reg_lambda=0.001, learning_rate=0.01, optimizer=optimizer)
    before = nn.loss_value(net.params, X, y, "tanh", "cross_entropy", 0.001)
    for _ in range(300):
        net.step(X, Y)
    after = nn.loss_value(net.params, X, y, "tanh", "cross_entropy", 0.001)
    assert np.isfinite(after) and after < 0.7 * before


def test_adam_first_step_moves_each_weight_by_the_learning_rate() -> None:
    X, y = _problem(2)
    net = nn.Network([2, 3, 2], seed=0, learning_rate=0.001, optimizer="adam")
    before = net.theta.copy()
    net.step(X, nn.one_hot(y, 2))
    moved = np.abs(net.theta - before)
    # Bias-corrected first step is ε·g/(|g| + 1e-8): ε wherever the gradient is not tiny.
    assert np.allclose(moved[np.abs(net.grad) > 1e-3], 0.001, rtol=1e-4)


def test_momentum_accumulates_velocity() -> None:
    X, y = _problem(2)
    Y = nn.one_hot(y, 2)
    plain = nn.Network([2, 3, 2], seed=0, learning_rate=0.01)
    heavy = nn.Network([2, 3, 2], seed=0, learning_rate=0.01, optimizer="momentum")
    plain.step(X, Y)
    heavy.step(X, Y)
    assert np.array_equal(plain.theta, heavy.theta)  # v starts at 0: first steps agree
    plain.step(X, Y)
    heavy.step(X, Y)
    assert not np.allclose(plain.theta, heavy.theta)


def test_squared_error_probabilities_sum_to_one() -> None:
    X, _ = _problem(3)
    net = nn.Network([2, 4, 3], "sigmoid", "squared_error", seed=0)
    p = net.predict_proba(X)
    assert p.shape == (7, 3)
    assert np.allclose(p.sum(axis=1), 1.0)


def test_unknown_names_raise_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"model\.activation"):
        nn.Network([2, 2], "swish")
    with pytest.raises(ValueError, match=r"model\.loss"):
        nn.Network([2, 2], loss="hinge")
    with pytest.raises(ValueError, match=r"training\.optimizer"):
        nn.Network([2, 2], optimizer="lbfgs")
