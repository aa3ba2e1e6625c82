"""Expected waits for queued runs from the rate running runs actually make (issue 15,
server/waits.py), and the queue telling them again when the machine's pace moves them."""

from __future__ import annotations

import time
from typing import Any

import pytest

from boundarylab.engine.config import RunConfig
from boundarylab.server.capacity import expected_waits, remaining_seconds
from boundarylab.server.fairqueue import FairQueue
from boundarylab.server.waits import (
    MIN_OBSERVED_S,
    WINDOW_S,
    Progress,
    RateWindow,
    honest_waits,
    slowdown,
)
from boundarylab.server.workerproc import Job

PACE = 100.0
# 1000 steps at 100 steps/s: 10 s on a core of its own (its CPU time is far less).
RUN = RunConfig.model_validate({"training": {"iterations": 1000, "steps_per_second": PACE}})


def _pace_estimate(iterations: list[int], queued: int, slots: int) -> list[float]:
    """The estimate before issue 15's fix: every run keeps its pace."""
    left = [remaining_seconds(RUN, i) for i in iterations]
    return expected_waits(left, [remaining_seconds(RUN, 0)] * queued, slots)


def test_runs_at_half_their_pace_make_the_waits_twice_the_pace_estimate() -> None:
    # Two runs, 4 s in, 200 steps done each: 50 steps/s, half their pace of 100.
    running = [Progress(RUN, 200, rate=50.0), Progress(RUN, 200, rate=50.0)]
    assert slowdown(running) == pytest.approx(2.0)
    waits = honest_waits(running, [RUN] * 3, slots=2)
    before = _pace_estimate([200, 200], 3, 2)
    assert before == [8.0, 8.0, 18.0]  # 800 steps at 100/s; then a run of 10 s
    assert waits == pytest.approx([16.0, 16.0, 36.0])  # 800 at 50/s; then runs of 20 s
    assert waits == pytest.approx([2 * w for w in before])


def test_on_pace_or_unmeasured_the_waits_are_the_pace_estimate() -> None:
    """An idle machine (runs keep their pace) and a queue whose runs just started (nothing
    measured yet) are told what they were told before."""
    on_pace = [Progress(RUN, 300, rate=PACE), Progress(RUN, 600, rate=PACE)]
    assert honest_waits(on_pace, [RUN] * 3, 2) == pytest.approx(_pace_estimate([300, 600], 3, 2))
    fresh = [Progress(RUN, 0), Progress(RUN, 0)]
    assert honest_waits(fresh, [RUN] * 3, 2) == pytest.approx(_pace_estimate([0, 0], 3, 2))


def test_a_new_run_counts_at_the_machines_slowdown_and_a_paused_one_is_no_sample() -> None:
    measured = Progress(RUN, 500, rate=25.0)  # a quarter of its pace: the machine is slow
    new = Progress(RUN, 0)  # no rate yet: its nominal 10 s times 4
    paused = Progress(RUN, 500, rate=0.0)  # stalled: not a sample, counted like a new one
    assert slowdown([measured, new, paused]) == pytest.approx(4.0)
    waits = honest_waits([measured, new, paused], [RUN], slots=3)
    # Ends: measured 500/25 = 20 s, new 10 s x 4 = 40 s, paused 5 s x 4 = 20 s.
    assert waits == pytest.approx([20.0])


def test_an_unpaced_run_is_measured_against_its_cpu_estimate() -> None:
    unpaced = RunConfig.model_validate({"training": {"iterations": 10_000}})
    nominal = 10_000 / remaining_seconds(unpaced, 0)  # steps/s of its estimated CPU time
    running = [Progress(unpaced, 2000, rate=nominal / 3)]
    assert slowdown(running) == pytest.approx(3.0)
    waits = honest_waits(running, [unpaced], slots=1)
    assert waits == pytest.approx([8000 / (nominal / 3)])


def test_the_rate_window_measures_recent_steps_and_slows_when_reports_stop() -> None:
    window = RateWindow(started=100.0)
    window.record(100.5, 50)
    assert window.rate(100.5 + MIN_OBSERVED_S / 2) is None  # too young to judge
    for second in range(1, 31):  # 100 steps/s for 30 s ...
        window.record(100.0 + second, 100 * second)
    assert window.rate(130.0) == pytest.approx(100.0)
    for second in range(31, 61):  # ... then 25 steps/s: the window follows within WINDOW_S
        window.record(100.0 + second, 3000 + 25 * (second - 30))
    assert window.rate(160.0) == pytest.approx(25.0, rel=0.1)
    # No report for WINDOW_S (paused): the rate falls towards 0, not frozen at 25.
    assert window.rate(160.0 + 2 * WINDOW_S) < 25.0 / 2


class _Told:
    """RunEvents that writes down each queued place and wait told."""

    def __init__(self) -> None:
        self.told: list[tuple[str, int, float | None]] = []

    def queued(self, run_id: str, position: int, wait_s: float | None = None) -> None:
        self.told.append((run_id, position, wait_s))

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the queue only tells places, not {name}")


def test_the_queue_tells_waits_from_observed_rates_and_retells_when_they_move(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now)  # a busy machine's delays
    running = [Job(f"r{i}", RUN, started_at=now, rates=RateWindow(now)) for i in range(2)]
    queue = FairQueue()
    for i in range(3):
        queue.add(Job(f"q{i}", RUN))
    events = _Told()
    queue.tell_places(events, running, slots=2)  # just started: the pace estimate
    assert events.told == [("q0", 1, 10), ("q1", 2, 10), ("q2", 3, 20)]
    # 4 s later they have made 200 steps each: half their pace.
    for job in running:
        job.rates = RateWindow(now - 4.0)
        job.rates.record(now, 200)
        job.iteration = 200
    events.told.clear()
    queue.tell_places(events, running, slots=2)
    assert events.told == [("q0", 1, 16), ("q1", 2, 16), ("q2", 3, 36)]
