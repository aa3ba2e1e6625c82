"""RunStepper: the non-blocking per-run state machine a worker interleaves with others."""

from __future__ import annotations

import math

import numpy as np

from boundarylab.engine.events import BoundaryFrame, Progress, StatusChanged
from boundarylab.engine.runloop import RunLoop, RunStepper


def _drive(steppers: list[RunStepper]) -> None:
    """Round-robin ticks over every stepper until all have ended (no pacing here)."""
    for stepper in steppers:
        stepper.start()
    while any(s.due_in() is not None for s in steppers):
        for stepper in steppers:
            if stepper.due_in() is not None:
                stepper.tick()


def test_interleaved_runs_are_bit_identical_to_a_run_alone(make_config) -> None:
    configs = [make_config(training={"iterations": 600, "seed": seed}) for seed in range(5)]
    alone: list[list[object]] = []
    for config in configs:
        events: list[object] = []
        assert RunLoop(config, events.append, lambda _: None).run() == "completed"
        alone.append([e for e in events if isinstance(e, Progress)])
    together: list[list[object]] = [[] for _ in configs]
    steppers = [RunStepper(c, out.append) for c, out in zip(configs, together, strict=True)]
    _drive(steppers)
    for stepper, events, reference in zip(steppers, together, alone, strict=True):
        assert stepper.final == "completed"
        progress = [e for e in events if isinstance(e, Progress)]
        # Same reports at the same steps, to the last bit (dataclass equality on floats).
        assert progress == reference
    weights = [s.trainer.net.theta.copy() for s in steppers if s.trainer is not None]
    again = RunStepper(configs[2], lambda _: None)
    _drive([again])
    assert again.trainer is not None and np.array_equal(again.trainer.net.theta, weights[2])


def test_a_big_step_is_trained_over_ticks_and_can_be_cancelled(make_config) -> None:
    config = make_config(training={"iterations": 200_000, "report_every": 200_000})
    events: list[object] = []
    stepper = RunStepper(config, events.append)
    stepper.start()
    stepper.command("pause")
    stepper.command("step")  # 200 000 steps: far more than one tick may train
    assert stepper.trainer is not None
    assert 0 < stepper.trainer.iteration < 200_000
    assert stepper.due_in() == 0.0  # the step goes on at the next tick
    stepper.tick()
    stepper.command("cancel")
    assert stepper.final == "cancelled" and stepper.due_in() is None
    assert isinstance(events[-1], StatusChanged) and events[-1].status == "cancelled"


def test_paused_runs_are_not_due(make_config) -> None:
    stepper = RunStepper(make_config(training={"iterations": 100}), lambda _: None)
    stepper.start()
    stepper.command("pause")
    assert stepper.due_in() == math.inf


def test_no_frames_while_unwanted_but_always_the_first_and_last(make_config) -> None:
    frames: list[int] = []
    config = make_config(training={"iterations": 3000, "report_every": 10},
                         view={"max_fps": 60})  # fmt: skip
    clock = iter(range(10**7))  # every look at the clock is a second later: frames always due
    stepper = RunStepper(config, lambda e: isinstance(e, BoundaryFrame) and
                         frames.append(e.iteration), clock=lambda: float(next(clock)))  # fmt: skip
    stepper.frames_wanted = False
    _drive([stepper])
    assert frames == [0, 3000]


def test_steps_asked_for_during_a_step_each_take_report_every(make_config) -> None:
    config = make_config(training={"iterations": 4_000, "report_every": 1_000})
    reports: list[int] = []
    stepper = RunStepper(config, lambda e: isinstance(e, Progress) and reports.append(e.iteration))
    stepper.start()
    stepper.command("pause")
    for _ in range(3):
        stepper.command("step")
    while stepper.due_in() == 0.0:
        stepper.tick()
    assert reports == [0, 1_000, 2_000, 3_000]


def test_a_paced_run_behind_its_pace_makes_no_more_frames_than_on_pace(make_config) -> None:
    """Its worker overloaded, a paced run's ticks come late: it still makes at most one
    frame per the steps its pace gives a frame (2000 steps/s at 20 frames/s: 100), not one
    per wall-clock frame interval, so a slowed run does not cost more per step."""
    config = make_config(training={"iterations": 2000, "steps_per_second": 2000,
                                   "report_every": 20}, view={"max_fps": 20})  # fmt: skip
    now = [0.0]
    events: list[object] = []
    stepper = RunStepper(config, events.append, clock=lambda: now[0])
    stepper.start()
    while stepper.due_in() is not None:
        now[0] += 1.0  # every tick a second late: far behind the pace
        stepper.tick()
    frames = [e for e in events if isinstance(e, BoundaryFrame)]
    assert stepper.final == "completed"
    assert len(frames) <= 2000 // 100 + 2  # the first, one per 100 steps, the last
    assert len(frames) >= 2000 // 200  # yet a viewer still sees it move
