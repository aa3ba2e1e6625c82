"""The server's handle on one worker process (or thread, for tests): starting it, the jobs
it holds, non-blocking command writes with a bounded outbox, and how it ends. The pool
(pool.py) decides which runs go where; this module only talks to one worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from boundarylab.engine.config import RunConfig
from boundarylab.server.protocol import Command, EventReader, WorkerEvent, frame
from boundarylab.server.waits import Progress, RateWindow
from boundarylab.server.worker import (
    WORKER_NICENESS,
    RunFactory,
    process_main,
    worker_main,
)

MAX_OUTBOX = 256 * 1024  # command bytes waiting for one worker; beyond, commands are refused


def _process_context() -> Any:
    """forkserver where the platform has it: one helper process imports the engine once and
    forks each worker from it, so a worker is ready in milliseconds instead of re-importing
    NumPy and scikit-learn (seconds per worker); and fork happens from that single-threaded
    helper, never from the threaded server. Elsewhere: spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["boundarylab.server.worker", "boundarylab.engine.runloop"])
        return ctx
    return multiprocessing.get_context("spawn")


@dataclass(eq=False)
class Job:
    """A run on its way through the pool. `position`, `wait_s`: its place in the queue and
    expected wait as last reported. `pending`: actions asked for while it was queued (a
    pause), sent once it starts. `finished`: resolved when it ends, however it ends.
    `cores`: its estimated share of a CPU (capacity.paced_cores) while paced. `client`: the
    address that submitted it (the queue is shared fairly between clients: fairqueue.py).
    `rates`: the steps/s it makes, for the queue's expected waits (waits.py)."""

    run_id: str
    config: RunConfig
    client: str = ""
    position: int | None = None
    wait_s: float | None = None
    pending: list[str] = field(default_factory=list)
    finished: asyncio.Future[None] | None = None
    iteration: int = 0
    frames: bool = True  # a viewer can take its boundary frames
    started_at: float = 0.0
    cores: float = 0.0
    pace: float | None = None  # steps/s since a change while it trains (None: the config's)
    rising: float = 0.0  # cores a raised pace adds, counted until `rising_until` (then
    rising_until: float = 0.0  # the worker's heartbeats have measured it)
    rates: RateWindow | None = None  # the steps/s it makes, from its progress (once started)
    paused: bool = False  # told to pause (and not to resume since): it asks for no CPU

    @property
    def paced(self) -> bool:
        return self.config.training.steps_per_second is not None

    def progress(self, now: float) -> Progress:
        """Where it stands for the queue's expected waits, as of `now`."""
        rate = self.rates.rate(now) if self.rates is not None else None
        return Progress(self.config, self.iteration, self.pace, rate)


class Worker:
    """The server's handle on one worker: its command pipe, its event stream, its runs and
    the load it last reported."""

    def __init__(
        self, index: int, mode: str, factory: RunFactory, niceness: int = WORKER_NICENESS
    ) -> None:
        self.index = index
        self.mode = mode
        self.ready = False
        self.jobs: dict[str, Job] = {}
        self.last_seen = time.monotonic()
        self.paced_load = 0.0
        self.condemned = False  # killed for missing heartbeats; its exit is on its way
        child_commands, self._commands = multiprocessing.Pipe(duplex=False)
        self._events, child_events = multiprocessing.Pipe(duplex=False)
        self._child_ends = (child_commands, child_events)
        self._reader = EventReader()
        self._outbox = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proc: Any
        name = f"boundarylab-worker-{index}"
        if mode == "process":
            args = (child_commands, child_events, factory, niceness)
            self._proc = _process_context().Process(
                target=process_main, args=args, name=name, daemon=True
            )
        else:
            args = (child_commands, child_events, factory)
            self._proc = threading.Thread(target=worker_main, args=args, name=name)

    def start(
        self,
        loop: asyncio.AbstractEventLoop,
        on_event: Callable[[Worker, WorkerEvent], None],
        on_exit: Callable[[Worker], None],
    ) -> None:
        """Start the worker; its events are handed to the callbacks on the event loop."""
        self._proc.start()
        if self.mode == "process":
            for end in self._child_ends:  # the child holds them now: its exit means EOF
                end.close()
        fd = self._events.fileno()
        os.set_blocking(fd, False)
        os.set_blocking(self._commands.fileno(), False)
        self._loop = loop
        self.last_seen = time.monotonic()

        def readable() -> None:
            eof = self._reader.read_available(fd)
            self.last_seen = time.monotonic()
            for event in self._reader.events():
                on_event(self, event)
            if eof:
                self._detach()
                on_exit(self)

        loop.add_reader(fd, readable)

    def _detach(self) -> None:
        if self._loop is not None and not self._events.closed:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._events.fileno())
            self._events.close()

    def send(self, command: Command) -> bool:
        """Queue a command for the worker and write what the pipe takes now, never blocking
        the event loop; the rest goes out when the pipe drains. False when the worker is
        gone or so far behind that MAX_OUTBOX bytes already wait for it."""
        if self._commands.closed or len(self._outbox) > MAX_OUTBOX:
            return False
        self._outbox += frame(command)
        return self._flush()

    def _flush(self) -> bool:
        fd = self._commands.fileno()
        try:
            while self._outbox:
                written = os.write(fd, self._outbox)
                del self._outbox[:written]
        except BlockingIOError:
            if self._loop is not None:
                self._loop.add_writer(fd, self._flush)
            return True
        except (OSError, ValueError):
            self._outbox.clear()
            return False
        if self._loop is not None:
            self._loop.remove_writer(fd)
        return True

    @property
    def pid(self) -> int | None:
        """The worker process's id (None for a thread worker)."""
        return self._proc.pid if self.mode == "process" else None

    def alive(self) -> bool:
        return bool(self._proc.is_alive())

    def join(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the worker to exit (after Stop)."""
        self._proc.join(max(0.0, timeout))

    def kill(self) -> bool:
        """Kill a worker process that is still alive; True when there was one to kill."""
        if self.mode == "process" and self._proc.is_alive():
            self._proc.kill()
            return True
        return False

    def close(self) -> None:
        """Release the pipes (on the event loop thread, after join)."""
        self._detach()
        if not self._commands.closed:
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_writer(self._commands.fileno())
            self._commands.close()
        if self.mode != "process":
            for end in self._child_ends:
                end.close()


def reset_forkserver() -> None:
    """A dead forkserver makes every start fail; forget it so the next start makes a new
    one (multiprocessing keeps one per process)."""
    with contextlib.suppress(Exception):
        from multiprocessing import forkserver

        server = forkserver._forkserver  # type: ignore[attr-defined]
        pid = server._forkserver_pid
        if pid is not None and os.waitpid(pid, os.WNOHANG)[0] == 0:
            return  # alive
        server._stop()
