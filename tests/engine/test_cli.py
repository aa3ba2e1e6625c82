"""The command line: article-style text, JSON lines, --compare, and usage errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from boundarylab.cli import main


def test_text_output_is_the_articles(capsys) -> None:
    # Stops at 1000: past ~1300 steps the default run amplifies rounding so much that the
    # digits depend on the CPU's BLAS kernels (an AMD and an Intel box print other numbers).
    assert main(["train", "--iterations", "1000"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "Loss after iteration 0: 0.576627",
        "Loss after iteration 1000: 0.065209",
        "Train accuracy: 0.9833",
    ]


def test_jsonl_has_full_precision_reports_and_a_summary(capsys) -> None:
    argv = ["train", "--iterations", "250", "--report-every", "100", "--test-fraction", "0.2"]
    argv += ["--format", "jsonl", "--hidden", "8,4", "--optimizer", "adam", "--batch-size", "64"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["iteration"] for r in rows] == [0, 100, 200, 250, 250]
    assert rows[-1]["type"] == "summary" and rows[-1]["status"] == "completed"
    assert all(math.isfinite(r["loss"]) and "test_accuracy" in r for r in rows)
    assert len(repr(rows[1]["loss"])) > 10  # not rounded to the text format's 6 places


def test_no_hidden_layer_is_the_perceptron(capsys) -> None:
    assert main(["train", "--hidden", "", "--iterations", "500", "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # A straight line cannot separate the moons as well as the hidden layer does.
    assert 0.75 < rows[-1]["train_accuracy"] < 0.95


def test_divergence_exits_1_with_the_message(capsys) -> None:
    assert main(["train", "--learning-rate", "10"]) == 1
    captured = capsys.readouterr()
    assert "learning_rate" in captured.err and "step" in captured.err
    assert "Traceback" not in captured.err


def test_compare_prints_a_row_per_size(capsys) -> None:
    argv = ["train", "--compare", "1,3,20", "--iterations", "300", "--test-fraction", "0.3"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["hidden", "loss", "train_acc", "test_acc", "seconds"]
    assert [line.split()[0] for line in out[1:4]] == ["1", "3", "20"]
    assert out[-1].startswith("total:")


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["--learning-rate", "-1"], "training.learning_rate"),
        (["--samples", "1"], "dataset.n_samples"),
        (["--hidden", "3,0"], "model.hidden_sizes"),
        (["--hidden", "a,b"], "--hidden"),
        (["--activation", "swish"], "--activation"),
        (["--samples", "4", "--test-fraction", "0.9"], "dataset.test_fraction"),
        (["--compare", "2,2"], "--compare"),
        (["--iterations", "lots"], "--iterations"),
    ],
)
def test_bad_arguments_are_usage_errors(capsys, argv, field) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: boundarylab train") and field in err
    assert "Traceback" not in err


def test_console_entry_point_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "boundarylab.cli", "train", "--iterations", "10", "--noise", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--noise" in result.stderr
    assert "Traceback" not in result.stderr
