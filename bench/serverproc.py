"""A real server process on a free loopback port, started and waited for: the one helper the
benchmarks here and the tests (API, reliability, packaging, browser) use.

Importable from both: a script in bench/ has this folder on its path, and pytest adds it
(`pythonpath` in pyproject.toml).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

SERVE = "from boundarylab.server.app import serve; serve()"
# Settings for a load test whose many simulated people all connect from 127.0.0.1: the
# per-address caps (README "Security and limits") would otherwise refuse them as one person.
ONE_ADDRESS_MANY_PEOPLE = {
    "max_viewers_per_address": 1000,
    "max_ws_per_address": 5000,
    "max_ws_connections": 5000,
    "max_runs_per_client": 1000,
    "ws_frames_per_second": 1000,
}


class ServerStartError(RuntimeError):
    """The server exited, or never answered /api/health in time (the message has its log)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(base: Mapping[str, str] | None = None, **settings: Any) -> dict[str, str]:
    """`base` (default: this process's environment without any BOUNDARYLAB_ setting, so the
    server runs on its defaults), plus `settings` as BOUNDARYLAB_<NAME> (names without the
    prefix, any case)."""
    if base is None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("BOUNDARYLAB_")}
    env = dict(base)
    env.update({f"BOUNDARYLAB_{k.upper()}": str(v) for k, v in settings.items()})
    return env


@dataclass
class ServerProcess:
    """A started server and where to reach it."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path | None = None
    own_session: bool = False

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log(self) -> str:
        """The end of what the server printed (when it prints to a log file)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (as `docker stop` does), then SIGKILL if it has not exited in `timeout`
        seconds. Returns the exit code, or None when it had to be killed."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            if self.own_session:  # its children (workers) go with it
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.kill()
            self.proc.wait(10)
            return None


def _health(base: str) -> dict[str, Any] | None:
    try:
        response = httpx.get(f"{base}/api/health", timeout=2)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]


def start_server(
    argv: Sequence[str] | None = None,
    *,
    settings: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    cwd: Path | None = None,
    log_path: Path | None = None,
    workers_ready: int = 0,
    timeout: float = 120.0,
    own_session: bool = False,
) -> ServerProcess:
    """Start a server and wait until /api/health answers (with `workers_ready` workers).

    `argv`: the command, "{port}" in it replaced by the port; default `serve()` in this
    Python, on BOUNDARYLAB_PORT. `env`, `settings`: its environment (see `server_env`).
    `log_path`: where its output goes (default: this process's). `own_session`: a process
    group of its own, so `stop` can kill its workers too.
    """
    port = port or free_port()
    extra = dict(settings or {})
    if argv is None:
        argv, extra = [sys.executable, "-c", SERVE], {"port": port, **extra}
    command = [part.format(port=port) for part in argv]
    output = log_path.open("wb") if log_path is not None else None
    try:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=server_env(env, **extra),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=own_session,
        )
    finally:
        if output is not None:
            output.close()  # the child has its own descriptor
    server = ServerProcess(proc, port, log_path, own_session)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerStartError(f"the server exited with {proc.returncode}:\n{server.log()}")
        health = _health(server.base)
        if health is not None and health["workers"]["ready"] >= workers_ready:
            return server
        time.sleep(0.05)
    server.stop()
    raise ServerStartError(f"the server was not ready within {timeout:.0f} s:\n{server.log()}")


@contextmanager
def running_server(argv: Sequence[str] | None = None, **options: Any) -> Iterator[ServerProcess]:
    """`start_server(argv, **options)` for the length of a `with` block, then stopped."""
    server = start_server(argv, **options)
    try:
        yield server
    finally:
        server.stop()


@dataclass
class RedisServer:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cli(self, *args: str) -> str:
        """One redis-cli command's answer (for the tests to look inside)."""
        out = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True,
                             text=True, timeout=10, check=True)  # fmt: skip
        return out.stdout.strip()


def launch_redis(
    binary: str, tmp: Path, port: int | None = None, appendonly: bool = False
) -> RedisServer:
    """`binary` (redis-server) on a free port (or `port`), its files in `tmp`; no
    persistence, or with `appendonly` an append-only file there (so a restart on the same
    `tmp` keeps the data). Waits (bounded) until it answers (Redis mode's tests and
    bench/scale.py)."""
    port = port or free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes" if appendonly else "no", "--dir", str(tmp)]  # fmt: skip
    log = (tmp / f"redis-{port}.log").open("ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    server = RedisServer(proc, port)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if server.cli("ping") == "PONG":
                return server
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"redis-server on port {port} did not answer within 15 s")
