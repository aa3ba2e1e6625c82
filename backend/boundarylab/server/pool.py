"""The default scheduler: a fixed pool of workers, one run each, and a queue in front.

A run is admitted while a worker is idle or the queue has room (`max_queued`). Everything
here runs on the event loop thread: worker events arrive through `loop.add_reader`, so no
locks are needed. The server reads events with `add_reader` rather than one thread per
worker: reader threads in a busy process queue for the GIL and drag the loop's lag up.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from boundarylab.engine.config import RunConfig
from boundarylab.server.errors import Busy
from boundarylab.server.interfaces import RunEvents
from boundarylab.server.protocol import (
    Command,
    Control,
    Done,
    EventReader,
    Export,
    ModelReply,
    Ready,
    RunMessage,
    Start,
    Stop,
    WorkerEvent,
)
from boundarylab.server.worker import (
    WORKER_NICENESS,
    EngineRun,
    RunFactory,
    process_main,
    worker_main,
)

log = logging.getLogger("boundarylab")
RETRY_AFTER_S = 5
EXPORT_WAIT_S = 10.0


def _process_context() -> Any:
    """forkserver where the platform has it: one helper process imports the engine once and
    forks each worker from it, so a worker is ready in milliseconds instead of re-importing
    NumPy and scikit-learn (seconds per worker); and fork happens from that single-threaded
    helper, never from the threaded server. Elsewhere: spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["boundarylab.server.worker", "boundarylab.engine.training"])
        return ctx
    return multiprocessing.get_context("spawn")


@dataclass(eq=False)
class Job:
    """A run on its way through the pool. `position`: its place in the queue as last
    reported. `pending`: actions asked for while it was queued (a pause), sent once it
    starts. `finished`: resolved when it ends, however it ends."""

    run_id: str
    config: RunConfig
    position: int | None = None
    pending: list[str] = field(default_factory=list)
    finished: asyncio.Future[None] | None = None


