"""Each run's messages to its viewers, in this process: the default RunFeed.

A message arrives encoded once (messages.Encoded) and the same text goes into every viewer's
outbox; the outboxes are drained by the WebSocket handlers in stream.py.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from boundarylab.server.errors import TooManyViewers
from boundarylab.server.messages import OPT_IN_KINDS, Encoded

MAX_BACKLOG = 10_000


def watching_too_often(mine: int, cap: int) -> str:
    """Why one more viewer of a run from an address that has `mine` of them is refused."""
    return f"this address already watches this run {mine} times (limit {cap})"


class _Slot:
    """Where the latest message of one conflated kind sits in an outbox."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind


class Viewer:
    """One viewer's outbox: status and progress are never dropped; of each conflated kind
    (a boundary frame, ...) only the latest waits, in one slot per kind.

    A new message of a kind moves that kind's slot to the end of the outbox, so the order
    stays causal: a frame is never delivered before a message that preceded it. Kinds never
    evict each other. A viewer whose backlog of other messages still passes `max_backlog`
    is disconnected rather than let memory grow.
    """

    def __init__(self, max_backlog: int = MAX_BACKLOG, address: str = "") -> None:
        self.address = address
        # Called once when the backlog overflows: the transport cuts the connection now,
        # since the sender may itself be stuck on a socket the client does not read.
        self.on_overflow: Callable[[], None] | None = None
        self._items: deque[str | _Slot] = deque()
        self._latest: dict[str, str] = {}
        self._slots: dict[str, _Slot] = {}
        self._wake = asyncio.Event()
        self._max_backlog = max_backlog
        self.views: frozenset[str] = frozenset()  # the opt-in kinds it asked for
        self.finished = False  # the run ended: drain, then close
        self.overflowed = False

    def put(self, text: str, *, conflate: str | None = None) -> None:
        """Queue `text`; `conflate`: its kind, when only the latest of that kind matters."""
        if conflate is None:
            self._items.append(text)
            if len(self._items) > self._max_backlog and not self.overflowed:
                self.overflowed = True
                if self.on_overflow is not None:
                    self.on_overflow()
        else:
            slot = self._slots.setdefault(conflate, _Slot(conflate))
            if conflate in self._latest:
                self._items.remove(slot)
            self._latest[conflate] = text
            self._items.append(slot)
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
        if isinstance(item, _Slot):
            return self._latest.pop(item.kind)
        return item


class Fanout:
    """The viewers of every run, by run id."""

    def __init__(self, max_backlog: int = MAX_BACKLOG) -> None:
        self._viewers: dict[str, set[Viewer]] = {}
        self._max_backlog = max_backlog

    def publish(self, run_id: str, message: Encoded) -> None:
        conflate = message.kind if message.conflated else None
        opt_in = message.kind in OPT_IN_KINDS
        for viewer in self._viewers.get(run_id, ()):
            if not opt_in or message.kind in viewer.views:
                viewer.put(message.text, conflate=conflate)

    def subscribe(
        self,
        run_id: str,
        snapshot: str,
        *,
        limit: int,
        ended: bool,
        views: frozenset[str] = frozenset(),
        address: str = "",
        per_address: int | None = None,
    ) -> Viewer:
        """A viewer of `run_id` (finished runs count too: each holds a snapshot in flight);
        TooManyViewers past `limit` viewers, or `per_address` from one `address`."""
        viewers = self._viewers.get(run_id, set())
        if len(viewers) >= limit:
            raise TooManyViewers("too many viewers")
        if per_address is not None:
            mine = sum(1 for v in viewers if v.address == address)
            if mine >= per_address:
                raise TooManyViewers(watching_too_often(mine, per_address))
        viewer = Viewer(self._max_backlog, address)
        viewer.views = views
        viewer.put(snapshot)
        if ended:
            viewer.finish()
        self._viewers.setdefault(run_id, viewers).add(viewer)
        return viewer

    def unsubscribe(self, run_id: str, viewer: Viewer) -> None:
        viewers = self._viewers.get(run_id)
        if viewers is not None:
            viewers.discard(viewer)
            if not viewers:
                del self._viewers[run_id]

    def end(self, run_id: str) -> None:
        for viewer in self._viewers.get(run_id, ()):
            viewer.finish()

    def viewers(self, run_id: str) -> int:
        return len(self._viewers.get(run_id, ()))

    def viewers_of(self, run_id: str, kind: str) -> int:
        """How many of the run's viewers asked for the opt-in `kind`."""
        return sum(kind in v.views for v in self._viewers.get(run_id, ()))

    def unsent(self) -> int:
        return sum(v.pending() for viewers in self._viewers.values() for v in viewers)
