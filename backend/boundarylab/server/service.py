"""The run service: what the routes and the stream ask of the server's runs.

It composes the replaceable parts (interfaces.py) and holds the rules that sit between
them: admission, control requests and their rate limit, exports, viewers. Everything here
runs on the event loop thread, so no locks are needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from boundarylab.engine.config import RunConfig
from boundarylab.engine.knobs import MAX_CHANGES, Retune
from boundarylab.server.capacity import pace_error
from boundarylab.server.errors import Busy, Conflict, Invalid, ShuttingDown
from boundarylab.server.fanout import Fanout, Viewer
from boundarylab.server.housekeeping import Housekeeper
from boundarylab.server.interfaces import RunFeed, RunStore, Scheduler
from boundarylab.server.pool import RETRY_AFTER_S, WorkerPool
from boundarylab.server.recorder import RunRecorder
from boundarylab.server.run import Run
from boundarylab.server.settings import Settings
from boundarylab.server.sockets import SocketCounts
from boundarylab.server.store import MemoryRunStore
from boundarylab.server.viewers import RunViewers

CONTROL_WAIT_S = 2.0
COMMANDS_PER_S = 20
CANCEL_WAIT_S = 1.5  # at shutdown, for workers to confirm their runs ended
DRAIN_S = 0.5  # then for viewers to get what they hold: sending is quick, waiting for a CPU not


# What shows that a control action took effect on a run (given its iteration before).
EFFECTS: dict[str, Callable[[Run, int], bool]] = {
    "pause": lambda run, before: run.status == "paused",
    "resume": lambda run, before: run.status == "running",
    "cancel": lambda run, before: False,  # only the run's end shows it
    "step": lambda run, before: run.iteration > before,
}


async def wait_until(run: Run, predicate: Callable[[Run], bool], timeout: float) -> bool:
    """Wait (up to `timeout` seconds) until `predicate(run)` holds, waking on each change of
    the run; whether it did."""
    deadline = time.monotonic() + timeout
    while not predicate(run):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.changed.wait(), remaining)
    return True


class CommandRate:
    """At most `per_second` commands a second for each run: a worker reads commands between
    the ticks of all its runs, and one client should not keep it busy with them."""

    def __init__(self, per_second: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.clock = clock  # a test holds it still: whether a flood is cut must not hang on speed
        self._sent: dict[str, deque[float]] = {}

    def check(self, run_id: str) -> None:
        """Count one command for `run_id`; errors.Busy when it is one too many."""
        now = self.clock()
        sent = self._sent.setdefault(run_id, deque())
        while sent and now - sent[0] > 1.0:
            sent.popleft()
        if len(sent) >= self.per_second:
            raise Busy(f"too many control requests for this run (at most {self.per_second}/s)", 1)
        sent.append(now)

    def forget(self, run_id: str) -> None:
        self._sent.pop(run_id, None)


class RunService:
    """Runs: submitted, controlled, exported and watched. The parts default to this
    process's (MemoryRunStore, WorkerPool of `settings.worker_processes`, Fanout)."""

    def __init__(
        self,
        settings: Settings,
        *,
        scheduler: Scheduler | None = None,
        store: RunStore | None = None,
        feed: RunFeed | None = None,
    ) -> None:
        self.settings = settings
        self.scheduler = scheduler or WorkerPool.from_settings(settings)
        self.store = store or MemoryRunStore(
            settings.retention_seconds, settings.retention_count, settings.retention_bytes
        )
        self.feed = feed or Fanout()
        self.command_rate = CommandRate(COMMANDS_PER_S)
        self.viewers = RunViewers(settings, self.feed, self.scheduler)
        self.sockets = SocketCounts()  # the WebSocket connections' caps (stream.py)
        self._recorder = RunRecorder(self.store, self.feed, self._run_ended)
        self._housekeeper = Housekeeper(
            self.store, self._idle, settings.retention_seconds, self._forget
        )
        self._closing = False
        self._deadline: float | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        await self.scheduler.start(self._recorder)
        self._housekeeper.start()

    async def cancel_all(self, timeout: float, reason: str = "the server is shutting down") -> None:
        """Cancel every run, wait (up to `timeout`) for the workers to confirm, then let the
        viewers send what they hold, the final statuses among it (up to DRAIN_S: a viewer
        that does not read never drains)."""
        self._closing = True
        await self.scheduler.cancel_all(reason, timeout)
        deadline = time.monotonic() + DRAIN_S
        while self.feed.unsent() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def stop_by(self, deadline: float) -> None:
        """Shutting down has begun and must be over by `deadline` (time.monotonic())."""
        self._deadline = deadline if self._deadline is None else min(deadline, self._deadline)

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel runs, stop the workers, end the housekeeping: within `timeout` seconds, or
        by the deadline `stop_by` set."""
        self.stop_by(time.monotonic() + timeout)
        assert self._deadline is not None
        remaining = self._deadline - time.monotonic()
        await self.cancel_all(max(0.0, min(CANCEL_WAIT_S, remaining / 2)))
        await self._housekeeper.stop()
        await self.scheduler.shutdown(max(0.2, self._deadline - time.monotonic()))

    def _idle(self) -> bool:
        return not any(self.scheduler.counts().values())

    def _run_ended(self, run: Run) -> None:
        self.command_rate.forget(run.id)
        self.viewers.run_ended(run)
        self._housekeeper.run_ended()

    def _forget(self, run_ids: list[str]) -> None:
        for run_id in run_ids:
            self.command_rate.forget(run_id)

    # -- queries ---------------------------------------------------------------------------
    def get(self, run_id: str) -> Run | None:
        return self.store.get(run_id)

    def runs(self) -> list[Run]:
        """Every run held, after forgetting the expired ones."""
        self._housekeeper.prune()
        return self.store.runs()

    async def list_runs(self, client: str | None) -> list[Run]:
        """What GET /api/runs lists: the runs `client` created, or every run (None), oldest
        first (Redis mode reads them from Redis, whichever replica made them)."""
        runs = self.runs()
        return runs if client is None else [run for run in runs if run.client == client]

    def counts(self) -> dict[str, int]:
        return self.scheduler.counts()

    def workers(self) -> dict[str, Any]:
        """The workers as /api/health reports them."""
        scheduler = self.scheduler
        return {"mode": scheduler.mode, "size": scheduler.size, "ready": scheduler.ready()}

    async def find(self, run_id: str) -> Run | None:
        """The run, for a route or a viewer (Redis mode may have to load it first)."""
        return self.store.get(run_id)

    # -- runs ------------------------------------------------------------------------------
    async def create(self, config: RunConfig, client: str, dataset_text: str) -> Run:
        """What POST /api/runs calls: `submit` here; Redis mode admits in Redis."""
        return self.submit(config, client, dataset_text)

    def submit(self, config: RunConfig, client: str, dataset_text: str) -> Run:
        """Register a run and start it, or queue it; errors.Busy when the server is full."""
        if self._closing:
            raise ShuttingDown("the server is shutting down", RETRY_AFTER_S)
        self._housekeeper.prune()
        mine = self.store.active_count(client)
        limit = self.settings.max_runs_per_client
        if mine >= limit:
            raise Busy(
                f"this client already has {mine} queued or running runs (limit {limit}); "
                "wait for one to finish or cancel one",
                RETRY_AFTER_S,
            )
        self.scheduler.check_capacity()
        # A random UUID (122 bits): anyone who holds an id may watch and control that run, so
        # ids must be impossible to guess; GET /api/runs is the only deliberate listing.
        run = Run(str(uuid.uuid4()), config, client, dataset_text)
        self.store.add(run)
        self.scheduler.submit(run.id, config, client=client)
        self.viewers.frames_wanted(run)  # nobody watches yet: frames start with the first viewer
        return run

    def request(self, run: Run, action: str) -> None:
        """Send a control action without waiting; errors.Conflict when it cannot apply."""
        if run.done:
            if action == "step":
                raise Conflict(f"the run is {run.status}; there is nothing to step")
            return
        if action == "step" and run.status != "paused":
            raise Conflict(f"step only works while paused; the run is {run.status}")
        if run.status != "queued":
            if (action, run.status) in {("pause", "paused"), ("resume", "running")}:
                return
            self.command_rate.check(run.id)
        self.scheduler.control(run.id, action)

    async def control(self, run: Run, action: str) -> str:
        """Apply a control action and wait (briefly) until the run shows its effect."""
        before = run.iteration
        was_active = not run.done and run.status != "queued"
        self.request(run, action)
        if not was_active or run.done:
            return run.status
        effect = EFFECTS[action]
        await wait_until(run, lambda r: r.done or effect(r, before), CONTROL_WAIT_S)
        return run.status

    def retune(self, run: Run, change: Retune) -> None:
        """Send a change of the run's learning rate, λ or pace (engine/knobs.py) without
        waiting; it applies from the run's next step. errors.Conflict when the run is over or
        not started (a queued run: start it with the values wanted instead), or has had its
        MAX_CHANGES; errors.Invalid when the new pace cannot finish in this server's time, or (the
        scheduler's) takes more of a CPU than the run's worker has left."""
        if run.done:
            raise Conflict(f"the run is {run.status}; its settings no longer change (start a "
                           "new run)")  # fmt: skip
        if run.status == "queued":
            raise Conflict("the run has not started yet; its settings can change once it runs")
        if run.changes_asked >= MAX_CHANGES:
            raise Conflict(f"this run has had its {MAX_CHANGES} changes; start a new run")
        if change.steps_per_second is not None:
            elapsed = time.monotonic() - (run.started_at or time.monotonic())
            why = pace_error(run.config, run.iteration, elapsed, change.steps_per_second,
                             self.settings.max_run_seconds)  # fmt: skip
            if why is not None:
                raise Invalid(why, ("training", "steps_per_second"), change.steps_per_second)
        self.command_rate.check(run.id)
        self.scheduler.control(run.id, change)
        run.changes_asked += 1

    async def change(self, run: Run, change: Retune) -> bool:
        """``retune``, then wait (briefly) until the run reports it applied the change;
        False when it did not within CONTROL_WAIT_S (it may still, at its next step)."""
        before = run.change_count
        self.retune(run, change)
        await wait_until(run, lambda r: r.done or r.change_count > before, CONTROL_WAIT_S)
        return run.change_count > before

    async def export_model(self, run: Run) -> dict[str, Any] | None:
        """The run's weights now: from its worker while it trains, else the final copy."""
        if run.done or run.status == "queued":
            return run.model
        self.command_rate.check(run.id)
        model = await self.scheduler.export(run.id)
        return model if model is not None else run.model

    # -- viewers (viewers.py) --------------------------------------------------------------
    def subscribe(self, run: Run, views: frozenset[str] = frozenset(), address: str = "") -> Viewer:
        """A new viewer whose first item is the snapshot (viewers.RunViewers.subscribe)."""
        return self.viewers.subscribe(run, views, address)

    async def open_viewer(self, run: Run, views: frozenset[str], address: str) -> Viewer:
        """What the stream calls: `subscribe` here; Redis mode counts the address's viewers
        of the run over every replica first."""
        return self.subscribe(run, views, address)

    def unsubscribe(self, run: Run, viewer: Viewer) -> None:
        self.viewers.unsubscribe(run, viewer)

    def set_views(self, run: Run, viewer: Viewer, views: frozenset[str]) -> None:
        """A viewer asks for other opt-in kinds (viewers.RunViewers.set_views)."""
        self.viewers.set_views(run, viewer, views)
