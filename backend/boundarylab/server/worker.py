"""Workers: where training runs, never on the event loop.

Why processes by default (measured with bench/stream.py on the 2-core dev box, 8 fast runs
and 50 viewers): the network is tiny (300×3), so each NumPy call is mostly Python overhead
that holds the GIL. With runs in *threads*, the event loop waits for the GIL behind them:
lag p99 680-760 ms, /api/health taking seconds. With a fixed pool of long-lived worker
*processes* the server process only handles messages: lag p99 8-34 ms (target 50 ms).
The pool is started in the app's lifespan from a forkserver that has the engine imported
already, so a worker is ready in milliseconds and a new run starts at once. Thread mode
(`BOUNDARYLAB_WORKERS=thread`) keeps the same protocol and code path without the process
boundary (tests, odd platforms).

Two one-way pipes per worker:
  commands, main → worker (multiprocessing.Connection, pickled tuples):
      ("start", run_id, RunConfig) · ("cmd", run_id, action) · ("export", request_id) · ("stop",)
  events, worker → main (length-prefixed pickles, read on the event loop without blocking):
      ("ready",) · ("msg", run_id, message) · ("model", request_id, dict | None) ·
      ("done", run_id, final_status, model | None)
The server reads events with `loop.add_reader` rather than one thread per worker: reader
threads in a busy process queue for the GIL and drag the loop's lag up with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import pickle
import struct
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Protocol

from boundarylab.engine.config import RunConfig
from boundarylab.server.messages import event_message, status_message

Emit = Callable[[dict[str, Any]], None]
NextCommand = Callable[[float], "str | None"]
WorkerMessage = tuple[Any, ...]
HEADER = struct.Struct("!I")

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


RunFactory = Callable[[RunConfig, Emit, NextCommand], RunHandle]


class EngineRun:
    """The real thing: a `training.Trainer` driven by a `training.RunLoop`, its typed events
    turned into wire messages here, in the worker, so the server only forwards them."""

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


class EventWriter:
    """Worker side of the events pipe: one length-prefixed pickle per message."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn  # kept so the descriptor stays open
        self._fd = conn.fileno()

    def send(self, message: WorkerMessage) -> None:
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(HEADER.pack(len(payload)) + payload)
        while view:
            view = view[os.write(self._fd, view) :]

    def close(self) -> None:
        self._conn.close()


def _export(handle: RunHandle | None) -> dict[str, Any] | None:
    if handle is None:
        return None
    try:
        return handle.export_model()
    except Exception:
        return None


def _run_one(
    commands: Connection, events: EventWriter, run_id: str, config: RunConfig, factory: RunFactory
) -> bool:
    """Run one job to its end; returns True when a stop request arrived meanwhile."""
    stop_requested = False
    handle: RunHandle | None = None

    def emit(message: dict[str, Any]) -> None:
        events.send(("msg", run_id, message))

    def next_command(timeout: float) -> str | None:
        # The run's only way to wait, so exports and stops are answered between steps.
        nonlocal stop_requested
        deadline = time.monotonic() + max(0.0, timeout)
        while commands.poll(max(0.0, deadline - time.monotonic())):
            msg = commands.recv()
            if msg[0] == "cmd" and msg[1] == run_id:
                return str(msg[2])
            if msg[0] == "export":
                events.send(("model", msg[1], _export(handle)))
            elif msg[0] == "stop":
                stop_requested = True
                return "cancel"
        return None

    status = "failed"
    try:
        handle = factory(config, emit, next_command)
        status = handle.run()
    except Exception as exc:  # the run fails, the worker lives on for the next one
        emit(status_message("failed", f"the run failed: {type(exc).__name__}: {exc}"))
    events.send(("done", run_id, status, _export(handle)))
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
    if niceness:
        with contextlib.suppress(OSError):
            os.nice(niceness)
    with contextlib.suppress(ImportError):
        import boundarylab.engine.training  # noqa: F401  (a no-op when the forkserver preloaded it)
    events = EventWriter(events_conn)
    try:
        events.send(("ready",))
        while True:
            msg = commands.recv()
            if msg[0] == "stop":
                return
            if msg[0] == "start":
                if _run_one(commands, events, msg[1], msg[2], factory):
                    return
                if release:
                    release_heap()
            if msg[0] == "export":  # the run it asked about already finished
                events.send(("model", msg[1], None))
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


