"""The run registry: lifecycle, limits, worker scheduling and fan-out to viewers.

Everything here runs on the event loop thread (worker messages arrive through
`loop.call_soon_threadsafe`), so no locks are needed. Each message from a worker is
serialised once and the same text is handed to every viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import time
import uuid
from collections import deque
from typing import Any

from boundarylab.engine.config import RunConfig
from boundarylab.server.fanout import Run, Viewer
from boundarylab.server.messages import TERMINAL, dumps, status_message
from boundarylab.server.settings import Settings
from boundarylab.server.worker import EngineRun, RunFactory, Worker, WorkerMessage, release_heap

log = logging.getLogger("boundarylab")

RETRY_AFTER_S = 5
CONTROL_WAIT_S = 2.0
COMMANDS_PER_S = 20
# After the last run ends: long enough for its viewers to drain and close.
TRIM_DELAY_S = 1.0


class RegistryError(Exception):
    """A request the registry refuses; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


def config_summary(config: RunConfig) -> str:
    d, m, t = config.dataset, config.model, config.training
    return (
        f"{d.kind} n={d.n_samples} hidden={m.hidden_sizes} {m.activation} {m.loss} "
        f"{t.optimizer} lr={t.learning_rate} iterations={t.iterations} "
        f"pace={t.steps_per_second or 'max'}"
    )


