"""Helpers shared by the API and reliability tests: an in-process app client, strict reading
of stream messages and a snapshot-aware reader of a run's stream. Importable from any test
folder (pytest's `pythonpath`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from boundarylab.server.app import create_app
from boundarylab.server.messages import TERMINAL
from boundarylab.server.pool import WorkerPool
from boundarylab.server.service import RunService
from boundarylab.server.settings import Settings
from boundarylab.server.worker import EngineRun, RunFactory

# The Host a TestClient sends; an in-process app must answer to it.
TEST_HOST = "testserver"


def make_service(
    factory: RunFactory | None = None, mode: str = "thread", **overrides: Any
) -> RunService:
    """A RunService whose pool runs `factory` (default: the engine) in `mode` workers."""
    # max_run_seconds: the fakes' tests pace slowly on purpose (FakeRun waits 1/pace per
    # report, not per step); tests of the time bounds set it themselves.
    # cpu_calibration: the reference figures, so how many runs are admitted at once does not
    # hang on how busy the machine was when the pool measured it (a busy round measured a
    # step dear enough that an eleventh paced run queued in a test of eleven at once);
    # tests/api/test_calibration.py tests the measured and pinned figures themselves.
    defaults = {
        "max_running": 2,
        "allowed_hosts": [TEST_HOST],
        "max_run_seconds": 1e6,
        "cpu_calibration": 1.0,
    }
    settings = Settings(**{**defaults, **overrides})
    pool = WorkerPool.from_settings(settings, mode, factory or EngineRun)
    return RunService(settings, scheduler=pool)


@contextmanager
def make_client(
    factory: RunFactory | None = None, mode: str = "thread", **overrides: Any
) -> Iterator[TestClient]:
    """A TestClient (lifespan started) for an app with the given settings overrides."""
    service = make_service(factory, mode, **overrides)
    with TestClient(create_app(service.settings, service)) as client:
        yield client


def strict_loads(text: str | bytes) -> Any:
    """json.loads that refuses NaN/Infinity, as a browser's JSON.parse does."""

    def refuse(token: str) -> Any:
        raise ValueError(f"non-standard JSON constant {token}")

    return json.loads(text, parse_constant=refuse)


def read_until(ws: Any, predicate: Callable[[dict], bool], limit: int = 100_000) -> list[dict]:
    """Messages from a TestClient socket up to and including the first that satisfies
    `predicate`."""
    seen = []
    for _ in range(limit):
        message = strict_loads(ws.receive_text())
        seen.append(message)
        if predicate(message):
            return seen
    raise AssertionError("predicate never satisfied")


def is_terminal(message: dict) -> bool:
    """A final status, or a snapshot of a run that had already ended."""
    return message.get("type") in ("status", "snapshot") and message.get("status") in TERMINAL


@dataclass
class Watched:
    """What one viewer saw of a run, read the way the page reads it: the snapshot first (a
    run may have ended before the socket joined, and then everything is in there), then the
    live messages."""

    messages: list[dict]

    @property
    def snapshot(self) -> dict:
        first = self.messages[0]
        assert first["type"] == "snapshot", first
        return first

    @property
    def progress(self) -> list[dict]:
        """Every progress entry (without "type"): the snapshot's history, then live ones."""
        live = [{k: v for k, v in m.items() if k != "type"} for m in self.live("progress")]
        return [*self.snapshot["history"], *live]

    @property
    def frame(self) -> dict | None:
        """The latest boundary frame: the last live one, else the snapshot's."""
        frames = self.live("boundary")
        return frames[-1] if frames else self.snapshot["boundary"]

    @property
    def end(self) -> dict:
        """The final status message (the snapshot itself if the run had ended)."""
        assert is_terminal(self.messages[-1]), self.messages[-1]
        return self.messages[-1]

    def live(self, kind: str) -> list[dict]:
        return [m for m in self.messages[1:] if m.get("type") == kind]


def watch(
    receive: Callable[[], str | bytes], until: Callable[[dict], bool] = is_terminal
) -> Watched:
    """Read a run's stream (any client: `ws.receive_text`, `lambda: ws.recv(30)`) up to and
    including the first message `until` accepts, by default the run's end."""
    seen: list[dict] = []
    for _ in range(1_000_000):
        seen.append(strict_loads(receive()))
        if until(seen[-1]):
            return Watched(seen)
    raise AssertionError("the stream never ended")
