"""Workers: where training runs, never on the event loop (the worker side; the server's
side is pool.py, the protocol between them protocol.py).

Why processes by default (measured with bench/stream.py on the 2-core dev box, 8 fast runs
and 50 viewers): the network is tiny (300×3), so each NumPy call is mostly Python overhead
that holds the GIL. With runs in *threads*, the event loop waits for the GIL behind them:
lag p99 680-760 ms, /api/health taking seconds. With a fixed pool of long-lived worker
*processes* the server process only handles messages: lag p99 8-34 ms (target 50 ms).
The pool is started in the app's lifespan from a forkserver that has the engine imported
already, so a worker is ready in milliseconds and a new run starts at once. Thread mode
(`BOUNDARYLAB_WORKERS=thread`) keeps the same protocol and code path without the process
boundary (tests, odd platforms).

A worker encodes each message of its run for the wire (`messages.encode`) before sending
it, so the server's event loop only forwards text.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Protocol

from boundarylab.engine.config import RunConfig
from boundarylab.server.messages import encode, event_message, status_message
from boundarylab.server.protocol import (
    Control,
    Done,
    EventWriter,
    Export,
    ModelReply,
    Ready,
    RunMessage,
    Start,
    Stop,
)

Emit = Callable[[dict[str, Any]], None]
NextCommand = Callable[[float], "str | None"]

# Training is batch work; the event loop is interactive. At the default niceness, 8 busy
# workers on 2 cores left the loop waiting for a CPU (lag p99 ~400 ms, bench/stream.py);
# at 19 the scheduler runs the server as soon as it wakes (p99 ~30 ms on the same box).
WORKER_NICENESS = 19


def _find_malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where there is no such call (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


_MALLOC_TRIM = _find_malloc_trim()


def release_heap() -> bool:
    """Give memory that malloc holds free back to the OS; False where it cannot.

    glibc returns freed memory only from the top of its heap, so a few live blocks (a kept
    frame, a history entry) pin every freed page below them: measured under bench/load.py,
    the server's [heap] stayed ~18 MiB and each worker's ~1.4 MiB above its start after the
    load was gone. `malloc_trim(0)` releases the free pages in the middle too (madvise), in
    a few milliseconds, so it is called when a worker ends a run and when the server goes idle.
    """
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


class RunHandle(Protocol):
    """One run inside a worker: what a run factory returns."""

    def run(self) -> str: ...

    def export_model(self) -> dict[str, Any] | None: ...


# (config, emit, next_command) -> handle. `emit` takes a wire message (a dict with "type");
# tests pass their own factories to inject fakes and faults.
RunFactory = Callable[[RunConfig, Emit, NextCommand], RunHandle]


class EngineRun:
    """The real thing: a `training.Trainer` driven by a `training.RunLoop`, its typed events
    turned into wire messages here, in the worker."""

    def __init__(self, config: RunConfig, emit: Emit, next_command: NextCommand) -> None:
        from boundarylab.engine.training import RunLoop, Trainer

        self.trainer = Trainer(config)
        self.loop = RunLoop(
            config, lambda event: emit(event_message(event)), next_command, trainer=self.trainer
        )

    def run(self) -> str:
        return self.loop.run()

    def export_model(self) -> dict[str, Any] | None:
        return self.trainer.export_model()


def _export(handle: RunHandle | None) -> dict[str, Any] | None:
    if handle is None:
        return None
    try:
        return handle.export_model()
    except Exception:
        return None


def _run_one(commands: Connection, events: EventWriter, start: Start, factory: RunFactory) -> bool:
    """Run one job to its end; returns True when a stop request arrived meanwhile."""
    stop_requested = False
    handle: RunHandle | None = None
    run_id = start.run_id

    def emit(message: dict[str, Any]) -> None:
        events.send(RunMessage(run_id, encode(message)))

    def next_command(timeout: float) -> str | None:
        # The run's only way to wait, so exports and stops are answered between steps.
        nonlocal stop_requested
        deadline = time.monotonic() + max(0.0, timeout)
        while commands.poll(max(0.0, deadline - time.monotonic())):
            command = commands.recv()
            if isinstance(command, Control) and command.run_id == run_id:
                return command.action
            if isinstance(command, Export):
                events.send(ModelReply(command.request_id, _export(handle)))
            elif isinstance(command, Stop):
                stop_requested = True
                return "cancel"
        return None

    status = "failed"
    try:
        handle = factory(start.config, emit, next_command)
        status = handle.run()
    except Exception as exc:  # the run fails, the worker lives on for the next one
        emit(status_message("failed", f"the run failed: {type(exc).__name__}: {exc}"))
    events.send(Done(run_id, status, _export(handle)))
    handle = None  # the trainer (in a cycle with `next_command`) becomes garbage here
    return stop_requested


def worker_main(
    commands: Connection,
    events_conn: Connection,
    factory: RunFactory,
    niceness: int = 0,
    release: bool = False,
) -> None:
    """Body of a worker (process or thread): serve runs one after another until stopped.

    `release`: after each run, return the heap it freed to the OS (see `release_heap`).
    No `gc.collect()` here: it writes to every object the worker shares with the forkserver
    and so copies those pages (measured: a worker's PSS went from 20 to 42 MiB).
    """
    with contextlib.suppress(ImportError):
        import boundarylab.engine.training  # noqa: F401  (a no-op when the forkserver preloaded it)
    events = EventWriter(events_conn)
    try:
        # Ready first: at low priority on a busy machine the worker may wait seconds for a
        # CPU, and the server should know it can take a run meanwhile.
        events.send(Ready())
        if niceness:
            with contextlib.suppress(OSError):
                os.nice(niceness)
        while True:
            command = commands.recv()
            if isinstance(command, Stop):
                return
            if isinstance(command, Start):
                if _run_one(commands, events, command, factory):
                    return
                if release:
                    release_heap()
            elif isinstance(command, Export):  # the run it asked about already finished
                events.send(ModelReply(command.request_id, None))
    except (EOFError, OSError, KeyboardInterrupt):
        return
    finally:
        events.close()  # the server sees EOF: this worker is gone
        commands.close()


def process_main(
    commands: Connection, events: Connection, factory: RunFactory, niceness: int
) -> None:
    """Entry point of a worker process."""
    worker_main(commands, events, factory, niceness, release=True)
    # Skip interpreter teardown (NumPy, scikit-learn, ...): it takes about a second per
    # process on a busy 2-core box, and shutdown must finish within 5 s. Nothing is
    # buffered: every message went out through os.write and the pipes are closed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
