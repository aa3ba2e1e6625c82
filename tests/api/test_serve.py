"""`boundarylab serve` as a real process: logging, SIGTERM shutdown, nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import psutil
from websockets.sync.client import connect

SLOW = {"training": {"iterations": 100_000, "steps_per_second": 200.0}}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(base: str, proc: subprocess.Popen[str]) -> None:
    for _ in range(1200):  # a hang guard, not a timing: the server imports the engine first
        assert proc.poll() is None, "the server exited during start-up"
        try:
            if httpx.get(f"{base}/api/health", timeout=1).json()["workers"]["ready"] >= 1:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError("the server never became ready")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_sigterm_cancels_runs_tells_viewers_and_leaves_no_process() -> None:
    port = _free_port()
    env = {**os.environ, "BOUNDARYLAB_MAX_RUNNING": "1", "BOUNDARYLAB_LOG_LEVEL": "info"}
    code = "from boundarylab.cli import main; raise SystemExit(main())"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        run_id = httpx.post(f"{base}/api/runs", json=SLOW).json()["id"]
        descendants = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        with connect(f"ws://127.0.0.1:{port}/api/runs/{run_id}/stream") as ws:
            assert json.loads(ws.recv(timeout=30))["type"] == "snapshot"
            proc.send_signal(signal.SIGTERM)
            last = None
            for _ in range(10_000):
                message = json.loads(ws.recv(timeout=30))
                if message["type"] == "status" and message["status"] != "running":
                    last = message
                    break
        output, _ = proc.communicate(timeout=30)
        assert last is not None and last["status"] == "cancelled" and last["message"], output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
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
    cancelled = False

    async def cancel_all(self, timeout: float) -> None:
        self.cancelled = True


def test_shutdown_survives_a_close_that_crosses_the_peers_close() -> None:
    import asyncio

    import uvicorn

    from boundarylab.server.app import GracefulServer, create_app

    registry = _NoRuns()
    server = GracefulServer(uvicorn.Config(create_app(), timeout_graceful_shutdown=1), registry)
    server.servers = []  # not started: no listening sockets to close
    server.force_exit = True  # skip the wait for connections and the lifespan (not started)
    peer = _ClosingPeer()
    server.server_state.connections.add(peer)  # type: ignore[arg-type]
    asyncio.run(server.shutdown())  # raised InvalidState (exit code 1) before the fix
    assert registry.cancelled and peer.transport_closed
