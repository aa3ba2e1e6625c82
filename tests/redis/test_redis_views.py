"""Viewers counted across replicas (redis_views): a run's worker makes boundary frames and
unit views only while someone, on any replica, watches; one replica's viewer leaving does
not switch off what another replica's viewer still wants; a dead replica's viewers expire.

Two replicas (apps in TestClients) and one worker (on a thread) share a real Redis. Frames
are counted in the run's events stream in Redis, where the worker writes every one. Every
wait is bounded; "no more frames" is asked as "eventually none for a second", never as
"none within a time"."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from redis_support import RedisServer, start_redis, stop_process

from app_client import TEST_HOST, read_until, strict_loads
from boundarylab.server.app import create_app
from boundarylab.server.settings import Settings
from boundarylab.server.worker import EngineRun
from modes import ThreadWorker

pytestmark = pytest.mark.slow
PACE = {"iterations": 200_000, "report_every": 100, "steps_per_second": 1000}
LONG = {"model": {"hidden_sizes": [4, 3]}, "training": PACE}
WAIT_S = 60.0


@pytest.fixture
def two_replicas(tmp_path: Path) -> Iterator[tuple[RedisServer, TestClient, TestClient]]:
    redis = start_redis(tmp_path)
    settings = Settings(redis_url=redis.url, allowed_hosts=[TEST_HOST], max_run_seconds=1e6)
    worker = ThreadWorker(settings, 4, EngineRun)
    try:
        with ExitStack() as stack:
            a = stack.enter_context(TestClient(create_app(settings)))
            b = stack.enter_context(TestClient(create_app(settings)))
            yield redis, a, b
    finally:
        worker.stop()
        stop_process(redis.proc)


def frames_made(redis: RedisServer, run_id: str, kind: str = "boundary") -> int:
    entries = redis.cli("xrange", f"bl:run:{run_id}:events", "-", "+")
    return sum(1 for line in entries.splitlines() if f'"kind": "{kind}"' in line)


def until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def steady(redis: RedisServer, run_id: str, kind: str = "boundary") -> bool:
    """No new frame for a second (the worker reads its viewers at least that often)."""
    before = frames_made(redis, run_id, kind)
    time.sleep(1.0)
    return frames_made(redis, run_id, kind) == before


def test_frames_are_made_only_while_a_viewer_on_some_replica_watches(two_replicas) -> None:
    redis, a, b = two_replicas
    run_id = a.post("/api/runs", json=LONG).json()["id"]
    until(lambda: a.get(f"/api/runs/{run_id}").json()["status"] == "running", "never ran")
    until(lambda: steady(redis, run_id), "frames went on with nobody watching")
    with b.websocket_connect(f"/api/runs/{run_id}/stream") as ws:  # a viewer on the other
        before = frames_made(redis, run_id)
        read_until(ws, lambda m: m["type"] == "boundary")
        read_until(ws, lambda m: m["type"] == "boundary")
        assert frames_made(redis, run_id) > before
    until(lambda: steady(redis, run_id), "frames went on after the viewer left")
    # A replica that died keeps its viewers only until their expiry: an expired member
    # (as a dead replica's is, WATCH_TTL_MS after its last refresh) turns nothing on.
    redis.cli("zadd", f"bl:run:{run_id}:watch", "1", "dead-replica|frames")
    assert steady(redis, run_id) and steady(redis, run_id)  # the worker read it meanwhile
    assert redis.cli("zcard", f"bl:run:{run_id}:watch") == "0"  # and dropped it
    a.post(f"/api/runs/{run_id}/cancel")


def test_one_replicas_viewer_leaving_keeps_units_for_another_replicas(two_replicas) -> None:
    redis, a, b = two_replicas
    run_id = a.post("/api/runs", json=LONG).json()["id"]
    url = f"/api/runs/{run_id}/stream?views=units"
    until(lambda: a.get(f"/api/runs/{run_id}").json()["status"] == "running", "never ran")
    with a.websocket_connect(url) as on_a:
        assert strict_loads(on_a.receive_text())["type"] == "snapshot"
        with b.websocket_connect(url) as on_b:
            read_until(on_b, lambda m: m["type"] == "units")
        # B's viewer left; A's still wants units, so they keep coming (not only the last).
        made = frames_made(redis, run_id, "units")
        until(lambda: frames_made(redis, run_id, "units") >= made + 3, "units stopped")
        live = read_until(on_a, lambda m: m["type"] == "units")[-1]
        assert live["iteration"] < PACE["iterations"]  # a live view, not the final one
    a.post(f"/api/runs/{run_id}/cancel")
