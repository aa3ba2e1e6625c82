"""RunLoop: message order, pause/step/resume/cancel, pacing and frame throttling by clock."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import asdict

import pytest

from boundarylab.engine.events import BoundaryFrame, Progress, StatusChanged, UnitsFrame
from boundarylab.engine.runloop import PAUSE_WAIT, RunLoop
from boundarylab.engine.training import Trainer


class FakeClock:
    """Time that moves only when the loop waits (next_command) or when a test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Script:
    """next_command: answers each call from `decide(call_index, timeout)`; sleeps by moving the
    fake clock forward by the timeout when there is no command, plus `tick` per call."""

    def __init__(self, clock: FakeClock, decide: Callable[[int, float], str | None], tick=0.0):
        self.clock, self.decide, self.tick = clock, decide, tick
        self.calls: list[float] = []

    def __call__(self, timeout: float) -> str | None:
        self.calls.append(timeout)
        command = self.decide(len(self.calls) - 1, timeout)
        self.clock.now += self.tick + (0.0 if command else timeout)
        return command


KINDS = {Progress: "progress", BoundaryFrame: "boundary", StatusChanged: "status",
         UnitsFrame: "units"}  # fmt: skip


class Collect(list):
    """emit: keeps each event as a plain dict with its kind under "type", to read easily."""

    def append(self, event: object) -> None:  # type: ignore[override]
        super().append({"type": KINDS[type(event)], **asdict(event)})  # type: ignore[call-overload]


def _events(messages: list[dict]) -> list[tuple]:
    return [(m["type"], m.get("status") or m.get("iteration")) for m in messages]


def test_first_messages_and_a_clean_end(make_config) -> None:
    messages = Collect()
    config = make_config(dataset={"test_fraction": 0.2}, training={"iterations": 250})
    status = RunLoop(config, messages.append, lambda _: None).run()
    assert status == "completed"
    events = _events(messages)
    assert events[:3] == [("status", "running"), ("progress", 0), ("boundary", 0)]
    # The run's last unit view goes out before the end, for a finished run's snapshot.
    assert events[-4:] == [("progress", 250), ("boundary", 250), ("units", 250),
                           ("status", "completed")]  # fmt: skip
    progress = [m["iteration"] for m in messages if m["type"] == "progress"]
    assert progress == [0, 100, 200, 250]  # every report_every, and the last step
    assert messages[-4]["test_accuracy"] is not None


def test_pause_stops_step_advances_report_every_and_resume_finishes(make_config) -> None:
    clock = FakeClock()
    plan = {0: "pause", 4: "step", 6: "step", 7: "pause", 9: "resume"}
    script = Script(clock, lambda i, _: plan.get(i))
    messages = Collect()
    config = make_config(training={"iterations": 100, "report_every": 10})
    loop = RunLoop(config, messages.append, script, clock=clock)
    assert loop.run() == "completed"
    events = _events(messages)
    assert events[:12] == [
        ("status", "running"),
        ("progress", 0),
        ("boundary", 0),
        ("status", "paused"),  # call 0: nothing trained before the pause
        ("progress", 10),  # call 4: one step of report_every, with its frame
        ("boundary", 10),
        ("progress", 20),  # call 6
        ("boundary", 20),
        ("status", "running"),  # call 9 (the pause at call 7 was a repeat: ignored)
        ("progress", 30),
        ("boundary", 30),
        ("progress", 40),
    ]
    # While paused the loop only waited for commands, blocking PAUSE_WAIT each time.
    assert script.calls[1:4] == [PAUSE_WAIT] * 3
    assert events[-1] == ("status", "completed")


def test_step_while_running_is_ignored(make_config) -> None:
    script = Script(FakeClock(), lambda i, _: "step" if i < 3 else None)
    messages = Collect()
    config = make_config(training={"iterations": 30, "report_every": 10})
    assert RunLoop(config, messages.append, script, clock=script.clock).run() == "completed"
    assert [m["iteration"] for m in messages if m["type"] == "progress"] == [0, 10, 20, 30]


def test_step_to_the_end_completes_the_run(make_config) -> None:
    script = Script(FakeClock(), lambda i, _: "pause" if i == 0 else "step")
    messages = Collect()
    config = make_config(training={"iterations": 25, "report_every": 10})
    assert RunLoop(config, messages.append, script, clock=script.clock).run() == "completed"
    assert _events(messages)[-4:] == [("progress", 25), ("boundary", 25), ("units", 25),
                                      ("status", "completed")]  # fmt: skip


