"""The command line: article-style text, JSON lines, --compare, flags from the schema, usage
errors naming the flag typed, and a reader that goes away."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from boundarylab.cli import build_parser, main
from boundarylab.cli.flags import SHORT_NAMES, schema_flags
from boundarylab.engine.config import RunConfig


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


def test_divergence_exits_1_with_the_message_naming_flags(capsys) -> None:
    assert main(["train", "--learning-rate", "10"]) == 1
    captured = capsys.readouterr()
    assert "lower --learning-rate (now 10)" in captured.err and "step" in captured.err
    assert "--reg-lambda" in captured.err and "Traceback" not in captured.err


def test_compare_prints_a_row_per_size(capsys) -> None:
    argv = ["train", "--compare", "1,3,20", "--iterations", "300", "--test-fraction", "0.3"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["hidden", "loss", "train_acc", "test_acc", "seconds"]
    assert [line.split()[0] for line in out[1:4]] == ["1", "3", "20"]
    assert out[-1].startswith("total:")


def test_compare_rows_are_what_single_runs_print(capsys) -> None:
    common = ["--iterations", "400", "--features", "x1,x2,x1_x2", "--format", "jsonl"]
    assert main(["train", "--compare", "2,5", "--processes", "2", *common]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for row in rows:
        assert main(["train", "--hidden", str(row["hidden_size"]), *common]) == 0
        summary = json.loads(capsys.readouterr().out.splitlines()[-1])
        assert (row["loss"], row["train_accuracy"]) == (summary["loss"], summary["train_accuracy"])


def test_every_run_field_but_the_pacing_ones_is_a_flag_with_the_schemas_words() -> None:
    flags = {flag.path: flag for flag in schema_flags()}
    for section, section_info in RunConfig.model_fields.items():
        for name, info in section_info.annotation.model_fields.items():  # type: ignore[union-attr]
            path = (section, name)
            # Own points are the page's and the API's (clicked, uploaded or posted).
            if section == "view" or name in ("steps_per_second", "points"):
                assert path not in flags
                continue
            flag = flags[path]
            assert flag.names == (SHORT_NAMES[path], f"--{section}.{name}")
            assert info.description.rstrip(".") in flag.help
    assert flags[("training", "optimizer")].choices == ("gd", "momentum", "adam")
    assert "Default: 0.01." in flags[("training", "learning_rate")].help
    assert "Default here: 1000 (the API's: 100)" in flags[("training", "report_every")].help


def test_help_lists_every_flag_with_its_default(capsys) -> None:
    parser, _ = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for short in SHORT_NAMES.values():
        assert short in text
    assert "--dataset.n_samples N" in text and "Default: 300." in text
    assert "--features NAME,…" in text and "Default: x1,x2." in text


def test_a_path_flag_and_a_short_flag_set_the_same_field(capsys) -> None:
    argv = ["train", "--iterations", "20", "--format", "jsonl"]
    assert main([*argv, "--training.learning_rate", "0.02", "--regularization", "l1"]) == 0
    by_path = capsys.readouterr().out
    assert main([*argv, "--learning-rate", "0.02", "--training.regularization", "l1"]) == 0
    assert capsys.readouterr().out.splitlines()[:-1] == by_path.splitlines()[:-1]


def test_preset_and_features(capsys) -> None:
    assert main(["train", "--preset", "circles-squared-features", "--iterations", "2000"]) == 0
    assert float(capsys.readouterr().out.splitlines()[-1].split()[-1]) >= 0.95
    assert main(["train", "--preset", "circles-squared-features", "--features", "x1,x2",
                 "--iterations", "2000"]) == 0  # fmt: skip
    assert float(capsys.readouterr().out.splitlines()[-1].split()[-1]) <= 0.75


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--learning-rate", "-1"], "--learning-rate: Input should be greater than 0"),
        (["--training.learning_rate", "0"], "--training.learning_rate: Input should be greater"),
        (["--samples", "1"], "--samples: Input should be greater than or equal to 2"),
        (["--hidden", "3,0"], "--hidden: 0: Input should be greater than or equal to 1"),
        (["--hidden", "a,b"], "--hidden: expected an integer, got 'a'"),
        (["--activation", "swish"], "--activation: invalid choice 'swish'"),
        (["--features", "x1,x3"], "--features: invalid choice 'x3'"),
        (["--features", "x1,x1"], "--features: Each feature may appear once"),
        (["--features", "none"], "--features: List should have at least 1 item"),
        (["--samples", "4", "--test-fraction", "0.9"], "--test-fraction 0.9 leaves class"),
        (["--batch-size", "400"], "--batch-size: Input should be less than or equal to --samples"),
        (["--iterations", "200000", "--report-every", "5"], "--report-every: Input should be"),
        (["--compare", "2,2"], "--compare"),
        (["--iterations", "lots"], "--iterations: expected an integer, got 'lots'"),
        (["--iterations", "true"], "--iterations: expected an integer, got 'true'"),
    ],
)
def test_bad_arguments_are_usage_errors_naming_the_flag_typed(capsys, argv, message) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: boundarylab train") and message in err
    assert "Traceback" not in err


def test_console_entry_point_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "boundarylab.cli", "train", "--iterations", "10", "--noise", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--noise: expected a number, got 'x'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    # `boundarylab train --format jsonl | head -3`: the reader takes 3 lines and leaves.
    code = "from boundarylab.cli import main; raise SystemExit(main())"
    argv = ["train", "--format", "jsonl", "--iterations", "200000", "--report-every", "10"]
    train = subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)  # fmt: skip
    assert train.stdout is not None and train.stderr is not None
    lines = [train.stdout.readline() for _ in range(3)]
    train.stdout.close()  # the reader goes away
    try:
        status = train.wait(timeout=120)
    finally:
        train.kill()
    err = train.stderr.read().decode()
    train.stderr.close()
    assert all(json.loads(line)["type"] == "progress" for line in lines)
    assert status in (0, 141) and err == ""
