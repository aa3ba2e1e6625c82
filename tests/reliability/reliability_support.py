"""Helpers of the reliability tests: in-process apps, real server processes, faults.

Run factories here follow the worker protocol of boundarylab.server.worker (a callable
`(config, emit, next_command) -> handle` with `run()` and `export_model()`); passing one to
`make_client` (a WorkerPool running it) is the test-only hook for injecting faults into
workers. They live in an importable module (not conftest) so spawned worker processes can
unpickle them. Real servers come from bench/serverproc.py, as the benchmarks' do.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import httpx
from fastapi.testclient import TestClient

# Re-exported: the tests of this folder import them from here.
from app_client import is_terminal as is_terminal
from app_client import make_client as make_client
from app_client import read_until as read_until
from app_client import strict_loads as strict_loads
from app_client import watch as watch
from boundarylab.engine.config import RunConfig
from boundarylab.server import messages
from boundarylab.server.worker import EngineRun

TERMINAL = messages.TERMINAL
FAULT_SEED = 13  # training.seed that makes FaultyEngineRun raise mid-run
CRASH_SEED = 14  # training.seed that makes FaultyEngineRun kill its worker process


class InstantRun:
    """A run that completes at once: for fuzzing the HTTP layer without training load."""

    def __init__(self, config: RunConfig, emit: Callable[[dict], None], next_command: Any):
        self.config, self.emit = config, emit

    def run(self) -> str:
        total = self.config.training.iterations
        self.emit({"type": "status", "status": "running"})
        self.emit({"type": "progress", "iteration": total, "loss": 0.5, "train_accuracy": 1.0})
        self.emit({"type": "status", "status": "completed"})
        return "completed"

    def export_model(self) -> dict:
        config = self.config.model_dump(mode="json")
        return {"config": config, "iteration": self.config.training.iterations, "layers": []}


class StuckRun:
    """A run that never reads its commands again (a worker stuck in one long computation):
    only killing its process ends it."""

    def __init__(self, config: RunConfig, emit: Callable[[dict], None], next_command: Any):
        self.emit = emit

    def run(self) -> str:
        self.emit({"type": "status", "status": "running"})
        time.sleep(3600)
        return "completed"

    def export_model(self) -> dict | None:
        return None


class FaultyEngineRun(EngineRun):
    """The real engine, with faults injected by training.seed.

    FAULT_SEED: the 5th tick raises (an exception inside the run's stepping).
    CRASH_SEED: the 5th tick kills the worker process outright (as a segfault or OOM would).
    Any other seed: the plain engine.
    """

    def __init__(self, config: RunConfig, emit: Callable[[dict], None], next_command: Any):
        super().__init__(config, emit, next_command)
        self.ticks = 0
        self.seed = config.training.seed

    def tick(self) -> None:
        self.ticks += 1
        if self.ticks == 5 and self.seed == FAULT_SEED:
            raise RuntimeError("injected fault in the training loop")
        if self.ticks == 5 and self.seed == CRASH_SEED:
            os._exit(3)
        super().tick()


# An in-process TestClient, or an httpx.Client(base_url=...) for a real server.
Client = TestClient | httpx.Client


def wait_status(client: Client, run_id: str, statuses: set[str], timeout: float = 60.0) -> dict:
    """Poll GET /api/runs/{id} until its status is one of `statuses`."""
    deadline = time.monotonic() + timeout
    while True:
        detail = client.get(f"/api/runs/{run_id}").json()
        if detail["status"] in statuses:
            return detail
        assert time.monotonic() < deadline, f"run stuck in {detail['status']}"
        time.sleep(0.01)


def control(client: Client, run_id: str, action: str, until: set[str]) -> dict:
    """POST a control action (a 429 from the per-run rate limit is retried), then wait until
    the run shows one of `until`. The POST answers once the action applied or after 2 s,
    whichever comes first, and on a busy machine a worker may take longer than that."""
    for _ in range(100):
        response = client.post(f"/api/runs/{run_id}/{action}")
        if response.status_code != 429:
            assert response.status_code == 200, response.text
            return wait_status(client, run_id, until)
        time.sleep(0.05)
    raise AssertionError(f"{action} kept being refused with 429")
