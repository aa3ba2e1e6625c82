"""Sweeps (engine/sweep.py and `train --sweep`): validated against the schema, and every cell
bit for bit the single run of its config."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from boundarylab.cli import main
from boundarylab.engine.config import Limits, RunConfig
from boundarylab.engine.sweep import sweep, train_cell, validate_sweep

BASE = {"training": {"iterations": 300}, "dataset": {"test_fraction": 0.3}}


def errors_of(data: dict, limits: Limits | None = None) -> list[tuple[tuple, str]]:
    with pytest.raises(ValidationError) as info:
        validate_sweep(data, limits)
    return [(err["loc"], err["msg"]) for err in info.value.errors()]


def test_cells_are_the_base_with_the_field_replaced() -> None:
    plan = validate_sweep({"base": BASE, "field": "training.reg_lambda", "values": [0, 0.1]})
    cells = plan.cells()
    assert [c.training.reg_lambda for c in cells] == [0.0, 0.1]
    expected = RunConfig.model_validate(BASE).model_dump()
    expected["training"]["reg_lambda"] = 0.1
    assert cells[1].model_dump() == expected


def test_a_single_hidden_size_means_one_layer_of_it() -> None:
    plan = validate_sweep({"field": "model.hidden_sizes", "values": [3, [8, 8], []]})
    assert [c.model.hidden_sizes for c in plan.cells()] == [[3], [8, 8], []]


def test_unknown_field_is_an_error_on_field() -> None:
    [(loc, msg)] = errors_of({"field": "training.lambda", "values": [1]})
    assert loc == ("field",) and "training.lambda" in msg and "training.reg_lambda" in msg


def test_each_bad_value_is_an_error_naming_the_field_and_the_value() -> None:
    found = errors_of({"field": "training.reg_lambda", "values": [0.1, -1, "x", 0.1]})
    assert [loc for loc, _ in found] == [("values", 1), ("values", 2), ("values", 3)]
    assert "training.reg_lambda = -1" in found[0][1] and "greater than or equal" in found[0][1]
    assert '"x"' in found[1][1] and "given twice" in found[2][1]


def test_values_are_checked_with_the_rest_of_the_config_and_the_limits() -> None:
    [(loc, msg)] = errors_of({"field": "training.batch_size", "values": [500]})
    assert loc == ("values", 0) and "dataset.n_samples" in msg
    limits = Limits(max_iterations=1000)
    [(loc, msg)] = errors_of(
        {"base": BASE, "field": "training.iterations", "values": [10, 5000]}, limits
    )
    assert loc == ("values", 1) and "1000" in msg
    assert errors_of({"field": "dataset.noise", "values": []})[0][0] == ("values",)


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("dataset.noise", [0.1, 0.3]),
        ("dataset.seed", [0, 7]),
        ("model.hidden_sizes", [[3], [8, 8]]),
        ("model.activation", ["relu", "sigmoid"]),
        ("training.reg_lambda", [0.0, 0.1]),
        ("training.optimizer", ["gd", "adam"]),
        ("training.batch_size", [None, 40]),
        ("model.hidden_sizes", [1, 4]),  # the fused comparison
    ],
)
def test_every_cell_is_bit_for_bit_its_single_run(field: str, values: list) -> None:
    plan = validate_sweep({"base": BASE, "field": field, "values": values})
    rows = sweep(plan, processes=2 if field == "dataset.seed" else 1)
    for row, cell in zip(rows, plan.cells(), strict=True):
        alone, _, message = train_cell(cell)
        assert (row["loss"], row["train_accuracy"]) == (alone.loss, alone.train_accuracy)
        assert (row["test_loss"], row["test_accuracy"]) == (alone.test_loss, alone.test_accuracy)
        assert row["message"] == message and row["iteration"] == 300


def test_cli_sweep_prints_a_row_per_value_equal_to_single_runs(capsys) -> None:
    common = ["--iterations", "300", "--test-fraction", "0.3", "--format", "jsonl"]
    assert main(["train", "--sweep", "training.reg_lambda=0,0.1", "--processes", "1",
                 *common]) == 0  # fmt: skip
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["type"], r["field"], r["value"]) for r in rows] == [
        ("sweep", "training.reg_lambda", 0.0), ("sweep", "training.reg_lambda", 0.1)]  # fmt: skip
    for row in rows:
        assert main(["train", "--reg-lambda", str(row["value"]), *common]) == 0
        summary = json.loads(capsys.readouterr().out.splitlines()[-1])
        assert (row["loss"], row["test_accuracy"]) == (summary["loss"], summary["test_accuracy"])


def test_cli_sweep_text_table_and_list_values(capsys) -> None:
    argv = ["train", "--iterations", "200", "--processes", "1"]
    assert main([*argv, "--sweep", "model.hidden_sizes=3;8,8"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["model.hidden_sizes", "loss", "train_acc"]
    assert [line.split()[0] for line in out[1:3]] == ["3", "8,8"]
    assert main([*argv, "--sweep", "training.batch_size=none,50"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:3]] == ["none", "50"]


@pytest.mark.parametrize(
    ("sweep_arg", "expected"),
    [
        ("training.reg_lambda=0,-1", "training.reg_lambda = -1.0 is not valid"),
        ("training.nope=1", "'training.nope' is not a field"),
        ("training.reg_lambda=a", "expected a number, got 'a'"),
        ("training.reg_lambda", "expected FIELD=V1,V2"),
        ("model.activation=tanh,tanh", "given twice"),
    ],
)
def test_cli_sweep_errors_are_usage_errors(sweep_arg: str, expected: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", "--sweep", sweep_arg])
    assert info.value.code == 2 and expected in capsys.readouterr().err


def test_cli_compare_and_sweep_together_is_an_error(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--compare", "1,2", "--sweep", "training.reg_lambda=0,1"])
    assert "--compare and --sweep" in capsys.readouterr().err
