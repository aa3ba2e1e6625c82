"""`boundarylab serve` as a real process: logging, SIGTERM shutdown, nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from websockets.sync.client import connect

from serverproc import start_server

SLOW = {"training": {"iterations": 100_000, "steps_per_second": 200.0}}
CLI = [sys.executable, "-c", "from boundarylab.cli import main; raise SystemExit(main())"]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_sigterm_cancels_runs_tells_viewers_and_leaves_no_process(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    settings = {"max_running": 1, "log_level": "info"}
    server = start_server(
        [*CLI, "serve", "--port", "{port}"], settings=settings, log_path=log, workers_ready=1
    )
    proc = server.proc
    try:
        run_id = httpx.post(f"{server.base}/api/runs", json=SLOW).json()["id"]
        descendants = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        with connect(f"{server.ws_base}/api/runs/{run_id}/stream") as ws:
            assert json.loads(ws.recv(timeout=30))["type"] == "snapshot"
            proc.send_signal(signal.SIGTERM)
            last = None
            for _ in range(10_000):
                message = json.loads(ws.recv(timeout=30))
                if message["type"] == "status" and message["status"] != "running":
                    last = message
                    break
        proc.wait(timeout=30)
        output = log.read_text()
        assert last is not None and last["status"] == "cancelled" and last["message"], output
    finally:
        server.stop()
    # uvicorn re-raises the signal once shut down, so the exit reads as "terminated".
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert "Traceback" not in output, output
    # The worker is joined before the server exits; multiprocessing's forkserver and
    # resource tracker end when they see the server's end of their pipes close.
    for _ in range(200):
        left = [pid for pid in descendants if _alive(pid)]
        if not left:
            break
        time.sleep(0.05)
    assert descendants and not left, [psutil.Process(pid).cmdline() for pid in left]
    assert f"run {run_id} started: moons n=300 hidden=[3]" in output
    assert f"run {run_id} cancelled after" in output


class _ClosingPeer:
    """A WebSocket connection whose peer has just sent its own close: uvicorn's sans-I/O
    protocol then raises InvalidState from shutdown()."""

    def __init__(self) -> None:
        self.transport_closed = False
        self.transport = self

    def close(self) -> None:  # the transport's close
        self.transport_closed = True

    def shutdown(self) -> None:
        from websockets.exceptions import InvalidState

        raise InvalidState("connection is closing")


class _NoRuns:
    """A run service with nothing to cancel."""

    cancelled = False
    deadline: float | None = None

    def stop_by(self, deadline: float) -> None:
        self.deadline = deadline

    async def cancel_all(self, timeout: float) -> None:
        self.cancelled = True


def test_shutdown_survives_a_close_that_crosses_the_peers_close() -> None:
    import asyncio

    import uvicorn

    from boundarylab.server.app import create_app
    from boundarylab.server.serving import GracefulServer

    service = _NoRuns()
    config = uvicorn.Config(create_app(), timeout_graceful_shutdown=1)
    server = GracefulServer(config, service)  # type: ignore[arg-type]
    server.servers = []  # not started: no listening sockets to close
    server.force_exit = True  # skip the wait for connections and the lifespan (not started)
    peer = _ClosingPeer()
    server.server_state.connections.add(peer)  # type: ignore[arg-type]
    asyncio.run(server.shutdown())  # raised InvalidState (exit code 1) before the fix
    assert service.cancelled and service.deadline is not None and peer.transport_closed


BOUNDARYLAB = Path(sys.executable).with_name("boundarylab")  # the installed console script


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("BOUNDARYLAB_PORT", "abc", "an integer from 1 to 65535"),
        ("BOUNDARYLAB_MAX_BODY_BYTES", "1000", "an integer of at least 1024"),
        ("BOUNDARYLAB_ALLOWED_ORIGINS", "http://x", "a JSON list"),
        ("BOUNDARYLAB_LOG_LEVEL", "loud", "one of critical, error, warning, info, debug"),
        ("BOUNDARYLAB_ALLOWED_HOSTS", '["a*b"]', "a wildcard must be"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(variable: str, value: str, allowed: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNDARYLAB_")}
    done = subprocess.run(
        [str(BOUNDARYLAB), "serve"], env={**env, variable: value},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert variable in lines[0] and value in lines[0] and allowed in lines[0], lines[0]
    assert done.stdout == ""


@pytest.mark.parametrize("port", ["99999", "0", "-1", "http"])
def test_serve_refuses_a_port_out_of_range(port: str) -> None:
    done = subprocess.run(
        [str(BOUNDARYLAB), "serve", "--port", port], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "--port" in done.stderr and "1 to 65535" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