def test_cancel_ends_with_a_message(make_config) -> None:
    script = Script(FakeClock(), lambda i, _: "cancel" if i == 2 else None)
    messages = Collect()
    config = make_config(training={"iterations": 1000, "report_every": 10})
    loop = RunLoop(config, messages.append, script, clock=script.clock)
    assert loop.run() == "cancelled" and loop.status == "cancelled"
    last = messages[-1]
    assert last["type"] == "status" and last["status"] == "cancelled" and last["message"]
    assert not any(m.get("status") == "completed" for m in messages)
    assert loop.trainer is not None and loop.trainer.iteration < 1000


def test_divergence_ends_as_diverged_after_a_last_report(make_config) -> None:
    messages = Collect()
    config = make_config(training={"learning_rate": 10.0})
    assert RunLoop(config, messages.append, lambda _: None).run() == "diverged"
    last = messages[-1]
    assert last["status"] == "diverged" and "learning_rate" in last["message"]
    # The report at the step that went bad is sent (the wire format maps its NaN to null).
    assert messages[-3]["type"] == "progress" and not math.isfinite(messages[-3]["loss"])
    assert messages[-2]["type"] == "units"  # finite: unitview.quantise_signed


def test_an_unexpected_error_ends_as_failed(make_config) -> None:
    config = make_config(training={"iterations": 100})
    trainer = Trainer(config)

    def broken(n_steps: int) -> int:
        raise RuntimeError("disk on fire")

    trainer.advance = broken  # type: ignore[method-assign]
    messages = Collect()
    assert RunLoop(config, messages.append, lambda _: None, trainer=trainer).run() == "failed"
    assert messages[-1]["status"] == "failed" and "disk on fire" in messages[-1]["message"]


def test_bad_dataset_split_fails_cleanly(make_config) -> None:
    messages = Collect()
    config = make_config(dataset={"n_samples": 2, "test_fraction": 0.5})
    assert RunLoop(config, messages.append, lambda _: None).run() == "failed"
    assert "test_fraction" in messages[-1]["message"]


def test_frames_are_throttled_by_the_clock_and_the_last_is_always_sent(make_config) -> None:
    clock = FakeClock()
    frames: list[tuple[int, float]] = []

    def emit(event: object) -> None:
        if isinstance(event, BoundaryFrame):
            frames.append((event.iteration, clock.now))

    # Each poll between chunks costs 0.01 s of fake time; at most 10 frames a second.
    script = Script(clock, lambda i, _: None, tick=0.01)
    config = make_config(
        training={"iterations": 2000, "report_every": 10}, view={"max_fps": 10, "resolution": 20}
    )
    assert RunLoop(config, emit, script, clock=clock).run() == "completed"
    times = [t for _, t in frames]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= 0.1 - 1e-9 for gap in gaps[:-1])  # the final frame may come sooner
    assert frames[-1][0] == 2000 and frames[0][0] == 0
    assert len(frames) <= (clock.now - 100.0) * 10 + 2
    assert len(frames) >= 3  # throttled, not silenced


def test_steps_per_second_paces_the_run(make_config) -> None:
    clock = FakeClock()
    script = Script(clock, lambda i, _: None)
    config = make_config(training={"iterations": 60, "report_every": 20, "steps_per_second": 40})
    assert RunLoop(config, lambda _: None, script, clock=clock).run() == "completed"
    # 60 steps at 40 a second: the loop slept about 1.5 s of (fake) time through next_command.
    assert clock.now - 100.0 == pytest.approx(1.5, abs=0.06)
    assert max(script.calls) <= 0.06


def test_costly_frames_take_at_most_a_share_of_the_time(make_config) -> None:
    clock = FakeClock()
    frames: list[int] = []
    script = Script(clock, lambda i, _: None, tick=0.01)
    config = make_config(training={"iterations": 400, "report_every": 10}, view={"max_fps": 20})
    loop = RunLoop(config, lambda e: isinstance(e, BoundaryFrame) and frames.append(e), script,
                   clock=clock)  # fmt: skip
    ticks = iter(range(10**6))
    loop.timer = lambda: 0.5 * next(ticks)  # every timed section "takes" 0.5 s
    assert loop.run() == "completed"
    # 0.5 s frames at a 25% share: one every 2 s of clock, not one every 0.05 s.
    elapsed = clock.now - 100.0
    assert 2 <= len(frames) <= elapsed / 2.0 + 2
