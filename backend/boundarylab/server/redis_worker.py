"""`boundarylab worker`: a worker for Redis mode, taking runs from the job stream.

The training is the embedded server's own: worker.WorkerLoop (imported, unchanged) holds
the runs and interleaves them on a thread of this process, speaking protocol.py's typed
commands and events over two pipes, exactly as it does under pool.WorkerPool. This module
is the bridge between those pipes and Redis (the events' side is redis_events.EventWriter):

  jobs stream (consumer group) ──PEEK, room? TAKE──> claim ──> Start ──> WorkerLoop
  worker:{id}:commands ─────────XREAD BLOCK──────────> Control / Export
  WorkerLoop events ──> APPEND (run's log, latest, capped events stream) ──> replicas
                    └─> Done: final weights in the run's hash, then XACK the job

A worker takes the queue's next job only while it has CPU headroom for it
(redis_admission: the embedded pool's rule and estimates); else the job waits in its place
for a worker that has. A job stays in the group's pending list until its run has ended,
so when this process dies its runs are found there by any other worker or replica
(reap_dead_workers) and end `failed` with a message to every viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

from boundarylab.engine.config import RunConfig
from boundarylab.server.calibration import resolve
from boundarylab.server.protocol import (
    Control,
    EventReader,
    Export,
    RunLimits,
    Start,
    Stop,
    frame,
)
from boundarylab.server.redis_admission import JobTaker, claim_run
from boundarylab.server.redis_events import EventWriter
from boundarylab.server.redis_keys import (
    COMMANDS_MAXLEN,
    GROUP,
    JOBS,
    WORKERS,
    Scripts,
    beat,
    check_reachable,
    command_action,
    connect,
    current_epoch,
    run_key,
    worker_key,
)
from boundarylab.server.redis_views import VIEWS_CHANGED, WorkerViews
from boundarylab.server.settings import Settings
from boundarylab.server.worker import EngineRun, RunFactory, worker_main

log = logging.getLogger("boundarylab")
REAP_EVERY_S = 1.0
# A Redis that restarted with its data (persistence on) holds the jobs of workers whose
# heartbeat keys expired while it was down: they are alive and beat again as soon as they
# reconnect (within a second), so nobody reaps until Redis has been up this long.
REAP_GRACE_S = 10.0
VIEWS_EVERY_S = 1.0  # how soon a dead replica's expired viewers stop a run's frames
DEAD_WORKER_REASON = (
    "the worker training this run stopped answering ({worker}); the run failed. Start it again."
)


async def ensure_group(client: Any) -> None:
    """The job stream and its consumer group, created once by whoever comes first."""
    import redis

    with contextlib.suppress(redis.ResponseError):  # BUSYGROUP: it exists
        await client.xgroup_create(JOBS, GROUP, id="0", mkstream=True)


async def reap_dead_workers(client: Any, scripts: Scripts, retention_s: float) -> int:
    """End `failed` every run whose job is pending with a worker that is no longer alive
    (its heartbeat key expired), and acknowledge the job. Safe to run anywhere, any number
    of times at once: APPEND writes the end only once. Returns how many runs it ended.
    Not in the first REAP_GRACE_S of Redis's uptime (a restart is no worker's death)."""
    uptime = (await client.info("server")).get("uptime_in_seconds", REAP_GRACE_S)
    if float(uptime) < REAP_GRACE_S:
        return 0
    pending = await client.xpending_range(JOBS, GROUP, min="-", max="+", count=1000)
    ended = 0
    for item in pending:
        consumer = item["consumer"]
        if await client.exists(worker_key(consumer)):
            continue
        entries = await client.xrange(JOBS, item["message_id"], item["message_id"])
        for _, fields in entries:
            run_id = fields["run"]
            owner_client = await client.hget(run_key(run_id), "client") or ""
            reason = DEAD_WORKER_REASON.format(worker=consumer)
            entry = json.dumps({"e": "aborted", "status": "failed", "reason": reason})
            ended += await scripts.append(
                run_id, owner_client, entry, final=True, retention_s=retention_s
            )
            log.warning("run %s failed: its worker %s is gone", run_id, consumer)
        await client.xack(JOBS, GROUP, item["message_id"])
    return ended


def watch_events(
    loop: asyncio.AbstractEventLoop, fd: int, on_event: Callable[[Any], None],
    on_eof: Callable[[], None],
) -> None:  # fmt: skip
    """Read the WorkerLoop's events from the pipe `fd` as they come, on `loop`."""
    reader = EventReader()
    os.set_blocking(fd, False)

    def readable() -> None:
        eof = reader.read_available(fd)
        for event in reader.events():
            on_event(event)
        if eof:
            loop.remove_reader(fd)
            on_eof()

    loop.add_reader(fd, readable)


