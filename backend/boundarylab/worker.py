"""Workers: where training runs, never on the event loop.

Why processes by default (measured with bench/stream.py on the 2-core dev box, 8 fast runs
and 50 viewers): the network is tiny (300×3), so each NumPy call is mostly Python overhead
that holds the GIL. With runs in *threads*, the event loop waits for the GIL behind them and
its lag p99 grows to well over the 50 ms target; with a fixed pool of long-lived worker
*processes* the loop only unpickles the messages. The processes are spawned once (in the
app's lifespan) and have the engine imported already, so a new run starts in a few milliseconds.
Thread mode (`BOUNDARYLAB_WORKERS=thread`) remains for tests and platforms without
multiprocessing: same protocol, same code path, just no process boundary.

Protocol over one duplex `multiprocessing.Pipe` per worker (tuples, pickled):
  main → worker: ("start", run_id, RunConfig) · ("cmd", run_id, action) ·
                 ("export", request_id) · ("stop",)
  worker → main: ("ready",) · ("msg", run_id, message) · ("model", request_id, dict|None) ·
                 ("done", run_id, final_status, model_dict|None)
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Protocol

from boundarylab.config import RunConfig
from boundarylab.messages import status_message

Emit = Callable[[dict[str, Any]], None]
NextCommand = Callable[[float], "str | None"]
WorkerMessage = tuple[Any, ...]

# Worker processes run a little below the server's priority so that, when every core is
# busy training, the event loop still gets the CPU the moment it has something to send.
WORKER_NICENESS = 5


class RunHandle(Protocol):
    """One run inside a worker: what a run factory returns."""

    def run(self) -> str: ...

    def export_model(self) -> dict[str, Any] | None: ...


RunFactory = Callable[[RunConfig, Emit, NextCommand], RunHandle]


class EngineRun:
    """The real thing: a `training.Trainer` driven by a `training.RunLoop`."""

    def __init__(self, config: RunConfig, emit: Emit, next_command: NextCommand) -> None:
        from boundarylab.training import RunLoop, Trainer

        self.trainer = Trainer(config)
        self.loop = RunLoop(config, emit, next_command, trainer=self.trainer)

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


def _run_one(conn: Connection, run_id: str, config: RunConfig, factory: RunFactory) -> bool:
    """Run one job to its end; returns True when a stop request arrived meanwhile."""
    stop_requested = False
    handle: RunHandle | None = None

    def emit(message: dict[str, Any]) -> None:
        conn.send(("msg", run_id, message))

    def next_command(timeout: float) -> str | None:
        # The run's only way to wait, so exports and stops are answered between steps.
        nonlocal stop_requested
        deadline = time.monotonic() + max(0.0, timeout)
        while conn.poll(max(0.0, deadline - time.monotonic())):
            msg = conn.recv()
            if msg[0] == "cmd" and msg[1] == run_id:
                return str(msg[2])
            if msg[0] == "export":
                conn.send(("model", msg[1], _export(handle)))
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
    conn.send(("done", run_id, status, _export(handle)))
    return stop_requested


def worker_main(conn: Connection, factory: RunFactory, niceness: int = 0) -> None:
    """Body of a worker (process or thread): serve runs one after another until stopped."""
    if niceness:
        with contextlib.suppress(OSError):
            os.nice(niceness)
    with contextlib.suppress(ImportError):
        import boundarylab.training  # noqa: F401  (pre-import: the first run starts fast)
    try:
        conn.send(("ready",))
        while True:
            msg = conn.recv()
            if msg[0] == "stop":
                return
            if msg[0] == "start" and _run_one(conn, msg[1], msg[2], factory):
                return
            if msg[0] == "export":  # the run it asked about already finished
                conn.send(("model", msg[1], None))
    except (EOFError, OSError, KeyboardInterrupt):
        return
    finally:
        conn.close()


def process_main(conn: Connection, factory: RunFactory, niceness: int) -> None:
    """Entry point of a worker process."""
    worker_main(conn, factory, niceness)
    # Skip interpreter teardown (NumPy, scikit-learn, ...): it takes about a second per
    # process on a busy 2-core box, and shutdown must finish within 5 s. Nothing is
    # buffered: messages went out through the pipe, which worker_main has closed.
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
        ctx.set_forkserver_preload(["boundarylab.worker", "boundarylab.training"])
        return ctx
    return multiprocessing.get_context("spawn")


class Worker:
    """The main process's handle on one worker and its reader thread."""

    def __init__(self, index: int, mode: str, factory: RunFactory) -> None:
        self.index = index
        self.mode = mode
        self.ready = False
        self.run_id: str | None = None
        self.conn, child = multiprocessing.Pipe(duplex=True)
        target_args = (child, factory)
        self._child = child
        self._proc: Any
        if mode == "process":
            self._proc = _process_context().Process(
                target=process_main,
                args=(*target_args, WORKER_NICENESS),
                name=f"boundarylab-worker-{index}",
                daemon=True,
            )
        else:
            self._proc = threading.Thread(
                target=worker_main, args=target_args, name=f"boundarylab-worker-{index}"
            )
        self._reader: threading.Thread | None = None
        self._send_lock = threading.Lock()

    def start(
        self,
        on_message: Callable[[Worker, WorkerMessage], None],
        on_exit: Callable[[Worker], None],
    ) -> None:
        """Start the worker and a reader thread that hands its messages to the callbacks.

        The callbacks run on the reader thread: the caller wraps them with
        `loop.call_soon_threadsafe`. A blocking reader thread (rather than `add_reader`) is
        used because one boundary frame can exceed the pipe buffer, and a partial read on
        the event loop would block it.
        """
        self._proc.start()
        if self.mode == "process":
            self._child.close()  # only the child holds it now: EOF reaches us when it dies

        def read() -> None:
            while True:
                try:
                    msg = self.conn.recv()
                except (EOFError, OSError):
                    break
                try:
                    on_message(self, msg)
                except RuntimeError:  # the event loop is closed: nobody left to tell
                    return
            with contextlib.suppress(RuntimeError):
                on_exit(self)

        self._reader = threading.Thread(target=read, name=f"boundarylab-reader-{self.index}")
        self._reader.daemon = True
        self._reader.start()

    def send(self, msg: WorkerMessage) -> bool:
        """Send to the worker; False when it is gone."""
        try:
            with self._send_lock:
                self.conn.send(msg)
            return True
        except (OSError, ValueError, BrokenPipeError):
            return False

    @property
    def pid(self) -> int | None:
        """The worker process's id (None for a thread worker)."""
        return self._proc.pid if self.mode == "process" else None

    def alive(self) -> bool:
        return bool(self._proc.is_alive())

    def stop(self, timeout: float) -> None:
        """Ask the worker to exit, then make sure it did within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        self.send(("stop",))
        self._proc.join(max(0.0, deadline - time.monotonic()))
        if self.mode == "process" and self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(1.0)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(1.0)
        # The worker closed its end on exit, so the reader sees EOF and ends by itself.
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(OSError):
            self.conn.close()
