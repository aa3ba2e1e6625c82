"""The one batch sampler (batches.py): full batch, seeded epochs without replacement, undo."""

from __future__ import annotations

import numpy as np
import pytest

from boundarylab.engine.batches import BatchSampler, BatchStepper
from boundarylab.engine.losses import one_hot
from boundarylab.engine.tape import Network


@pytest.mark.parametrize("batch_size", [None, 0, 10, 11])
def test_no_batch_size_or_one_not_smaller_than_the_set_is_the_full_batch(batch_size) -> None:
    assert BatchSampler(10, batch_size, seed=0).full


def test_each_epoch_uses_every_point_at_most_once_and_skips_the_remainder() -> None:
    sampler = BatchSampler(10, 3, seed=4)
    epochs = [np.concatenate([sampler.next_indices() for _ in range(3)]) for _ in range(4)]
    for epoch in epochs:
        assert len(set(epoch.tolist())) == 9  # 3 batches of 3; the 10th point waits
    assert len({tuple(e) for e in epochs}) == 4  # a fresh permutation each epoch


def test_batches_follow_the_training_seed_on_their_own_stream() -> None:
    def draws(seed: int) -> list[list[int]]:
        sampler = BatchSampler(50, 8, seed)
        return [sampler.next_indices().tolist() for _ in range(10)]

    assert draws(1) == draws(1) and draws(1) != draws(2)
    first = np.random.default_rng([1, 2]).permutation(50)[:8].tolist()
    assert draws(1)[0] == first


def test_state_undoes_draws() -> None:
    sampler = BatchSampler(20, 6, seed=0)
    sampler.next_indices()
    saved = sampler.state()
    ahead = [sampler.next_indices().tolist() for _ in range(5)]
    sampler.set_state(saved)
    assert [sampler.next_indices().tolist() for _ in range(5)] == ahead


def test_stepper_trains_on_the_drawn_rows() -> None:
    rs = np.random.RandomState(0)
    X = rs.randn(30, 2)
    Y = one_hot((X[:, 0] > 0).astype(np.int64), 2)
    stepped, by_hand = Network([2, 3, 2], seed=0), Network([2, 3, 2], seed=0)
    stepper = BatchStepper(stepped, X, Y, batch_size=7, seed=3)
    sampler = BatchSampler(30, 7, seed=3)
    for _ in range(10):
        stepper.step()
        idx = sampler.next_indices()
        by_hand.step(X[idx], Y[idx])
    assert np.array_equal(stepped.theta, by_hand.theta)