class LoopThread:
    """The WorkerLoop (worker.py) on a thread of this process, and the pipes to and from it."""

    def __init__(self, factory: RunFactory) -> None:
        child_commands, self._commands = multiprocessing.Pipe(duplex=False)
        self.events, child_events = multiprocessing.Pipe(duplex=False)
        self.thread = threading.Thread(
            target=worker_main,
            args=(child_commands, child_events, factory),
            kwargs={"release": True},
            name="boundarylab-worker-loop",
            daemon=True,
        )

    def send(self, command: Any) -> None:
        """Commands are small and the loop reads them every round: a blocking write."""
        os.write(self._commands.fileno(), frame(command))


class RedisWorker:
    """One `boundarylab worker` process: a WorkerLoop thread and its Redis bridge."""

    def __init__(self, settings: Settings, max_runs: int, factory: RunFactory = EngineRun) -> None:
        self.settings = settings
        self.max_runs = max_runs
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.client = connect(settings.redis_url)
        self.scripts = Scripts(self.client, (settings.retention_count, settings.retention_bytes))
        self.limits = RunLimits(
            settings.max_run_seconds, settings.max_run_cpu_seconds, settings.pause_timeout_seconds
        )
        self.runs: dict[str, tuple[str, str]] = {}  # run id -> (job id, client address)
        # Measured here, in the process that trains, before it takes a job (a burst taken on
        # the reference figures would overfill a slower machine until heartbeats came).
        calibration = resolve(settings.cpu_calibration)
        self.jobs = JobTaker(self.client, self.id, calibration)  # the next job, while it has room
        self._starting: dict[str, list[dict[str, str]]] = {}  # run id -> its early commands
        self._next_request = 0
        self.writer = EventWriter(self.client, self.scripts, self.id, settings.retention_seconds,
                                  self.runs, self._recover)  # fmt: skip
        self._stopping = asyncio.Event()
        self.watched = WorkerViews()
        self._views_changed = asyncio.Event()
        self._recovering = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.epoch = ""
        # The id of the last command read: a read that Redis failed under goes on from it, so
        # a command sent while this worker's connection was down is still seen. It starts at
        # the beginning: the stream is this worker's alone (its id is new each start).
        self.commands_read = "0-0"
        self._loop_thread = LoopThread(factory)
        self._send = self._loop_thread.send

    def _event(self, event: Any) -> None:
        self.jobs.count(event)
        self.writer.put(event)

    # -- main --------------------------------------------------------------------------------
    async def run(self) -> None:
        await ensure_group(self.client)
        self.epoch = await current_epoch(self.client)
        await self._beat(0.0)
        self._loop_thread.thread.start()
        loop = self._loop = asyncio.get_running_loop()
        watch_events(loop, self._loop_thread.events.fileno(), self._event, self._stopping.set)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._stopping.set)
        log.info("worker %s taking runs from %s (at most %d at once; %s)", self.id, JOBS,
                 self.max_runs, self.jobs.headroom.calibration)  # fmt: skip
        loops = (self._take_jobs, self._read_commands, self.writer.run, self._reap, self._views)
        tasks = [asyncio.create_task(self._guarded(body)) for body in loops]
        await self._stopping.wait()
        for task in tasks[:2] + tasks[3:]:
            task.cancel()
        self._send(Stop())  # its runs end cancelled; their Done events are written below
        deadline = time.monotonic() + 3.0
        while self._loop_thread.thread.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        while self.writer.behind() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        tasks[2].cancel()
        with contextlib.suppress(Exception):
            await self.client.delete(worker_key(self.id))
            await self.jobs.forget()
            await self.client.zrem(WORKERS, self.id)
            await self.client.aclose()

    def stop_soon(self) -> None:
        """Stop as SIGTERM does, asked from another thread (a worker the tests run in
        process, on a thread of their own)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)

    async def _guarded(self, body: Callable[[], Awaitable[None]]) -> None:
        """Run one of the bridge's loops for good: when Redis fails under it, wait until
        Redis answers again (_recover), then go on."""
        while True:
            try:
                await body()
            except (RedisError, OSError) as exc:
                log.warning("worker %s: Redis failed (%s); reconnecting", self.id, exc)
                await self._recover()

    async def _recover(self) -> None:
        """Wait (retrying every half second) until Redis answers. If it came back without
        its data (a new epoch), the runs this worker trains are lost to every viewer: they
        are cancelled here and their events dropped, and the job group is made again."""
        async with self._recovering:
            while True:
                try:
                    epoch = await current_epoch(self.client)
                    break
                except (RedisError, OSError):
                    await asyncio.sleep(0.5)
            if epoch != self.epoch:
                lost = len(self.runs)
                log.warning("worker %s: Redis lost its data; dropping %d runs", self.id, lost)
                for run_id in list(self.runs):
                    self._send(Control(run_id, "cancel"))
                self.runs.clear()
                self.jobs.headroom.held.clear()
                self.epoch = epoch
                self.commands_read = "0-0"  # the stream went with the data: a new one
                await ensure_group(self.client)

    async def _beat(self, load: float) -> None:
        """Alive for WORKER_TTL_MS more (sent on the WorkerLoop's own heartbeat, so a hung
        loop stops it too)."""
        value = json.dumps({"runs": len(self.runs), "load": round(load, 3)})
        pipe = self.client.pipeline(transaction=False)
        beat(pipe, self.id, value)
        await pipe.execute()

    async def _take_jobs(self) -> None:
        while True:
            head = await self.jobs.next(lambda: len(self.runs) >= self.max_runs)
            await self._take(head.job_id, head.run_id)

    async def _take(self, job_id: str, run_id: str) -> None:
        """Claim the run and start it. A command for it can come (a replica routes it here
        as soon as the claim is in Redis) before it is started: _command keeps those in
        `_starting`, and they go to the loop after its Start and its pending pause."""
        took = int(time.time() * 1000)
        self._starting[run_id] = []
        try:
            claimed = await claim_run(self.scripts, self.client, self.id, run_id, took,
                                      self._recover, lambda: self.epoch)  # fmt: skip
            if claimed is None:  # Redis came back without its data: the run went with it
                self.jobs.headroom.ended(run_id)
                return
            owner, config_json, client_address, pending = claimed
            if owner != self.id:  # cancelled while queued, or ended
                self.jobs.headroom.ended(run_id)
                await self.client.xack(JOBS, GROUP, job_id)
                return
            config = RunConfig.model_validate_json(config_json)
            self.runs[run_id] = (job_id, client_address or "")
            self.writer.put(("started", run_id))
            self._send(Start(run_id, config, self.limits))
            if pending == "pause":  # asked for while it was queued: it starts paused
                self._send(Control(run_id, "pause"))
        finally:
            early = self._starting.pop(run_id)
        for fields in early:
            self._command(fields)
        self._views_changed.set()  # whether anyone watches it yet

    async def _read_commands(self) -> None:
        """Every command in order, none twice, none lost to a reconnect: each read goes on
        from the last id handled (a command for a run this worker no longer holds, such as
        one that ended meanwhile, is dropped by _command)."""
        stream = worker_key(self.id, "commands")
        while True:
            got = await self.client.xread({stream: self.commands_read}, count=100, block=1000)
            for _, entries in got or []:
                for entry_id, fields in entries:
                    self.commands_read = entry_id
                    self._command(fields)

    def _command(self, fields: dict[str, str]) -> None:
        run_id, action = fields.get("run", ""), command_action(fields)
        if run_id in self._starting:  # claimed, not started yet: after its Start
            self._starting[run_id].append(fields)
            return
        if run_id not in self.runs:
            return
        if action == VIEWS_CHANGED:  # a replica's viewers of the run came or went
            self._views_changed.set()
            return
        if action == "export":
            self._next_request += 1
            self.writer.exports[self._next_request] = fields.get("reply", "")
            self._send(Export(self._next_request, run_id))
        else:
            self._send(Control(run_id, action))

    async def _views(self) -> None:
        """Frames and unit views only while a viewer on some replica wants them
        (redis_views): read each second, and at once when a replica says they changed."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._views_changed.wait(), VIEWS_EVERY_S)
            self._views_changed.clear()
            for run_id, action in await self.watched.changes(self.client, list(self.runs)):
                self._send(Control(run_id, action))

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(REAP_EVERY_S)
            await reap_dead_workers(self.client, self.scripts, self.settings.retention_seconds)


def command_stream(worker_id: str) -> str:
    return worker_key(worker_id, "commands")


def worker_main_cli(settings: Settings, max_runs: int) -> int:
    """What `boundarylab worker` runs: 2 with one line when Redis is not set or not reachable."""
    import sys

    if not settings.redis_url:
        print(
            "boundarylab worker: BOUNDARYLAB_REDIS_URL is not set (a worker takes its runs "
            "from Redis)",
            file=sys.stderr,
        )
        return 2
    problem = check_reachable(settings.redis_url)
    if problem is not None:
        print(f"boundarylab worker: {problem}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from boundarylab.server.worker import one_blas_thread

    one_blas_thread()
    asyncio.run(RedisWorker(settings, max_runs).run())
    return 0


__all__ = ["COMMANDS_MAXLEN", "RedisWorker", "command_stream", "reap_dead_workers"]
