"""The fast tape (tape.py): same gradients as the reference, stacks that compute bit for bit
what each model computes alone, optimisers and the L1 step on the flat parameter vector."""

from __future__ import annotations

import numpy as np
import pytest

from boundarylab.engine import nn
from boundarylab.engine.activations import ACTIVATIONS
from boundarylab.engine.features import feature_matrix
from boundarylab.engine.losses import LOSSES, one_hot
from boundarylab.engine.regularizers import REGULARIZATIONS, make_regularizer
from boundarylab.engine.tape import Network

FEATURE_SETS = [["x1", "x2"], ["x1_sq", "x2_sq", "x1_x2"], ["x1", "sin_x1", "sin_x2"]]


def problem(features: list[str], n_classes: int, n: int = 7, seed: int = 3) -> tuple:
    rs = np.random.RandomState(seed)
    X = feature_matrix(rs.randn(n, 2), features)
    y = np.arange(n) % n_classes
    return X, y, one_hot(y, n_classes)


@pytest.mark.parametrize("features", FEATURE_SETS, ids=lambda f: "+".join(f))
@pytest.mark.parametrize("regularization", REGULARIZATIONS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_tape_gradient_is_the_references(activation, loss, regularization, features) -> None:
    X, y, Y = problem(features, 3)
    sizes = nn.layer_sizes(X.shape[1], [4, 3], 3)
    net = Network(sizes, activation, loss, seed=1, regularization=regularization,
                  reg_lambda=0.05)  # fmt: skip
    for _, b in net.params:
        b += np.random.RandomState(2).uniform(-0.3, 0.3, size=b.shape)
    regularizer = make_regularizer(regularization, 0.05)
    reference = nn.backprop(net.params, X, y, activation, loss, regularizer)
    net.compute_gradient(net.load_batch(X, Y))
    for (dW, db), (fW, fb) in zip(reference, net.model_grads(0), strict=True):
        np.testing.assert_allclose(fW, dW, rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(fb, db, rtol=1e-11, atol=1e-14)


def test_tape_layout_keeps_each_block_a_view_of_theta() -> None:
    net = Network([2, 3, 2], seed=0)
    assert net.theta.size == 3 * 3 + 4 * 2
    (W1, b1), (W2, b2) = net.params
    W1[0, 0] = 42.0
    b2[1] = -7.0
    assert net.theta[0] == 42.0 and net.theta[-1] == -7.0
    # Layer by layer, each block [W; b] row-major: b1 follows W1's 2×3 entries.
    assert np.array_equal(net.theta[6:9], b1) and np.array_equal(net.theta[9:15], W2.ravel())


@pytest.mark.parametrize(
    ("activation", "loss", "optimizer", "regularization", "hidden", "features", "classes"),
    [
        ("tanh", "cross_entropy", "gd", "l2", [1, 2, 3, 4, 5, 20, 50], ["x1", "x2"], 2),
        ("relu", "squared_error", "adam", "l1", [1, 3, 8], ["x1_sq", "x2_sq", "x1_x2"], 2),
        ("sigmoid", "cross_entropy", "momentum", "none", [2, 7], ["x1", "x2", "sin_x1"], 4),
        ("linear", "cross_entropy", "gd", "l2", [6, 1], ["x2", "x1"], 3),
    ],
)
def test_a_stack_steps_each_model_bit_for_bit_as_alone(
    activation, loss, optimizer, regularization, hidden, features, classes
) -> None:
    X, _, Y = problem(features, classes, n=60)
    d = X.shape[1]
    options = dict(seed=5, regularization=regularization, reg_lambda=0.01, learning_rate=0.01,
                   optimizer=optimizer)  # fmt: skip
    stack = Network([nn.layer_sizes(d, [h], classes) for h in hidden], activation, loss,
                     **options)  # fmt: skip
    alone = [Network(nn.layer_sizes(d, [h], classes), activation, loss, **options)
             for h in hidden]  # fmt: skip
    batch = np.random.RandomState(9).permutation(60)[:25]
    for step in range(120):
        rows = batch if step % 3 == 2 else slice(None)  # full batches and a mini-batch size
        stack.step(X[rows], Y[rows])
        for net in alone:
            net.step(X[rows], Y[rows])
    for j, net in enumerate(alone):
        assert np.array_equal(stack.theta[stack.slices[j]], net.theta), f"hidden {hidden[j]}"


def test_stacks_of_deeper_models_are_bit_for_bit_too() -> None:
    X, _, Y = problem(["x1", "x2"], 2, n=40)
    models = [[2, 3, 4, 2], [2, 5, 1, 2]]
    stack = Network(models, reg_lambda=0.01)
    alone = [Network(sizes, reg_lambda=0.01) for sizes in models]
    for _ in range(50):
        stack.step(X, Y)
        for net in alone:
            net.step(X, Y)
    for j, net in enumerate(alone):
        assert np.array_equal(stack.theta[stack.slices[j]], net.theta)


# Adam's data step is about ε per weight whatever the gradient, against ε·λ of the L1 step:
# from λ ≈ 1 on, L1 wins everywhere under Adam, so it gets a smaller λ here.
@pytest.mark.parametrize(("optimizer", "lam"), [("gd", 2.0), ("momentum", 2.0), ("adam", 0.5)])
def test_l1_makes_exact_zeros_and_leaves_biases_alone(optimizer, lam) -> None:
    # A strong L1 on a problem one input explains: the useless weights end at exactly 0,
    # with every optimiser (the soft threshold runs after the optimiser's step).
    rs = np.random.RandomState(1)
    X = rs.randn(80, 2)
    y = (X[:, 0] > 0).astype(np.int64)
    net = Network([2, 6, 2], seed=0, regularization="l1", reg_lambda=lam, learning_rate=0.01,
                  optimizer=optimizer)  # fmt: skip
    for _ in range(400):
        net.step(X, one_hot(y, 2))
    weights = np.concatenate([W.ravel() for W, _ in net.params])
    assert np.count_nonzero(weights == 0.0) >= weights.size // 2
    assert nn.data_loss_and_accuracy(net.params, X, y, "tanh", "cross_entropy")[1] > 0.9
    assert all(np.count_nonzero(b) > 0 for _, b in net.params)  # biases are not penalised


def test_l1_tape_step_is_the_reference_soft_threshold() -> None:
    net = Network([2, 3, 2], seed=0, regularization="l1", reg_lambda=0.7, learning_rate=0.1)
    net.optimizer.lr = 0.0  # isolate the L1 step: the data step moves nothing
    X, _, Y = problem(["x1", "x2"], 2)
    expected = [(W.copy(), b.copy()) for W, b in net.params]
    for W, _ in expected:
        net.regularizer.after_step(W, 0.1)
    net.step(X, Y)
    for (W, b), (eW, eb) in zip(net.params, expected, strict=True):
        assert np.array_equal(W, eW) and np.array_equal(b, eb)


def test_finite_models_names_the_model_that_blew_up() -> None:
    stack = Network([[2, 1, 2], [2, 4, 2]])
    stack.theta[stack.slices[1]][3] = np.nan
    assert stack.finite_models() == [True, False] and not stack.is_finite()
