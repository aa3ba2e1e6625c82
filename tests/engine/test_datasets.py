"""Datasets: shapes, labels, determinism under a seed, the split, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.datasets import make_moons

from boundarylab.engine.config import DatasetConfig
from boundarylab.engine.datasets import make_dataset

KINDS = ["moons", "circles", "xor", "gaussian", "spiral", "blobs"]


def test_default_moons_are_exactly_the_articles_points() -> None:
    np.random.seed(0)
    X, y = make_moons(300, noise=0.20)
    data = make_dataset(DatasetConfig())
    assert np.array_equal(data.x_train, X) and np.array_equal(data.y_train, y)
    assert data.x_test.shape == (0, 2) and data.y_test.shape == (0,)


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_dtypes_and_label_set(kind) -> None:
    data = make_dataset(DatasetConfig(kind=kind, n_samples=250, n_classes=4))
    k = 4 if kind == "blobs" else 2
    assert data.n_classes == k
    assert data.x_train.shape == (250, 2) and data.x_train.dtype == np.float64
    assert data.y_train.shape == (250,) and data.y_train.dtype == np.int64
    assert set(data.y_train.tolist()) == set(range(k))
    assert np.isfinite(data.x_train).all()


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_points_other_seed_other_points(kind) -> None:
    a = make_dataset(DatasetConfig(kind=kind, seed=7, test_fraction=0.2))
    b = make_dataset(DatasetConfig(kind=kind, seed=7, test_fraction=0.2))
    c = make_dataset(DatasetConfig(kind=kind, seed=8, test_fraction=0.2))
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert np.array_equal(a.x_test, b.x_test)
    assert not np.allclose(a.x_train, c.x_train)


@pytest.mark.parametrize("kind", KINDS)
def test_generation_leaves_global_random_state_alone(kind) -> None:
    np.random.seed(5)
    expected = np.random.rand()
    np.random.seed(5)
    make_dataset(DatasetConfig(kind=kind, test_fraction=0.3))
    assert np.random.rand() == expected


@pytest.mark.parametrize(("fraction", "n_test"), [(0.0, 0), (0.25, 50), (0.5, 100), (0.9, 180)])
def test_split_sizes_and_partition(fraction, n_test) -> None:
    whole = make_dataset(DatasetConfig(n_samples=200))
    data = make_dataset(DatasetConfig(n_samples=200, test_fraction=fraction))
    assert len(data.y_test) == n_test and len(data.y_train) == 200 - n_test
    # The split only partitions the same points: together they are the unsplit set.
    joined = np.concatenate([data.x_train, data.x_test])
    order = np.lexsort(joined.T)
    assert np.array_equal(joined[order], whole.x_train[np.lexsort(whole.x_train.T)])


def test_noise_changes_spread_not_labels() -> None:
    calm = make_dataset(DatasetConfig(kind="xor", noise=0.0))
    noisy = make_dataset(DatasetConfig(kind="xor", noise=0.5))
    assert np.array_equal(calm.y_train, noisy.y_train)
    assert np.abs(calm.x_train).max() <= 1.0 < np.abs(noisy.x_train).max()


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"n_samples": 1}, "n_samples"),
        ({"n_samples": 5001}, "n_samples"),
        ({"noise": -0.1}, "noise"),
        ({"kind": "swirl"}, "kind"),
        ({"test_fraction": 0.95}, "test_fraction"),
        ({"n_classes": 9}, "n_classes"),
    ],
)
def test_out_of_range_input_names_the_parameter(fields, name) -> None:
    # The schema checks every range once (make_dataset trusts a DatasetConfig).
    with pytest.raises(ValidationError) as exc_info:
        DatasetConfig(**fields)
    assert exc_info.value.errors()[0]["loc"] == (name,)


def test_what_only_the_points_can_tell_is_a_value_error_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"dataset\.test_fraction"):
        make_dataset(DatasetConfig(n_samples=2, test_fraction=0.5))
    with pytest.raises(ValueError, match=r"dataset\.n_samples \(3\).*dataset\.n_classes"):
        make_dataset(DatasetConfig(kind="blobs", n_samples=3, n_classes=4))


@pytest.mark.parametrize("kind", KINDS)
def test_negative_zero_noise_is_zero_noise(kind) -> None:
    # -0.0 passes the schema's "≥ 0"; NumPy's normal() would refuse it as a negative scale.
    a = make_dataset(DatasetConfig(kind=kind, noise=-0.0))
    b = make_dataset(DatasetConfig(kind=kind, noise=0.0))
    assert np.array_equal(a.x_train, b.x_train)


def test_a_kind_with_its_own_default_gets_it_only_when_the_field_is_not_given() -> None:
    from boundarylab.engine.config import KIND_DEFAULTS, DatasetConfig, RunConfig

    assert DatasetConfig(kind="spiral").noise == KIND_DEFAULTS["spiral"]["noise"] != 0.2
    assert DatasetConfig(kind="spiral", noise=0.3).noise == 0.3
    assert RunConfig.model_validate({"dataset": {"kind": "spiral"}}).dataset.noise == 0.05
    assert DatasetConfig().noise == 0.2  # the article's moons are untouched
    schema = RunConfig.model_json_schema()["$defs"]["DatasetConfig"]
    assert schema["x-kind-defaults"] == KIND_DEFAULTS
    assert schema["properties"]["n_classes"]["x-applies-when"] == {"kind": ["blobs"]}
