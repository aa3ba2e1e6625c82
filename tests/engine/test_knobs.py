"""Knobs that turn while a run trains (knobs.py): the change's schema, and a change applied
mid-run giving, bit for bit, the numbers of a fresh Trainer that applies it at the same step."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from boundarylab.engine.events import KnobsChanged, Progress
from boundarylab.engine.knobs import Retune, RunPatch
from boundarylab.engine.runloop import RunStepper
from boundarylab.engine.tape import Network
from boundarylab.engine.training import Trainer


def errors(body: object) -> list[tuple[tuple, str]]:
    with pytest.raises(ValidationError) as caught:
        RunPatch.model_validate(body)
    return [(e["loc"], e["msg"]) for e in caught.value.errors()]


def test_a_patch_takes_the_three_knobs_with_the_schemas_bounds() -> None:
    patch = RunPatch.model_validate({"training": {"learning_rate": 0.05, "reg_lambda": 0}})
    assert patch.training.retune() == Retune(learning_rate=0.05, reg_lambda=0.0)
    assert errors({"training": {"learning_rate": 0}})[0][0] == ("training", "learning_rate")
    assert errors({"training": {"learning_rate": 10.5}})[0][0] == ("training", "learning_rate")
    assert errors({"training": {"reg_lambda": -1}})[0][0] == ("training", "reg_lambda")
    assert errors({"training": {"steps_per_second": 2e6}})[0][0] == (
        "training",
        "steps_per_second",
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), True, "0.1"])
def test_non_finite_and_non_numbers_are_refused(bad: object) -> None:
    assert errors({"training": {"learning_rate": bad}})[0][0] == ("training", "learning_rate")


def test_other_fields_are_refused_by_name_as_needing_a_new_run() -> None:
    found = errors({"training": {"learning_rate": 0.1, "iterations": 5}, "model": {}})
    assert [loc for loc, _ in found] == [("model",), ("training", "iterations")]
    assert "training.iterations needs a new run" in found[1][1]


def test_an_empty_change_and_a_removed_pace_are_refused() -> None:
    assert errors({"training": {}}) == [
        (("training",), "give at least one of learning_rate, reg_lambda, steps_per_second")
    ]
    assert errors({"training": {"steps_per_second": None}})[0][0] == (
        "training",
        "steps_per_second",
    )
    assert errors({})[0][0] == ("training",)


@pytest.mark.parametrize("regularization", ["l2", "l1"])
def test_a_retuned_tape_steps_as_one_built_with_the_new_values(regularization: str) -> None:
    # The tape binds λ (and L1's ε·λ) when built: a retune must rebuild it, or the old
    # values would go on being used.
    rs = np.random.RandomState(0)
    X, Y = rs.randn(20, 2), np.eye(2)[rs.randint(0, 2, 20)]
    kw = {"seed": 3, "regularization": regularization}
    net = Network([2, 4, 2], reg_lambda=0.01, learning_rate=0.01, **kw)
    net.step(X, Y)
    net.retune(learning_rate=0.03, reg_lambda=0.2)
    fresh = Network([2, 4, 2], reg_lambda=0.2, learning_rate=0.03, **kw)
    fresh.theta[...] = net.theta
    for _ in range(5):
        net.step(X, Y)
        fresh.step(X, Y)
    assert np.array_equal(net.theta, fresh.theta)


def _stepped_with_change(config, at: int, change: Retune) -> tuple[RunStepper, list]:
    """A stepper paused, stepped to `at`, changed, then resumed to the end."""
    events: list[object] = []
    stepper = RunStepper(config, events.append)
    stepper.start()
    stepper.command("pause")
    while stepper.trainer is not None and stepper.trainer.iteration < at:
        stepper.command("step")
        while stepper.due_in() == 0.0:
            stepper.tick()
    stepper.command(change)
    stepper.command("resume")
    while stepper.due_in() is not None:
        stepper.tick()
    return stepper, events


def _fresh_with_change(config, at: int, change: Retune) -> tuple[Trainer, list[Progress]]:
    trainer = Trainer(config)
    every, reports = config.training.report_every, [trainer.report()]
    while not trainer.done:
        if trainer.iteration == at:
            trainer.retune(change)
        trainer.advance(min(every, at - trainer.iteration) if trainer.iteration < at else every)
        if trainer.iteration % every == 0 or trainer.done:
            reports.append(trainer.report())
    return trainer, reports


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
def test_a_change_mid_run_equals_a_fresh_trainer_changed_at_the_same_step(
    make_config, optimizer: str
) -> None:
    lr = 0.002 if optimizer == "adam" else 0.01
    config = make_config(training={"iterations": 600, "report_every": 50,
                                   "optimizer": optimizer, "learning_rate": lr})  # fmt: skip
    change = Retune(learning_rate=lr * 3, reg_lambda=0.05)
    stepper, events = _stepped_with_change(config, 200, change)
    assert stepper.final == "completed"
    changed = [e for e in events if isinstance(e, KnobsChanged)]
    assert changed == [
        KnobsChanged(200, {"learning_rate": lr * 3, "reg_lambda": 0.05},
                     {"learning_rate": lr * 3, "reg_lambda": 0.05, "steps_per_second": None})
    ]  # fmt: skip
    fresh, reports = _fresh_with_change(config, 200, change)
    progress = [e for e in events if isinstance(e, Progress)]
    assert [p.iteration for p in progress] == [p.iteration for p in reports]
    assert progress == reports  # every float, to the last bit
    assert stepper.trainer is not None
    assert np.array_equal(stepper.trainer.net.theta, fresh.net.theta)
    # ... and the change did change the run.
    unchanged = Trainer(config)
    unchanged.advance(600)
    assert not np.array_equal(unchanged.net.theta, fresh.net.theta)
    assert stepper.trainer.export_model()["changes"] == [
        {"iteration": 200, "changed": changed[0].changed, "current": changed[0].current}
    ]


def test_a_change_while_running_lands_at_the_step_it_reports(make_config) -> None:
    config = make_config(training={"iterations": 3000, "report_every": 10, "optimizer": "adam",
                                   "learning_rate": 0.003})  # fmt: skip
    events: list[object] = []
    stepper = RunStepper(config, events.append)
    stepper.start()
    for _ in range(3):
        stepper.tick()
    stepper.command(Retune(learning_rate=0.02))
    while stepper.due_in() is not None:
        stepper.tick()
    [change] = [e for e in events if isinstance(e, KnobsChanged)]
    assert 0 < change.iteration < 3000
    fresh = Trainer(config)
    fresh.advance(change.iteration)
    fresh.retune(Retune(learning_rate=0.02))
    fresh.advance(3000)
    assert stepper.trainer is not None
    assert np.array_equal(stepper.trainer.net.theta, fresh.net.theta)
    last = [e for e in events if isinstance(e, Progress)][-1]
    assert last == fresh.report()


def test_a_new_pace_counts_from_the_change(make_config) -> None:
    now = [0.0]
    config = make_config(training={"iterations": 10_000, "steps_per_second": 100})
    events: list[object] = []
    stepper = RunStepper(config, events.append, clock=lambda: now[0])
    stepper.start()
    now[0] = 1.0
    stepper.tick()  # due: one slice of the 100 steps/s pace
    assert stepper.trainer is not None
    k = stepper.trainer.iteration
    stepper.command(Retune(steps_per_second=10))
    assert stepper.pace == 10 and stepper.trainer.knobs()["steps_per_second"] == 10
    # At 10 steps/s, one slice (max(1, round(10 · 0.05)) = 1 step) is due 0.1 s after it.
    stepper.tick()
    assert stepper.trainer.iteration == k + 1
    assert stepper.due_in() == pytest.approx(0.1)
