"""The same behaviour tests against both server modes: an in-process app client for the
embedded server (app_client.make_client) or for a Redis-mode replica with a worker.

In Redis mode the replica is the app the TestClient drives (create_app with
BOUNDARYLAB_REDIS_URL set, so app.build_service picks redis_service), and the worker is a
redis_worker.RedisWorker on a thread of this process, so it can train the tests' fake runs
as the embedded thread workers do. Both talk through a real redis-server (started once per
session by the fixtures, no persistence), emptied before each client so tests do not see
each other's runs. Importable from any test folder (pytest's `pythonpath`).

Locally Redis mode skips when redis-server is not installed; in CI (CI=true) it fails
instead, because a skipped test proves nothing (.ci/run installs Debian's redis-server)."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app_client import TEST_HOST, make_client
from boundarylab.server.app import create_app
from boundarylab.server.settings import Settings
from boundarylab.server.worker import EngineRun, RunFactory
from serverproc import RedisServer, launch_redis

MODES = ["embedded", "redis"]
READY_S = 60.0  # a busy 2-core box; every wait is bounded
ClientFactory = Callable[..., AbstractContextManager[TestClient]]


def require_redis() -> str:
    """redis-server's path; skips locally (fails in CI) when it is not installed."""
    binary = shutil.which("redis-server")
    if binary is not None:
        return binary
    hint = "redis-server not found: install it (apt-get install redis-server) for Redis mode"
    if os.environ.get("CI") == "true":
        pytest.fail(hint)
    pytest.skip(hint)


def start_redis(tmp: Path) -> RedisServer:
    return launch_redis(require_redis(), tmp)


class ThreadWorker:
    """A `boundarylab worker` (redis_worker.RedisWorker) on a thread of this process, with
    its own event loop, training runs made by `factory`."""

    def __init__(self, settings: Settings, max_runs: int, factory: RunFactory) -> None:
        from boundarylab.server.redis_worker import RedisWorker

        self.worker = RedisWorker(settings, max_runs, factory)
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="test-redis-worker", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        try:
            asyncio.run(self.worker.run())
        except BaseException as exc:  # reported by stop(): a test must not pass over it
            self.failure = exc

    def stop(self) -> None:
        deadline = time.monotonic() + READY_S
        while self.worker._loop is None and self.thread.is_alive():  # not started yet
            assert time.monotonic() < deadline, "the test worker never started"
            time.sleep(0.01)
        self.worker.stop_soon()
        self.thread.join(READY_S)
        assert not self.thread.is_alive(), "the test worker did not stop"
        assert self.failure is None, self.failure


def _wait_for_worker(redis: RedisServer) -> None:
    deadline = time.monotonic() + READY_S
    while redis.cli("zcard", "bl:workers") in ("0", ""):
        assert time.monotonic() < deadline, "the test worker never said it was alive"
        time.sleep(0.02)


@contextmanager
def make_redis_client(
    redis: RedisServer, factory: RunFactory | None = None, **overrides: Any
) -> Iterator[TestClient]:
    """A Redis-mode replica (TestClient, lifespan started) and one worker on a thread, on an
    emptied `redis`. Takes make_client's settings; `max_running` is the worker's `--runs`."""
    redis.cli("flushall")
    defaults = {"max_running": 2, "allowed_hosts": [TEST_HOST], "max_run_seconds": 1e6}
    settings = Settings(**{**defaults, **overrides, "redis_url": redis.url})
    worker = ThreadWorker(settings, settings.max_running, factory or EngineRun)
    try:
        _wait_for_worker(redis)
        with TestClient(create_app(settings)) as client:
            yield client
    finally:
        worker.stop()


def client_factory(mode: str, request: pytest.FixtureRequest) -> ClientFactory:
    """make_client's signature (factory, **settings) for `mode`; Redis mode asks `request`
    for the session's `redis_server` fixture."""
    if mode == "embedded":
        return make_client
    redis = request.getfixturevalue("redis_server")

    def redis_client(factory: RunFactory | None = None, **overrides: Any) -> Any:
        overrides.pop("mode", None)  # the embedded pool's thread/process choice
        return make_redis_client(redis, factory, **overrides)

    return redis_client
