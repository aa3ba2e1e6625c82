"""A flood of runs at once on a small server (issue 15): they queue, then run; none is lost,
none fails, and what the queue tells each waiting run is honest. (`bench/capacity.py
--flood 200` is the full-size version.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from serverproc import ServerProcess, running_server

RUNS = 40
MAX_RUNNING = 4
SHORT = {"training": {"iterations": 200, "steps_per_second": 2000}}  # 0.1 s at its pace
TERMINAL = {"completed", "cancelled", "diverged", "failed"}
# Training runs at niceness 19: on a machine whose cores other work keeps busy, 40 runs can
# take minutes. Every wait below is bounded by this.
DEADLINE_S = 600
pytestmark = pytest.mark.timeout(DEADLINE_S + 120)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    settings = {"worker_processes": 1, "max_running": MAX_RUNNING, "max_queued": 100,
                "max_runs_per_client": 100, "log_level": "warning"}  # fmt: skip
    with running_server(settings=settings, workers_ready=1) as srv:
        yield srv


async def _follow(server: ServerProcess, client: httpx.AsyncClient) -> dict[str, Any]:
    """POST one run and watch it to its end: every queue place and wait it was told."""
    created = (await client.post(f"{server.base}/api/runs", json=SHORT)).json()
    seen: dict[str, Any] = {"id": created["id"], "told": [], "final": None}
    if created["status"] == "queued":
        seen["told"].append((created.get("position"), created.get("expected_wait_s")))
    url = f"{server.ws_base}/api/runs/{created['id']}/stream"
    async with connect(url, max_size=2**22) as ws:
        async for text in ws:
            message = json.loads(text)
            status = message.get("status") if message["type"] in ("status", "snapshot") else None
            if status == "queued" and message.get("position") is not None:
                seen["told"].append((message["position"], message.get("expected_wait_s")))
            if status in TERMINAL:
                seen["final"] = status
                break
    return seen


async def _sample_queue(server: ServerProcess, client: httpx.AsyncClient,
                        samples: list[list[dict]], stop: asyncio.Event) -> None:  # fmt: skip
    """The queue as GET /api/runs shows it, a few times a second, until `stop`."""
    while not stop.is_set():
        runs = (await client.get(f"{server.base}/api/runs")).json()
        samples.append([r for r in runs if r["status"] == "queued"])
        await asyncio.sleep(0.1)


async def _flood(server: ServerProcess) -> tuple[list[dict[str, Any]], list[list[dict]]]:
    samples: list[list[dict]] = []
    stop = asyncio.Event()
    async with httpx.AsyncClient(timeout=60) as client:
        sampler = asyncio.create_task(_sample_queue(server, client, samples, stop))
        try:
            seen = await asyncio.wait_for(
                asyncio.gather(*(_follow(server, client) for _ in range(RUNS))), DEADLINE_S
            )
        finally:
            stop.set()
            await sampler
    return seen, samples


def test_a_flood_queues_then_runs_every_run_and_tells_the_truth(server: ServerProcess) -> None:
    seen, samples = asyncio.run(_flood(server))  # bounded: _flood waits DEADLINE_S at most
    assert [s["final"] for s in seen] == ["completed"] * RUNS  # none lost, none failed
    queued = [s for s in seen if s["told"]]
    assert queued, "the flood never filled the server: nothing was queued"
    for run in queued:
        places = [place for place, _ in run["told"]]
        assert all(place >= 1 for place in places), run
        assert places == sorted(places, reverse=True), run  # a place only ever moves up
        assert all(wait is not None and wait >= 0 for _, wait in run["told"]), run
    busy = [queue for queue in samples if queue]
    assert busy, "no sample saw the queue"
    for queue in busy:  # at any moment the places are exactly 1..q, once each
        assert sorted(r["position"] for r in queue) == list(range(1, len(queue) + 1)), queue
    ids = {s["id"] for s in seen}
    runs = httpx.get(f"{server.base}/api/runs", timeout=30).json()
    assert ids <= {r["id"] for r in runs if r["status"] == "completed"}
