"""What a run trains, built from its config in one place: the network (tape.Network) and the
batches that step it (batches.BatchStepper).

A single run (training.Trainer) and the hidden-size comparison (compare.FusedComparison)
both build here, so a new option of the model or of training (a regulariser, an activation,
an optimiser) is passed to the network once, and the comparison's models stay bit for bit
what a single run of the same config computes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from boundarylab.engine import nn
from boundarylab.engine.batches import BatchStepper
from boundarylab.engine.config import RunConfig
from boundarylab.engine.tape import Network


def build_learner(
    config: RunConfig, X: np.ndarray, Y: np.ndarray, hidden_layers: Sequence[Sequence[int]]
) -> tuple[Network, BatchStepper]:
    """A Network of one model per entry of ``hidden_layers`` (each model's hidden widths,
    input side first) and the BatchStepper that steps it on the training set.

    ``X`` (n_train, d) is the training points as the network sees them (d features) and
    ``Y`` (n_train, K) their one-hot labels, so every model is ``[d, *hidden, K]``. Model
    options, seed, penalty, step size, optimiser and batch size come from ``config``."""
    m, t = config.model, config.training
    d, K = X.shape[1], Y.shape[1]
    net = Network(
        [nn.layer_sizes(d, hidden, K) for hidden in hidden_layers],
        m.activation,
        m.loss,
        seed=t.seed,
        regularization=t.regularization,
        reg_lambda=t.reg_lambda,
        learning_rate=t.learning_rate,
        optimizer=t.optimizer,
    )
    return net, BatchStepper(net, X, Y, t.batch_size, t.seed)
