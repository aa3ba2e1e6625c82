"""The protocol between the server and its workers: typed commands and events, and how the
events travel.

Two one-way pipes per worker:
  commands, server → worker (a multiprocessing.Connection; pickled `Command`s, small, read
      by the worker between training steps);
  events, worker → server (length-prefixed pickles of `WorkerEvent`s, read on the event
      loop without blocking, see `EventReader`).
A run's messages arrive already encoded (`messages.Encoded`), so the server only forwards
text. Everything here is a plain frozen dataclass: a remote worker could speak the same
protocol over another transport.
"""

from __future__ import annotations

import os
import pickle
import struct
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from boundarylab.engine.config import RunConfig
from boundarylab.server.messages import Encoded

HEADER = struct.Struct("!I")


# -- commands: server → worker ---------------------------------------------------------------
@dataclass(frozen=True)
class Start:
    """Train this run now (the worker is idle)."""

    run_id: str
    config: RunConfig


@dataclass(frozen=True)
class Control:
    """pause | resume | step | cancel, for the run the worker is training."""

    run_id: str
    action: str


@dataclass(frozen=True)
class Export:
    """Send the current weights back as `ModelReply(request_id, ...)`."""

    request_id: int


@dataclass(frozen=True)
class Stop:
    """End the worker (cancelling its run, if any)."""


Command = Start | Control | Export | Stop


# -- events: worker → server -----------------------------------------------------------------
@dataclass(frozen=True)
class Ready:
    """The worker has started and imported the engine."""


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


WorkerEvent = Ready | RunMessage | ModelReply | Done


class EventWriter:
    """Worker side of the events pipe: one length-prefixed pickle per event.

    Raw `os.write` rather than `Connection.send`: the reader parses frames from a
    non-blocking descriptor on the event loop, and needs the length in front.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn  # kept so the descriptor stays open
        self._fd = conn.fileno()

    def send(self, event: WorkerEvent) -> None:
        payload = pickle.dumps(event, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(HEADER.pack(len(payload)) + payload)
        while view:
            view = view[os.write(self._fd, view) :]

    def close(self) -> None:
        self._conn.close()


class EventReader:
    """Server side of the events pipe: bytes in as they come, whole events out."""

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

    def events(self) -> list[WorkerEvent]:
        """Every complete event received so far, oldest first."""
        out: list[WorkerEvent] = []
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
