"""The default scheduler: a fixed pool of workers that each interleave many runs, admission
by CPU headroom, and a queue in front (see WorkerPool). Everything here runs on the event
loop thread: worker events arrive through `loop.add_reader`, so no locks are needed. The
server reads events with `add_reader` rather than one thread per worker: reader threads in
a busy process queue for the GIL and drag the loop's lag up.

Its parts, one job each: crew.py starts, restarts and stops the workers; placement.py
decides which worker takes a run (admission by CPU) and whether a raised pace fits;
fairqueue.py orders the queue between clients and tells each queued run its place;
watchdog.py judges workers that stopped answering; exports.py matches model exports to
their replies. This module routes between them: runs in, commands out, worker events to
RunEvents.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from boundarylab.engine.config import RunConfig
from boundarylab.engine.knobs import Retune
from boundarylab.server.calibration import resolve
from boundarylab.server.crew import Crew
from boundarylab.server.dispatch import Dispatcher
from boundarylab.server.errors import Busy
from boundarylab.server.exports import Exports
from boundarylab.server.fairqueue import FairQueue
from boundarylab.server.interfaces import RunEvents
from boundarylab.server.placement import Placement
from boundarylab.server.protocol import (
    Control,
    Done,
    Heartbeat,
    ModelReply,
    Ready,
    RunLimits,
    RunMessage,
    WorkerEvent,
)
from boundarylab.server.watchdog import DIED, HEARTBEAT_TIMEOUT_S, Watchdog
from boundarylab.server.worker import WORKER_NICENESS, EngineRun, RunFactory
from boundarylab.server.workerproc import Job, Worker

if TYPE_CHECKING:
    from boundarylab.server.settings import Settings

log = logging.getLogger("boundarylab")
RETRY_AFTER_S = 5


class WorkerPool:
    """`processes` workers, each interleaving many runs; at most `max_running` runs train at
    once (where placement.py finds room for them), up to `max_queued` more wait in a queue
    shared fairly between clients (fairqueue.py)."""

    @classmethod
    def from_settings(
        cls, settings: Settings, mode: str | None = None, factory: RunFactory = EngineRun
    ) -> WorkerPool:
        """The pool a deployment's settings describe (`mode`: override `settings.workers`)."""
        limits = RunLimits(
            settings.max_run_seconds, settings.max_run_cpu_seconds, settings.pause_timeout_seconds
        )
        return cls(settings.max_running, mode or settings.workers, factory, settings.max_queued,
                   processes=settings.worker_processes, limits=limits,
                   heartbeat_timeout=settings.worker_heartbeat_timeout,
                   niceness=settings.worker_niceness,
                   calibration=settings.cpu_calibration)  # fmt: skip

    def __init__(
        self,
        size: int,
        mode: str,
        factory: RunFactory = EngineRun,
        max_queued: int = 64,
        *,
        processes: int | None = None,
        heartbeat_timeout: float = HEARTBEAT_TIMEOUT_S,
        limits: RunLimits | None = None,
        niceness: int = WORKER_NICENESS,
        calibration: float | str = 1.0,
    ) -> None:
        self.limits = limits or RunLimits()
        self._calibration_setting = calibration  # resolved (maybe measured) at start
        self.size = max(1, min(size, processes or os.cpu_count() or 1))
        self.mode = mode
        self.max_queued = max_queued
        self._crew = Crew(mode, factory, niceness)
        self._workers = self._crew.workers
        self._placement = Placement(self._workers, size, heartbeat_timeout)
        self._queue = FairQueue()
        self._dispatcher = Dispatcher(self._workers, self._queue, self._placement, self.limits,
                                      self.size, lambda: self._crew.stopping)  # fmt: skip
        self._watchdog = Watchdog(
            self._workers, self._on_exit, self._dispatcher.dispatch, heartbeat_timeout
        )
        self._exports = Exports()
        self._events: RunEvents | None = None

    @property
    def _closing(self) -> bool:
        return self._crew.stopping

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, events: RunEvents) -> None:
        # Before any run can arrive: a burst admitted on uncalibrated estimates would fill
        # a slower machine several times over (calibration.py says why here, not in workers).
        self._placement.calibration = calibration = resolve(self._calibration_setting)
        log.info("CPU calibration: a step %.2fx, a frame %.2fx the reference estimates",
                 calibration.step, calibration.frame)  # fmt: skip
        self._events = events
        self._dispatcher.start(events)
        self._crew.start(self.size, self._on_event, self._on_exit, self._dispatcher.dispatch)
        self._watchdog.start()

    async def cancel_all(self, reason: str, timeout: float) -> None:
        self._crew.stopping = True
        for job in self._queue:
            self._queue.remove(job)
            self._abort(job, "cancelled", reason)
        jobs = [job for w in self._workers.values() for job in w.jobs.values()]
        waits = [job.finished for job in jobs if job.finished is not None]
        for worker in self._workers.values():
            for job in worker.jobs.values():
                worker.send(Control(job.run_id, "cancel"))
        if waits:
            await asyncio.wait(waits, timeout=max(0.0, timeout))
        for worker in self._workers.values():  # runs whose worker did not confirm in time: let go
            for job in list(worker.jobs.values()):
                del worker.jobs[job.run_id]
                self._abort(job, "cancelled", reason)

    async def shutdown(self, timeout: float) -> None:
        self._watchdog.stop()
        await self._crew.stop(timeout)

    # -- queries ---------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        running = sum(len(w.jobs) for w in self._workers.values())
        return {"running": running, "queued": len(self._queue)}

    def ready(self) -> int:
        """Workers that are alive and answering (a heartbeat within the timeout)."""
        now = time.monotonic()
        return sum(1 for w in self._workers.values() if self._placement.answering(w, now))

    def worker_pids(self) -> list[int]:
        return self._crew.pids()

    # -- runs ------------------------------------------------------------------------------
    def check_capacity(self) -> None:
        can_move = not self._queue and self._placement.best_worker(None) is not None
        if len(self._queue) >= self.max_queued and not can_move:
            counts = self.counts()
            raise Busy(
                f"the server is full: {counts['running']} runs training and {counts['queued']} "
                f"waiting (limit {self.max_queued}); try again soon",
                RETRY_AFTER_S,
            )

    def submit(self, run_id: str, config: RunConfig, *, client: str = "") -> None:
        self._queue.add(Job(run_id, config, client=client, cores=self._placement.cores(config)))
        self._dispatcher.dispatch()

    def control(self, run_id: str, action: str | Retune) -> None:
        worker = self._worker_of(run_id)
        if worker is None:
            self._control_queued(run_id, action)
            return
        job = worker.jobs[run_id]
        pace = action.steps_per_second if isinstance(action, Retune) else None
        cores = self._placement.pace_fits(worker, job, pace) if pace else 0.0
        if not worker.send(Control(run_id, action)):
            raise Busy("this run's worker is not keeping up with commands; try again", 1)
        if pace:
            self._placement.repaced(job, pace, cores)
        if action in ("pause", "resume"):
            job.paused = action == "pause"
        if action == "cancel":
            self._watchdog.cancel_sent(run_id)

    def _control_queued(self, run_id: str, action: str | Retune) -> None:
        """A queued run's cancel takes it out; a pause or resume waits for its start."""
        job = self._queue.find(run_id)
        if job is None:
            return
        if action == "cancel":
            self._queue.remove(job)
            self._abort(job, "cancelled", "cancelled before it started")
            self._dispatcher.tell_places()
        elif action == "pause":
            job.pending = ["pause"]
        elif action == "resume":
            job.pending.clear()

    def frames(self, run_id: str, wanted: bool) -> None:
        worker = self._worker_of(run_id)
        job = worker.jobs[run_id] if worker else self._queue.find(run_id)
        if job is None or job.frames == wanted:
            return
        job.frames = wanted
        if worker is not None:  # a hint: when the worker is too far behind, it is dropped
            worker.send(Control(run_id, "frames_on" if wanted else "frames_off"))

    async def export(self, run_id: str) -> dict[str, Any] | None:
        worker = self._worker_of(run_id)
        return None if worker is None else await self._exports.fetch(worker, run_id)

    def _worker_of(self, run_id: str) -> Worker | None:
        return next((w for w in self._workers.values() if run_id in w.jobs), None)

    def _abort(self, job: Job, status: str, reason: str) -> None:
        assert self._events is not None
        if job.finished is not None and not job.finished.done():
            job.finished.set_result(None)
        self._events.aborted(job.run_id, status, reason)

    # -- worker events ---------------------------------------------------------------------
    def _on_event(self, worker: Worker, event: WorkerEvent) -> None:
        assert self._events is not None
        if isinstance(event, Heartbeat):
            worker.paced_load = event.paced_load
        elif isinstance(event, Ready):
            worker.ready = True
            self._dispatcher.dispatch()
        elif isinstance(event, ModelReply):
            self._exports.reply(event)
        elif event.run_id not in worker.jobs:
            return  # about a run the pool already let go
        elif isinstance(event, RunMessage):
            if event.message.iteration is not None:
                job = worker.jobs[event.run_id]
                job.iteration = event.message.iteration
                if job.rates is not None:  # last_seen: when these events were read
                    job.rates.record(worker.last_seen, job.iteration)
            self._events.message(event.run_id, event.message)
        elif isinstance(event, Done):
            job = worker.jobs.pop(event.run_id)
            self._watchdog.forget(event.run_id)
            if job.finished is not None and not job.finished.done():
                job.finished.set_result(None)
            self._events.done(event.run_id, event.status, event.model)
            self._dispatcher.dispatch()

    def _on_exit(self, worker: Worker, reason: str = DIED) -> None:
        if self._closing or self._workers.get(worker.index) is not worker:
            return
        for job in list(worker.jobs.values()):
            self._watchdog.forget(job.run_id)
            self._abort(job, "failed", reason)
        worker.jobs.clear()
        worker.close()
        log.warning("worker %d stopped; starting a new one", worker.index)
        self._crew.spawn(worker.index)
