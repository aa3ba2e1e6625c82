"""Open WebSocket connections against their caps: in all on this server (or replica), and
by client address. Redis mode counts the addresses over every replica
(redis_places.SharedSocketCounts); the total stays each replica's own, since it guards that
replica's memory and open files."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator

from boundarylab.server.settings import Settings

TOO_MANY_IN_ALL = "the server has as many WebSocket connections as it takes; try later"


def too_many_from(cap: int) -> str:
    """Why a connection from an address that holds `cap` already is refused."""
    return f"this address has {cap} WebSocket connections open"


class SocketCounts:
    """Open WebSocket connections, in all and by client address, against their caps."""

    def __init__(self) -> None:
        self.total = 0
        self.by_address: Counter[str] = Counter()

    @contextlib.asynccontextmanager
    async def hold(self, address: str, settings: Settings) -> AsyncIterator[str | None]:
        """Count one connection for its life; yields why it is refused, or None."""
        if self.total >= settings.max_ws_connections:
            yield TOO_MANY_IN_ALL
            return
        refused, place = await self._take(address, settings.max_ws_per_address)
        if refused is not None:
            yield refused
            return
        self.total += 1
        try:
            yield None
        finally:
            self.total -= 1
            self._release(address, place)

    async def _take(self, address: str, cap: int) -> tuple[str | None, object]:
        """(None, a place) for one more connection from `address`, or (why not, None)."""
        if self.by_address[address] >= cap:
            return too_many_from(cap), None
        self.by_address[address] += 1
        return None, address

    def _release(self, address: str, place: object) -> None:
        self.by_address[address] -= 1
        if not self.by_address[address]:
            del self.by_address[address]
