"""Own data in the engine: points become a Dataset in order, the split is seeded as for
generated data, the grid follows the data at any scale, and generated data is untouched."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from boundarylab.engine.config import DatasetConfig, Limits, RunConfig
from boundarylab.engine.datasets import make_dataset
from boundarylab.engine.grid import GRID_PAD, grid_bounds
from boundarylab.engine.training import Trainer


def _config(points: list, **extra: object) -> DatasetConfig:
    return DatasetConfig.model_validate({"kind": "custom", "points": points, **extra})


def test_points_become_the_dataset_in_order_with_k_from_the_labels() -> None:
    points = [[0.5, -1.0, 2], [1.0, 2.0, 0], [3.0, 4.0, 1], [-2.0, 0.0, 0]]
    data = make_dataset(_config(points))
    assert data.n_classes == 3
    assert data.x_train.tolist() == [p[:2] for p in points]
    assert data.y_train.tolist() == [2, 0, 1, 0] and data.y_train.dtype == np.int64


def test_the_split_is_the_seeded_permutation_generated_data_uses() -> None:
    moons = make_dataset(DatasetConfig(n_samples=50, test_fraction=0.2, seed=9))
    whole = make_dataset(DatasetConfig(n_samples=50, seed=9))
    points = [[*map(float, x), int(y)] for x, y in zip(whole.x_train, whole.y_train, strict=True)]
    own = make_dataset(_config(points, test_fraction=0.2, seed=9))
    np.testing.assert_array_equal(own.x_test, moons.x_test)
    np.testing.assert_array_equal(own.y_train, moons.y_train)


def test_the_grid_follows_the_data_at_any_scale_and_when_it_is_degenerate() -> None:
    big = make_dataset(_config([[0.0, 0.0, 0], [1000.0, 0.0, 1], [0.0, 500.0, 0], [9.0, 9.0, 1]]))
    x_min, x_max, y_min, y_max = big.grid_bounds()
    assert (x_min, x_max, y_min, y_max) == (-100.0, 1100.0, -100.0, 600.0)
    spot = make_dataset(_config([[3.0, 3.0, 0], [3.0, 3.0, 1]] * 2))
    assert spot.grid_bounds() == (2.5, 3.5, 2.5, 3.5)
    line = make_dataset(_config([[float(i), 7.0, i % 2] for i in range(11)]))
    assert line.grid_bounds() == (-1.0, 11.0, 6.0, 8.0)
    # Generated data keeps the article's fixed padding.
    moons = make_dataset(DatasetConfig())
    assert moons.grid_bounds() == grid_bounds(moons.x_all, GRID_PAD)
    assert moons.grid_pad_share == 0.0


def test_a_custom_run_trains_and_draws_its_classes() -> None:
    points = [[float(i % 7), float(i // 7), int(i % 7 > 3)] for i in range(49)]
    config = RunConfig.model_validate(
        {"dataset": {"kind": "custom", "points": points}, "training": {"iterations": 2000}}
    )
    trainer = Trainer(config)
    trainer.advance(2000)
    assert trainer.report().train_accuracy == 1.0
    assert trainer.grid().x_min < 0 and trainer.grid().x_max > 6


def test_noise_and_n_samples_apply_to_generated_data_only() -> None:
    props = DatasetConfig.model_json_schema()["properties"]
    for name in ("noise", "n_samples"):
        assert "custom" not in props[name]["x-applies-when"]["kind"]
        assert "moons" in props[name]["x-applies-when"]["kind"]
    assert props["points"]["x-applies-when"] == {"kind": ["custom"]}
    # A deployment's lower max_samples is not charged to custom data's unused n_samples.
    limits = {"limits": Limits(max_samples=10)}
    points = [[float(i), 0.0, i % 2] for i in range(10)]
    DatasetConfig.model_validate({"kind": "custom", "points": points}, context=limits)
    with pytest.raises(ValidationError) as info:
        DatasetConfig.model_validate({"kind": "custom", "points": [*points, [0.0, 0.0, 1]]},
                                     context=limits)  # fmt: skip
    assert info.value.errors()[0]["loc"] == ("points", 10)