class Worker:
    """The server's handle on one worker: its command pipe and its event stream."""

    def __init__(self, index: int, mode: str, factory: RunFactory) -> None:
        self.index = index
        self.mode = mode
        self.ready = False
        self.job: Job | None = None
        child_commands, self._commands = multiprocessing.Pipe(duplex=False)
        self._events, child_events = multiprocessing.Pipe(duplex=False)
        self._child_ends = (child_commands, child_events)
        self._reader = EventReader()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proc: Any
        name = f"boundarylab-worker-{index}"
        if mode == "process":
            args = (child_commands, child_events, factory, WORKER_NICENESS)
            self._proc = _process_context().Process(
                target=process_main, args=args, name=name, daemon=True
            )
        else:
            args = (child_commands, child_events, factory)
            self._proc = threading.Thread(target=worker_main, args=args, name=name)

    def start(
        self,
        loop: asyncio.AbstractEventLoop,
        on_event: Callable[[Worker, WorkerEvent], None],
        on_exit: Callable[[Worker], None],
    ) -> None:
        """Start the worker; its events are handed to the callbacks on the event loop."""
        self._proc.start()
        if self.mode == "process":
            for end in self._child_ends:  # the child holds them now: its exit means EOF
                end.close()
        fd = self._events.fileno()
        os.set_blocking(fd, False)
        self._loop = loop

        def readable() -> None:
            eof = self._reader.read_available(fd)
            for event in self._reader.events():
                on_event(self, event)
            if eof:
                self._detach()
                on_exit(self)

        loop.add_reader(fd, readable)

    def _detach(self) -> None:
        if self._loop is not None and not self._events.closed:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._events.fileno())
            self._events.close()

    def send(self, command: Command) -> bool:
        """Send a command (small; the worker reads them between steps); False if it is gone."""
        try:
            self._commands.send(command)
            return True
        except (OSError, ValueError):
            return False

    @property
    def pid(self) -> int | None:
        """The worker process's id (None for a thread worker)."""
        return self._proc.pid if self.mode == "process" else None

    def alive(self) -> bool:
        return bool(self._proc.is_alive())

    def join(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the worker to exit (after Stop)."""
        self._proc.join(max(0.0, timeout))

    def kill(self) -> bool:
        """Kill a worker process that is still alive; True when there was one to kill."""
        if self.mode == "process" and self._proc.is_alive():
            self._proc.kill()
            return True
        return False

    def close(self) -> None:
        """Release the pipes (on the event loop thread, after join)."""
        self._detach()
        self._commands.close()
        if self.mode != "process":
            for end in self._child_ends:
                end.close()


class WorkerPool:
    """`size` workers, each training one run at a time; up to `max_queued` runs wait."""

    def __init__(
        self, size: int, mode: str, factory: RunFactory = EngineRun, max_queued: int = 64
    ) -> None:
        self.size = size
        self.mode = mode
        self.max_queued = max_queued
        self._factory = factory
        self._workers: list[Worker] = []
        self._queue: deque[Job] = deque()
        self._exports: dict[int, asyncio.Future[dict[str, Any] | None]] = {}
        self._export_ids = itertools.count(1)
        self._events: RunEvents | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, events: RunEvents) -> None:
        self._events = events
        self._loop = asyncio.get_running_loop()
        for index in range(self.size):
            self._spawn(index)

    def _spawn(self, index: int) -> None:
        worker = Worker(index, self.mode, self._factory)
        assert self._loop is not None
        worker.start(self._loop, self._on_event, self._on_exit)
        if index < len(self._workers):
            self._workers[index] = worker
        else:
            self._workers.append(worker)

    async def cancel_all(self, reason: str, timeout: float) -> None:
        self._closing = True
        while self._queue:
            self._abort(self._queue.popleft(), "cancelled", reason)
        busy = [w for w in self._workers if w.job is not None]
        waits = [w.job.finished for w in busy if w.job is not None and w.job.finished]
        for worker in busy:
            assert worker.job is not None
            worker.send(Control(worker.job.run_id, "cancel"))
        if waits:
            await asyncio.wait(waits, timeout=max(0.0, timeout))
        for worker in busy:  # a worker that did not confirm in time: let its run go
            if worker.job is not None:
                job, worker.job = worker.job, None
                self._abort(job, "cancelled", reason)

    async def shutdown(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self._closing = True
        for worker in self._workers:
            worker.send(Stop())
        await asyncio.to_thread(self._join_all, max(0.5, deadline - time.monotonic()))
        for worker in self._workers:
            worker.close()

    def _join_all(self, timeout: float) -> None:
        """Wait for the workers to stop; kill those that have not by then (their runs were
        cancelled already: nothing of them is lost)."""
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(deadline - time.monotonic())
        killed = [worker for worker in self._workers if worker.kill()]
        reaped_by = time.monotonic() + 0.5
        for worker in killed:
            worker.join(reaped_by - time.monotonic())

    # -- queries ---------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        running = sum(1 for w in self._workers if w.job is not None)
        return {"running": running, "queued": len(self._queue)}

    def ready(self) -> int:
        return sum(1 for w in self._workers if w.ready)

    def worker_pids(self) -> list[int]:
        return [w.pid for w in self._workers if w.pid is not None]

    # -- runs ------------------------------------------------------------------------------
    def check_capacity(self) -> None:
        if self._idle_worker() is None and len(self._queue) >= self.max_queued:
            counts = self.counts()
            raise Busy(
                f"the server is full: {counts['running']} runs training and {counts['queued']} "
                f"waiting (limit {self.max_queued}); try again soon",
                RETRY_AFTER_S,
            )

    def submit(self, run_id: str, config: RunConfig) -> None:
        self._queue.append(Job(run_id, config))
        self._dispatch()

    def control(self, run_id: str, action: str) -> None:
        worker = self._worker_of(run_id)
        if worker is not None:
            worker.send(Control(run_id, action))
            return
        job = next((j for j in self._queue if j.run_id == run_id), None)
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

    async def export(self, run_id: str) -> dict[str, Any] | None:
        worker = self._worker_of(run_id)
        if worker is None:
            return None
        assert self._loop is not None
        request_id = next(self._export_ids)
        future: asyncio.Future[dict[str, Any] | None] = self._loop.create_future()
        self._exports[request_id] = future
        worker.send(Export(request_id))
        try:
            return await asyncio.wait_for(future, EXPORT_WAIT_S)
        except TimeoutError:
            return None
        finally:
            self._exports.pop(request_id, None)

    def _worker_of(self, run_id: str) -> Worker | None:
        return next((w for w in self._workers if w.job and w.job.run_id == run_id), None)

    def _idle_worker(self) -> Worker | None:
        return next((w for w in self._workers if w.job is None and w.alive()), None)

    def _dispatch(self) -> None:
        assert self._events is not None and self._loop is not None
        while self._queue and not self._closing:
            worker = self._idle_worker()
            if worker is None:
                break
            job = self._queue.popleft()
            if not worker.send(Start(job.run_id, job.config)):
                self._queue.appendleft(job)
                break
            worker.job, job.finished = job, self._loop.create_future()
            self._events.started(job.run_id)
            for action in job.pending:
                worker.send(Control(job.run_id, action))
            job.pending.clear()
        self._report_positions()

    def _report_positions(self) -> None:
        assert self._events is not None
        for place, job in enumerate(self._queue, start=1):
            if job.position != place:
                job.position = place
                self._events.queued(job.run_id, place)

    def _abort(self, job: Job, status: str, reason: str) -> None:
        assert self._events is not None
        if job.finished is not None and not job.finished.done():
            job.finished.set_result(None)
        self._events.aborted(job.run_id, status, reason)

    # -- worker events ---------------------------------------------------------------------
    def _on_event(self, worker: Worker, event: WorkerEvent) -> None:
        assert self._events is not None
        if isinstance(event, Ready):
            worker.ready = True
        elif isinstance(event, ModelReply):
            future = self._exports.pop(event.request_id, None)
            if future is not None and not future.done():
                future.set_result(event.model)
        elif worker.job is None or worker.job.run_id != event.run_id:
            return  # about a run the pool already let go
        elif isinstance(event, RunMessage):
            self._events.message(event.run_id, event.message)
        elif isinstance(event, Done):
            job, worker.job = worker.job, None
            if job.finished is not None and not job.finished.done():
                job.finished.set_result(None)
            self._events.done(event.run_id, event.status, event.model)
            self._dispatch()

    def _on_exit(self, worker: Worker) -> None:
        if self._closing or self._workers[worker.index] is not worker:
            return
        if worker.job is not None:
            job, worker.job = worker.job, None
            self._abort(job, "failed", "the worker process stopped unexpectedly")
        log.warning("worker %d stopped unexpectedly; starting a new one", worker.index)
        self._spawn(worker.index)
        self._dispatch()
