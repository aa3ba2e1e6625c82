"""Redis mode end to end on loopback: Redis, two replicas, two workers (conftest.cluster).

A run created on replica A and watched on replica B gives exactly the numbers the embedded
server gives; a viewer that moves to the other replica gets the snapshot and goes on; a
worker killed mid-run fails its runs with a message to every viewer. Every wait is bounded
(a socket's recv, the HTTP timeout), and no test assumes a run is still live when a socket
joins: a run that ended first is all in the snapshot."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import httpx
import pytest
from redis_support import RECV_S, Cluster, post, watch_on
from websockets.sync.client import connect

from app_client import is_terminal, make_client, strict_loads, watch

pytestmark = pytest.mark.slow
PACED = {"training": {"iterations": 4000, "steps_per_second": 1000}}


def outcome(base: str, run_id: str) -> tuple[list[dict], dict]:
    """(history, final model) as GET answers them."""
    detail = httpx.get(f"{base}/api/runs/{run_id}", timeout=30).json()
    model = httpx.get(f"{base}/api/runs/{run_id}/model", timeout=30).json()
    return detail["history"], model


def embedded_outcome(config: dict[str, Any]) -> tuple[list[dict], dict]:
    """The same run on the embedded server (in process, its own worker pool)."""
    with make_client() as client:
        run_id = client.post("/api/runs", json=config).json()["id"]
        with client.websocket_connect(f"/api/runs/{run_id}/stream") as ws:
            watch(ws.receive_text)
        history = client.get(f"/api/runs/{run_id}").json()["history"]
        return history, client.get(f"/api/runs/{run_id}/model").json()


def test_a_run_posted_on_one_replica_and_watched_on_another_matches_the_embedded_server(
    cluster: Cluster,
) -> None:
    a, b = cluster.replicas
    run_id = post(a.base, {})  # the article's run
    seen = watch_on(b.ws_base, run_id)
    assert seen.end["status"] == "completed", (seen.end, cluster.logs())
    history, model = embedded_outcome({})
    assert seen.progress == history
    assert outcome(b.base, run_id) == (history, model)
    assert outcome(a.base, run_id) == (history, model)
    assert seen.frame is not None and seen.frame["iteration"] == 20000


def test_a_viewer_that_moves_to_the_other_replica_loses_nothing(cluster: Cluster) -> None:
    a, b = cluster.replicas
    run_id = post(a.base, PACED)

    def some_progress(message: dict) -> bool:
        return is_terminal(message) or (message["type"] == "progress"
                                        and message["iteration"] >= 1000)  # fmt: skip

    first = watch_on(a.ws_base, run_id, some_progress)
    second = watch_on(b.ws_base, run_id)
    assert second.end["status"] == "completed", (second.end, cluster.logs())
    # B's snapshot holds everything A showed, and B's stream goes on from there.
    assert second.snapshot["history"][: len(first.progress)] == first.progress
    iterations = [entry["iteration"] for entry in second.progress]
    assert iterations == sorted(set(iterations)) and iterations[-1] == 4000
    history, _ = embedded_outcome(PACED)
    assert second.progress == history


def test_an_unknown_run_is_unknown_on_every_replica(cluster: Cluster) -> None:
    for replica in cluster.replicas:
        response = httpx.get(f"{replica.base}/api/runs/no-such-run", timeout=30)
        assert response.status_code == 404


def test_control_reaches_the_worker_from_either_replica(cluster: Cluster) -> None:
    a, b = cluster.replicas
    run_id = post(a.base, {"training": {"iterations": 200000, "steps_per_second": 200}})
    with connect(f"{b.ws_base}/api/runs/{run_id}/stream", max_size=None,
                 open_timeout=30) as ws:  # fmt: skip
        watch(lambda: ws.recv(RECV_S), lambda m: m.get("status") == "running"
              or (m["type"] == "progress"))  # fmt: skip
        paused = httpx.post(f"{b.base}/api/runs/{run_id}/pause", timeout=30).json()
        assert paused["status"] == "paused"
        cancelled = httpx.post(f"{a.base}/api/runs/{run_id}/cancel", timeout=30)
        assert cancelled.status_code == 200
        end = watch(lambda: ws.recv(RECV_S)).end
    assert end["status"] == "cancelled"


def test_a_worker_killed_mid_run_fails_its_run_for_every_viewer(cluster: Cluster) -> None:
    a, b = cluster.replicas
    run_id = post(a.base, {"training": {"iterations": 200000, "steps_per_second": 200}})
    with (connect(f"{a.ws_base}/api/runs/{run_id}/stream", max_size=None) as on_a,
          connect(f"{b.ws_base}/api/runs/{run_id}/stream", max_size=None) as on_b):  # fmt: skip
        watch(lambda: on_b.recv(RECV_S), lambda m: m["type"] == "progress")
        owner = cluster.redis.cli("hget", f"bl:run:{run_id}", "owner")
        pid = int(owner.split("-")[-2])
        assert pid in [w.pid for w in cluster.workers], owner
        os.kill(pid, signal.SIGKILL)
        # The heartbeat key expires in 3 s and a reaper looks every second.
        ends = [watch(lambda ws=ws: ws.recv(30)).end for ws in (on_a, on_b)]
    for end in ends:
        assert end["status"] == "failed"
        assert "stopped answering" in end["message"]
    cluster.start_worker()  # the cluster is whole again for any test after this one


def test_messages_are_the_wire_format(cluster: Cluster) -> None:
    """Every message through Redis parses as strict JSON, as a browser reads it."""
    a, b = cluster.replicas
    run_id = post(b.base, {"training": {"iterations": 500}})
    with connect(f"{a.ws_base}/api/runs/{run_id}/stream", max_size=None) as ws:
        texts = []
        while not texts or not is_terminal(strict_loads(texts[-1])):
            texts.append(ws.recv(RECV_S))
    assert strict_loads(texts[0])["type"] == "snapshot"


def test_a_clients_run_limit_holds_across_replicas_even_at_once(cluster: Cluster) -> None:
    """Two replicas (in process here, on the cluster's Redis) take ten runs of one client at
    the same moment with a limit of 3: exactly 3 are admitted, counted atomically in Redis."""
    from boundarylab.engine.config import RunConfig
    from boundarylab.server.errors import Busy
    from boundarylab.server.redis_service import RedisRunService
    from boundarylab.server.settings import Settings

    settings = Settings(redis_url=cluster.redis.url, max_runs_per_client=3)
    slow = RunConfig.model_validate({"training": {"iterations": 200000, "steps_per_second": 50}})

    async def scenario() -> tuple[list[Any], int]:
        replicas = [RedisRunService(settings), RedisRunService(settings)]
        for replica in replicas:
            await replica.start()
        try:
            tries = [replicas[i % 2].create(slow, "203.0.113.9", "{}") for i in range(10)]
            outcomes = await asyncio.gather(*tries, return_exceptions=True)
            admitted = [o for o in outcomes if not isinstance(o, BaseException)]
            refused = [o for o in outcomes if isinstance(o, Busy)]
            assert len(admitted) + len(refused) == 10, outcomes
            for run in admitted:  # free the client's places again
                replicas[0].request(await replicas[0].find(run.id), "cancel")
            await asyncio.sleep(0.5)
            return refused, len(admitted)
        finally:
            for replica in replicas:
                await replica.shutdown(2.0)

    refused, admitted = asyncio.run(scenario())
    assert admitted == 3
    assert "limit 3" in refused[0].message
