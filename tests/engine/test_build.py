"""build.build_learner: the one place a run's network and batches are made from its config."""

from __future__ import annotations

import numpy as np

from boundarylab.engine.build import build_learner
from boundarylab.engine.compare import FusedComparison
from boundarylab.engine.optim import Momentum
from boundarylab.engine.regularizers import L1
from boundarylab.engine.training import Inputs, Trainer

OPTIONS = {
    "dataset": {"kind": "blobs", "n_classes": 4, "n_samples": 120},
    "model": {"activation": "relu", "loss": "squared_error", "features": ["x1", "x2", "x1_x2"]},
    "training": {"regularization": "l1", "reg_lambda": 0.3, "optimizer": "momentum",
                 "learning_rate": 0.2, "batch_size": 7, "seed": 5},
}  # fmt: skip


def _is_option_set(net, batches) -> None:
    """Every model and training option of OPTIONS reached the network and its batches."""
    assert (net.activation, net.loss) == ("relu", "squared_error")
    assert isinstance(net.regularizer, L1) and net.regularizer.lam == 0.3
    assert isinstance(net.optimizer, Momentum) and net.optimizer.lr == 0.2
    assert batches.sampler.size == 7 and batches.net is net


def test_each_model_is_features_then_hidden_widths_then_classes(make_config) -> None:
    config = make_config(**OPTIONS)
    inputs = Inputs.of(Trainer(config).data, config.model.features)
    net, batches = build_learner(config, inputs.train, inputs.Y_train, [[4, 6], [2, 9]])
    assert net.layout.models == ((3, 4, 6, 4), (3, 2, 9, 4))
    _is_option_set(net, batches)


def test_a_run_and_the_comparison_get_the_same_options_and_start(make_config) -> None:
    config = make_config(**{**OPTIONS, "model": {**OPTIONS["model"], "hidden_sizes": [5]}})
    trainer, fused = Trainer(config), FusedComparison(config, [2, 5])
    for built in (trainer, fused):
        _is_option_set(built.net, built.batches)
    # The size-5 model of the stack starts where the single run starts (same seed).
    for (W, b), (W0, b0) in zip(fused.net.model_params(1), trainer.net.params, strict=True):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)
