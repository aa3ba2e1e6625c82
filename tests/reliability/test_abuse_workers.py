"""Workers that die, freeze or cannot be replaced (issue 11 items 6, 9, 17), against a real
server process: health tells the truth, a lost slot comes back, and nothing on the event
loop waits for a worker."""

from __future__ import annotations

import resource
import signal
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from abuse_support import until, ws_from

from serverproc import SERVE, ServerProcess, free_port, running_server

ENDED = ("completed", "cancelled", "failed", "diverged")
# Training runs at niceness 19: on a machine whose cores other work keeps busy, a worker
# that was replaced and the runs after it take a while.
pytestmark = pytest.mark.timeout(600)


def _health(server: ServerProcess, timeout: float = 4.0) -> dict[str, Any] | None:
    """/api/health within `timeout` (the container's check gives up after 4 s), or None."""
    try:
        answer = httpx.get(f"{server.base}/api/health", timeout=timeout)
    except httpx.HTTPError:
        return None
    return answer.json() if answer.status_code == 200 else None  # type: ignore[no-any-return]


def _ready(server: ServerProcess) -> int | None:
    health = _health(server)
    return None if health is None else int(health["workers"]["ready"])


def _workers(server: ServerProcess) -> tuple[psutil.Process, list[psutil.Process]]:
    """The server's forkserver and the workers it forked."""
    children = psutil.Process(server.proc.pid).children()
    forkserver = next(p for p in children if "forkserver" in " ".join(p.cmdline()))
    return forkserver, forkserver.children()


def _kill(processes: list[psutil.Process]) -> None:
    for process in processes:
        process.kill()
    psutil.wait_procs(processes, timeout=10)


def _start(server: ServerProcess, body: dict[str, Any]) -> str:
    answer = httpx.post(f"{server.base}/api/runs", json=body, timeout=10)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _run_completes(server: ServerProcess) -> bool:
    run_id = _start(server, {"training": {"iterations": 200}})

    def ended() -> str | None:
        status = httpx.get(f"{server.base}/api/runs/{run_id}", timeout=10).json()["status"]
        return status if status in ENDED else None

    return until(ended, timeout=120, interval=0.2) == "completed"


@pytest.fixture
def limited_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server under `ulimit -n 1024` whose silent connections stay open a minute (so a
    test can hold its descriptors), with its workers in its own process group."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 4096)
    if soft < wanted:  # this process holds more sockets than the server may
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    argv = ["bash", "-c", f"ulimit -n 1024 && exec {sys.executable} -c '{SERVE}'"]
    port = free_port()
    settings = {
        "port": port,
        "header_timeout_seconds": 60,
        "limit_concurrency": 5000,  # the descriptors run out first, as the finding had it
        "log_level": "warning",
    }
    options = {"port": port, "log_path": tmp_path / "server.log", "own_session": True}
    with running_server(argv, settings=settings, workers_ready=2, **options) as server:
        yield server


def test_a_worker_killed_while_descriptors_are_exhausted_comes_back(
    limited_server: ServerProcess,
) -> None:
    server = limited_server
    process = psutil.Process(server.proc.pid)
    _, workers = _workers(server)
    with ExitStack() as held:
        for _ in range(1100):  # more than the server can accept: every descriptor is taken
            with suppress(OSError):
                held.enter_context(socket.create_connection(("127.0.0.1", server.port), 5))
        assert until(lambda: process.num_fds() >= 1015, timeout=30), process.num_fds()
        _kill(workers[:1])
        # Its replacement cannot even make a pipe: the start fails, and is retried.
        assert until(lambda: "starting worker" in server.log(), timeout=30), server.log()
        assert "Too many open files" in server.log()
    # Sockets released: the retry succeeds, and health counts the workers that answer.
    assert until(lambda: _ready(server) == 2, timeout=60, interval=0.5), server.log()
    assert _run_completes(server)


def test_a_dead_forkserver_is_replaced(limited_server: ServerProcess) -> None:
    server = limited_server
    forkserver, workers = _workers(server)
    _kill([forkserver])
    _kill(workers)  # their replacements need a forkserver
    assert until(lambda: _ready(server) == 2, timeout=60, interval=0.5), server.log()
    assert _run_completes(server)
    new_forkserver, _ = _workers(server)
    assert new_forkserver.pid != forkserver.pid


SLOW = {"training": {"iterations": 200_000, "report_every": 100, "steps_per_second": 200}}


def test_a_frozen_worker_is_noticed_and_commands_to_it_never_block(tmp_path: Path) -> None:
    """SIGSTOP of a worker holding a run: health says so and keeps answering while the
    run's viewers and controls hammer it, the run ends failed, the slot comes back."""
    settings = {"worker_heartbeat_timeout": 3, "log_level": "warning"}
    log_path = tmp_path / "server.log"
    with running_server(settings=settings, workers_ready=2, log_path=log_path) as server:
        run_id = _start(server, SLOW)
        url = f"{server.base}/api/runs/{run_id}"
        assert until(lambda: httpx.get(url, timeout=10).json()["status"] == "running", 60)
        _, workers = _workers(server)
        for worker in workers:
            worker.suspend()
        try:
            seen: list[int | None] = []
            deadline = time.monotonic() + 30
            with httpx.Client(timeout=10) as client:
                while client.get(url).json()["status"] == "running":
                    client.post(f"{url}/pause")  # waits for its effect, at most 2 s
                    seen.append(_ready(server))
                    assert seen[-1] is not None, "health did not answer within 4 s"
                    assert time.monotonic() < deadline, "the frozen worker was never noticed"
            detail = httpx.get(url, timeout=10).json()
            assert detail["status"] == "failed" and "stopped answering" in detail["message"]
            # The frozen workers were killed (SIGKILL ends a stopped process too), and
            # the two that health counts now are new ones.
            _, alive = psutil.wait_procs(workers, timeout=10)
            assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], alive
        finally:
            for worker in workers:
                with suppress(psutil.NoSuchProcess):
                    worker.resume()
        assert until(lambda: _ready(server) == 2, timeout=60, interval=0.5)
        assert not {p.pid for p in _workers(server)[1]} & {p.pid for p in workers}
        assert _run_completes(server)


def test_sigterm_with_a_stopped_worker_still_exits(tmp_path: Path) -> None:
    """A stopped worker used to leave the server deaf to SIGTERM (a blocking pipe write)."""
    settings = {"worker_heartbeat_timeout": 60, "log_level": "warning"}
    log_path = tmp_path / "server.log"
    with running_server(
        settings=settings, workers_ready=2, log_path=log_path, own_session=True
    ) as server:
        run_id = _start(server, SLOW)
        url = f"{server.base}/api/runs/{run_id}"
        assert until(lambda: httpx.get(url, timeout=10).json()["status"] == "running", 60)
        _, workers = _workers(server)
        for worker in workers:
            worker.suspend()
        with ws_from(server, run_id) as viewer:
            for i in range(30):  # within the frame budget; none waits for the worker
                viewer.send('{"action": "%s"}' % ("pause" if i % 2 else "resume"))
            assert _health(server) is not None
        server.proc.send_signal(signal.SIGTERM)
        # It used to take SIGKILL; now it stops its runs and exits (wait raises if not).
        # uvicorn re-raises the signal after its graceful shutdown: -SIGTERM is a clean exit.
        assert server.proc.wait(timeout=15) in (0, -signal.SIGTERM), server.log()
        assert "Traceback" not in server.log()
