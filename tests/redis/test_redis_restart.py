"""Redis restarted under a running cluster (its own, conftest.cluster is per module): runs in
flight end `failed` with a message saying why, for every viewer on every replica; replicas
and workers reconnect by themselves and the next run trains. Every wait is bounded."""

from __future__ import annotations

import time

import httpx
import pytest
from redis_support import RECV_S, Cluster, post, watch_on
from websockets.sync.client import connect

from app_client import is_terminal, watch

pytestmark = pytest.mark.slow
RECONNECT_S = 60.0


def test_a_redis_restart_ends_runs_in_flight_clearly_and_the_cluster_carries_on(
    cluster: Cluster,
) -> None:
    a, b = cluster.replicas
    run_id = post(a.base, {"training": {"iterations": 200000, "steps_per_second": 200}})
    with (connect(f"{a.ws_base}/api/runs/{run_id}/stream", max_size=None) as on_a,
          connect(f"{b.ws_base}/api/runs/{run_id}/stream", max_size=None) as on_b):  # fmt: skip
        watch(lambda: on_b.recv(RECV_S), lambda m: m["type"] == "progress")
        cluster.restart_redis()
        ends = [watch(lambda ws=ws: ws.recv(RECV_S)).end for ws in (on_a, on_b)]
    for end in ends:
        assert end["status"] == "failed", (end, cluster.logs())
        assert "Redis" in end["message"] and "restarted" in end["message"]
    # Both workers come back (the replicas see their heartbeats in the new Redis) ...
    deadline = time.monotonic() + RECONNECT_S
    while time.monotonic() < deadline:
        health = httpx.get(f"{b.base}/api/health", timeout=10).json()
        if health["workers"]["ready"] == 2:
            break
        time.sleep(0.2)
    assert health["workers"]["ready"] == 2, cluster.logs()
    # ... and a new run trains, created on one replica, watched on the other.
    fresh = post(b.base, {"training": {"iterations": 1000}})
    seen = watch_on(a.ws_base, fresh)
    assert seen.end["status"] == "completed", (seen.end, cluster.logs())
    assert is_terminal(seen.messages[-1])