def _process_context() -> Any:
    """forkserver where the platform has it: one helper process imports the engine once and
    forks each worker from it, so a worker is ready in milliseconds instead of re-importing
    NumPy and scikit-learn (seconds per worker); and fork happens from that single-threaded
    helper, never from the threaded server. Elsewhere: spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["boundarylab.server.worker", "boundarylab.engine.training"])
        return ctx
    return multiprocessing.get_context("spawn")


class Worker:
    """The server's handle on one worker: its command pipe and its event stream."""

    def __init__(self, index: int, mode: str, factory: RunFactory) -> None:
        self.index = index
        self.mode = mode
        self.ready = False
        self.run_id: str | None = None
        child_commands, self._commands = multiprocessing.Pipe(duplex=False)
        self._events, child_events = multiprocessing.Pipe(duplex=False)
        self._child_ends = (child_commands, child_events)
        self._buffer = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proc: Any
        if mode == "process":
            self._proc = _process_context().Process(
                target=process_main,
                args=(child_commands, child_events, factory, WORKER_NICENESS),
                name=f"boundarylab-worker-{index}",
                daemon=True,
            )
        else:
            self._proc = threading.Thread(
                target=worker_main,
                args=(child_commands, child_events, factory),
                name=f"boundarylab-worker-{index}",
            )

    def start(
        self,
        loop: asyncio.AbstractEventLoop,
        on_message: Callable[[Worker, WorkerMessage], None],
        on_exit: Callable[[Worker], None],
    ) -> None:
        """Start the worker; its events are handed to the callbacks on the event loop."""
        self._proc.start()
        if self.mode == "process":
            for end in self._child_ends:  # the child holds them now: its exit means EOF
                end.close()
        fd = self._events.fileno()
        os.set_blocking(fd, False)
        self._loop = loop

        def readable() -> None:
            eof = self._read_available(fd)
            for message in self._parse():
                on_message(self, message)
            if eof:
                self._detach()
                on_exit(self)

        loop.add_reader(fd, readable)

    def _read_available(self, fd: int) -> bool:
        """Append what the pipe holds to the buffer; True at end of file."""
        while True:
            try:
                chunk = os.read(fd, 1 << 18)
            except BlockingIOError:
                return False
            except OSError:
                return True
            if not chunk:
                return True
            self._buffer += chunk

    def _parse(self) -> list[WorkerMessage]:
        messages = []
        offset = 0
        while len(self._buffer) - offset >= HEADER.size:
            (size,) = HEADER.unpack_from(self._buffer, offset)
            end = offset + HEADER.size + size
            if len(self._buffer) < end:
                break
            messages.append(pickle.loads(self._buffer[offset + HEADER.size : end]))
            offset = end
        del self._buffer[:offset]
        return messages

    def _detach(self) -> None:
        if self._loop is not None and not self._events.closed:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._events.fileno())
            self._events.close()

    def send(self, msg: WorkerMessage) -> bool:
        """Send a command (small; the worker reads them between steps); False if it is gone."""
        try:
            self._commands.send(msg)
            return True
        except (OSError, ValueError):
            return False

    @property
    def pid(self) -> int | None:
        """The worker process's id (None for a thread worker)."""
        return self._proc.pid if self.mode == "process" else None

    def alive(self) -> bool:
        return bool(self._proc.is_alive())

    def join(self, timeout: float) -> None:
        """Wait for the worker to exit (after "stop"); kill a process that does not."""
        deadline = time.monotonic() + timeout
        self._proc.join(max(0.0, deadline - time.monotonic()))
        if self.mode == "process" and self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(1.0)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(1.0)

    def close(self) -> None:
        """Release the pipes (on the event loop thread, after join)."""
        self._detach()
        self._commands.close()
        if self.mode != "process":
            for end in self._child_ends:
                end.close()
