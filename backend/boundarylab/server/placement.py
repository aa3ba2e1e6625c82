"""Admission by CPU: which worker, if any, can take a run now, and whether a running run's
raised pace still fits beside the others (the pool, pool.py, asks; capacity.py has the
estimates).

A paced run goes to the answering worker with the most headroom when its estimated share of
a CPU (capacity.paced_cores, scaled by this machine's `calibration`) fits under HEADROOM
next to that worker's measured paced load (its heartbeats) and the estimates of runs too
new to be measured; an unpaced run takes what paced runs leave, at most UNPACED_PER_WORKER
of them per worker; `max_running` caps the total. An idle worker takes any run: a run
alone cannot be refused.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from boundarylab.engine.config import RunConfig
from boundarylab.server.capacity import REFERENCE, Calibration, fastest_pace, paced_cores
from boundarylab.server.errors import Invalid
from boundarylab.server.workerproc import Job, Worker

HEADROOM = 0.8  # paced load a worker may carry: the rest is for unpaced runs and jitter
SETTLE_S = 1.5  # a new run is counted by its estimate until heartbeats have measured it
# Unpaced runs on one worker share what its paced runs leave, one bounded tick each in turn,
# so each starts (and draws its first frame) at once. At 2 a worker, bench/load.py's runs
# waited seconds for a first frame; 8 keeps a flood of them queueing in order past that.
UNPACED_PER_WORKER = 8


class Placement:
    """Decides where runs go among `workers` (the pool's own dict, read as it changes), by
    estimates scaled by `calibration` (the pool sets it when it starts: calibration.py)."""

    def __init__(
        self,
        workers: Mapping[int, Worker],
        max_running: int,
        heartbeat_timeout: float,
        calibration: Calibration = REFERENCE,
    ) -> None:
        self._workers = workers
        self.max_running = max_running
        self.heartbeat_timeout = heartbeat_timeout
        self.calibration = calibration

    def cores(self, config: RunConfig, pace: float | None = None) -> float:
        """The share of a CPU a run takes on this machine (capacity.paced_cores, calibrated)."""
        return paced_cores(config, pace, self.calibration)

    def answering(self, worker: Worker, now: float) -> bool:
        """Alive and answering: ready, not condemned, a heartbeat within the timeout."""
        return (
            worker.ready
            and not worker.condemned
            and worker.alive()
            and now - worker.last_seen <= self.heartbeat_timeout
        )

    def paced_estimate(self, worker: Worker, now: float) -> float:
        """The worker's measured paced load, plus the estimates of paced runs it took too
        recently for a heartbeat to have measured them, and of paces raised as recently; at
        least the calibrated estimates of its paced runs not paused. That floor is what the
        calibration buys: a worker starved of CPU (a busy machine, niceness 19) measures only
        what its runs got, not what they ask for, and on the measure alone a flood was
        admitted up to max_running (64 of 200) however slow the machine."""
        fresh = sum(
            job.cores
            for job in worker.jobs.values()
            if job.paced and now - job.started_at < SETTLE_S
        )
        raised = sum(
            job.rising
            for job in worker.jobs.values()
            if now < job.rising_until and now - job.started_at >= SETTLE_S  # else in `fresh`
        )
        floor = sum(job.cores for job in worker.jobs.values() if job.paced and not job.paused)
        return max(worker.paced_load + fresh + raised, floor)

    def best_worker(self, job: Job | None) -> Worker | None:
        """The answering worker with the most headroom that can take `job` (None: any run
        that asks for little), or None when no worker can."""
        if sum(len(w.jobs) for w in self._workers.values()) >= self.max_running:
            return None
        now = time.monotonic()
        best: tuple[float, Worker] | None = None
        for worker in self._workers.values():
            # A worker still starting counts: its commands wait in the pipe until it reads.
            starting = not worker.ready and not worker.condemned and worker.alive()
            if not (starting or self.answering(worker, now)):
                continue
            load = self.paced_estimate(worker, now)
            if job is not None and not job.paced:
                unpaced = sum(1 for j in worker.jobs.values() if not j.paced)
                if unpaced >= UNPACED_PER_WORKER:
                    continue
            elif load + (job.cores if job is not None else 0.0) > HEADROOM and worker.jobs:
                continue  # an idle worker takes any run: one alone cannot be refused
            if best is None or load < best[0]:
                best = (load, worker)
        return best[1] if best is not None else None

    def pace_fits(self, worker: Worker, job: Job, pace: float) -> float:
        """The share of a CPU `job` takes at the new `pace`; errors.Invalid when that is more
        than it takes now and more than its worker has left beside its other runs (as
        admission: a run alone on its worker may take any pace)."""
        cores = self.cores(job.config, pace)
        if not job.paced or cores <= job.cores or len(worker.jobs) == 1:
            return cores  # slower, or was unpaced (it took what was left): costs no more
        others = max(0.0, self.paced_estimate(worker, time.monotonic()) - job.cores)
        if others + cores <= HEADROOM:
            return cores
        room = max(0.0, HEADROOM - others)
        fastest = fastest_pace(job.config, room, self.calibration)
        raise Invalid(
            f"At {pace:g} steps/s this run would take about {cores:.2f} of a CPU, but its "
            f"worker has about {room:.2f} left beside the {len(worker.jobs) - 1} other runs "
            f"it trains: use at most {fastest:.3g} steps/s, or a faster pace once they end",
            ("training", "steps_per_second"),
            pace,
        )

    @staticmethod
    def repaced(job: Job, pace: float, cores: float) -> None:
        """Count a paced run at its new pace from now on: a raise by its estimate until the
        worker's heartbeats have measured it, so new runs are placed by it at once."""
        if job.paced:
            job.rising = max(0.0, cores - job.cores)
            job.rising_until = time.monotonic() + SETTLE_S
            job.cores = cores
        job.pace = pace
