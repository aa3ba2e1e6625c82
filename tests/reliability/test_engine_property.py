"""Engine property: any valid config trains to `completed` with finite numbers, or ends
`diverged` with a message; never an exception, never NaN/Infinity on the wire.

Hypothesis draws RunConfigs across every kind, activation, loss and optimiser, learning rates
from timid to absurd (so divergence really happens), tiny to mid-size data; each run is a
RunLoop exactly as a worker drives it, with every emitted message checked as the browser
would parse it.
"""

from __future__ import annotations

import base64
from typing import Any, get_args

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app_client import strict_loads
from boundarylab.engine.config import Activation, DatasetKind, LossName, OptimizerName, RunConfig
from boundarylab.engine.datasets import make_dataset
from boundarylab.engine.events import RunEvent
from boundarylab.engine.runloop import RunLoop
from boundarylab.server.messages import dumps, event_message


@st.composite
def run_configs(draw: st.DrawFn) -> RunConfig:
    n_samples = draw(st.integers(4, 200))
    layers = draw(st.lists(st.integers(1, 16), max_size=3))
    dataset = {
        "kind": draw(st.sampled_from(get_args(DatasetKind))),
        "n_samples": n_samples,
        "noise": draw(st.floats(0.0, 2.0)),
        "seed": draw(st.integers(0, 2**32 - 1)),
        "test_fraction": draw(st.sampled_from([0.0, 0.0, 0.2, 0.5])),
        "n_classes": draw(st.integers(2, 5)),
    }
    if dataset["kind"] == "custom":
        # Own points anywhere in the allowed square, at most 5 classes, each class used.
        k = dataset.pop("n_classes")
        coordinate = st.floats(-1e4, 1e4, allow_nan=False)
        xy = draw(
            st.lists(st.tuples(coordinate, coordinate), min_size=n_samples, max_size=n_samples)
        )
        dataset["points"] = [[x, y, i % k] for i, (x, y) in enumerate(xy)]
    model = {
        "hidden_sizes": layers,
        "activation": draw(st.sampled_from(get_args(Activation))),
        "loss": draw(st.sampled_from(get_args(LossName))),
    }
    training = {
        "learning_rate": draw(st.floats(1e-4, 10.0)),
        "reg_lambda": draw(st.sampled_from([0.0, 0.01, 1.0, 10.0])),
        "iterations": draw(st.integers(1, 60)),
        "optimizer": draw(st.sampled_from(get_args(OptimizerName))),
        "batch_size": draw(st.none() | st.integers(1, n_samples)),  # custom: n_samples points
        "seed": draw(st.integers(0, 2**32 - 1)),
        "report_every": draw(st.integers(1, 30)),
    }
    view = {"resolution": draw(st.integers(20, 40)), "max_fps": 60.0}
    return RunConfig.model_validate(
        {"dataset": dataset, "model": model, "training": training, "view": view}
    )


def _wire(event: RunEvent) -> dict[str, Any]:
    """The event's wire message, parsed back as strictly as a browser does."""
    return strict_loads(dumps(event_message(event)))


def _check_frame(frame: dict[str, Any], n_classes: int) -> None:
    grid = frame["grid"]
    cells = grid["nx"] * grid["ny"]
    raw = base64.b64decode(frame["data"])
    assert len(raw) == (cells if n_classes == 2 else 2 * cells)


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(run_configs())
def test_a_valid_config_completes_finite_or_diverges_with_a_message(config: RunConfig) -> None:
    try:
        data = make_dataset(config.dataset)
    except ValueError:
        assume(False)  # e.g. a split that empties a class: the API answers 422 (tested there)
        raise
    messages: list[dict[str, Any]] = []
    status = RunLoop(config, lambda m: messages.append(_wire(m)), lambda _t: None).run()

    assert status in ("completed", "diverged"), messages[-1]
    final = messages[-1]
    assert final == {**final, "type": "status", "status": status}
    progress = [m for m in messages if m["type"] == "progress"]
    frames = [m for m in messages if m["type"] == "boundary"]
    assert progress and frames, "a viewer must see at least the k=0 report and frame"
    for frame in frames:
        _check_frame(frame, data.n_classes)
    if status == "diverged":
        assert isinstance(final.get("message"), str) and len(final["message"]) > 10
        return
    last = progress[-1]
    assert last["iteration"] == config.training.iterations
    assert frames[-1]["iteration"] == config.training.iterations
    numbers = [last["loss"], last["train_accuracy"]]
    if len(data.y_test):
        numbers += [last["test_loss"], last["test_accuracy"]]
    assert all(isinstance(x, float | int) for x in numbers), last  # finite: never None
