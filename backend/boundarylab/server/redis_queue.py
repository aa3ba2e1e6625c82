"""Redis mode: where each queued run stands, told to its viewers as the embedded pool
tells them (a `queued` status with `position` and `expected_wait_s`).

The queue is the job stream's entries that no worker has been handed yet (after the
consumer group's last-delivered id), less the runs cancelled while they waited. A replica
reads it with the running runs (from `running`, with when a worker took each and the
iteration of the newest event in its log) and simulates the queue with waits.honest_waits,
as pool.WorkerPool does with its own jobs: a running run's rate is its steps over the
seconds since a worker took it (the embedded pool measures a recent window instead); every
replica computes the same places from the same Redis, so a viewer gets the same place
whichever replica it is on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from boundarylab.engine.config import RunConfig
from boundarylab.server.redis_keys import GROUP, JOBS, RUNNING, run_key
from boundarylab.server.waits import MIN_OBSERVED_S, Progress, honest_waits

WAITING_MAX = 1000  # queue entries read at most (the queue bound is far lower)


@dataclass
class QueueState:
    """The queue as one read of Redis saw it."""

    waiting: list[tuple[str, RunConfig]]  # run id and config, in queue order
    # config, seconds since a worker took it, and steps done (as of its newest logged event)
    running: list[tuple[RunConfig, float, int]]


async def read_queue(client: Any) -> QueueState:
    """The waiting runs (in order) and the running ones, in three round trips."""
    groups = await client.xinfo_groups(JOBS)
    last = next((g["last-delivered-id"] for g in groups if g["name"] == GROUP), "0-0")
    entries = await client.xrange(JOBS, min=f"({last}", max="+", count=WAITING_MAX)
    queued = [fields["run"] for _, fields in entries]
    running = sorted(await client.smembers(RUNNING))
    pipe = client.pipeline(transaction=False)
    for run_id in queued:
        pipe.hmget(run_key(run_id), "config", "owner", "ended")
    for run_id in running:
        pipe.hmget(run_key(run_id), "config", "claimed")
        pipe.lindex(run_key(run_id, "log"), -1)  # its newest event but frames: a progress one
    answers = await pipe.execute()
    waiting = []
    for run_id, (config, owner, ended) in zip(queued, answers, strict=False):
        if config and not owner and not ended:  # not taken, not cancelled while queued
            waiting.append((run_id, RunConfig.model_validate_json(config)))
    now_ms, took = time.time() * 1000, []
    rest = answers[len(queued) :]
    for (config, claimed), newest in zip(rest[::2], rest[1::2], strict=True):
        if config:
            elapsed = max(0.0, now_ms - float(claimed or now_ms)) / 1000
            took.append((RunConfig.model_validate_json(config), elapsed, _iteration(newest)))
    return QueueState(waiting, took)


def _iteration(entry: str | bytes | None) -> int:
    """The iteration a log entry (redis_keys.message_entry) names, or 0."""
    if not entry:
        return 0
    iteration = json.loads(entry).get("iteration")
    return int(iteration) if isinstance(iteration, int | float) else 0


def places(state: QueueState, workers: int) -> list[tuple[str, int, float]]:
    """(run id, place from 1, expected wait in whole seconds) of each waiting run: the
    running runs' remaining time at the rate they make and the queue ahead, over
    max(running, workers) slots (the embedded pool's estimate; a simulation, not a
    promise)."""
    running = [
        Progress(config, done, rate=done / elapsed if elapsed >= MIN_OBSERVED_S else None)
        for config, elapsed, done in state.running
    ]
    waits = honest_waits(running, [config for _, config in state.waiting], workers)
    order = zip(state.waiting, waits, strict=True)
    return [(run_id, place, round(wait)) for place, ((run_id, _), wait) in enumerate(order, 1)]


class PlaceTeller:
    """What each queued run was last told, so it is told again only when its place changes
    or its wait moves by at least max(2 s, 20 %), as in the embedded pool: a viewer's
    countdown does not jump with every estimate."""

    def __init__(self) -> None:
        self._told: dict[str, tuple[int, float]] = {}

    def changes(self, now: Iterable[tuple[str, int, float]]) -> list[tuple[str, int, float]]:
        fresh: dict[str, tuple[int, float]] = {}
        tell = []
        for run_id, place, wait in now:
            before = self._told.get(run_id)
            moved = before is None or abs(wait - before[1]) >= max(2.0, 0.2 * before[1])
            if before is None or before[0] != place or moved:
                tell.append((run_id, place, wait))
                fresh[run_id] = (place, wait)
            else:
                fresh[run_id] = before
        self._told = fresh  # a run that left the queue is forgotten
        return tell
