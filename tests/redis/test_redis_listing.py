"""GET /api/runs over every replica (redis_keys' listings, RedisRunService.list_runs): a run
created on replica A is listed by replica B to the address that created it, to nobody else,
and to everyone with BOUNDARYLAB_LIST_ALL_RUNS; a run Redis no longer holds leaves every
listing. Two replicas in process on one real Redis, one worker on a thread; bounded waits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from redis_support import RedisServer, in_process_replicas, start_redis, stop_process

from app_client import is_terminal, read_until

SHORT = {"training": {"iterations": 100}}
SLOW = {"training": {"iterations": 200000, "steps_per_second": 20}}
ELSEWHERE = "203.0.113.7"


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path)
    yield server
    stop_process(server.proc)


@pytest.fixture
def two_replicas(redis: RedisServer) -> Iterator[tuple[TestClient, TestClient]]:
    yield from in_process_replicas(redis)


@pytest.fixture
def two_replicas_listing_all(redis: RedisServer) -> Iterator[tuple[TestClient, TestClient]]:
    yield from in_process_replicas(redis, list_all_runs=True)


def from_address(client: TestClient, host: str) -> TestClient:
    """Requests to `client`'s app (on its event loop, where its Redis client lives) from
    another client address."""
    other = TestClient(client.app, client=(host, 50000))
    other.portal = client.portal
    return other


def finish(client: TestClient) -> str:
    run_id = client.post("/api/runs", json=SHORT).json()["id"]
    with client.websocket_connect(f"/api/runs/{run_id}/stream") as ws:
        read_until(ws, is_terminal)
    return run_id


def listed(client: TestClient) -> dict[str, str]:
    """Run id -> status, as GET /api/runs lists them."""
    response = client.get("/api/runs")
    assert response.status_code == 200, response.text
    return {run["id"]: run["status"] for run in response.json()}


def test_a_run_created_on_one_replica_is_listed_by_another_to_its_address_only(
    two_replicas: tuple[TestClient, TestClient],
) -> None:
    a, b = two_replicas
    done = finish(a)
    live = a.post("/api/runs", json=SLOW).json()["id"]
    theirs = from_address(a, ELSEWHERE).post("/api/runs", json=SHORT).json()["id"]
    on_b = listed(b)
    assert list(on_b) == [done, live]  # oldest first, as the embedded server lists them
    assert on_b[done] == "completed" and on_b[live] in ("queued", "running")
    assert list(listed(from_address(b, ELSEWHERE))) == [theirs]
    summary = next(r for r in b.get("/api/runs").json() if r["id"] == done)
    assert summary == next(r for r in a.get("/api/runs").json() if r["id"] == done)
    assert b.post(f"/api/runs/{live}/cancel").status_code == 200


def test_with_list_all_runs_every_replica_lists_every_run(
    two_replicas_listing_all: tuple[TestClient, TestClient],
) -> None:
    a, b = two_replicas_listing_all
    mine = finish(a)
    theirs = from_address(a, ELSEWHERE).post("/api/runs", json=SHORT).json()["id"]
    assert list(listed(from_address(b, "198.51.100.1"))) == [mine, theirs]


def test_a_run_redis_no_longer_holds_leaves_every_listing(
    redis: RedisServer, two_replicas: tuple[TestClient, TestClient]
) -> None:
    a, b = two_replicas
    gone, kept = finish(a), finish(a)
    assert list(listed(b)) == [gone, kept]
    # Its keys expire by themselves after the retention time: as if that time had passed.
    for part in ("", ":log", ":latest", ":events"):
        redis.cli("del", f"bl:run:{gone}{part}")
    deadline = time.monotonic() + 30
    while gone in listed(b):  # B's mirror forgets it at its next poll (every 0.5 s)
        assert time.monotonic() < deadline, "replica B still lists a run Redis forgot"
        time.sleep(0.05)
    assert list(listed(a)) == [kept]
    assert redis.cli("zrange", "bl:runs:testclient", "0", "-1").split() == [kept]
    assert redis.cli("zrange", "bl:runs", "0", "-1").split() == [kept]
