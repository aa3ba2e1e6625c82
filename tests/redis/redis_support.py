"""Redis mode on loopback, shared by the tests here: a real redis-server (no persistence, a
directory of its own), web replicas (`boundarylab serve`) and workers (`boundarylab worker`)
as separate processes.

Locally the tests skip when redis-server is not installed; in CI (CI=true) they fail instead,
because a skipped test proves nothing (.ci/run installs Debian's redis-server)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from websockets.sync.client import connect

from app_client import TEST_HOST, Watched, is_terminal, watch
from boundarylab.server.app import create_app
from boundarylab.server.settings import Settings
from boundarylab.server.worker import EngineRun
from modes import ThreadWorker, require_redis
from serverproc import (
    RedisServer,
    ServerProcess,
    launch_redis,
    server_env,
    start_server,
)

CLI = [sys.executable, "-m", "boundarylab.cli"]
START_S = 120.0  # a busy 2-core box may take long to import the app; every wait is bounded


def start_redis(tmp: Path, port: int | None = None, appendonly: bool = False) -> RedisServer:
    """redis-server on a free port (or `port`), its files in `tmp`, no persistence (or an
    append-only file: `appendonly`); skips locally (fails in CI) when redis-server is not
    installed."""
    return launch_redis(require_redis(), tmp, port, appendonly)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@dataclass
class Cluster:
    """Redis, replicas and workers, all on loopback."""

    redis: RedisServer
    tmp: Path
    replicas: list[ServerProcess] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return server_env(redis_url=self.redis.url)

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"worker-{len(self.workers)}.log").open("ab")
        proc = subprocess.Popen([*CLI, "worker"], env=self.env(), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        log.close()
        self.workers.append(proc)
        return proc

    def start_replica(self, workers_ready: int) -> ServerProcess:
        replica = start_server([*CLI, "serve", "--port", "{port}"], env=self.env(),
                               log_path=self.tmp / f"replica-{len(self.replicas)}.log",
                               workers_ready=workers_ready, timeout=START_S)  # fmt: skip
        self.replicas.append(replica)
        return replica

    def restart_redis(self, appendonly: bool = False, down_s: float = 0.0) -> None:
        """Stop Redis (SIGTERM, as an operator's restart does) and start it on the same port
        `down_s` seconds later; its data goes with it, unless `appendonly` (then it reloads
        its append-only file)."""
        stop_process(self.redis.proc)
        time.sleep(down_s)
        self.redis = start_redis(self.tmp, self.redis.port, appendonly)

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.tmp.glob("*.log")))  # fmt: skip

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()
        for worker in self.workers:
            stop_process(worker)
        stop_process(self.redis.proc)


RECV_S = 60.0  # longest wait for one message (a busy box; a run reports far more often)


def post(base: str, config: dict[str, Any]) -> str:
    response = httpx.post(f"{base}/api/runs", json=config, timeout=30)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def watch_on(ws_base: str, run_id: str, until: Any = is_terminal) -> Watched:
    with connect(f"{ws_base}/api/runs/{run_id}/stream", max_size=None,
                 open_timeout=30) as ws:  # fmt: skip
        return watch(lambda: ws.recv(RECV_S), until)


def in_process_replicas(
    redis: RedisServer, **overrides: Any
) -> Iterator[tuple[TestClient, TestClient]]:
    """Two replicas in this process on one real Redis, and one worker on a thread (for
    `yield from` in a fixture); `overrides` are Settings fields."""
    settings = Settings(redis_url=redis.url, allowed_hosts=[TEST_HOST], max_run_seconds=1e6,
                        **overrides)  # fmt: skip
    worker = ThreadWorker(settings, 2, EngineRun)
    try:
        with ExitStack() as stack:
            yield (stack.enter_context(TestClient(create_app(settings))),
                   stack.enter_context(TestClient(create_app(settings))))  # fmt: skip
    finally:
        worker.stop()
