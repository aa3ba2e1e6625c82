"""Redis mode: a worker takes the queue's next run only while it has CPU headroom for it, by
the embedded pool's rule (placement.py, with capacity.py's estimates); a run it has no room
for stays queued, in its place, for a worker that has.

The rule, as placement.Placement applies it to the embedded workers: a paced run fits when
its estimated share of a CPU (capacity.paced_cores) fits under placement.HEADROOM beside the
worker's measured paced load (its WorkerLoop's heartbeats) and the estimates of the paced
runs it took too recently (placement.SETTLE_S) for a heartbeat to have measured them; an
unpaced run takes what paced runs leave, at most placement.UNPACED_PER_WORKER of them; an
idle worker takes any run (a run alone cannot be refused). As in the embedded queue, no run
overtakes the one whose turn it is.

Taking is two steps, because the estimate is Python's: PEEK reads the queue's head (the
first job past the consumer group's last-delivered id) with its run's config, the worker
decides, and TAKE hands it that job only if it is still the head (XREADGROUP COUNT 1 in
the same script), so two workers deciding at once never take a job past the head.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from boundarylab.engine.config import RunConfig
from boundarylab.server.capacity import paced_cores
from boundarylab.server.placement import HEADROOM, SETTLE_S, UNPACED_PER_WORKER
from boundarylab.server.protocol import Done, Heartbeat
from boundarylab.server.redis_keys import GROUP, JOBS, PREFIX

# The last-delivered id of the group ARGV[1] of the stream KEYS[1] (a local function of the
# scripts below: XINFO GROUPS answers each group as a flat list of names and values).
_LAST_DELIVERED = """
local function last_delivered(stream, group)
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local fields = {}
    for i = 1, #g, 2 do fields[g[i]] = g[i + 1] end
    if fields['name'] == group then return fields['last-delivered-id'] end
  end
  return nil
end
"""

# The queue's head. KEYS: jobs. ARGV: group, the run hash's key prefix. Returns {'empty',
# last-delivered id} (nothing waits: block on the stream from that id), or {'head', job
# id, run id, config, '1' when the run was taken or ended already (cancelled while queued:
# no cost to take), else '0'}.
PEEK = (
    _LAST_DELIVERED
    + """
local last = last_delivered(KEYS[1], ARGV[1])
if not last then return {'empty', '0-0'} end
local head = redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', 1)
if #head == 0 then return {'empty', last} end
local id, fields = head[1][1], head[1][2]
local run = ''
for i = 1, #fields, 2 do if fields[i] == 'run' then run = fields[i + 1] end end
local hash = ARGV[2] .. run
local config = redis.call('HGET', hash, 'config') or ''
local gone = redis.call('HGET', hash, 'owner') or redis.call('HGET', hash, 'ended')
return {'head', id, run, config, gone and '1' or '0'}
"""
)

# The head to this worker, if it is still ARGV[3]. KEYS: jobs. ARGV: group, consumer, job
# id. Returns the job id, or false when another worker took it first.
TAKE = (
    _LAST_DELIVERED
    + """
local last = last_delivered(KEYS[1], ARGV[1])
if not last then return false end
local head = redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', 1)
if #head == 0 or head[1][1] ~= ARGV[3] then return false end
redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
return ARGV[3]
"""
)


@dataclass(frozen=True)
class Head:
    """The queue's next job as PEEK saw it."""

    job_id: str
    run_id: str
    config: RunConfig | None  # None: taken or ended already (its job is only to be skipped)


@dataclass
class Held:
    """A run a worker trains, as its admission counts it."""

    paced: bool
    cores: float  # its estimated share of a CPU (capacity.paced_cores)
    taken_at: float  # time.monotonic() when the worker took it


class Headroom:
    """One worker's CPU budget: the runs it holds, and its WorkerLoop's measured paced load."""

    def __init__(self) -> None:
        self.held: dict[str, Held] = {}
        self.measured_paced = 0.0  # the share of a CPU its paced runs took (last heartbeat)

    def took(self, run_id: str, config: RunConfig, now: float) -> None:
        paced = config.training.steps_per_second is not None
        self.held[run_id] = Held(paced, paced_cores(config) if paced else 0.0, now)

    def ended(self, run_id: str) -> None:
        self.held.pop(run_id, None)

    def measured(self, paced_load: float) -> None:
        self.measured_paced = paced_load

    def paced_estimate(self, now: float) -> float:
        """The measured paced load, plus the estimates of paced runs too new to be in it."""
        fresh = sum(h.cores for h in self.held.values() if h.paced and now - h.taken_at < SETTLE_S)
        return self.measured_paced + fresh

    def fits(self, config: RunConfig, now: float) -> bool:
        """Whether this worker has room for a run of `config` now (placement's rule)."""
        if not self.held:
            return True  # a run alone cannot be refused
        if config.training.steps_per_second is None:
            return sum(1 for h in self.held.values() if not h.paced) < UNPACED_PER_WORKER
        return self.paced_estimate(now) + paced_cores(config) <= HEADROOM


class JobTaker:
    """One worker's way to its next job: its Headroom, and PEEK and TAKE on its client."""

    def __init__(self, client: Any, worker_id: str) -> None:
        self.client, self.worker_id = client, worker_id
        self.headroom = Headroom()
        self._room_changed = asyncio.Event()  # a heartbeat measured, or a run ended
        self._peek = client.register_script(PEEK)
        self._take = client.register_script(TAKE)

    def count(self, event: Any) -> None:
        """An event of the worker's WorkerLoop: a heartbeat or a run's end changes its room."""
        if isinstance(event, Heartbeat):
            self.headroom.measured(event.paced_load)
        elif isinstance(event, Done):
            self.headroom.ended(event.run_id)
        else:
            return
        self._room_changed.set()

    async def next(self, full: Callable[[], bool]) -> Head:
        """The next job, now this worker's, once it has room for it (and `full()` is
        false): blocks on the job stream while nothing waits, and waits for a heartbeat or
        a run's end (either may make room) while the head does not fit here; meanwhile
        another worker may take it."""
        while True:
            self._room_changed.clear()
            head = None if full() else await self.peek()
            if isinstance(head, str):  # nothing waits: until a job comes after that id
                await self.client.xread({JOBS: head}, count=1, block=1000)
            elif head is not None and self._fits(head):
                if await self.take(self.worker_id, head):
                    return head
            else:  # no room: the job stays queued, in its place
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room_changed.wait(), 1.0)

    def _fits(self, head: Head) -> bool:
        return head.config is None or self.headroom.fits(head.config, time.monotonic())

    async def peek(self) -> Head | str:
        """The queue's head, or (nothing waits) the id to block on the job stream from."""
        answer = await self._peek(keys=[JOBS], args=[GROUP, f"{PREFIX}run:"])
        if answer[0] == "empty":
            return str(answer[1])
        _, job_id, run_id, config, gone = answer
        parsed = None if gone == "1" or not config else RunConfig.model_validate_json(config)
        return Head(str(job_id), str(run_id), parsed)

    async def take(self, worker_id: str, head: Head) -> bool:
        """Whether `head` is now this worker's (False: another worker took it first)."""
        return bool(await self._take(keys=[JOBS], args=[GROUP, worker_id, head.job_id]))


__all__ = ["HEADROOM", "Head", "Headroom", "JobTaker"]
