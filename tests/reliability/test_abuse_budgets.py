"""Runs bounded in time and what finished runs cost (issue 11 items 2 and 13), against a
real server process. Two loopback addresses (127.0.0.x) are two people."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest
from abuse_support import http_from, until

from serverproc import ServerProcess, running_server

# Workers at niceness 0: these runs must end for the checks to start, and at the default 19
# they get a sliver of a CPU while other work keeps the cores busy.
SETTINGS = {
    "pause_timeout_seconds": 3,
    "max_run_seconds": 1200,
    "log_level": "warning",
    "worker_niceness": 0,
}
ENDED = ("completed", "cancelled", "failed", "diverged")
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with running_server(settings=SETTINGS, workers_ready=2) as srv:
        yield srv


def _post(server: ServerProcess, body: dict[str, Any], address: str = "127.0.0.1") -> Any:
    with http_from(address) as client:
        return client.post(f"{server.base}/api/runs", json=body)


def _detail(server: ServerProcess, run_id: str) -> dict[str, Any]:
    return httpx.get(f"{server.base}/api/runs/{run_id}", timeout=10).json()  # type: ignore[no-any-return]


def _ended(server: ServerProcess, run_id: str, timeout: float = 300) -> dict[str, Any]:
    assert until(lambda: _detail(server, run_id)["status"] in ENDED, timeout, 0.2), run_id
    return _detail(server, run_id)


def _loc_messages(answer: httpx.Response) -> dict[tuple[str, ...], str]:
    assert answer.status_code == 422, answer.text
    return {tuple(e["loc"]): e["msg"] for e in answer.json()["detail"]}


def test_runs_that_would_hold_a_worker_for_ages_are_refused_at_submit(
    server: ServerProcess,
) -> None:
    crawl = {"training": {"iterations": 200, "steps_per_second": 0.000001}}
    assert ("body", "training", "steps_per_second") in _loc_messages(_post(server, crawl))
    corner = {
        "dataset": {"n_samples": 5000},
        "model": {"hidden_sizes": [256] * 6},
        "training": {"iterations": 200_000},
        "view": {"resolution": 300, "max_fps": 60},
    }
    refused = _loc_messages(_post(server, corner))
    assert "CPU-seconds" in refused[("body", "training", "iterations")]
    assert httpx.get(f"{server.base}/api/health", timeout=10).json()["runs"]["running"] == 0


def test_a_paused_run_and_a_slow_one_do_not_lock_a_third_person_out(
    server: ServerProcess,
) -> None:
    slow = {"training": {"iterations": 200_000, "report_every": 100, "steps_per_second": 200}}
    paused = _post(server, slow, "127.0.0.2").json()["id"]
    crawling = _post(server, slow, "127.0.0.3").json()["id"]
    try:
        assert until(lambda: _detail(server, paused)["status"] == "running", 60)
        with http_from("127.0.0.2") as owner:
            assert owner.post(f"{server.base}/api/runs/{paused}/pause").status_code == 200
        third = _post(server, {"training": {"iterations": 200}}, "127.0.0.4").json()["id"]
        assert _ended(server, third)["status"] == "completed"
        # The paused run is released after the pause timeout, its viewers told why.
        released = _ended(server, paused, timeout=60)
        assert released["status"] == "cancelled" and "paused" in released["message"]
    finally:
        for run_id in (paused, crawling):
            httpx.post(f"{server.base}/api/runs/{run_id}/cancel", timeout=10)


def test_finished_runs_of_big_networks_hold_their_weights_as_arrays(
    server: ServerProcess,
) -> None:
    """210 tiny runs of 6x256 took the server from 145 to 2716 MiB (12.9 MiB each, the
    weights as nested lists); as arrays a run's weights are 3.1 MB."""
    big = {
        "dataset": {"n_samples": 50},
        "model": {"hidden_sizes": [256] * 6},
        "training": {"iterations": 1},
        "view": {"resolution": 20},
    }
    process = psutil.Process(server.proc.pid)
    before = process.memory_info().rss
    ids: list[str] = []
    for batch in range(3):  # 30 runs, 10 at a time (the per-client cap is 16)
        started = [_post(server, big, f"127.0.1.{batch + 1}").json()["id"] for _ in range(10)]
        for run_id in started:
            assert _ended(server, run_id)["status"] == "completed"
        ids += started
    grown_mib = (process.memory_info().rss - before) / 2**20
    # As lists: 30 x 12.9 = 387 MiB; as arrays 30 x 3 = 90 MiB, plus allocator slack.
    assert grown_mib < 200, grown_mib
    model = httpx.get(f"{server.base}/api/runs/{ids[0]}/model", timeout=30).json()
    assert len(model["layers"]) == 7 and len(model["layers"][0]["W"]) == 2
