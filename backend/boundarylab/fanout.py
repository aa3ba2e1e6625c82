"""A run's state as the server holds it, and its fan-out to viewers.

Each message is serialised once (`Run.broadcast`) and the same text goes into every
viewer's outbox; the outboxes are drained by the WebSocket handlers in stream.py.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from boundarylab.config import RunConfig
from boundarylab.messages import TERMINAL, dumps
from boundarylab.worker import Worker


class Viewer:
    """One viewer's outbox: status and progress are never dropped, frames are conflated.

    A viewer that cannot keep up only ever has the latest boundary frame waiting; if its
    backlog of small messages still passes `max_backlog` it is disconnected rather than
    let memory grow.
    """

    def __init__(self, max_backlog: int = 10_000) -> None:
        self._items: deque[str | None] = deque()  # None marks where the latest frame goes
        self._frame: str | None = None
        self._wake = asyncio.Event()
        self._max_backlog = max_backlog
        self.finished = False  # the run ended: drain, then close
        self.overflowed = False

    def put(self, text: str, *, frame: bool = False) -> None:
        if frame:
            if self._frame is not None:
                self._items.remove(None)  # move the slot to the end: order stays causal
            self._frame = text
            self._items.append(None)
        else:
            self._items.append(text)
            if len(self._items) > self._max_backlog:
                self.overflowed = True
        self._wake.set()

    def finish(self) -> None:
        self.finished = True
        self._wake.set()

    def pending(self) -> int:
        return len(self._items)

    async def get(self) -> str | None:
        """The next text to send, or None when the viewer should be closed."""
        while not self._items:
            if self.finished or self.overflowed:
                return None
            self._wake.clear()
            await self._wake.wait()
        if self.overflowed:
            return None
        item = self._items.popleft()
        if item is None:
            item, self._frame = self._frame, None
        return item


@dataclass(eq=False)
class Run:
    """One run as the server holds it. `history` holds progress entries without "type"."""

    id: str
    config: RunConfig
    client: str
    dataset_text: str
    created: float = field(default_factory=time.time)
    status: str = "queued"
    message: str | None = None
    iteration: int = 0
    position: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    boundary_text: str | None = None
    model: dict[str, Any] | None = None
    worker: Worker | None = None
    pending: list[str] = field(default_factory=list)
    viewers: set[Viewer] = field(default_factory=set)
    sent: deque[float] = field(default_factory=deque)  # when commands went to the worker
    started_at: float | None = None
    finished_at: float | None = None
    final_status: dict[str, Any] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def metrics(self) -> dict[str, Any] | None:
        return self.history[-1] if self.history else None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "iteration": self.iteration,
            "total": self.config.training.iterations,
            "metrics": self.metrics(),
            "created": self.created,
        }
        if self.message is not None:
            out["message"] = self.message
        if self.position is not None:
            out["position"] = self.position
        return out

    def allow_command(self, per_second: int) -> bool:
        """Rate limit of commands to the worker. The worker reads them between steps; a
        client flooding the pipe faster would fill it and block the event loop on send."""
        now = time.monotonic()
        while self.sent and now - self.sent[0] > 1.0:
            self.sent.popleft()
        if len(self.sent) >= per_second:
            return False
        self.sent.append(now)
        return True

    def notify(self) -> None:
        event, self.changed = self.changed, asyncio.Event()
        event.set()

    def broadcast(self, message: dict[str, Any], *, frame: bool = False) -> str:
        text = dumps(message)
        for viewer in self.viewers:
            viewer.put(text, frame=frame)
        return text
