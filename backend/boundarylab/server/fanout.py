"""A run's state as the server holds it, and its fan-out to viewers.

Each message is serialised once (`Run.broadcast`) and the same text goes into every
viewer's outbox; the outboxes are drained by the WebSocket handlers in stream.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from boundarylab.engine.config import RunConfig
from boundarylab.server.messages import TERMINAL, dumps
from boundarylab.server.worker import Worker


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
    """One run as the server holds it. `history`: its progress entries without "type".

    While the run trains they are a list of dicts that grows; when it ends (`compact`) they
    become one JSON text. The server keeps up to 200 finished runs, and as ~200 small dicts
    each they were the bulk of what those cost (~70 KB a run, spread over the allocator's
    arenas); as text a run's history is ~20 KB in one block, and the snapshot splices it in
    as it is.
    """

    id: str
    config: RunConfig
    client: str
    dataset_text: str
    created: float = field(default_factory=time.time)
    status: str = "queued"
    message: str | None = None
    iteration: int = 0
    position: int | None = None
    _entries: list[dict[str, Any]] = field(default_factory=list)
    _history_text: str | None = None
    _last: dict[str, Any] | None = None
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

    @property
    def history(self) -> list[dict[str, Any]]:
        """The progress entries, oldest first (a fresh list once the run is compacted)."""
        if self._history_text is not None:
            return json.loads(self._history_text)  # type: ignore[no-any-return]
        return self._entries

    def add_progress(self, entry: dict[str, Any]) -> None:
        if self._history_text is not None:
            self._entries = self.history
            self._history_text = None
        self._entries.append(entry)
        self._last = entry

    def history_json(self) -> str:
        """The history as JSON text, as `dumps(self.history)` gives it."""
        return self._history_text if self._history_text is not None else dumps(self._entries)

    def compact(self) -> None:
        """Store the history as one JSON text (the run ended: it no longer grows)."""
        if self._history_text is None:
            self._history_text = dumps(self._entries)
            self._entries = []

    def metrics(self) -> dict[str, Any] | None:
        return self._last

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
