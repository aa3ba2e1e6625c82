"""Commands to a run still in the queue, in Redis mode (a Redis with no worker yet, and a
replica in process): cancel ends it at once, pause is kept so the run starts paused when a
worker takes it, as in the embedded pool. Every wait is bounded."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis_support import CLI, RedisServer, start_redis, stop_process

from boundarylab.engine.config import RunConfig
from boundarylab.server.redis_service import RedisRunService
from boundarylab.server.run import Run
from boundarylab.server.settings import Settings
from serverproc import server_env

SLOW = RunConfig.model_validate({"training": {"iterations": 200000, "steps_per_second": 50}})


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path)
    yield server
    stop_process(server.proc)


async def until(run: Run, predicate: Callable[[Run], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate(run):
        assert time.monotonic() < deadline, (run.status, run.message)
        await asyncio.sleep(0.05)


def test_queued_runs_take_cancel_at_once_and_start_paused_when_asked(
    redis: RedisServer, tmp_path: Path
) -> None:
    async def scenario() -> None:
        service = RedisRunService(Settings(redis_url=redis.url))
        await service.start()
        worker = None
        try:
            kept, dropped = [await service.create(SLOW, "203.0.113.5", "{}") for _ in range(2)]
            assert kept.status == dropped.status == "queued"  # no worker yet
            service.request(kept, "pause")
            service.request(dropped, "cancel")
            await until(dropped, lambda r: r.done)
            assert (dropped.status, dropped.message) == ("cancelled", "cancelled before it started")
            assert redis.cli("hget", f"bl:run:{kept.id}", "pending") == "pause"
            log = (tmp_path / "worker.log").open("ab")
            worker = subprocess.Popen([*CLI, "worker"], env=server_env(redis_url=redis.url),
                                      stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
            log.close()
            await until(kept, lambda r: r.status == "paused" or r.done)
            assert kept.status == "paused"
            service.request(kept, "cancel")
            await until(kept, lambda r: r.done)
            assert kept.status == "cancelled"
            # The cancelled queued run's job was skipped, never trained.
            assert redis.cli("hget", f"bl:run:{dropped.id}", "owner") == "-"
        finally:
            await service.shutdown(2.0)
            if worker is not None:
                stop_process(worker)

    asyncio.run(scenario())


def test_queue_places_are_the_embedded_estimate_told_only_when_they_move() -> None:
    """Pure: the places and waits of redis_queue (what a replica tells a queued run), and
    the hysteresis that keeps a viewer's countdown from jumping with every estimate."""
    from boundarylab.server.capacity import remaining_seconds
    from boundarylab.server.redis_queue import PlaceTeller, QueueState, places

    short = RunConfig.model_validate({"training": {"iterations": 1000, "steps_per_second": 100}})
    state = QueueState(waiting=[("a", short), ("b", short)], running=[(short, 4.0, 400)])
    # One worker, one run 4 s and 400 steps into its 10 s: "a" waits 6 s, "b" another 10.
    assert remaining_seconds(short, 0) == 10.0
    assert places(state, workers=1) == [("a", 1, 6), ("b", 2, 16)]
    # At half its pace (200 steps in 4 s) the machine is twice as slow: twice the waits.
    slow = QueueState(waiting=state.waiting, running=[(short, 4.0, 200)])
    assert places(slow, workers=1) == [("a", 1, 16), ("b", 2, 36)]
    teller = PlaceTeller()
    assert teller.changes([("a", 1, 6), ("b", 2, 16)]) == [("a", 1, 6), ("b", 2, 16)]
    assert teller.changes([("a", 1, 5), ("b", 2, 15)]) == []  # under max(2 s, 20 %)
    assert teller.changes([("b", 1, 5)]) == [("b", 1, 5)]  # "a" left: "b" moved up
    assert teller.changes([("b", 1, 1)]) == [("b", 1, 1)]  # a wait that moved 4 s


def test_the_queue_read_from_redis_has_each_running_runs_steps(redis: RedisServer) -> None:
    """read_queue takes a running run's steps from the newest event in its log, so the
    waits follow the rate it makes (half its pace here: twice the pace estimate)."""
    from boundarylab.server.redis_keys import connect
    from boundarylab.server.redis_queue import places, read_queue

    short = RunConfig.model_validate({"training": {"iterations": 1000, "steps_per_second": 100}})
    redis.cli("xgroup", "create", "bl:jobs", "workers", "$", "mkstream")
    claimed = str(int(time.time() * 1000) - 4000)  # a worker took it 4 s ago
    redis.cli("hset", "bl:run:r1", "config", short.model_dump_json(), "claimed", claimed)
    redis.cli("sadd", "bl:running", "r1")
    for iteration in (100, 200):
        entry = f'{{"e": "message", "kind": "progress", "text": "{{}}", "iteration": {iteration}}}'
        redis.cli("rpush", "bl:run:r1:log", entry)
    redis.cli("hset", "bl:run:q1", "config", short.model_dump_json())
    redis.cli("xadd", "bl:jobs", "*", "run", "q1")

    async def read() -> tuple[float, list[tuple[str, int, float]]]:
        client = connect(redis.url)
        try:
            state = await read_queue(client)
        finally:
            await client.aclose()
        [(config, elapsed, steps)] = state.running
        # 4 s, and however long a busy box took between writing `claimed` and this read
        assert (config, steps) == (short, 200) and 4 <= elapsed < 4 + 30
        assert state.waiting == [("q1", short)]
        return elapsed, places(state, workers=1)

    elapsed, [(run_id, place, wait)] = asyncio.run(read())
    # 800 steps left at the rate it made (200 steps in `elapsed`: 50/s when that is 4 s)
    assert (run_id, place) == ("q1", 1) and wait == pytest.approx(800 / (200 / elapsed), abs=1)
