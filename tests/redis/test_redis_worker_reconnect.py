"""A worker cut off from Redis loses no command (issue 17): the worker (on a thread) reaches
Redis through a TCP proxy that the test cuts, the replica (in process) reaches it directly.
A pause sent while the worker's connections are down waits in its command stream, and the
worker, once it reconnects, reads on from the last command it handled, so the run pauses.
Every wait is bounded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from balancer import Balancer
from redis_support import RedisServer, start_redis, stop_process

from boundarylab.engine.config import RunConfig
from boundarylab.server import redis_worker
from boundarylab.server.redis_service import RedisRunService
from boundarylab.server.settings import Settings
from boundarylab.server.worker import EngineRun
from modes import ThreadWorker

SLOW = RunConfig.model_validate({"training": {"iterations": 200000, "steps_per_second": 50}})
WAIT_S = 60.0  # a busy 2-core box


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path)
    yield server
    stop_process(server.proc)


async def until(predicate: Callable[[], bool], what: Callable[[], object]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, what()
        await asyncio.sleep(0.05)


def test_a_pause_sent_while_the_worker_is_cut_off_pauses_the_run_once_it_reconnects(
    redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cut is a network fault, not the worker's death: nobody reaps its run meanwhile
    # (its heartbeat key may expire while it cannot reach Redis).
    monkeypatch.setattr(redis_worker, "REAP_GRACE_S", 1e9)
    proxy = Balancer([redis.port])
    settings = Settings(redis_url=f"redis://127.0.0.1:{proxy.port}/0", max_run_seconds=1e6)
    worker = ThreadWorker(settings, 2, EngineRun)

    async def scenario() -> None:
        service = RedisRunService(Settings(redis_url=redis.url, max_run_seconds=1e6))
        await service.start()
        try:
            run = await service.create(SLOW, "203.0.113.5", "{}")
            await until(lambda: run.status == "running" or run.done, lambda: run.status)
            assert run.status == "running", run.message
            commands = redis_worker.command_stream(worker.worker.id)
            assert redis.cli("xlen", commands) == "0"  # nothing read yet: a first command
            proxy.cut()
            service.request(run, "pause")
            await until(lambda: redis.cli("xlen", commands) == "1", lambda: "pause not sent")
            await asyncio.sleep(1.0)  # the worker meets the cut (it retries every 0.5 s)
            proxy.restore()
            await until(lambda: run.status != "running", lambda: ("never paused", run.status))
            assert run.status == "paused", run.message
        finally:
            await service.shutdown(2.0)

    try:
        asyncio.run(scenario())
    finally:
        proxy.restore()
        worker.stop()
        proxy.stop()
