"""Dispatch: starting queued runs on workers, in the queue's fair order (fairqueue.py),
where placement (placement.py) finds room for them; and telling the runs still queued
their places. The pool (pool.py) calls `dispatch` whenever room may have freed: a run ended,
a worker (re)started or became ready, a watchdog round.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping

from boundarylab.server.fairqueue import FairQueue
from boundarylab.server.interfaces import RunEvents
from boundarylab.server.placement import Placement
from boundarylab.server.protocol import Control, RunLimits, Start
from boundarylab.server.waits import RateWindow
from boundarylab.server.workerproc import Worker


class Dispatcher:
    """Moves jobs from `queue` onto `workers`, each started with `limits`; `slots`: how many
    runs the queue's expected waits assume train at once; nothing starts once `closing()`."""

    def __init__(
        self,
        workers: Mapping[int, Worker],
        queue: FairQueue,
        placement: Placement,
        limits: RunLimits,
        slots: int,
        closing: Callable[[], bool],
    ) -> None:
        self._workers, self._queue, self._placement = workers, queue, placement
        self._limits, self._slots, self._closing = limits, slots, closing
        self._events: RunEvents | None = None

    def start(self, events: RunEvents) -> None:
        """From now on, report to `events` (on the running event loop)."""
        self._events = events

    def dispatch(self) -> None:
        """Start queued runs while the one whose turn it is finds room; when it finds none
        it waits for room: no run overtakes it. Then tell the others their places."""
        if self._events is None:
            return
        loop = asyncio.get_running_loop()
        while self._queue and not self._closing():
            job = self._queue.first(self._running_by_client())
            worker = self._placement.best_worker(job)
            if job is None or worker is None:
                break
            if not worker.send(Start(job.run_id, job.config, self._limits)):
                break
            self._queue.remove(job)
            job.finished, job.started_at = loop.create_future(), time.monotonic()
            job.rates = RateWindow(job.started_at)
            worker.jobs[job.run_id] = job
            self._events.started(job.run_id)
            for action in [*job.pending, *([] if job.frames else ["frames_off"])]:
                worker.send(Control(job.run_id, action))
            job.paused = "pause" in job.pending
            job.pending.clear()
        self.tell_places()

    def tell_places(self) -> None:
        """Tell each queued run its place and expected wait (when either changed enough)."""
        assert self._events is not None
        running = [job for worker in self._workers.values() for job in worker.jobs.values()]
        # Each worker trains on one thread: the cores they have are at most one each.
        cores = min(self._slots, os.cpu_count() or 1)
        self._queue.tell_places(self._events, running, self._slots,
                                self._placement.calibration, cores)  # fmt: skip

    def _running_by_client(self) -> Counter[str]:
        return Counter(job.client for w in self._workers.values() for job in w.jobs.values())
