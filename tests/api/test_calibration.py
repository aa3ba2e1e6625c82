"""Admission and first waits that fit the machine (issue 15): capacity.py's estimates scaled
by a Calibration measured on it (server/calibration.py), or pinned by a setting."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest

from boundarylab.engine.config import RunConfig
from boundarylab.server import calibration
from boundarylab.server.capacity import (
    REFERENCE,
    Calibration,
    budget_errors,
    frame_seconds,
    step_seconds,
)
from boundarylab.server.placement import Placement
from boundarylab.server.pool import WorkerPool
from boundarylab.server.settings import Settings, SettingsInvalid, load_settings
from boundarylab.server.waits import Progress, honest_waits
from boundarylab.server.workerproc import Job

DEFAULT_LIVE = RunConfig.model_validate({"training": {"steps_per_second": 2000}})
LONG = RunConfig.model_validate({"training": {"iterations": 200_000}})  # unpaced


class _Worker:
    """What Placement reads of a worker: answering, its jobs, its measured paced load."""

    def __init__(self) -> None:
        self.ready, self.condemned, self.paced_load = True, False, 0.0
        self.last_seen = time.monotonic()
        self.jobs: dict[str, Job] = {}

    def alive(self) -> bool:
        return True


def _admitted_at_once(scale: float, workers: int = 2, age_s: float = 0.0) -> int:
    """Default live runs a burst gets in: each counted as started `age_s` ago (0: before any
    heartbeat has measured them), on workers whose heartbeats measured no load at all."""
    pool = {i: _Worker() for i in range(workers)}
    placement = Placement(pool, 10_000, 10.0, Calibration(scale, scale))  # type: ignore[arg-type]
    for n in range(10_000):
        job = Job(f"r{n}", DEFAULT_LIVE, cores=placement.cores(DEFAULT_LIVE))
        worker = placement.best_worker(job)
        if worker is None:
            return n
        job.started_at = time.monotonic() - age_s
        worker.jobs[job.run_id] = job
    raise AssertionError("admission never filled")


def test_a_machine_three_times_slower_admits_a_third_as_many_runs_at_once() -> None:
    reference, slower = _admitted_at_once(1.0), _admitted_at_once(3.0)
    assert slower >= 2  # each idle worker still takes one
    assert reference / slower == pytest.approx(3.0, rel=0.15), (reference, slower)


def test_a_starved_workers_measured_load_does_not_let_more_in_than_the_estimates() -> None:
    """Past the settling time a worker's heartbeats stand for its runs; a worker starved of
    CPU (a busy machine, niceness 19) measures little, and a flood of 200 was admitted up to
    max_running on that. The calibrated estimates of its paced runs are a floor."""
    assert _admitted_at_once(3.0, age_s=60.0) == _admitted_at_once(3.0)


def test_a_paused_run_asks_for_no_cpu() -> None:
    worker = _Worker()
    placement = Placement({0: worker}, 100, 10.0, Calibration(3.0, 3.0))  # type: ignore[dict-item]
    now = 1000.0  # a fixed clock: the runs are a minute old, past the settling time
    for n in range(4):
        job = Job(f"r{n}", DEFAULT_LIVE, cores=placement.cores(DEFAULT_LIVE), started_at=now - 60)
        worker.jobs[job.run_id] = job
    busy = placement.paced_estimate(worker, now)  # type: ignore[arg-type]
    assert busy == pytest.approx(4 * placement.cores(DEFAULT_LIVE))
    worker.jobs["r0"].paused = True
    paused_one = placement.paced_estimate(worker, now)  # type: ignore[arg-type]
    assert paused_one == pytest.approx(0.75 * busy)


def test_validation_keeps_the_reference_figures_whatever_the_machine() -> None:
    """A config is accepted or refused alike everywhere: budget_errors takes no calibration."""
    heavy = RunConfig.model_validate({"training": {"iterations": 200_000}})
    assert budget_errors(heavy, 3600, 600, 1.0) == []


def _first_waits(scale: float) -> list[float]:
    """The waits told to queued unpaced default runs before any running one has reported,
    by a pool of one worker whose machine is `scale` times the reference."""
    told: dict[str, float] = {}

    class Events:
        def queued(self, run_id: str, position: int, wait_s: float | None = None) -> None:
            told.setdefault(run_id, wait_s if wait_s is not None else math.nan)

        def __getattr__(self, name: str) -> Any:
            return lambda *args: None

    class Silent:  # a run that takes its start and reports nothing until cancelled
        def __init__(self, config: RunConfig, emit: Any, next_command: Any) -> None:
            self.next_command = next_command

        def run(self) -> str:
            while self.next_command(0.05) != "cancel":
                pass
            return "cancelled"

    async def main() -> None:
        pool = WorkerPool(8, "thread", Silent, 10, processes=1, calibration=scale)
        await pool.start(Events())  # type: ignore[arg-type]
        try:
            for i in range(10):
                pool.submit(f"r{i}", LONG)
        finally:
            await pool.cancel_all("test over", 5.0)
            await pool.shutdown(5.0)

    asyncio.run(asyncio.wait_for(main(), 60))
    return [told[f"r{i}"] for i in range(8, 10)]


def test_the_first_wait_told_uses_the_calibrated_cost_of_a_step() -> None:
    """Eight unpaced runs share one worker, two wait: before any has reported, the wait told
    is their calibrated CPU time, shared eight ways on one core (main told a third of it on
    a machine three times slower, and nothing of the sharing: the run's time alone)."""
    reference, slower = _first_waits(1.0), _first_waits(3.0)
    assert slower == pytest.approx([3 * w for w in reference], rel=0.05)
    run_s = LONG.training.iterations * step_seconds(LONG, Calibration(3.0, 3.0))  # ~6 s
    assert slower == pytest.approx([8 * run_s] * 2, rel=0.05)  # 8 runs on one core


def test_the_predicted_slowdown_is_demand_over_cores_until_a_run_is_measured() -> None:
    paced = RunConfig.model_validate({"training": {"iterations": 4000, "steps_per_second": 1000}})
    fresh = [Progress(paced, 0) for _ in range(4)]
    slow = Calibration(step=100.0, frame=1.0)  # ~1 ms a step: each run asks for a core
    # 4 runs asking for a core each, on 2 cores: twice their 4 s, then a run of 8 s.
    assert honest_waits(fresh, [paced], 2, slow, cores=2) == pytest.approx([8.0], rel=0.01)
    # Without the prediction (or on a machine where they fit), the pace estimate.
    assert honest_waits(fresh, [paced], 2, REFERENCE, cores=2) == pytest.approx([4.0])
    assert honest_waits(fresh, [paced], 2) == pytest.approx([4.0])
    # Once one run is measured, its observed rate rules, not the prediction.
    measured = [Progress(paced, 1000, rate=1000.0), *fresh[1:]]
    assert honest_waits(measured, [paced], 2, slow, cores=2) == pytest.approx([3.0], rel=0.01)


def test_auto_measures_this_machine_once_and_a_number_pins_it() -> None:
    measured = calibration.resolve("auto")
    assert calibration.resolve("auto") is measured  # once per process
    low, high = calibration.SCALE_BOUNDS
    assert low <= measured.step <= high and low <= measured.frame <= high
    assert calibration.resolve(3.0) == Calibration(step=3.0, frame=3.0)


def test_a_measurement_is_the_engines_cost_over_the_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a clock that says each step took three times the reference's CPU and each frame
    twice, so says the calibration (best of one repeat: a start and an end for each)."""
    step, frame = step_seconds(RunConfig()), frame_seconds(RunConfig())
    readings = iter([0.0, calibration.STEPS * 3 * step, 0.0, calibration.FRAMES * 2 * frame])
    monkeypatch.setattr(calibration.time, "thread_time", lambda: next(readings))
    measured = calibration.measure(repeats=1)
    assert measured.step == pytest.approx(3.0) and measured.frame == pytest.approx(2.0)


def test_the_setting_is_auto_or_a_positive_number(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().cpu_calibration == "auto"
    monkeypatch.setenv("BOUNDARYLAB_CPU_CALIBRATION", "2.5")
    assert load_settings().cpu_calibration == 2.5
    for bad in ("0", "-1", "fast", "inf"):
        monkeypatch.setenv("BOUNDARYLAB_CPU_CALIBRATION", bad)
        with pytest.raises(SettingsInvalid, match="BOUNDARYLAB_CPU_CALIBRATION") as raised:
            load_settings()
        # One line for the one variable, however many branches of its type refused it.
        assert len(str(raised.value).splitlines()) == 1, str(raised.value)