class RunRegistry:
    """Holds every run, schedules queued runs onto `max_running` workers, fans out."""

    def __init__(
        self,
        settings: Settings,
        *,
        run_factory: RunFactory = EngineRun,
        mode: str | None = None,
    ) -> None:
        self.settings = settings
        self.mode = mode or settings.workers
        self._factory = run_factory
        self._runs: dict[str, Run] = {}
        self._queue: deque[Run] = deque()
        self._workers: list[Worker] = []
        self._exports: dict[int, asyncio.Future[dict[str, Any] | None]] = {}
        self._export_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._pruner: asyncio.Task[None] | None = None
        self._trim: asyncio.TimerHandle | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for index in range(self.settings.max_running):
            self._spawn(index)
        self._pruner = asyncio.create_task(self._prune_forever(), name="boundarylab-pruner")

    def _spawn(self, index: int) -> Worker:
        worker = Worker(index, self.mode, self._factory)
        assert self._loop is not None
        worker.start(self._loop, self._on_message, self._on_worker_exit)
        if index < len(self._workers):
            self._workers[index] = worker
        else:
            self._workers.append(worker)
        return worker

    async def cancel_all(self, timeout: float, reason: str = "the server is shutting down") -> None:
        """Cancel every run, wait for workers to confirm, then let viewers flush."""
        self._closing = True
        deadline = time.monotonic() + timeout
        while self._queue:
            self._finish(self._queue.popleft(), status_message("cancelled", reason))
        active = [r for r in self._runs.values() if r.worker is not None]
        for run in active:
            run.worker.send(("cmd", run.id, "cancel"))  # type: ignore[union-attr]
        for run in active:
            await self._wait(run, lambda r: r.worker is None, deadline - time.monotonic())
            if run.worker is not None:  # the worker did not answer in time
                run.worker.run_id = None
                run.worker = None
                self._finish(run, status_message("cancelled", reason))
        while any(v.pending() for r in self._runs.values() for v in r.viewers):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel runs, stop the workers within `timeout` seconds, end the pruner."""
        deadline = time.monotonic() + timeout
        await self.cancel_all(min(2.0, timeout / 2))
        if self._trim is not None:
            self._trim.cancel()
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
        for worker in self._workers:
            worker.send(("stop",))
        await asyncio.to_thread(self._join_workers, max(0.5, deadline - time.monotonic()))
        for worker in self._workers:
            worker.close()

    def _join_workers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.1, deadline - time.monotonic()))

    # -- queries ---------------------------------------------------------------------------
    def get(self, run_id: str) -> Run | None:
        return self._runs.get(run_id)

    def runs(self) -> list[Run]:
        return list(self._runs.values())

    def counts(self) -> dict[str, int]:
        running = sum(1 for r in self._runs.values() if r.worker is not None)
        return {"running": running, "queued": len(self._queue)}

    def worker_pids(self) -> list[int]:
        return [w.pid for w in self._workers if w.pid is not None]

    def workers_ready(self) -> int:
        return sum(1 for w in self._workers if w.ready)

    # -- submitting and scheduling ---------------------------------------------------------
    def submit(self, config: RunConfig, client: str, dataset_text: str) -> Run:
        """Register a run and start it, or queue it; RegistryError when the server is full."""
        if self._closing:
            raise RegistryError(503, "the server is shutting down", RETRY_AFTER_S)
        self.prune()
        mine = sum(1 for r in self._runs.values() if r.client == client and not r.done)
        if mine >= self.settings.max_runs_per_client:
            raise RegistryError(
                429,
                f"this client already has {mine} queued or running runs "
                f"(limit {self.settings.max_runs_per_client}); wait for one to finish or "
                "cancel one",
                RETRY_AFTER_S,
            )
        if self._idle_worker() is None and len(self._queue) >= self.settings.max_queued:
            raise RegistryError(
                429,
                f"the server is full: {self.counts()['running']} runs training and "
                f"{len(self._queue)} waiting (limit {self.settings.max_queued}); try again soon",
                RETRY_AFTER_S,
            )
        # A random UUID (122 bits): anyone who holds an id may watch and control that run, so
        # ids must be impossible to guess; GET /api/runs is the only deliberate listing.
        run = Run(str(uuid.uuid4()), config, client, dataset_text)
        self._runs[run.id] = run
        self._queue.append(run)
        self._dispatch()
        return run

    def _idle_worker(self) -> Worker | None:
        for worker in self._workers:
            if worker.run_id is None and worker.alive():
                return worker
        return None

    def _dispatch(self) -> None:
        while self._queue and not self._closing:
            worker = self._idle_worker()
            if worker is None:
                break
            run = self._queue.popleft()
            if not worker.send(("start", run.id, run.config)):
                self._queue.appendleft(run)
                break
            worker.run_id, run.worker, run.position = run.id, worker, None
            run.started_at = time.monotonic()
            run.status = "running"
            run.broadcast(status_message("running"))
            log.info("run %s started: %s", run.id, config_summary(run.config))
            for action in run.pending:
                worker.send(("cmd", run.id, action))
            run.pending.clear()
            run.notify()
        self._update_positions()

    def _update_positions(self) -> None:
        for place, run in enumerate(self._queue, start=1):
            if run.position != place:
                run.position = place
                run.broadcast(status_message("queued", position=place))
                run.notify()

    # -- worker messages -------------------------------------------------------------------
    def _on_message(self, worker: Worker, msg: WorkerMessage) -> None:
        kind = msg[0]
        if kind == "ready":
            worker.ready = True
        elif kind == "model":
            future = self._exports.pop(msg[1], None)
            if future is not None and not future.done():
                future.set_result(msg[2])
        elif kind in ("msg", "done"):
            run = self._runs.get(msg[1])
            if run is None or run.worker is not worker:
                return  # a message about a run the server already let go
            if kind == "msg":
                self._on_run_message(run, msg[2])
            else:
                self._on_done(run, worker, str(msg[2]), msg[3])

    def _on_run_message(self, run: Run, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "progress":
            entry = {k: v for k, v in message.items() if k != "type"}
            run.add_progress(entry)
            run.iteration = int(entry.get("iteration", run.iteration))
            run.broadcast(message)
        elif kind == "boundary":
            run.boundary_text = run.broadcast(message, frame=True)
        elif kind == "status":
            status = str(message.get("status"))
            if status in TERMINAL:
                # Held back until "done": a viewer who sees the end can fetch the model.
                run.final_status = message
                return
            if status == run.status:
                return  # "running" was already announced when the run was dispatched
            run.status = status
            run.broadcast(message)
        run.notify()

    def _on_done(self, run: Run, worker: Worker, status: str, model: dict[str, Any] | None) -> None:
        worker.run_id = None
        run.worker = None
        run.model = model
        final = run.final_status or status_message(
            status if status in TERMINAL else "failed",
            None if status == "completed" else f"the run ended as {status!r}",
        )
        self._finish(run, final)
        self._dispatch()
        if self._idle() and self._trim is None and self._loop is not None:
            self._trim = self._loop.call_later(TRIM_DELAY_S, self._trim_when_idle)

    def _idle(self) -> bool:
        return not self._queue and all(r.worker is None for r in self._runs.values())

    def _trim_when_idle(self) -> None:
        """Once nothing trains, free what a burst of runs left and return it to the OS.

        Closed WebSocket connections sit in reference cycles (the protocol and its parser
        generator) that only a full collection frees, and the next one may be far off: after
        bench/load.py ~280 of them were still alive, each with its permessage-deflate zlib
        state (~12 MiB in all). Then `release_heap` hands the freed pages back. Skipped
        while busy: a full collection is tens of milliseconds on the event loop, and freed
        blocks are about to be reused anyway.
        """
        self._trim = None
        if self._idle():
            gc.collect()
            release_heap()

    def _on_worker_exit(self, worker: Worker) -> None:
        if self._closing or self._workers[worker.index] is not worker:
            return
        run = self._runs.get(worker.run_id or "")
        if run is not None and run.worker is worker:
            run.worker = None
            self._finish(run, status_message("failed", "the worker process stopped unexpectedly"))
        log.warning("worker %d stopped unexpectedly; starting a new one", worker.index)
        self._spawn(worker.index)
        self._dispatch()

    def _finish(self, run: Run, final: dict[str, Any]) -> None:
        run.status = str(final.get("status"))
        run.message = final.get("message")
        run.position = None
        run.finished_at = time.monotonic()
        run.compact()
        run.broadcast(final)
        for viewer in run.viewers:
            viewer.finish()
        seconds = run.finished_at - (run.started_at or run.finished_at)
        log.info(
            "run %s %s after %.2fs at iteration %d/%d%s",
            run.id,
            run.status,
            seconds,
            run.iteration,
            run.config.training.iterations,
            f": {run.message}" if run.message else "",
        )
        run.notify()

    # -- control ---------------------------------------------------------------------------
    def request(self, run: Run, action: str) -> None:
        """Send a control action without waiting; RegistryError(409) when it cannot apply."""
        if run.done:
            if action == "step":
                raise RegistryError(409, f"the run is {run.status}; there is nothing to step")
            return
        if action == "step" and run.status != "paused":
            raise RegistryError(409, f"step only works while paused; the run is {run.status}")
        if run.worker is None:  # still queued
            if action == "cancel":
                self._queue.remove(run)
                self._finish(run, status_message("cancelled", "cancelled before it started"))
                self._update_positions()
            elif action == "pause":
                run.pending = ["pause"]
            elif action == "resume":
                run.pending.clear()
            return
        if (action, run.status) in {("pause", "paused"), ("resume", "running")}:
            return
        self._check_rate(run)
        run.worker.send(("cmd", run.id, action))

    def _check_rate(self, run: Run) -> None:
        if not run.allow_command(COMMANDS_PER_S):
            raise RegistryError(
                429, f"too many control requests for this run (at most {COMMANDS_PER_S}/s)", 1
            )

    async def control(self, run: Run, action: str) -> str:
        """Apply a control action and wait (briefly) until the run shows its effect."""
        before = run.iteration
        was_active = run.worker is not None
        self.request(run, action)
        if not was_active or run.done:
            return run.status
        goals = {
            "pause": lambda r: r.status == "paused",
            "resume": lambda r: r.status == "running",
            "cancel": lambda r: False,
            "step": lambda r: r.iteration > before,
        }
        goal = goals[action]
        await self._wait(run, lambda r: r.done or goal(r), CONTROL_WAIT_S)
        return run.status

    async def _wait(self, run: Run, predicate: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate(run):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.changed.wait(), remaining)
        return True

    async def export_model(self, run: Run) -> dict[str, Any] | None:
        """The run's weights now: from the worker while it trains, else the final copy."""
        worker = run.worker
        if worker is None or run.done:
            return run.model
        assert self._loop is not None
        self._check_rate(run)
        request_id = next(self._export_ids)
        future: asyncio.Future[dict[str, Any] | None] = self._loop.create_future()
        self._exports[request_id] = future
        worker.send(("export", request_id))
        try:
            model = await asyncio.wait_for(future, 10.0)
        except TimeoutError:
            model = None
        finally:
            self._exports.pop(request_id, None)
        return model if model is not None else run.model

    # -- viewers ---------------------------------------------------------------------------
    def subscribe(self, run: Run) -> Viewer:
        """A new viewer whose first item is the snapshot; RegistryError when the run is full."""
        if len(run.viewers) >= self.settings.max_viewers_per_run:
            raise RegistryError(1013, "too many viewers")
        viewer = Viewer()
        viewer.put(self.snapshot_text(run))
        if run.done:
            viewer.finish()
        else:
            run.viewers.add(viewer)
        return viewer

    def unsubscribe(self, run: Run, viewer: Viewer) -> None:
        run.viewers.discard(viewer)

    def snapshot_text(self, run: Run) -> str:
        head: dict[str, Any] = {
            "type": "snapshot",
            "id": run.id,
            "config": run.config.model_dump(mode="json"),
            "status": run.status,
            "iteration": run.iteration,
        }
        tail: dict[str, Any] = {}
        if run.message is not None:
            tail["message"] = run.message
        if run.position is not None:
            tail["position"] = run.position
        # History, dataset and frame are already JSON: splice them in rather than re-encode.
        more = f",{dumps(tail)[1:-1]}" if tail else ""
        boundary = run.boundary_text or "null"
        return (
            f'{dumps(head)[:-1]},"history":{run.history_json()}{more},'
            f'"dataset":{run.dataset_text},"boundary":{boundary}}}'
        )

    # -- retention -------------------------------------------------------------------------
    def prune(self) -> None:
        """Forget finished runs older than the retention time, or beyond the newest N."""
        now = time.monotonic()
        finished = sorted(
            (r for r in self._runs.values() if r.done and r.finished_at is not None),
            key=lambda r: r.finished_at or 0.0,
        )
        keep = self.settings.retention_count
        for index, run in enumerate(finished):
            too_old = now - (run.finished_at or now) > self.settings.retention_seconds
            if too_old or index < len(finished) - keep:
                del self._runs[run.id]

    async def _prune_forever(self) -> None:
        while True:
            await asyncio.sleep(min(30.0, self.settings.retention_seconds / 2))
            self.prune()
            self._trim_when_idle()
