"""A real `boundarylab` server on a free loopback port, for the benchmarks in this folder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    max_running: int, settings: dict[str, str] | None = None, ready_within: float = 90.0
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server with these BOUNDARYLAB_ settings (names without the prefix) on top of
    a clean environment, and wait until all `max_running` workers are ready.
    Returns the process and its base URL; exits the benchmark if it never gets ready."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNDARYLAB_")}
    wanted = {"PORT": str(port), "MAX_RUNNING": str(max_running), "LOG_LEVEL": "warning"}
    env.update({f"BOUNDARYLAB_{k}": v for k, v in {**wanted, **(settings or {})}.items()})
    code = "from boundarylab.server.app import serve; serve()"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_within
    while time.monotonic() < deadline:
        try:
            health = httpx.get(f"{base}/api/health", timeout=1).json()
            if health["workers"]["ready"] >= max_running:
                return proc, base
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"the server did not start within {ready_within:.0f} s")
