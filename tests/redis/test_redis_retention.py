"""Retention over every replica (redis_keys.APPEND): the finished runs past the retention
count or bytes are deleted from Redis, oldest first, and a replica whose mirror still held
one forgets it too (MirrorStore), so every replica answers 404 alike. Bounded waits."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from redis_support import RedisServer, in_process_replicas, start_redis, stop_process

from app_client import is_terminal, read_until
from boundarylab.server.redis_keys import Scripts, connect

SHORT = {"training": {"iterations": 100}}


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path)
    yield server
    stop_process(server.proc)


def test_the_byte_budget_deletes_the_oldest_finished_runs(redis: RedisServer) -> None:
    async def scenario() -> list[str]:
        client = connect(redis.url)
        scripts = Scripts(client, keep=(100, 5000))  # 100 runs, but 5000 bytes
        try:
            for run_id in ("old", "mid", "new"):
                await client.hset(f"bl:run:{run_id}", mapping={"client": "c", "dataset": ""})
                await scripts.append(run_id, "c", json.dumps({"e": "x", "pad": "p" * 2000}))
                await scripts.append(run_id, "c", '{"e":"done","status":"completed"}',
                                     final=True)  # fmt: skip
            return [k for k in ("old", "mid", "new") if await client.exists(f"bl:run:{k}")]
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == ["mid", "new"]  # ~2 KB each: the oldest had to go
    assert redis.cli("zrange", "bl:finished", "0", "-1").split() == ["mid", "new"]
    assert not redis.cli("exists", "bl:run:old:log").endswith("1")


@pytest.fixture
def two_replicas(redis: RedisServer) -> Iterator[tuple[TestClient, TestClient]]:
    yield from in_process_replicas(redis, retention_count=1)


def _finish(client: TestClient) -> str:
    run_id = client.post("/api/runs", json=SHORT).json()["id"]
    with client.websocket_connect(f"/api/runs/{run_id}/stream") as ws:
        read_until(ws, is_terminal)
    return run_id


def test_a_run_past_the_shared_count_is_gone_from_every_replica(two_replicas) -> None:
    a, b = two_replicas
    first = _finish(b)  # B holds it in its mirror
    assert b.get(f"/api/runs/{first}").status_code == 200
    second = _finish(a)  # finished on A: with a count of 1, the first goes from Redis ...
    deadline = time.monotonic() + 60
    while b.get(f"/api/runs/{first}").status_code != 404:  # ... and from B's mirror
        assert time.monotonic() < deadline, "replica B still answers for a forgotten run"
        time.sleep(0.05)
    assert a.get(f"/api/runs/{first}").status_code == 404
    assert b.get(f"/api/runs/{second}").status_code == 200
