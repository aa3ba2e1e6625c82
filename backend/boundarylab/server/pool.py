"""The default scheduler: a fixed pool of workers that each interleave many runs, admission
by CPU headroom, and a queue in front (see WorkerPool). Everything
here runs on the event loop thread: worker events arrive through `loop.add_reader`, so no
locks are needed. The server reads events with `add_reader` rather than one thread per
worker: reader threads in a busy process queue for the GIL and drag the loop's lag up.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from boundarylab.engine.config import RunConfig
from boundarylab.engine.knobs import Retune
from boundarylab.server.capacity import (
    expected_waits,
    fastest_pace,
    paced_cores,
    remaining_seconds,
)
from boundarylab.server.errors import Busy, Invalid
from boundarylab.server.fairqueue import FairQueue
from boundarylab.server.interfaces import RunEvents
from boundarylab.server.protocol import (
    Control,
    Done,
    Export,
    Heartbeat,
    ModelReply,
    Ready,
    RunLimits,
    RunMessage,
    Start,
    Stop,
    WorkerEvent,
)
from boundarylab.server.worker import WORKER_NICENESS, EngineRun, RunFactory
from boundarylab.server.workerproc import Job, Worker, reset_forkserver

if TYPE_CHECKING:
    from boundarylab.server.settings import Settings

log = logging.getLogger("boundarylab")
RETRY_AFTER_S = 5
EXPORT_WAIT_S = 10.0
HEARTBEAT_TIMEOUT_S = 10.0  # a worker silent this long is killed (see worker.HEARTBEAT_S)
# The same timeout bounds a cancel: a worker that still holds a run that long after it was
# told to cancel it is stuck in that run (a step it cannot leave), and is killed.
WATCH_EVERY_S = 0.5
HEADROOM = 0.8  # paced load a worker may carry: the rest is for unpaced runs and jitter
SETTLE_S = 1.5  # a new run is counted by its estimate until heartbeats have measured it
# Unpaced runs on one worker share what its paced runs leave, one bounded tick each in turn,
# so each starts (and draws its first frame) at once. At 2 a worker, bench/load.py's runs
# waited seconds for a first frame; 8 keeps a flood of them queueing in order past that.
UNPACED_PER_WORKER = 8
# Why a worker's runs failed (what its viewers read); {timeout}: heartbeat_timeout.
_DIED = "the worker process stopped unexpectedly; start the run again"
_SILENT = (
    "its worker stopped answering for over {timeout:g} s and was replaced; start the run again"
)
_IGNORED_CANCEL = (
    "its worker did not stop a cancelled run within {timeout:g} s and was replaced; "
    "start the run again"
)


class WorkerPool:
    """`processes` workers, each interleaving many runs; at most `max_running` runs train at
    once, up to `max_queued` more wait.

    Admission by CPU: a paced run goes to the worker with the most headroom if its estimated
    share of a CPU (capacity.paced_cores) fits under HEADROOM next to that worker's measured
    paced load (its heartbeats) and the estimates of runs too new to be measured; an unpaced
    run takes what paced runs leave, at most UNPACED_PER_WORKER of them per worker. The
    queue is shared fairly between clients (fairqueue.py): the next run to start is the
    queued run of the client with the fewest running runs.
    """

    @classmethod
    def from_settings(
        cls, settings: Settings, mode: str | None = None, factory: RunFactory = EngineRun
    ) -> WorkerPool:
        """The pool a deployment's settings describe (`mode`: override `settings.workers`)."""
        return cls(
            settings.max_running,
            mode or settings.workers,
            factory,
            settings.max_queued,
            processes=settings.worker_processes,
            heartbeat_timeout=settings.worker_heartbeat_timeout,
            niceness=settings.worker_niceness,
            limits=RunLimits(
                settings.max_run_seconds,
                settings.max_run_cpu_seconds,
                settings.pause_timeout_seconds,
            ),
        )

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
    ) -> None:
        self.niceness = niceness
        self.limits = limits or RunLimits()
        self.max_running = size
        self.size = max(1, min(size, processes or os.cpu_count() or 1))
        self.mode = mode
        self.max_queued = max_queued
        self.heartbeat_timeout = heartbeat_timeout
        self._factory = factory
        self._workers: dict[int, Worker] = {}
        self._queue = FairQueue()
        self._exports: dict[int, asyncio.Future[dict[str, Any] | None]] = {}
        self._export_ids = itertools.count(1)
        self._events: RunEvents | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._respawn_backoff: dict[int, float] = {}
        self._cancel_by: dict[str, float] = {}  # run id -> when its worker must have let go

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, events: RunEvents) -> None:
        self._events = events
        self._loop = asyncio.get_running_loop()
        for index in range(self.size):
            self._spawn(index)
        self._watchdog = self._loop.call_later(WATCH_EVERY_S, self._watch)

    def _spawn(self, index: int) -> None:
        """Start worker `index`; when that fails (no descriptors, no forkserver), try again
        with backoff, so a slot is never lost for good."""
        assert self._loop is not None
        if self._closing:
            return
        try:
            worker = Worker(index, self.mode, self._factory, self.niceness)
            worker.start(self._loop, self._on_event, self._on_exit)
        except Exception as exc:
            delay = min(10.0, self._respawn_backoff.get(index, 0.25) * 2)
            self._respawn_backoff[index] = delay
            log.error("starting worker %d failed (%s); retrying in %.1f s", index, exc, delay)
            reset_forkserver()
            self._loop.call_later(delay, self._spawn, index)
            return
        self._respawn_backoff.pop(index, None)
        self._workers[index] = worker
        self._dispatch()

    async def cancel_all(self, reason: str, timeout: float) -> None:
        self._closing = True
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
        deadline = time.monotonic() + timeout
        self._closing = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        for worker in self._workers.values():
            worker.send(Stop())
        await asyncio.to_thread(self._join_all, max(0.5, deadline - time.monotonic()))
        for worker in self._workers.values():
            worker.close()

    def _join_all(self, timeout: float) -> None:
        """Wait for the workers to stop; kill those that have not by then (their runs were
        cancelled already: nothing of them is lost)."""
        deadline = time.monotonic() + timeout
        for worker in self._workers.values():
            worker.join(deadline - time.monotonic())
        killed = [worker for worker in self._workers.values() if worker.kill()]
        reaped_by = time.monotonic() + 0.5
        for worker in killed:
            worker.join(reaped_by - time.monotonic())

    # -- queries ---------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        running = sum(len(w.jobs) for w in self._workers.values())
        return {"running": running, "queued": len(self._queue)}

    def ready(self) -> int:
        """Workers that are alive and answering (a heartbeat within the timeout)."""
        now = time.monotonic()
        return sum(1 for w in self._workers.values() if self._answering(w, now))

    def _answering(self, worker: Worker, now: float) -> bool:
        return (
            worker.ready
            and not worker.condemned
            and worker.alive()
            and now - worker.last_seen <= self.heartbeat_timeout
        )

    def worker_pids(self) -> list[int]:
        return [w.pid for w in self._workers.values() if w.pid is not None]

    # -- runs ------------------------------------------------------------------------------
    def check_capacity(self) -> None:
        if len(self._queue) >= self.max_queued and not self._queue_can_move():
            counts = self.counts()
            raise Busy(
                f"the server is full: {counts['running']} runs training and {counts['queued']} "
                f"waiting (limit {self.max_queued}); try again soon",
                RETRY_AFTER_S,
            )

    def _queue_can_move(self) -> bool:
        return not self._queue and self._best_worker(None) is not None

    def submit(self, run_id: str, config: RunConfig, *, client: str = "") -> None:
        self._queue.add(Job(run_id, config, client=client, cores=paced_cores(config)))
        self._dispatch()

    def control(self, run_id: str, action: str | Retune) -> None:
        worker = self._worker_of(run_id)
        if worker is not None:
            pace = action.steps_per_second if isinstance(action, Retune) else None
            cores = self._pace_fits(worker, worker.jobs[run_id], pace) if pace else 0.0
            if not worker.send(Control(run_id, action)):
                raise Busy("this run's worker is not keeping up with commands; try again", 1)
            if pace:
                self._repaced(worker.jobs[run_id], pace, cores)
            if action == "cancel":
                self._cancel_by.setdefault(run_id, time.monotonic() + self.heartbeat_timeout)
            return
        job = self._queue.find(run_id)
        if job is None:
            return
        if action == "cancel":
            self._queue.remove(job)
            self._abort(job, "cancelled", "cancelled before it started")
            self._report_positions()
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
        if worker is None:
            return None
        assert self._loop is not None
        request_id = next(self._export_ids)
        future: asyncio.Future[dict[str, Any] | None] = self._loop.create_future()
        self._exports[request_id] = future
        if not worker.send(Export(request_id, run_id)):
            self._exports.pop(request_id, None)
            return None
        try:
            return await asyncio.wait_for(future, EXPORT_WAIT_S)
        except TimeoutError:
            return None
        finally:
            self._exports.pop(request_id, None)

    def _pace_fits(self, worker: Worker, job: Job, pace: float) -> float:
        """The share of a CPU `job` takes at the new `pace`; errors.Invalid when that is more
        than it takes now and more than its worker has left beside its other runs (as
        admission: a run alone on its worker may take any pace)."""
        cores = paced_cores(job.config, pace)
        if not job.paced or cores <= job.cores or len(worker.jobs) == 1:
            return cores  # slower, or was unpaced (it took what was left): costs no more
        others = max(0.0, self._paced_estimate(worker, time.monotonic()) - job.cores)
        if others + cores <= HEADROOM:
            return cores
        room = max(0.0, HEADROOM - others)
        fastest = fastest_pace(job.config, room)
        raise Invalid(
            f"At {pace:g} steps/s this run would take about {cores:.2f} of a CPU, but its "
            f"worker has about {room:.2f} left beside the {len(worker.jobs) - 1} other runs "
            f"it trains: use at most {fastest:.3g} steps/s, or a faster pace once they end",
            ("training", "steps_per_second"),
            pace,
        )

    def _repaced(self, job: Job, pace: float, cores: float) -> None:
        """Count a paced run at its new pace from now on: a raise by its estimate until the
        worker's heartbeats have measured it, so new runs are placed by it at once."""
        if job.paced:
            job.rising = max(0.0, cores - job.cores)
            job.rising_until = time.monotonic() + SETTLE_S
            job.cores = cores
        job.pace = pace

    def _worker_of(self, run_id: str) -> Worker | None:
        return next((w for w in self._workers.values() if run_id in w.jobs), None)

    def _paced_estimate(self, worker: Worker, now: float) -> float:
        """The worker's measured paced load, plus the estimates of paced runs it took too
        recently for a heartbeat to have measured them."""
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
        return worker.paced_load + fresh + raised

    def _best_worker(self, job: Job | None) -> Worker | None:
        """The answering worker with the most headroom that can take `job` (None: any run
        that asks for little), or None when no worker can."""
        if sum(len(w.jobs) for w in self._workers.values()) >= self.max_running:
            return None
        now = time.monotonic()
        best: tuple[float, Worker] | None = None
        for worker in self._workers.values():
            # A worker still starting counts: its commands wait in the pipe until it reads.
            starting = not worker.ready and not worker.condemned and worker.alive()
            if not (starting or self._answering(worker, now)):
                continue
            load = self._paced_estimate(worker, now)
            if job is not None and not job.paced:
                unpaced = sum(1 for j in worker.jobs.values() if not j.paced)
                if unpaced >= UNPACED_PER_WORKER:
                    continue
            elif load + (job.cores if job is not None else 0.0) > HEADROOM and worker.jobs:
                continue  # an idle worker takes any run: one alone cannot be refused
            if best is None or load < best[0]:
                best = (load, worker)
        return best[1] if best is not None else None

    def _dispatch(self) -> None:
        if self._events is None or self._loop is None:
            return
        while self._queue and not self._closing:
            job = self._queue.first(self._running_by_client())
            assert job is not None
            worker = self._best_worker(job)
            if worker is None:
                break  # the run whose turn it is waits for room: no run overtakes it
            if not worker.send(Start(job.run_id, job.config, self.limits)):
                break
            self._queue.remove(job)
            job.finished, job.started_at = self._loop.create_future(), time.monotonic()
            worker.jobs[job.run_id] = job
            self._events.started(job.run_id)
            for action in [*job.pending, *([] if job.frames else ["frames_off"])]:
                worker.send(Control(job.run_id, action))
            job.pending.clear()
        self._report_positions()

    def _report_positions(self) -> None:
        """Tell each queued run its place and expected wait (when either changed enough)."""
        assert self._events is not None
        running = [
            remaining_seconds(job.config, job.iteration, job.pace)
            for worker in self._workers.values()
            for job in worker.jobs.values()
        ]
        order = self._queue.order(self._running_by_client())
        durations = [remaining_seconds(job.config, 0) for job in order]
        waits = expected_waits(running, durations, max(len(running), self.size))
        for place, (job, wait) in enumerate(zip(order, waits, strict=True), start=1):
            wait = round(wait)
            moved = job.wait_s is None or abs(wait - job.wait_s) >= max(2.0, 0.2 * job.wait_s)
            if job.position != place or moved:
                job.position, job.wait_s = place, wait
                self._events.queued(job.run_id, place, wait)

    def _running_by_client(self) -> Counter[str]:
        return Counter(job.client for w in self._workers.values() for job in w.jobs.values())

    def _abort(self, job: Job, status: str, reason: str) -> None:
        assert self._events is not None
        if job.finished is not None and not job.finished.done():
            job.finished.set_result(None)
        self._events.aborted(job.run_id, status, reason)

    # -- the watchdog ----------------------------------------------------------------------
    def _watch(self) -> None:
        """Kill a worker process that stopped answering (frozen, stopped, stuck in C): its
        runs end `failed` when its exit arrives, and a new worker takes its place. Then let
        the queue move (a worker's load changes) and refresh the expected waits."""
        assert self._loop is not None
        now = time.monotonic()
        for worker in list(self._workers.values()):
            if not worker.ready or worker.condemned or worker.mode != "process":
                continue
            silent = now - worker.last_seen
            ignored = [r for r in worker.jobs if self._cancel_by.get(r, now) < now]
            if silent > self.heartbeat_timeout:
                self._condemn(worker, f"sent nothing for {silent:.1f} s", _SILENT)
            elif ignored:
                self._condemn(worker, f"ignored a cancel of {ignored[0]}", _IGNORED_CANCEL)
        if not self._closing:
            self._dispatch()
            self._watchdog = self._loop.call_later(WATCH_EVERY_S, self._watch)

    def _condemn(self, worker: Worker, what: str, reason: str) -> None:
        """Kill a worker that stopped doing its part; its runs end `failed` with `reason`
        (formatted with the timeout) and a new worker takes its place."""
        if not worker.kill():
            return
        log.error("worker %d %s; killed it", worker.index, what)
        worker.condemned = True
        # Its runs end now, without waiting for the pipe's EOF (which another holder of the
        # descriptor could delay); its late events are ignored.
        worker._detach()
        self._on_exit(worker, reason.format(timeout=self.heartbeat_timeout))

    # -- worker events ---------------------------------------------------------------------
    def _on_event(self, worker: Worker, event: WorkerEvent) -> None:
        assert self._events is not None
        if isinstance(event, Heartbeat):
            worker.paced_load = event.paced_load
        elif isinstance(event, Ready):
            worker.ready = True
            self._dispatch()
        elif isinstance(event, ModelReply):
            future = self._exports.pop(event.request_id, None)
            if future is not None and not future.done():
                future.set_result(event.model)
        elif event.run_id not in worker.jobs:
            return  # about a run the pool already let go
        elif isinstance(event, RunMessage):
            if event.message.iteration is not None:
                worker.jobs[event.run_id].iteration = event.message.iteration
            self._events.message(event.run_id, event.message)
        elif isinstance(event, Done):
            job = worker.jobs.pop(event.run_id)
            self._cancel_by.pop(event.run_id, None)
            if job.finished is not None and not job.finished.done():
                job.finished.set_result(None)
            self._events.done(event.run_id, event.status, event.model)
            self._dispatch()

    def _on_exit(self, worker: Worker, reason: str = _DIED) -> None:
        if self._closing or self._workers.get(worker.index) is not worker:
            return
        for job in list(worker.jobs.values()):
            self._cancel_by.pop(job.run_id, None)
            self._abort(job, "failed", reason)
        worker.jobs.clear()
        worker.close()
        log.warning("worker %d stopped; starting a new one", worker.index)
        self._spawn(worker.index)
