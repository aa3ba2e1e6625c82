"""The pool's workers as processes (or threads, for tests): starting each, starting one
again when it fails (with backoff, forgetting a dead forkserver, so a slot is never lost
for good), and stopping them all. Which runs go where is the pool's (pool.py) and
placement's (placement.py) business; one worker's pipes are workerproc.py's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from boundarylab.server.protocol import Stop, WorkerEvent
from boundarylab.server.worker import WORKER_NICENESS, EngineRun, RunFactory
from boundarylab.server.workerproc import Worker, reset_forkserver

log = logging.getLogger("boundarylab")


class Crew:
    """`workers` by index; `on_event` and `on_exit` get each worker's events and its end,
    `on_started` is called when a worker (re)started."""

    def __init__(
        self, mode: str, factory: RunFactory = EngineRun, niceness: int = WORKER_NICENESS
    ) -> None:
        self.mode = mode
        self.niceness = niceness
        self.workers: dict[int, Worker] = {}
        self.stopping = False
        self._factory = factory
        self._backoff: dict[int, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_event: Callable[[Worker, WorkerEvent], None] = lambda w, e: None
        self._on_exit: Callable[[Worker], None] = lambda w: None
        self._on_started: Callable[[], None] = lambda: None

    def start(
        self,
        size: int,
        on_event: Callable[[Worker, WorkerEvent], None],
        on_exit: Callable[[Worker], None],
        on_started: Callable[[], None],
    ) -> None:
        """Start workers 0 .. size-1 (on the running event loop)."""
        self._loop = asyncio.get_running_loop()
        self._on_event, self._on_exit, self._on_started = on_event, on_exit, on_started
        for index in range(size):
            self.spawn(index)

    def spawn(self, index: int) -> None:
        """Start worker `index` (in place of the one before); when that fails (no
        descriptors, no forkserver), try again with backoff."""
        assert self._loop is not None
        if self.stopping:
            return
        try:
            worker = Worker(index, self.mode, self._factory, self.niceness)
            worker.start(self._loop, self._on_event, self._on_exit)
        except Exception as exc:
            delay = min(10.0, self._backoff.get(index, 0.25) * 2)
            self._backoff[index] = delay
            log.error("starting worker %d failed (%s); retrying in %.1f s", index, exc, delay)
            reset_forkserver()
            self._loop.call_later(delay, self.spawn, index)
            return
        self._backoff.pop(index, None)
        self.workers[index] = worker
        self._on_started()

    def pids(self) -> list[int]:
        return [w.pid for w in self.workers.values() if w.pid is not None]

    async def stop(self, timeout: float) -> None:
        """Tell every worker to stop, wait up to `timeout` seconds, kill those that have not
        stopped by then (their runs were cancelled already: nothing of them is lost)."""
        self.stopping = True
        for worker in self.workers.values():
            worker.send(Stop())
        await asyncio.to_thread(self._join_all, max(0.5, timeout))
        for worker in self.workers.values():
            worker.close()

    def _join_all(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for worker in self.workers.values():
            worker.join(deadline - time.monotonic())
        killed = [worker for worker in self.workers.values() if worker.kill()]
        reaped_by = time.monotonic() + 0.5
        for worker in killed:
            worker.join(reaped_by - time.monotonic())
