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

A worker holds many runs at once and interleaves them (`WorkerLoop`): a paced run sleeps
most of its life, and a process per run would hold a core doing nothing.

A worker encodes each message of its run for the wire (`messages.encode`) before sending
it, so the server's event loop only forwards text.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import sys
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from boundarylab.server.messages import encode, status_message
from boundarylab.server.protocol import (
    Control,
    Done,
    EventReader,
    EventWriter,
    Export,
    Heartbeat,
    ModelReply,
    Ready,
    RunMessage,
    Start,
    Stop,
)
from boundarylab.server.runslot import EngineRun, RunFactory, Slot, export_of

__all__ = ["EngineRun", "RunFactory", "WorkerLoop", "process_main", "release_heap"]

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


HEARTBEAT_S = 0.5  # a worker says it is alive this often (pool.py kills one that stops)
COMMANDS_PER_ROUND = 256  # commands read before the runs get their next turn


class WorkerLoop:
    """A worker's scheduler: holds any number of runs and interleaves them on one thread.

    Each round: read the commands that arrived; tick every paced run that is due (in order
    of how late it is); then give ONE unpaced run a tick, the next one next round (fair
    slices of what the paced runs leave); then wait until the next run is due or a command
    arrives. A tick is bounded (runloop.CHUNK_SECONDS), so commands and heartbeats are
    never far away.
    """

    def __init__(self, commands_fd: int, events: EventWriter, factory: RunFactory) -> None:
        self.fd = commands_fd
        self.events = events
        self.factory = factory
        self.reader = EventReader()
        self.runs: dict[str, Slot] = {}
        self._pending: deque[Any] = deque()  # commands read, not yet applied
        self.stopping = False
        self._unpaced_turn = 0
        self._beat_at = 0.0
        self._cpu_paced = 0.0
        self._cpu_all = 0.0
        self._cpu_mark = time.monotonic()

    def serve(self, release: bool) -> None:
        while not self.stopping:
            self._read_commands(self._wait())
            with self.events.held():  # one write for the round's events (protocol.py)
                self._tick_round()
                ended = self._reap()
                self._heartbeat()
            if ended and release and not self.runs:
                release_heap()
        for slot in list(self.runs.values()):  # Stop: every run ends cancelled
            slot.command("cancel")
        deadline = time.monotonic() + 1.0  # threads of blocking runs send their own Done
        while self._reap() or (self.runs and time.monotonic() < deadline):
            time.sleep(0.01)

    def _wait(self) -> float:
        dues = [d for d in (s.due_in() for s in self.runs.values()) if d is not None]
        until_beat = max(0.0, self._beat_at - time.monotonic())
        return min([until_beat, *dues])

    def _read_commands(self, timeout: float) -> None:
        readable, _, _ = select.select([self.fd], [], [], 0.0 if self._pending else timeout)
        if readable:
            if self.reader.read_available(self.fd):
                self.stopping = True  # the server is gone
            self._pending.extend(self.reader.events())
        for _ in range(min(COMMANDS_PER_ROUND, len(self._pending))):
            self._apply(self._pending.popleft())

    def _apply(self, command: Any) -> None:
        if isinstance(command, Stop):
            self.stopping = True
        elif isinstance(command, Start):
            self._start(command)
        elif isinstance(command, Control):
            slot = self.runs.get(command.run_id)
            if slot is not None:
                slot.command(command.action)
        elif isinstance(command, Export):
            slot = self.runs.get(command.run_id)
            model = export_of(slot.handle) if slot is not None else None
            self.events.send(ModelReply(command.request_id, model))

    def _start(self, start: Start) -> None:
        try:
            self.runs[start.run_id] = Slot(start, self.factory, self.events)
        except Exception as exc:  # the run fails, the worker lives on for the others
            message = status_message("failed", f"the run failed: {type(exc).__name__}: {exc}")
            self.events.send(RunMessage(start.run_id, encode(message)))
            self.events.send(Done(start.run_id, "failed", None))

    def _tick_round(self) -> None:
        due = [(d, s) for s in self.runs.values() if s.stepped and (d := s.due_in()) == 0.0]
        paced = [s for _, s in due if s.paced]
        unpaced = [s for _, s in due if not s.paced]
        for slot in paced:
            self._timed_tick(slot)
        if unpaced:
            self._unpaced_turn = (self._unpaced_turn + 1) % len(unpaced)
            self._timed_tick(unpaced[self._unpaced_turn])

    def _timed_tick(self, slot: Slot) -> None:
        started = time.thread_time()
        slot.tick()
        spent = time.thread_time() - started
        slot.cpu += spent
        self._cpu_all += spent
        if slot.paced:
            self._cpu_paced += spent

    def _reap(self) -> bool:
        ended = [s for s in self.runs.values() if s.due_in() is None]
        for slot in ended:
            del self.runs[slot.run_id]
            if slot.stepped:
                slot.finish()
        return bool(ended)

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now < self._beat_at:
            return
        for slot in self.runs.values():  # the time bounds, checked at the heartbeat's pace
            reason = slot.over_limit(now)
            if reason is not None:
                slot.handle.stop(reason)
        span = max(1e-3, now - self._cpu_mark)
        self.events.send(Heartbeat(self._cpu_paced / span, self._cpu_all / span))
        self._cpu_paced = self._cpu_all = 0.0
        self._cpu_mark, self._beat_at = now, now + HEARTBEAT_S


def worker_main(
    commands: Connection,
    events_conn: Connection,
    factory: RunFactory,
    niceness: int = 0,
    release: bool = False,
) -> None:
    """Body of a worker (process or thread): serve runs, many at once, until stopped.

    `release`: once it holds no run, return the heap it freed to the OS (`release_heap`).
    No `gc.collect()` here: it writes to every object the worker shares with the forkserver
    and so copies those pages (measured: a worker's PSS went from 20 to 42 MiB).
    """
    with contextlib.suppress(ImportError):
        import boundarylab.engine.runloop  # noqa: F401  (a no-op when the forkserver preloaded it)
    events = EventWriter(events_conn)
    try:
        # Ready first: at low priority on a busy machine the worker may wait seconds for a
        # CPU, and the server should know it can take a run meanwhile.
        events.send(Ready())
        if niceness:
            with contextlib.suppress(OSError):
                os.nice(niceness)
        fd = commands.fileno()
        os.set_blocking(fd, False)
        WorkerLoop(fd, events, factory).serve(release)
    except (EOFError, OSError, KeyboardInterrupt):
        return
    finally:
        events.close()  # the server sees EOF: this worker is gone
        commands.close()


def one_blas_thread() -> None:
    """One BLAS/OpenMP thread in this process: a worker's runs must not take more than the
    one core the worker stands for (measured: a 6×256 run used both cores through BLAS)."""
    with contextlib.suppress(Exception):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)


def process_main(
    commands: Connection, events: Connection, factory: RunFactory, niceness: int
) -> None:
    """Entry point of a worker process."""
    one_blas_thread()
    worker_main(commands, events, factory, niceness, release=True)
    # Skip interpreter teardown (NumPy, scikit-learn, ...): it takes about a second per
    # process on a busy 2-core box, and shutdown must finish within 5 s. Nothing is
    # buffered: every message went out through os.write and the pipes are closed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
