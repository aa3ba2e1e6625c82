"""A Redis with persistence on (appendonly yes) restarted under a running cluster: nothing
it held is lost, so nothing ends. A run in flight trains on through the restart and ends
`completed` with exactly the embedded server's numbers (every event written once, none
missing), its viewer never dropped; a finished run is still listed and downloadable on
every replica. Redis, two replicas and one worker as processes on loopback; bounded waits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
from redis_support import RECV_S, Cluster, post, start_redis, watch_on
from test_redis_replicas import embedded_outcome, outcome
from websockets.sync.client import connect

from app_client import is_terminal, watch
from boundarylab.server.redis_keys import WORKER_TTL_MS, Scripts
from boundarylab.server.redis_keys import connect as connect_redis

pytestmark = pytest.mark.slow
PACED = {"training": {"iterations": 12000, "steps_per_second": 1000}}  # ~12 s of training
DOWN_S = 2 * WORKER_TTL_MS / 1000


@pytest.fixture(scope="module")
def persistent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("redis-aof")
    cluster = Cluster(start_redis(tmp, appendonly=True), tmp)
    try:
        cluster.start_worker()
        cluster.start_replica(workers_ready=1)
        cluster.start_replica(workers_ready=1)
        yield cluster
    finally:
        cluster.stop()


def downloads(base: str, run_id: str) -> tuple[dict, dict, str]:
    """The run's detail, model and history CSV as a replica serves them (each a 200)."""
    answers = [httpx.get(f"{base}/api/runs/{run_id}{part}", timeout=30)
               for part in ("", "/model", "/history.csv")]  # fmt: skip
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    return answers[0].json(), answers[1].json(), answers[2].text


def test_a_restart_with_persistence_loses_nothing(persistent: Cluster) -> None:
    a, b = persistent.replicas
    finished = post(a.base, {"training": {"iterations": 500}})
    assert watch_on(b.ws_base, finished).end["status"] == "completed"
    before = downloads(a.base, finished)
    live = post(a.base, PACED)
    with connect(f"{b.ws_base}/api/runs/{live}/stream", max_size=None) as ws:
        watch(lambda: ws.recv(RECV_S), lambda m: is_terminal(m) or (
            m["type"] == "progress" and m["iteration"] >= 1000))  # fmt: skip
        # Down longer than a worker's heartbeat lives: a restart that loads a large file.
        persistent.restart_redis(appendonly=True, down_s=DOWN_S)
        seen = watch(lambda: ws.recv(RECV_S))
    assert seen.end["status"] == "completed", (seen.end, persistent.logs())
    history, model = embedded_outcome(PACED)
    assert outcome(a.base, live) == (history, model)
    assert outcome(b.base, live) == (history, model)
    for replica in (a, b):
        listed = [run["id"] for run in httpx.get(f"{replica.base}/api/runs", timeout=30).json()]
        assert listed == [finished, live]
        assert downloads(replica.base, finished) == before


def test_an_event_written_again_is_kept_once(persistent: Cluster) -> None:
    """A batch Redis failed under (a restart, a network fault) may have been taken in part:
    the worker writes it again whole, and the events' numbers keep each one once."""

    async def scenario() -> tuple[list[int], int]:
        client = connect_redis(persistent.redis.url)
        try:
            await client.hset("bl:run:twice", mapping={"client": "c", "dataset": ""})
            for seq in (1, 2, 1, 2, 3):
                entry = json.dumps({"e": "message", "n": seq})
                await Scripts(client).append("twice", "c", entry, seq=seq)
            log = await client.lrange("bl:run:twice:log", 0, -1)
            return [json.loads(e)["n"] for e in log], await client.xlen("bl:run:twice:events")
        finally:
            await client.delete(*(f"bl:run:twice{p}" for p in ("", ":log", ":events")))
            await client.aclose()

    assert asyncio.run(scenario()) == ([1, 2, 3], 3)
