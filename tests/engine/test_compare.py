"""Training hidden sizes side by side: the fused network trains each model as a separate run."""

from __future__ import annotations

import numpy as np
import pytest

from boundarylab.engine.compare import FusedComparison, compare, split_groups
from boundarylab.engine.training import Trainer


def _sections(sections: dict, steps: int, hidden: int | None = None) -> dict:
    """A copy of `sections` with the step count (and a hidden size) filled in."""
    out = {key: dict(value) for key, value in sections.items()}
    out.setdefault("training", {})["iterations"] = steps
    if hidden is not None:
        out.setdefault("model", {})["hidden_sizes"] = [hidden]
    return out


def _separate(make_config, sections: dict, hidden: int, steps: int) -> Trainer:
    trainer = Trainer(make_config(**_sections(sections, steps, hidden)))
    trainer.advance(steps)
    return trainer


@pytest.mark.parametrize(
    "sections",
    [
        {},
        {"dataset": {"test_fraction": 0.3}, "training": {"optimizer": "adam", "batch_size": 50}},
        {"model": {"activation": "relu", "loss": "squared_error"}},
        {"dataset": {"kind": "blobs", "n_classes": 3}, "training": {"optimizer": "momentum"}},
    ],
)
def test_each_fused_model_trains_like_a_separate_run(make_config, sections) -> None:
    steps = 200
    fused = FusedComparison(make_config(**_sections(sections, steps)), [1, 2, 5, 20])
    assert fused.advance(10**6) == steps and fused.done
    for size, report in zip(fused.hidden_sizes, fused.reports(), strict=True):
        alone = _separate(make_config, sections, size, steps).report()
        assert report.iteration == alone.iteration
        for key in ("loss", "train_accuracy", "test_loss", "test_accuracy"):
            expected = getattr(alone, key)
            got = getattr(report, key)
            assert got is None if expected is None else got == pytest.approx(expected, rel=1e-9)


def test_fused_boundaries_match_separate_runs(make_config) -> None:
    sections = {"view": {"resolution": 30}}
    fused = FusedComparison(make_config(**_sections(sections, 100)), [3, 50])
    fused.advance(100)
    for size, frame in zip(fused.hidden_sizes, fused.boundaries(), strict=True):
        alone = _separate(make_config, sections, size, 100).boundary()
        assert frame.grid == alone.grid and frame.n_classes == alone.n_classes
        a = np.frombuffer(frame.cells, dtype=np.uint8).astype(int)
        b = np.frombuffer(alone.cells, dtype=np.uint8).astype(int)
        assert np.abs(a - b).max() <= 1  # equal up to rounding at a .5 boundary


@pytest.mark.parametrize("processes", [1, 2])
def test_compare_returns_one_row_per_size_in_order(make_config, processes) -> None:
    sections = {"dataset": {"test_fraction": 0.25}}
    rows = compare(make_config(**_sections(sections, 150)), [20, 1, 3], processes=processes)
    assert [r["hidden_size"] for r in rows] == [20, 1, 3]
    for row in rows:
        assert row["iteration"] == 150 and row["message"] is None and row["seconds"] > 0
        alone = _separate(make_config, sections, row["hidden_size"], 150).report()
        assert row["loss"] == pytest.approx(alone.loss, rel=1e-9)
        assert row["test_accuracy"] == alone.test_accuracy


def test_a_diverging_size_does_not_spoil_the_others(make_config) -> None:
    # ReLU units and a large step: the 50-unit model blows up, the 1-unit one does not.
    sections = {"model": {"activation": "relu"}, "training": {"learning_rate": 0.05}}
    rows = compare(make_config(**_sections(sections, 300)), [1, 50])
    by_size = {row["hidden_size"]: row for row in rows}
    assert by_size[50]["message"] and "learning_rate" in by_size[50]["message"]
    assert by_size[1]["message"] is None and np.isfinite(by_size[1]["loss"])


def test_split_groups_balances_cost() -> None:
    groups = split_groups([1, 2, 3, 4, 5, 20, 50], 2)
    assert sorted(h for g in groups for h in g) == [1, 2, 3, 4, 5, 20, 50]
    assert len(groups) == 2 and [50] in groups
    assert split_groups([3], 4) == [[3]]
