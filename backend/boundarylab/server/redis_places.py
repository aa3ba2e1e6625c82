"""Redis mode: the per-address caps on WebSocket connections and on viewers of one run,
counted over every replica (the embedded server counts them in stream.py and fanout.py).

A capped thing is a sorted set in Redis whose members are places, "{replica}|{n}", each
scored by when it expires (Redis's clock). Taking a place drops the expired ones, counts
the rest and adds one in one script, so two replicas cannot both give out an address's last
place. A replica gives a place back when its connection or viewer ends, and pushes the
expiry of every place it holds forward on each poll (RedisScheduler), so the places of a
replica that dies expire within PLACE_TTL_MS; after a Redis restart the poll writes them
back. Per replica stay the total of connections (max_ws_connections) and of one run's
viewers (max_viewers_per_run): they guard a replica's own memory, sockets and event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from typing import Any

from redis.exceptions import RedisError

from boundarylab.server.errors import TooManyViewers, Unavailable
from boundarylab.server.fanout import Viewer, watching_too_often
from boundarylab.server.redis_keys import PREFIX, run_key
from boundarylab.server.sockets import SocketCounts, too_many_from

log = logging.getLogger("boundarylab")
PLACE_TTL_MS = 5000  # a place its replica stopped refreshing (it died) expires after this
KEY_TTL_S = 60  # a set nobody refreshes goes
REDIS_DOWN = "Redis does not answer; try again shortly"

_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""
# KEYS: the set. ARGV: cap, member, place ttl ms, key ttl s. Returns -1 when the place was
# taken, else how many places the set holds (the cap or more).
TAKE = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[1]) then return held end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return -1
"""
)
# KEYS: sets. ARGV: place ttl ms, key ttl s, then the member held in each set (in order).
REFRESH = (
    _NOW
    + """
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + tonumber(ARGV[1]), ARGV[i + 2])
  redis.call('EXPIRE', key, ARGV[2])
end
return #KEYS
"""
)


def sockets_key(address: str) -> str:
    return f"{PREFIX}sockets:{address}"


def viewers_key(run_id: str, address: str) -> str:
    return run_key(run_id, f"viewers:{address}")


class Places:
    """The places this replica holds in Redis's capped sets."""

    def __init__(self, client: Any, replica_id: str) -> None:
        self.client, self.replica_id = client, replica_id
        self.held: dict[str, str] = {}  # member -> its set
        self._numbers = itertools.count()
        self._take = client.register_script(TAKE)
        self._refresh = client.register_script(REFRESH)
        self._giving_back: set[asyncio.Task[None]] = set()

    async def take(self, key: str, cap: int) -> tuple[str | None, int]:
        """(a place, 0) in set `key`, or (None, how many it holds) when it holds `cap`."""
        member = f"{self.replica_id}|{next(self._numbers)}"
        held = int(await self._take(keys=[key], args=[cap, member, PLACE_TTL_MS, KEY_TTL_S]))
        if held >= 0:
            return None, held
        self.held[member] = key
        return member, 0

    def give_back(self, member: str) -> None:
        """Free the place now (in a task: a connection's end must not wait on Redis); if
        Redis does not take it, it expires by itself."""
        key = self.held.pop(member, None)
        if key is not None:
            task = asyncio.get_running_loop().create_task(self._remove(key, member))
            self._giving_back.add(task)
            task.add_done_callback(self._giving_back.discard)

    async def _remove(self, key: str, member: str) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.client.zrem(key, member)

    async def refresh(self, pipe: Any) -> None:
        """Queue on `pipe` every held place's expiry, pushed PLACE_TTL_MS ahead."""
        if self.held:
            members = list(self.held)
            keys = [self.held[member] for member in members]
            args = [PLACE_TTL_MS, KEY_TTL_S, *members]
            await self._refresh(keys=keys, args=args, client=pipe)


class SharedSocketCounts(SocketCounts):
    """The WebSocket caps of a replica: the total its own, each address's over every
    replica (a place in the address's set)."""

    def __init__(self, places: Places) -> None:
        super().__init__()
        self.places = places

    async def _take(self, address: str, cap: int) -> tuple[str | None, object]:
        try:
            place, _ = await self.places.take(sockets_key(address), cap)
        except (RedisError, OSError) as exc:
            log.warning("counting a WebSocket connection in Redis: %s", exc)
            return REDIS_DOWN, None
        return (None, place) if place is not None else (too_many_from(cap), None)

    def _release(self, address: str, place: object) -> None:
        self.places.give_back(str(place))


class ViewerPlaces:
    """Each viewer's place among its address's viewers of a run, over every replica."""

    def __init__(self, places: Places) -> None:
        self.places = places
        self._of: dict[Viewer, str] = {}

    async def take(self, run_id: str, address: str, cap: int) -> str:
        """A place for one more viewer of `run_id` from `address`; errors.TooManyViewers
        when it has `cap` (fanout's words), errors.Unavailable when Redis does not answer."""
        try:
            place, held = await self.places.take(viewers_key(run_id, address), cap)
        except (RedisError, OSError) as exc:
            raise Unavailable(f"Redis does not answer ({exc}); try again shortly", 1) from exc
        if place is None:
            raise TooManyViewers(watching_too_often(held, cap))
        return place

    def hold(self, viewer: Viewer, place: str) -> None:
        self._of[viewer] = place

    def give_back(self, place: str) -> None:
        self.places.give_back(place)

    def left(self, viewer: Viewer) -> None:
        place = self._of.pop(viewer, None)
        if place is not None:
            self.places.give_back(place)
