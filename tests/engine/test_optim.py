"""Optimisers (optim.py) on the tape's flat parameter vector: each lowers the loss, Adam's
first step, momentum's velocity, and undoing steps through state()."""

from __future__ import annotations

import numpy as np
import pytest

from boundarylab.engine import nn
from boundarylab.engine.config import OptimizerName
from boundarylab.engine.features import feature_matrix
from boundarylab.engine.losses import one_hot
from boundarylab.engine.optim import OPTIMIZERS
from boundarylab.engine.regularizers import make_regularizer
from boundarylab.engine.tape import Network


def problem(n_classes: int, n: int = 7, seed: int = 3) -> tuple:
    rs = np.random.RandomState(seed)
    X = feature_matrix(rs.randn(n, 2), ["x1", "x2"])
    y = np.arange(n) % n_classes
    return X, y, one_hot(y, n_classes)


def test_every_schema_optimizer_is_implemented() -> None:
    assert set(OPTIMIZERS) == set(OptimizerName.__args__)


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
def test_every_optimizer_lowers_the_loss(optimizer) -> None:
    rs = np.random.RandomState(0)
    X = rs.randn(40, 2)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    Y = one_hot(y, 2)
    net = Network([2, 8, 2], seed=0, reg_lambda=0.001, learning_rate=0.01, optimizer=optimizer)
    l2 = make_regularizer("l2", 0.001)
    before = nn.loss_value(net.params, X, y, "tanh", "cross_entropy", l2)
    for _ in range(300):
        net.step(X, Y)
    after = nn.loss_value(net.params, X, y, "tanh", "cross_entropy", l2)
    assert np.isfinite(after) and after < 0.7 * before


def test_adam_first_step_moves_each_weight_by_the_learning_rate() -> None:
    X, _, Y = problem(2)
    net = Network([2, 3, 2], seed=0, learning_rate=0.001, optimizer="adam")
    before = net.theta.copy()
    net.step(X, Y)
    moved = np.abs(net.theta - before)
    # Bias-corrected first step is ε·g/(|g| + 1e-8): ε wherever the gradient is not tiny.
    assert np.allclose(moved[np.abs(net.grad) > 1e-3], 0.001, rtol=1e-4)


def test_momentum_accumulates_velocity() -> None:
    X, _, Y = problem(2)
    plain = Network([2, 3, 2], seed=0, learning_rate=0.01)
    heavy = Network([2, 3, 2], seed=0, learning_rate=0.01, optimizer="momentum")
    plain.step(X, Y)
    heavy.step(X, Y)
    assert np.array_equal(plain.theta, heavy.theta)  # v starts at 0: first steps agree
    plain.step(X, Y)
    heavy.step(X, Y)
    assert not np.allclose(plain.theta, heavy.theta)


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
def test_state_undoes_steps(optimizer) -> None:
    X, _, Y = problem(2)
    net = Network([2, 3, 2], seed=0, optimizer=optimizer)
    net.step(X, Y)
    saved = (net.theta.copy(), net.optimizer.state())
    net.step(X, Y)
    ahead = net.theta.copy()
    net.theta[...] = saved[0]
    net.optimizer.set_state(saved[1])
    net.step(X, Y)
    assert np.array_equal(net.theta, ahead)
