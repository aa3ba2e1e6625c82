"""Redis mode, a web replica's side: the run service over Redis (chosen by create_app when
BOUNDARYLAB_REDIS_URL is set; nothing imports this module otherwise).

A replica holds no run of its own. Its RunStore is a local mirror: a run appears in it when
this replica creates it or first hears of it (a GET or a viewer for its id), rebuilt from
Redis by replaying the run's log through the same recorder.RunRecorder the embedded server
uses, and kept current by a follower task reading the run's events stream (XREAD BLOCK)
from the entry the load ended at. So a viewer on any replica gets the same snapshot, then
the same messages, as one on the replica that created the run; a viewer that reconnects to
another replica loses nothing. RedisScheduler is the Scheduler seam over the job stream and
the workers' command streams; the training happens in `boundarylab worker` processes
(redis_worker.py).
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
from boundarylab.server.errors import Busy, ShuttingDown, Unavailable
from boundarylab.server.interfaces import RunEvents, RunStore
from boundarylab.server.pool import RETRY_AFTER_S
from boundarylab.server.redis_follow import MirrorStore, RunFollower
from boundarylab.server.redis_keys import (
    ACTIVE,
    COMMANDS_MAXLEN,
    JOBS,
    PREFIX,
    RUNNING,
    RUNS,
    Scripts,
    client_key,
    command_fields,
    connect,
    current_epoch,
    listed_key,
    live_workers,
    run_key,
    worker_key,
)
from boundarylab.server.redis_queue import PlaceTeller, places, read_queue
from boundarylab.server.redis_views import FRAMES, UNITS, VIEWS_CHANGED, ReplicaViews
from boundarylab.server.redis_worker import REAP_EVERY_S, ensure_group, reap_dead_workers
from boundarylab.server.run import Run
from boundarylab.server.service import RunService
from boundarylab.server.settings import Settings

log = logging.getLogger("boundarylab")
EXPORT_WAIT_S = 2.0
LOADS_AT_ONCE = 8  # runs a listing loads from Redis at once (each one MULTI)
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


class RedisRunService(RunService):
    """The run service of a web replica in Redis mode: the embedded rules (control, rate,
    viewers, exports) over a local mirror of runs that Redis holds."""

    scheduler: RedisScheduler

    def __init__(self, settings: Settings, client: Any = None) -> None:
        mirror = MirrorStore(
            settings.retention_seconds, settings.retention_count, settings.retention_bytes
        )
        super().__init__(settings, scheduler=RedisScheduler(settings, client), store=mirror)
        self.scheduler.store = mirror
        self._loading: dict[str, asyncio.Task[Run | None]] = {}

    async def find(self, run_id: str) -> Run | None:
        """The run from the mirror, or loaded from Redis (once, however many ask at once);
        errors.Unavailable when Redis does not answer."""
        run = self.store.get(run_id)
        if run is not None:
            return run
        task = self._loading.get(run_id)
        if task is None:
            task = asyncio.create_task(self.scheduler.load(run_id, self.store))
            self._loading[run_id] = task
            task.add_done_callback(lambda _: self._loading.pop(run_id, None))
        try:
            return await asyncio.shield(task)
        except (RedisError, OSError) as exc:
            raise Unavailable(f"Redis does not answer ({exc}); try again shortly", 1) from exc

    async def list_runs(self, client: str | None) -> list[Run]:
        """The runs `client` created (every run: None) as Redis lists them, whichever replica
        created them: each loaded into this replica's mirror (and followed while it lives)
        as a GET of it would be. Runs Redis no longer holds leave the listing."""
        key = listed_key(client)
        try:
            ids = await self.scheduler.client.zrange(key, 0, -1)
        except (RedisError, OSError) as exc:
            raise Unavailable(f"Redis does not answer ({exc}); try again shortly", 1) from exc
        at_once = asyncio.Semaphore(LOADS_AT_ONCE)

        async def load(run_id: str) -> Run | None:
            async with at_once:
                return await self.find(run_id)

        runs = await asyncio.gather(*(load(run_id) for run_id in ids))
        gone = [run_id for run_id, run in zip(ids, runs, strict=True) if run is None]
        if gone:  # expired (its keys went by themselves): a later listing need not ask
            pipe = self.scheduler.client.pipeline(transaction=False)
            for listing in {key, RUNS}:
                pipe.zrem(listing, *gone)
            with contextlib.suppress(RedisError, OSError):
                await pipe.execute()
        return [run for run in runs if run is not None and client in (None, run.client)]

    async def create(self, config: RunConfig, client: str, dataset_text: str) -> Run:
        """Admit (the client's limit and the queue bound, counted in Redis), register and
        queue the run in one step; errors.Busy when either is full."""
        if self._closing:
            raise ShuttingDown("the server is shutting down", RETRY_AFTER_S)
        self._housekeeper.prune()
        run = Run(str(uuid.uuid4()), config, client, dataset_text)
        settings = self.settings
        keys = [run_key(run.id), client_key(client), ACTIVE, RUNNING, JOBS, RUNS]
        keys.append(listed_key(client))
        args = [
            run.id,
            settings.max_runs_per_client,
            settings.max_queued,
            config.model_dump_json(),
            client,
            dataset_text,
            repr(run.created),
        ]
        try:
            verdict, *count = await self.scheduler.scripts.admit(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise Unavailable(f"Redis does not answer ({exc}); try again shortly", 1) from exc
        if verdict == "client":
            raise Busy(
                f"this client already has {count[0]} queued or running runs (limit "
                f"{settings.max_runs_per_client}); wait for one to finish or cancel one",
                RETRY_AFTER_S,
            )
        if verdict == "queue":
            raise Busy(
                f"the queue is full ({count[0]} runs waiting); try again later", RETRY_AFTER_S
            )
        self.store.add(run)
        self.scheduler.follow(run.id)
        with contextlib.suppress(RedisError, OSError):  # else the next poll tells it
            await self.scheduler.report_places()
        return run


def build(settings: Settings) -> RunService:
    """The service create_app uses when BOUNDARYLAB_REDIS_URL is set."""
    return RedisRunService(settings)


__all__ = ["RedisRunService", "RedisScheduler", "build"]
