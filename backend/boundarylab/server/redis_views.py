"""Redis mode: who watches a run, counted over every replica, so its worker makes boundary
frames and unit views only while someone, on any replica, wants them (as the embedded
pool does with its one replica's viewers).

Each run has a sorted set, run:{id}:watch, of "{replica}|{kind}" members (kind: "frames"
for any viewer, "units" for one that asked for the unit view), each scored by when it
expires. A replica adds its member when its first viewer of that kind arrives, removes it
when its last leaves, and pushes every member's expiry forward on each poll; a replica
that dies stops pushing, so its viewers expire within WATCH_TTL_MS. The worker reads the
sets of its runs each second, and at once when a replica says a run's viewers changed
(a "views" command), and tells its WorkerLoop what changed.
"""

from __future__ import annotations

import time
from typing import Any

from boundarylab.engine.events import UNITS_OFF, UNITS_ON
from boundarylab.server.redis_keys import run_key

WATCH_TTL_MS = 5000  # a replica that stops refreshing its viewers loses them after this
KEY_TTL_S = 60  # the set itself goes once no replica refreshes it
FRAMES, UNITS = "frames", "units"
DEFAULT_VIEWS = frozenset({FRAMES})  # a run starts as the stepper does: frames, no units
VIEWS_CHANGED = "views"  # the command that tells a run's worker to read its set now


def watch_key(run_id: str) -> str:
    return run_key(run_id, "watch")


class ReplicaViews:
    """The kinds this replica's viewers want, per run; written to each run's watch set."""

    def __init__(self, replica_id: str) -> None:
        self.replica_id = replica_id
        self.wanted: dict[str, set[str]] = {}

    def set(self, run_id: str, kind: str, wanted: bool) -> bool:
        """Record a change; True when it is one (and the set must be written)."""
        kinds = self.wanted.setdefault(run_id, set())
        if (kind in kinds) == wanted:
            return False
        (kinds.add if wanted else kinds.discard)(kind)
        if not kinds:
            del self.wanted[run_id]
        return True

    def forget(self, run_id: str) -> None:
        self.wanted.pop(run_id, None)

    def write(self, pipe: Any, run_id: str) -> None:
        """Queue on `pipe` this replica's members of the run's set, as they are now."""
        key = watch_key(run_id)
        kinds = self.wanted.get(run_id, set())
        expires = int(time.time() * 1000) + WATCH_TTL_MS
        for kind in (FRAMES, UNITS):
            member = f"{self.replica_id}|{kind}"
            if kind in kinds:
                pipe.zadd(key, {member: expires})
            else:
                pipe.zrem(key, member)
        pipe.expire(key, KEY_TTL_S)

    def refresh(self, pipe: Any) -> None:
        """Queue on `pipe` the members of every watched run, their expiry pushed forward."""
        for run_id in list(self.wanted):
            self.write(pipe, run_id)


async def read_views(client: Any, run_ids: list[str]) -> dict[str, frozenset[str]]:
    """The kinds some live replica's viewers want, for each of `run_ids` (expired members
    are dropped on the way)."""
    now = int(time.time() * 1000)
    pipe = client.pipeline(transaction=False)
    for run_id in run_ids:
        pipe.zremrangebyscore(watch_key(run_id), "-inf", now)
        pipe.zrange(watch_key(run_id), 0, -1)
    answers = await pipe.execute()
    members = answers[1::2]
    return {run_id: frozenset(m.rsplit("|", 1)[-1] for m in found)
            for run_id, found in zip(run_ids, members, strict=True)}  # fmt: skip


def view_actions(before: frozenset[str], now: frozenset[str]) -> list[str]:
    """The WorkerLoop actions that take a run from wanting `before` to wanting `now`."""
    actions = []
    if (FRAMES in before) != (FRAMES in now):
        actions.append("frames_on" if FRAMES in now else "frames_off")
    if (UNITS in before) != (UNITS in now):
        actions.append(UNITS_ON if UNITS in now else UNITS_OFF)
    return actions


class WorkerViews:
    """A worker's side: what each of its runs was last told it is watched for."""

    def __init__(self) -> None:
        self.told: dict[str, frozenset[str]] = {}

    async def changes(self, client: Any, run_ids: list[str]) -> list[tuple[str, str]]:
        """(run id, action) for each run whose watchers changed since it was last told."""
        self.told = {r: v for r, v in self.told.items() if r in run_ids}  # ended runs go
        if not run_ids:
            return []
        actions = []
        for run_id, now in (await read_views(client, run_ids)).items():
            before = self.told.get(run_id, DEFAULT_VIEWS)
            actions += [(run_id, action) for action in view_actions(before, now)]
            self.told[run_id] = now
        return actions
