"""A worker loses no command (issue 17). Cut off from Redis: the worker (on a thread) reaches
Redis through a TCP proxy that the test cuts, the replica (in process) reaches it directly;
a pause sent while the worker's connections are down waits in its command stream, and the
worker, once it reconnects, reads on from the last command it handled, so the run pauses.
And a command that reaches the worker between its claim of a run and the run's start is
kept for the run. Every wait is bounded."""

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
from redis import exceptions as redis_exceptions

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


def one_run_reaches(settings: Settings, worker: ThreadWorker, status: str) -> str:
    """POST one SLOW run through a replica (in process) and wait until it is `status`;
    then stop the replica and `worker`. Returns the run's id."""

    async def scenario() -> str:
        service = RedisRunService(settings)
        await service.start()
        try:
            run = await service.create(SLOW, "203.0.113.5", "{}")
            await until(lambda: run.status == status or run.done, lambda: run.status)
            assert run.status == status, run.message
            return run.id
        finally:
            await service.shutdown(2.0)

    try:
        return asyncio.run(scenario())
    finally:
        worker.stop()


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


def test_a_command_read_before_its_run_has_started_is_kept_for_it(redis: RedisServer) -> None:
    settings = Settings(redis_url=redis.url, max_run_seconds=1e6)
    worker = ThreadWorker(settings, 2, EngineRun)
    bridge = worker.worker
    real_claim = bridge.scripts.claim

    async def claim_then_pause(keys: list[str], args: list[object]) -> object:
        """The claim, then what a replica may do at once: send the run's owner a pause,
        which the worker's command loop reads before the claim's caller goes on."""
        owner = await real_claim(keys=keys, args=args)
        before = bridge.commands_read
        await bridge.client.xadd(redis_worker.command_stream(bridge.id),
                                 {"run": str(args[1]), "action": "pause"})  # fmt: skip
        deadline = time.monotonic() + WAIT_S
        while bridge.commands_read == before:
            assert time.monotonic() < deadline, "the worker never read the pause"
            await asyncio.sleep(0.01)
        return owner

    bridge.scripts.claim = claim_then_pause  # before any job: the worker has claimed none
    one_run_reaches(settings, worker, "paused")


def test_a_run_whose_claim_meets_a_redis_failure_still_starts(redis: RedisServer) -> None:
    # The claim takes effect in Redis but its answer is lost (the connection drops): the run
    # is this worker's, and no other worker will ever take its job, so the worker must wait
    # Redis out and start it rather than leave it claimed and never started.
    settings = Settings(redis_url=redis.url, max_run_seconds=1e6)
    worker = ThreadWorker(settings, 2, EngineRun)
    bridge = worker.worker
    real_claim = bridge.scripts.claim
    failed: list[object] = []

    async def claim_then_fail_once(keys: list[str], args: list[object]) -> object:
        owner = await real_claim(keys=keys, args=args)
        if not failed:
            failed.append(args[1])
            raise redis_exceptions.ConnectionError("the answer to the claim was lost")
        return owner

    bridge.scripts.claim = claim_then_fail_once
    run_id = one_run_reaches(settings, worker, "running")
    assert failed == [run_id]
