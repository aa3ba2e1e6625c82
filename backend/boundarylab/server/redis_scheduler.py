"""Redis mode, a web replica's Scheduler seam (redis_service.RedisRunService's): jobs
go on the job stream (admission is atomic in RedisRunService.create), commands on the stream
of the worker that holds the run, and each followed run's events stream is reported to
RunEvents in order (redis_follow.RunFollower). Its poll keeps the counts, the queue places,
and this replica's viewers (redis_views) and per-address places (redis_places) current.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any

from redis.exceptions import RedisError

from boundarylab.engine.config import RunConfig
from boundarylab.engine.events import UNITS_OFF, UNITS_ON
from boundarylab.engine.knobs import Retune
from boundarylab.server.errors import Unavailable
from boundarylab.server.interfaces import RunEvents, RunStore
from boundarylab.server.redis_follow import MirrorStore, RunFollower
from boundarylab.server.redis_keys import (
    ACTIVE,
    COMMANDS_MAXLEN,
    PREFIX,
    RUNNING,
    Scripts,
    command_fields,
    connect,
    current_epoch,
    live_workers,
    run_key,
    worker_key,
)
from boundarylab.server.redis_places import Places
from boundarylab.server.redis_queue import PlaceTeller, places, read_queue
from boundarylab.server.redis_views import FRAMES, UNITS, VIEWS_CHANGED, ReplicaViews
from boundarylab.server.redis_worker import REAP_EVERY_S, ensure_group, reap_dead_workers
from boundarylab.server.run import Run
from boundarylab.server.settings import Settings

log = logging.getLogger("boundarylab")
EXPORT_WAIT_S = 2.0
LOST_REASON = (
    "Redis, which held this run, restarted without its data; the run is lost. Start it again."
)


async def ask_for_model(client: Any, run_id: str) -> dict[str, Any] | None:
    """The run's weights now, from the worker that holds it (None when none answers in
    EXPORT_WAIT_S, or no worker holds it)."""
    owner = await client.hget(run_key(run_id), "owner")
    if not owner or owner == "-":
        return None
    reply = f"{PREFIX}reply:{uuid.uuid4().hex}"
    await client.xadd(
        worker_key(owner, "commands"),
        {"run": run_id, "action": "export", "reply": reply},
        maxlen=COMMANDS_MAXLEN,
        approximate=True,
    )
    got = await client.blpop([reply], timeout=EXPORT_WAIT_S)
    if not got:
        return None
    model = json.loads(got[1])
    return model if isinstance(model, dict) else None


class RedisScheduler:
    """The Scheduler seam in Redis mode: jobs go on the job stream (admission is atomic in
    RedisRunService.create), commands on the stream of the worker that holds the run, and
    each followed run's events stream is reported to RunEvents in order (RunFollower)."""

    mode = "redis"

    def __init__(self, settings: Settings, client: Any = None) -> None:
        self.settings = settings
        self.client = client or connect(settings.redis_url)
        self.scripts = Scripts(self.client, (settings.retention_count, settings.retention_bytes))
        self.size = 0
        self._ready = 0
        self._counts = {"running": 0, "queued": 0}
        self.followed = RunFollower(self.client)
        self._commands: asyncio.Queue[tuple[str, str | Retune] | None] = asyncio.Queue()
        self._stopped = False
        self._tasks: list[asyncio.Task[None]] = []
        self.epoch = ""
        self.store: MirrorStore | None = None  # the replica's mirror (RedisRunService's)
        self._places = PlaceTeller()
        self.views = ReplicaViews(uuid.uuid4().hex)
        self.places = Places(self.client, self.views.replica_id)  # per-address caps

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, events: RunEvents) -> None:
        self.followed.events = events
        await ensure_group(self.client)
        self.epoch = await current_epoch(self.client)
        await self._poll_once()
        self._tasks = [
            asyncio.create_task(self._poll()),
            asyncio.create_task(self._send()),
            asyncio.create_task(self._reap()),
        ]

    async def cancel_all(self, reason: str, timeout: float) -> None:
        """A replica stopping leaves the runs alone: they train in the workers and other
        replicas serve them. Only this replica's followers stop."""
        self.followed.stop()

    async def shutdown(self, timeout: float) -> None:
        # redis-py may turn a cancellation inside a command into a connection error, which
        # the loops below survive by design: the flag (and a None to wake the sender) is
        # what ends them for sure, so the app's shutdown never waits on one.
        self._stopped = True
        self._commands.put_nowait(None)
        self.followed.stop()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.aclose(), timeout)

    # -- runs --------------------------------------------------------------------------------
    def check_capacity(self) -> None:
        """Nothing to check before create: the queue bound is counted in Redis, atomically
        with the run's registration (redis_keys.ADMIT)."""

    def submit(self, run_id: str, config: RunConfig, *, client: str = "") -> None:
        """Never called: in Redis mode a run is admitted, registered and queued in one
        script (RedisRunService.create), so there is no separate submit to make."""
        raise TypeError("in Redis mode runs are created by RedisRunService.create")

    def control(self, run_id: str, action: str | Retune) -> None:
        """Queued for the sender task, which keeps the order of a run's commands."""
        if action in (UNITS_ON, UNITS_OFF):  # this replica's say; the worker takes the union
            self._viewers(run_id, UNITS, action == UNITS_ON)
            return
        self._commands.put_nowait((run_id, action))

    def frames(self, run_id: str, wanted: bool) -> None:
        """Whether this replica has viewers of the run; its worker makes frames while a
        replica has (redis_views)."""
        self._viewers(run_id, FRAMES, wanted)

    def _viewers(self, run_id: str, kind: str, wanted: bool) -> None:
        if self.views.set(run_id, kind, wanted):
            self._commands.put_nowait((run_id, VIEWS_CHANGED))

    async def export(self, run_id: str) -> dict[str, Any] | None:
        try:
            return await ask_for_model(self.client, run_id)
        except (RedisError, OSError) as exc:
            raise Unavailable(f"Redis does not answer ({exc}); try again shortly", 1) from exc

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def ready(self) -> int:
        return self._ready

    def worker_pids(self) -> list[int]:
        return []  # the workers are other processes, maybe on other machines

    # -- following runs (redis_follow.RunFollower) ------------------------------------------
    async def load(self, run_id: str, store: RunStore) -> Run | None:
        return await self.followed.load(run_id, store)

    def follow(self, run_id: str, after: str = "0") -> None:
        self.followed.follow(run_id, after)

    # -- background --------------------------------------------------------------------------
    async def _send(self) -> None:
        while not self._stopped:
            command = await self._commands.get()
            if command is None:
                return
            run_id, action = command
            try:
                await self._send_one(run_id, action)
            except Exception as exc:
                log.warning("command %s to run %s not sent: %s", action, run_id, exc)

    async def _send_one(self, run_id: str, action: str | Retune) -> None:
        if action == VIEWS_CHANGED:  # the run's watch set first, then the worker told
            pipe = self.client.pipeline(transaction=False)
            self.views.write(pipe, run_id)
            await pipe.execute()
        fields = command_fields(run_id, action)
        owner = await self.scripts.route(keys=[run_key(run_id)], args=[fields["action"]])
        if owner == "!cancelled":  # before any worker took it (its job is skipped then)
            client = await self.client.hget(run_key(run_id), "client") or ""
            entry = json.dumps(
                {"e": "aborted", "status": "cancelled", "reason": "cancelled before it started"}
            )
            await self.scripts.append(
                run_id, client, entry, final=True, retention_s=self.settings.retention_seconds
            )
        elif owner and owner != "-":
            await self.client.xadd(
                worker_key(owner, "commands"),
                fields,
                maxlen=COMMANDS_MAXLEN,
                approximate=True,
            )

    async def _poll_once(self) -> None:
        epoch = await current_epoch(self.client)
        if epoch != self.epoch:
            self.followed.lost(LOST_REASON)  # no worker writes to those runs again
            self.epoch = epoch
            await ensure_group(self.client)
        self._forget_ended_views()
        finished = self.store.finished_ids() if self.store is not None else []
        pipe = self.client.pipeline(transaction=False)
        pipe.scard(ACTIVE)
        pipe.scard(RUNNING)
        for run_id in finished:  # still in Redis? (the shared retention may delete them)
            pipe.exists(run_key(run_id))
        self.views.refresh(pipe)  # this replica's viewers stay counted while it lives
        await self.places.refresh(pipe)  # and its connections and viewers by address
        active, running, *rest = await pipe.execute()
        if self.store is not None:
            self.store.forget([r for r, kept in zip(finished, rest, strict=False) if not kept])
        self._counts = {"running": int(running), "queued": max(0, int(active) - int(running))}
        self.size = self._ready = await live_workers(self.client)
        if self._counts["queued"]:
            await self.report_places()

    def _forget_ended_views(self) -> None:
        for run_id in list(self.views.wanted):
            run = self.store.get(run_id) if self.store is not None else None
            if run is None or run.done:
                self.views.forget(run_id)

    async def report_places(self) -> None:
        """Tell each queued run this replica holds its place and expected wait (when they
        changed enough: redis_queue.PlaceTeller), read from the queue in Redis."""
        state = await read_queue(self.client)
        events, store = self.followed.events, self.store
        for run_id, place, wait in self._places.changes(places(state, self._ready)):
            run = store.get(run_id) if store is not None else None
            if events is not None and run is not None and run.status == "queued":
                events.queued(run_id, place, wait)

    async def _poll(self) -> None:
        while not self._stopped:
            await asyncio.sleep(0.5)
            try:
                await self._poll_once()
            except (RedisError, OSError) as exc:
                log.warning("Redis does not answer: %s", exc)
                self.size = self._ready = 0

    async def _reap(self) -> None:
        """Replicas reap too: with every worker dead, someone must still fail their runs."""
        while not self._stopped:
            await asyncio.sleep(REAP_EVERY_S)
            try:
                await reap_dead_workers(self.client, self.scripts, self.settings.retention_seconds)
            except Exception as exc:
                log.warning("reaping dead workers failed: %s", exc)
