"""The exported script (engine/script_export.py) reproduces the run it was exported from."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from boundarylab.engine.config import RunConfig
from boundarylab.engine.script_export import NotExpressible, run_script
from boundarylab.engine.training import Trainer

LINE = re.compile(r"^iteration (\d+) loss (\S+)$")


def engine_history(config: RunConfig) -> tuple[dict[int, float], float, float | None]:
    """Loss at each report point, then final train and test accuracy, from the engine."""
    trainer, every = Trainer(config), config.training.report_every
    losses = {0: trainer.report().loss}
    while not trainer.done:
        trainer.advance(every - trainer.iteration % every)
        losses[trainer.iteration] = trainer.report().loss
    final = trainer.report()
    return losses, final.train_accuracy, final.test_accuracy


def script_output(config: RunConfig, tmp_path: Path) -> tuple[dict[int, float], dict[str, float]]:
    path = tmp_path / "run.py"
    path.write_text(run_script(config))
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                         timeout=600, check=True, cwd=tmp_path).stdout  # fmt: skip
    losses, finals = {}, {}
    for line in out.splitlines():
        if match := LINE.match(line):
            losses[int(match[1])] = float(match[2])
        elif line.startswith(("train accuracy", "test accuracy", "test loss")):
            name, value = line.rsplit(" ", 1)
            finals[name] = float(value)
    return losses, finals


def assert_reproduces(config: RunConfig, tmp_path: Path, up_to: int) -> None:
    expected, train_acc, test_acc = engine_history(config)
    losses, finals = script_output(config, tmp_path)
    assert sorted(losses) == sorted(expected)
    for k in sorted(expected):
        if k <= up_to:
            assert losses[k] == pytest.approx(expected[k], rel=1e-9, abs=0), k
    assert finals["train accuracy"] == train_acc
    if test_acc is not None:
        assert finals["test accuracy"] == test_acc


def test_default_config_script_prints_the_runs_losses(tmp_path: Path) -> None:
    assert_reproduces(RunConfig(training={"report_every": 100}), tmp_path, up_to=500)


def test_deep_relu_script_with_features_momentum_and_minibatches(tmp_path: Path) -> None:
    config = RunConfig(
        dataset={"test_fraction": 0.3},
        model={"hidden_sizes": [8, 8], "activation": "relu",
               "features": ["x1", "x2", "x1_sq", "x1_x2"]},
        training={"optimizer": "momentum", "learning_rate": 0.001, "iterations": 3000,
                  "report_every": 100, "batch_size": 50},
    )  # fmt: skip
    assert_reproduces(config, tmp_path, up_to=500)


@pytest.mark.parametrize(
    "sections",
    [
        {"dataset": {"kind": "spiral"}, "model": {"activation": "sigmoid"},
         "training": {"optimizer": "adam", "regularization": "l1", "iterations": 700}},
        {"dataset": {"kind": "blobs", "n_classes": 4, "test_fraction": 0.2},
         "model": {"loss": "squared_error", "hidden_sizes": [], "features": ["x1", "x2_sq"]},
         "training": {"regularization": "none", "iterations": 700}},
        {"dataset": {"kind": "xor"}, "model": {"activation": "linear", "hidden_sizes": [4]},
         "training": {"iterations": 700}},
        {"dataset": {"kind": "circles"}, "training": {"iterations": 700}},
        {"dataset": {"kind": "gaussian"}, "training": {"iterations": 700}},
    ],
)  # fmt: skip
def test_other_settings_reproduce_too(sections: dict, tmp_path: Path) -> None:
    config = RunConfig.model_validate(
        {**sections, "training": {**sections["training"], "report_every": 100}}
    )
    assert_reproduces(config, tmp_path, up_to=700)


def test_script_imports_only_numpy_and_sklearn() -> None:
    config = RunConfig(dataset={"kind": "moons"}, training={"optimizer": "adam"})
    tree = ast.parse(run_script(config))
    modules = {alias.name.split(".")[0] for node in ast.walk(tree)
               if isinstance(node, ast.Import) for alias in node.names}  # fmt: skip
    modules |= {node.module.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module}  # fmt: skip
    assert modules <= {"numpy", "sklearn"}


def test_script_reads_like_the_article() -> None:
    text = run_script(RunConfig())
    for phrase in ("def build_model", "def calculate_loss", "z1 = X_batch.dot(W1) + b1",
                   "a1 = np.tanh(z1)", "delta3 = probs - Y_batch", "dW2 = (a1.T).dot(delta3)",
                   "W1 += -epsilon * dW1", "np.random.seed(seed)"):  # fmt: skip
        assert phrase in text


def test_unknown_dataset_kind_is_not_expressible() -> None:
    config = RunConfig().model_copy(update={"dataset": RunConfig().dataset.model_copy(
        update={"kind": "made_up"})})  # fmt: skip
    with pytest.raises(NotExpressible, match=r"dataset\.kind"):
        run_script(config)
