"""The protocol between the server and its workers: typed commands and events, and how the
events travel.

Two one-way pipes per worker, each carrying length-prefixed pickles (`FrameWriter`,
`FrameReader`):
  commands, server → worker (`Command`s, small; written without blocking the event loop:
      see workerproc.Worker.send; a worker reads them between the bounded ticks of its runs);
  events, worker → server (`WorkerEvent`s, read on the event loop without blocking).
A run's messages arrive already encoded (`messages.Encoded`), so the server only forwards
text. Everything here is a plain frozen dataclass: a remote worker could speak the same
protocol over another transport.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from boundarylab.engine.config import RunConfig
from boundarylab.engine.knobs import Retune
from boundarylab.server.messages import Encoded

HEADER = struct.Struct("!I")
HELD_MAX = 1 << 16  # bytes of held events written at once: a pipe's default buffer


# -- commands: server → worker ---------------------------------------------------------------
@dataclass(frozen=True)
class RunLimits:
    """A run's time bounds, enforced by its worker: it ends `cancelled` with a message once
    it has lasted `max_seconds`, used `max_cpu_seconds` of CPU, or stayed paused for
    `pause_timeout` seconds."""

    max_seconds: float = 3600.0
    max_cpu_seconds: float = 600.0
    pause_timeout: float = 900.0


@dataclass(frozen=True)
class Start:
    """Train this run too (alongside the others the worker holds)."""

    run_id: str
    config: RunConfig
    limits: RunLimits = RunLimits()


@dataclass(frozen=True)
class Control:
    """pause | resume | step | cancel | frames_on | frames_off, or a change of the run's
    learning rate, λ or pace (engine.knobs.Retune, plain data), for one of the worker's runs
    (frames_off: no viewer can take a boundary frame now, so the worker makes none but the
    final one)."""

    run_id: str
    action: str | Retune


@dataclass(frozen=True)
class Export:
    """Send run `run_id`'s current weights back as `ModelReply(request_id, ...)`."""

    request_id: int
    run_id: str


@dataclass(frozen=True)
class Stop:
    """End the worker (cancelling its runs, if any)."""


Command = Start | Control | Export | Stop


# -- events: worker → server -----------------------------------------------------------------
@dataclass(frozen=True)
class Ready:
    """The worker has started and imported the engine."""


@dataclass(frozen=True)
class Heartbeat:
    """The worker is alive (sent about every worker.HEARTBEAT_S). `paced_load`: the share of
    one CPU its paced runs took over the last interval; `load`: that of all its runs."""

    paced_load: float
    load: float


@dataclass(frozen=True)
class RunMessage:
    """One message of a run, encoded for the wire."""

    run_id: str
    message: Encoded


@dataclass(frozen=True)
class ModelReply:
    """The answer to `Export`: the weights, or None when there is no run to export."""

    request_id: int
    model: dict[str, Any] | None


@dataclass(frozen=True)
class Done:
    """The run ended with `status`; `model` is its final weights (None if it never built)."""

    run_id: str
    status: str
    model: dict[str, Any] | None


WorkerEvent = Ready | Heartbeat | RunMessage | ModelReply | Done


def frame(item: Command | WorkerEvent) -> bytes:
    """One length-prefixed pickle."""
    payload = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(payload)) + payload


class EventWriter:
    """Worker side of the events pipe: one length-prefixed pickle per event, written whole
    (a lock keeps frames whole when several threads of a worker send).

    Raw `os.write` rather than `Connection.send`: the reader parses frames from a
    non-blocking descriptor on the event loop, and needs the length in front.

    Inside `held()` (a worker's round of ticks) the holding thread's frames are gathered and
    written in one `os.write` when it ends: profiled under bench/capacity.py, one write per
    progress report or frame was ~20 % of a busy worker's time, and each woke the server's
    event loop apart. The frames and their order are the same; other threads (blocking
    runs) still write at once.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn  # kept so the descriptor stays open
        self._fd = conn.fileno()
        self._lock = threading.Lock()
        self._held: bytearray | None = None  # only the holder thread touches it
        self._holder: int | None = None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Gather this thread's events until the block ends, then write them in one go (at
        once, past HELD_MAX bytes, so a round of many frames never holds much)."""
        self._held, self._holder = bytearray(), threading.get_ident()
        try:
            yield
        finally:
            held, self._held, self._holder = self._held, None, None
            if held:
                self._write(held)

    def send(self, event: WorkerEvent) -> None:
        data = frame(event)
        if self._held is not None and self._holder == threading.get_ident():
            self._held += data
            if len(self._held) >= HELD_MAX:
                self._write(self._held)
                self._held = bytearray()
            return
        self._write(data)

    def _write(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        with self._lock:
            while view:
                try:
                    view = view[os.write(self._fd, view) :]
                except BlockingIOError:  # a non-blocking descriptor (thread workers)
                    select.select([], [self._fd], [], 0.05)

    def close(self) -> None:
        self._conn.close()


class EventReader:
    """The reading side of either pipe: bytes in as they come, whole frames out."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def read_available(self, fd: int) -> bool:
        """Append what the (non-blocking) pipe holds; True at end of file."""
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

    def events(self) -> list[Any]:
        """Every complete frame received so far, unpickled, oldest first."""
        out: list[Any] = []
        offset = 0
        while len(self._buffer) - offset >= HEADER.size:
            (size,) = HEADER.unpack_from(self._buffer, offset)
            end = offset + HEADER.size + size
            if len(self._buffer) < end:
                break
            out.append(pickle.loads(self._buffer[offset + HEADER.size : end]))
            offset = end
        del self._buffer[:offset]
        return out
