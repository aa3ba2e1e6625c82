"""Large reads and what finished runs cost (issue 11 items 1, 7, 13), against a real server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from abuse_support import until

from boundarylab.server.run import compact_model
from serverproc import ServerProcess, running_server

READERS = """
import sys, threading, urllib.request
url, count = sys.argv[1], int(sys.argv[2])
sizes = [0] * count
def read(i):
    with urllib.request.urlopen(url, timeout=60) as response:
        sizes[i] = len(response.read())
threads = [threading.Thread(target=read, args=(i,)) for i in range(count)]
for t in threads: t.start()
for t in threads: t.join()
print(*sizes)
"""
# 20 000 progress reports: the largest history a run may have (~1.4 MB of JSON).
LONG = {"training": {"iterations": 20_000, "report_every": 1}, "view": {"max_fps": 1}}
# Workers at niceness 0 (the default 19 gives them a sliver of a CPU while other work keeps
# the cores busy); these runs may still take minutes there, so the module allows that long.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    settings = {
        "retention_bytes": 2 * 2**20,
        "max_runs_per_client": 8,
        "log_level": "warning",
        "worker_niceness": 0,
    }
    with running_server(settings=settings) as srv:
        yield srv


def _finished_runs(server: ServerProcess, config: dict, count: int = 1) -> list[str]:
    """`count` runs of `config`, started at once and waited for until they complete."""
    ids = [
        str(httpx.post(f"{server.base}/api/runs", json=config, timeout=10).json()["id"])
        for _ in range(count)
    ]

    def statuses() -> list[str]:
        runs = httpx.get(f"{server.base}/api/runs", timeout=10).json()
        return [r["status"] for r in runs if r["id"] in ids]

    ended = ("completed", "cancelled", "failed", "diverged")
    assert until(lambda: all(s in ended for s in statuses()), timeout=720, interval=0.5)
    assert statuses() == ["completed"] * count, statuses()
    return ids


@pytest.fixture(scope="module")
def long_run(server: ServerProcess) -> str:
    return _finished_runs(server, LONG)[0]


def test_many_history_reads_at_once_leave_the_server_answering(
    server: ServerProcess, long_run: str
) -> None:
    url = f"{server.base}/api/runs/{long_run}"
    with httpx.Client(timeout=60) as client:
        reference = client.get(url).json()
    assert len(reference["history"]) == 20_001 and reference["history"][-1]["iteration"]

    # The readers run in another process: 60 threads here would hold this one's GIL and
    # delay the health probe themselves.
    readers = subprocess.Popen(
        [sys.executable, "-c", READERS, url, "60"], stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(0.5)  # let the reads begin
        # The container's health check gives up after 4 s; it used to wait 4.8 s here.
        health = httpx.get(f"{server.base}/api/health", timeout=4)
        assert health.status_code == 200
        out, _ = readers.communicate(timeout=120)
    finally:
        readers.kill()
    expected = len(json.dumps(reference, separators=(",", ":")).encode())
    assert out.split() == [str(expected)] * 60


def test_finished_runs_are_forgotten_past_the_byte_budget(
    server: ServerProcess, long_run: str
) -> None:
    # The long run holds ~1.4 MB, each of these ~0.7 MB; the budget is 2 MiB: the oldest
    # (the long run) goes, though the count (200) is far off.
    half = {"training": {"iterations": 10_000, "report_every": 1}, "view": {"max_fps": 1}}
    newer = _finished_runs(server, half, count=2)
    assert httpx.get(f"{server.base}/api/runs/{long_run}", timeout=10).status_code == 404
    for run_id in newer:
        assert httpx.get(f"{server.base}/api/runs/{run_id}", timeout=10).status_code == 200


def test_a_kept_model_is_arrays_and_exports_as_it_came() -> None:
    rng = np.random.default_rng(0)
    sent = {
        "hidden_sizes": [256] * 6,
        "layers": [{"W": rng.normal(size=(256, 256)).tolist(), "b": [0.5] * 256}] * 6,
        "activation": "tanh",
    }
    kept = compact_model(sent)
    assert isinstance(kept["layers"][0]["W"], np.ndarray) and kept["hidden_sizes"] == [256] * 6
    assert sum(layer["W"].nbytes + layer["b"].nbytes for layer in kept["layers"]) < 3.2e6
    from boundarylab.server.messages import dumps, jsonable

    assert json.loads(dumps(jsonable(kept))) == sent
