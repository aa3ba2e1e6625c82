"""Redis mode, a web replica's side: the run service over Redis (chosen by create_app when
BOUNDARYLAB_REDIS_URL is set; nothing imports this module otherwise).

A replica holds no run of its own. Its RunStore is a local mirror: a run appears in it when
this replica creates it or first hears of it (a GET, a listing or a viewer for its id),
rebuilt from Redis by replaying the run's log through the same recorder.RunRecorder the
embedded server uses, and kept current by a follower task reading the run's events stream
(XREAD BLOCK) from the entry the load ended at. So a viewer on any replica gets the same
snapshot, then the same messages, as one on the replica that created the run; a viewer that
reconnects to another replica loses nothing. redis_scheduler.RedisScheduler is the
Scheduler seam over the job stream and the workers' command streams; the training happens
in `boundarylab worker` processes (redis_worker.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from redis.exceptions import RedisError

from boundarylab.engine.config import RunConfig
from boundarylab.server.errors import Busy, ShuttingDown, Unavailable
from boundarylab.server.fanout import Viewer
from boundarylab.server.pool import RETRY_AFTER_S
from boundarylab.server.redis_follow import MirrorStore
from boundarylab.server.redis_keys import (
    ACTIVE,
    JOBS,
    RUNNING,
    RUNS,
    client_key,
    listed_key,
    run_key,
)
from boundarylab.server.redis_places import SharedSocketCounts, ViewerPlaces
from boundarylab.server.redis_scheduler import RedisScheduler
from boundarylab.server.run import Run
from boundarylab.server.service import RunService
from boundarylab.server.settings import Settings

LOADS_AT_ONCE = 8  # runs a listing loads from Redis at once (each one MULTI)


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
        self.sockets = SharedSocketCounts(self.scheduler.places)
        self.viewer_places = ViewerPlaces(self.scheduler.places)
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
        self._housekeeper.prune()  # the mirror's own retention first, as runs() does
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

    async def open_viewer(self, run: Run, views: frozenset[str], address: str) -> Viewer:
        """A viewer, once its address has a place among the run's viewers over every
        replica (redis_places); the per-run total stays this replica's (fanout)."""
        cap = self.settings.max_viewers_per_address
        place = await self.viewer_places.take(run.id, address, cap)
        try:
            viewer = self.subscribe(run, views, address)
        except BaseException:  # refused (the run's own cap) or worse: the place goes back
            self.viewer_places.give_back(place)
            raise
        self.viewer_places.hold(viewer, place)
        return viewer

    def unsubscribe(self, run: Run, viewer: Viewer) -> None:
        super().unsubscribe(run, viewer)
        self.viewer_places.left(viewer)

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
