"""Training: parity with the article's algorithm, divergence, overfitting, reports, frames."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_moons

from boundarylab.engine import training
from boundarylab.engine.config import RunConfig
from boundarylab.engine.events import Progress
from boundarylab.engine.training import Trainer


def article_losses(hidden: int, steps: int) -> np.ndarray:
    """The article's build_model + calculate_loss, written out plainly from its equations
    (per-row fancy indexing, global-free RandomState init): the loss after k = 0..steps
    updates."""
    X, y = make_moons(300, noise=0.20, random_state=0)
    n, eps, lam = len(X), 0.01, 0.01
    rs = np.random.RandomState(0)
    W1 = rs.randn(2, hidden) / np.sqrt(2)
    b1 = np.zeros((1, hidden))
    W2 = rs.randn(hidden, 2) / np.sqrt(hidden)
    b2 = np.zeros((1, 2))

    def loss() -> float:
        a1 = np.tanh(X.dot(W1) + b1)
        e = np.exp(a1.dot(W2) + b2)
        probs = e / np.sum(e, axis=1, keepdims=True)
        data = np.sum(-np.log(probs[range(n), y]))
        data += lam / 2 * (np.sum(np.square(W1)) + np.sum(np.square(W2)))
        return data / n

    out = [loss()]
    for _ in range(steps):
        a1 = np.tanh(X.dot(W1) + b1)
        e = np.exp(a1.dot(W2) + b2)
        delta3 = e / np.sum(e, axis=1, keepdims=True)
        delta3[range(n), y] -= 1
        dW2 = a1.T.dot(delta3) + lam * W2
        db2 = np.sum(delta3, axis=0, keepdims=True)
        delta2 = delta3.dot(W2.T) * (1 - np.power(a1, 2))
        dW1 = X.T.dot(delta2) + lam * W1
        db1 = np.sum(delta2, axis=0)
        W1 += -eps * dW1
        b1 += -eps * db1
        W2 += -eps * dW2
        b2 += -eps * db2
        out.append(loss())
    return np.array(out)


def engine_losses(trainer: Trainer, steps: int) -> np.ndarray:
    out = [trainer.report().loss]
    for _ in range(steps):
        assert trainer.advance(1) == 1
        out.append(trainer.report().loss)
    return np.array(out)


@pytest.mark.parametrize(("hidden", "steps"), [(3, 500), (50, 2000)])
def test_loss_equals_the_articles_at_every_step(make_config, hidden, steps) -> None:
    trainer = Trainer(make_config(model={"hidden_sizes": [hidden]}))
    expected = article_losses(hidden, steps)
    got = engine_losses(trainer, steps)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=0)


def test_default_run_ends_where_the_article_does(make_config) -> None:
    trainer = Trainer(make_config())
    assert trainer.advance(10**6) == 20000 and trainer.done and trainer.iteration == 20000
    report = trainer.report()
    assert report.loss == pytest.approx(0.0619, rel=0.05)
    assert report.train_accuracy >= 0.98


def test_learning_rate_10_diverges_with_an_actionable_message(make_config) -> None:
    trainer = Trainer(make_config(training={"learning_rate": 10.0}))
    taken = trainer.advance(20000)
    assert trainer.done and trainer.diverged_message is not None
    assert taken == trainer.iteration < 20000
    assert f"step {trainer.iteration}" in trainer.diverged_message
    assert "learning_rate" in trainer.diverged_message
    assert trainer.advance(10) == 0  # a diverged run takes no further steps
    frame = trainer.boundary()  # a diverged network still draws (undecided cells)
    assert len(frame.cells) == frame.grid.nx * frame.grid.ny


def test_divergence_advice_names_lambda_only_when_a_penalty_is_on(make_config) -> None:
    for regularization, mentions_lambda in (("l2", True), ("l1", True), ("none", False)):
        config = make_config(training={"learning_rate": 10.0, "regularization": regularization})
        trainer = Trainer(config)
        trainer.advance(20000)
        assert trainer.diverged_message is not None
        assert ("reg_lambda" in trainer.diverged_message) is mentions_lambda


def test_divergence_is_located_at_the_exact_step(make_config) -> None:
    config = make_config(training={"learning_rate": 10.0})
    chunked = Trainer(config)
    chunked.advance(20000)
    stepped = Trainer(config)
    while not stepped.done:
        stepped.advance(1)
    assert chunked.iteration == stepped.iteration
    assert chunked.diverged_message == stepped.diverged_message
    # The step before it was still finite: the reported step is the first bad one.
    before = Trainer(config)
    before.advance(stepped.iteration - 1)
    assert before.diverged_message is None and before.report().loss is not None


def test_bigger_hidden_layer_overfits_without_regularisation(make_config) -> None:
    # 200 noisy moons (noise 0.35), half held out, λ = 0, 10000 steps: hidden size 50 fits the
    # training half better and the test half worse than hidden size 3 (the article's remark).
    def final(hidden: int) -> Progress:
        trainer = Trainer(
            make_config(
                dataset={"n_samples": 200, "noise": 0.35, "test_fraction": 0.5},
                model={"hidden_sizes": [hidden]},
                training={"reg_lambda": 0.0, "iterations": 10000},
            )
        )
        trainer.advance(10000)
        return trainer.report()

    small, big = final(3), final(50)
    assert big.loss < small.loss
    assert big.test_loss > small.test_loss


def test_report_has_test_metrics_only_with_a_split(make_config) -> None:
    plain = Trainer(make_config()).report()
    assert plain.test_loss is None and plain.test_accuracy is None
    split = Trainer(make_config(dataset={"test_fraction": 0.3})).report()
    assert split.test_accuracy is not None and 0.0 <= split.test_accuracy <= 1.0
    assert split.test_loss is not None and split.test_loss > 0


def test_boundary_grid_covers_the_data_padded_by_half(make_config) -> None:
    trainer = Trainer(make_config(dataset={"test_fraction": 0.5}, view={"resolution": 40}))
    frame = trainer.boundary()
    x = np.concatenate([trainer.data.x_train, trainer.data.x_test])
    grid = frame.grid
    assert grid.x_min == pytest.approx(x[:, 0].min() - 0.5)
    assert grid.y_max == pytest.approx(x[:, 1].max() + 0.5)
    assert grid.nx == grid.ny == 40
    p1 = np.frombuffer(frame.cells, dtype=np.uint8).reshape(40, 40)
    # Rows run from y_min up, columns from x_min right: compare one cell with the network.
    xs = np.linspace(grid.x_min, grid.x_max, 40)
    ys = np.linspace(grid.y_min, grid.y_max, 40)
    probs = trainer.net.predict_proba(np.array([[xs[7], ys[31]]]))
    assert p1[31, 7] == round(255 * probs[0, 1])


def test_trained_boundary_separates_the_moons(make_config) -> None:
    trainer = Trainer(make_config(training={"iterations": 5000}))
    trainer.advance(5000)
    frame = trainer.boundary()
    p1 = np.frombuffer(frame.cells, dtype=np.uint8)
    assert p1.min() < 20 and p1.max() > 235  # both classes appear with confidence


def test_many_classes_encode_class_and_confidence(make_config) -> None:
    trainer = Trainer(
        make_config(
            dataset={"kind": "blobs", "n_classes": 4},
            model={"hidden_sizes": [8]},
            training={"iterations": 300},
            view={"resolution": 20},
        )
    )
    trainer.advance(300)
    frame = trainer.boundary()
    assert frame.n_classes == 4
    raw = np.frombuffer(frame.cells, dtype=np.uint8)
    classes, conf = raw[:400], raw[400:]
    assert raw.size == 800 and set(classes.tolist()) == {0, 1, 2, 3}
    assert conf.min() >= 255 // 4  # the argmax of 4 probabilities is at least 1/4


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
def test_mini_batches_are_seeded(make_config, optimizer) -> None:
    def losses(seed: int) -> list[float]:
        trainer = Trainer(
            make_config(training={"batch_size": 32, "seed": seed, "optimizer": optimizer})
        )
        out = []
        for _ in range(3):
            trainer.advance(50)
            out.append(trainer.report().loss)
        return out

    first = losses(0)
    assert first == losses(0)
    assert first != losses(1)
    assert first[-1] < Trainer(make_config()).report().loss


def test_export_model_has_every_layer(make_config) -> None:
    trainer = Trainer(make_config(model={"hidden_sizes": [5, 4]}))
    trainer.advance(10)
    model = trainer.export_model()
    assert model["iteration"] == 10
    assert model["config"]["model"]["hidden_sizes"] == [5, 4]
    shapes = [(*layer["W"].shape, *layer["b"].shape) for layer in model["layers"]]
    assert shapes == [(2, 5, 5), (5, 4, 4), (4, 2, 2)]
    # A copy, not a view: the export must not change while the run trains on.
    before = model["layers"][0]["W"].copy()
    trainer.advance(10)
    np.testing.assert_array_equal(model["layers"][0]["W"], before)


def test_a_check_at_a_report_step_is_the_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """Advancing to a report step checks finiteness with the report's own pass over the
    training set (one pass, not two), and report() then gives exactly that Progress."""
    config = RunConfig.model_validate({"training": {"report_every": 100}})
    trainer = Trainer(config)
    separate = Trainer(config)
    losses: list[int] = []
    real = training.train_loss
    monkeypatch.setattr(training, "train_loss", lambda *a: losses.append(1) or real(*a))
    assert trainer.advance(100) == 100
    assert losses == []  # the check at step 100 used the report's loss
    report = trainer.report()
    assert report is trainer.report()
    separate.advance(100)
    assert report == training.progress(separate.net, 0, separate.inputs, 100)
    trainer.advance(30)  # not a report step: the plain loss, and a fresh report
    assert losses == [1]
    assert trainer.report().iteration == 130
