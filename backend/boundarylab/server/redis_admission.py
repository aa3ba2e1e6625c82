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

Among workers with room, the least loaded takes the run, as the embedded pool places a run
on the worker with the most headroom: each worker publishes its standing for each kind of
run (its load: paced estimate, or unpaced runs held; and its room for more) in a hash, and
TAKE answers "wait" to a worker while another live worker has less load and room for the
run. A worker that has been told to wait for one job for PREFER_S takes it all the same (a
standing is as old as its worker's last loop, so a stale one cannot hold a run back).
Without this, two idle workers racing for eight unpaced runs split them 5/3 or worse, and
the busier worker's runs end seconds after the other's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from boundarylab.engine.config import RunConfig
from boundarylab.server.capacity import REFERENCE, Calibration, paced_cores
from boundarylab.server.placement import HEADROOM, SETTLE_S, UNPACED_PER_WORKER
from boundarylab.server.protocol import Done, Heartbeat
from boundarylab.server.redis_keys import GROUP, JOBS, PREFIX, RUNNING, Scripts, run_key, worker_key

log = logging.getLogger("boundarylab")

ROOM = PREFIX + "room:"  # + "paced" / "unpaced": hash, worker id -> "{load} {room}"
IDLE_ROOM = 1e9  # an idle worker's room: it takes any run
PREFER_S = 1.0  # how long a worker lets a less loaded one take the head first
WAIT_S = 0.05  # how soon a worker told to wait looks again

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

# The head to this worker, if it is still ARGV[3] and (ARGV[4] = '1') no other live worker
# has less load and room for it. KEYS: jobs, the standings of the run's kind (ROOM + kind).
# ARGV: group, consumer, job id, prefer, this worker's load, the run's cost, the worker
# key prefix. Returns 'took', 'wait', or false when another worker took it first.
TAKE = (
    _LAST_DELIVERED
    + """
local last = last_delivered(KEYS[1], ARGV[1])
if not last then return false end
local head = redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', 1)
if #head == 0 or head[1][1] ~= ARGV[3] then return false end
if ARGV[4] == '1' then
  local standings = redis.call('HGETALL', KEYS[2])
  for i = 1, #standings, 2 do
    local load, room = string.match(standings[i + 1], '^(%S+) (%S+)$')
    if standings[i] ~= ARGV[2] and tonumber(load) < tonumber(ARGV[5])
        and tonumber(room) >= tonumber(ARGV[6])
        and redis.call('EXISTS', ARGV[7] .. standings[i]) == 1 then
      return 'wait'
    end
  end
end
redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
return 'took'
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

    def __init__(self, calibration: Calibration = REFERENCE) -> None:
        self.calibration = calibration  # this machine's cost of a step and a frame
        self.held: dict[str, Held] = {}
        self.measured_paced = 0.0  # the share of a CPU its paced runs took (last heartbeat)

    def took(self, run_id: str, config: RunConfig, now: float) -> None:
        paced = config.training.steps_per_second is not None
        cores = paced_cores(config, calibration=self.calibration) if paced else 0.0
        self.held[run_id] = Held(paced, cores, now)

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
        paced = config.training.steps_per_second is not None
        return self.standing(paced, now)[1] >= cost(config, self.calibration)

    def standing(self, paced: bool, now: float) -> tuple[float, float]:
        """(load, room) for a paced or unpaced run: the paced estimate and the CPU share
        left under HEADROOM, or the unpaced runs held and the places left; an idle worker
        has room for any run (a run alone cannot be refused)."""
        if paced:
            load = self.paced_estimate(now)
            room = HEADROOM - load
        else:
            load = float(sum(1 for h in self.held.values() if not h.paced))
            room = UNPACED_PER_WORKER - load
        return load, room if self.held else IDLE_ROOM


def cost(config: RunConfig, calibration: Calibration = REFERENCE) -> float:
    """What a run takes of a worker's room: its estimated CPU share on a machine
    `calibration` times the reference's, or one unpaced place."""
    if config.training.steps_per_second is None:
        return 1.0
    return paced_cores(config, calibration=calibration)


class JobTaker:
    """One worker's way to its next job: its Headroom, and PEEK and TAKE on its client."""

    def __init__(self, client: Any, worker_id: str, calibration: Calibration = REFERENCE) -> None:
        self.client, self.worker_id = client, worker_id
        self.headroom = Headroom(calibration)
        self._room_changed = asyncio.Event()  # a heartbeat measured, or a run ended
        self._peek = client.register_script(PEEK)
        self._take = client.register_script(TAKE)
        self._published: tuple[tuple[float, float], ...] = ()
        self._told_to_wait: tuple[str, float] = ("", 0.0)  # job id, since when

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
            await self.publish(full())
            head = None if full() else await self.peek()
            if isinstance(head, str):  # nothing waits: until a job comes after that id
                await self.client.xread({JOBS: head}, count=1, block=1000)
            elif head is not None and self._fits(head):
                answer = await self.take(head)
                if answer == "took":
                    if head.config is not None:
                        self.headroom.took(head.run_id, head.config, time.monotonic())
                    return head
                if answer == "wait":  # a less loaded worker may take it first
                    await asyncio.sleep(WAIT_S)
            else:  # no room: the job stays queued, in its place
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room_changed.wait(), 1.0)

    async def publish(self, full: bool) -> None:
        """This worker's standing for each kind of run, where TAKE compares them (written
        when it changed)."""
        now = time.monotonic()
        standings = tuple(self.headroom.standing(paced, now) for paced in (True, False))
        if full:
            standings = tuple((load, -1.0) for load, _ in standings)
        if standings == self._published:
            return
        pipe = self.client.pipeline(transaction=False)
        for kind, (load, room) in zip(("paced", "unpaced"), standings, strict=True):
            pipe.hset(ROOM + kind, self.worker_id, f"{load:.6g} {room:.6g}")
        await pipe.execute()
        self._published = standings

    async def forget(self) -> None:
        """This worker's standings gone (it stops)."""
        pipe = self.client.pipeline(transaction=False)
        for kind in ("paced", "unpaced"):
            pipe.hdel(ROOM + kind, self.worker_id)
        await pipe.execute()

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

    async def take(self, head: Head) -> str | None:
        """'took' (`head` is now this worker's), 'wait' (a less loaded worker has room for
        it), or None (another worker took it first)."""
        waiting, since = self._told_to_wait
        now = time.monotonic()
        if waiting != head.job_id:
            self._told_to_wait = (head.job_id, now)
        prefer = head.config is not None and (waiting != head.job_id or now - since < PREFER_S)
        paced = head.config is not None and head.config.training.steps_per_second is not None
        load = self.headroom.standing(paced, now)[0]
        need = cost(head.config, self.headroom.calibration) if head.config is not None else 0.0
        args = [GROUP, self.worker_id, head.job_id, "1" if prefer else "0", f"{load:.6g}",
                f"{need:.6g}", worker_key("")]  # fmt: skip
        kind = "paced" if paced else "unpaced"
        answer = await self._take(keys=[JOBS, ROOM + kind], args=args)
        return str(answer) if answer else None


async def claim_run(
    scripts: Scripts,
    client: Any,
    worker_id: str,
    run_id: str,
    took: int,
    recover: Callable[[], Awaitable[object]],
    epoch: Callable[[], str],
) -> tuple[str, str, str, str] | None:
    """CLAIM the run for `worker_id` and read what starting it needs: (owner, config,
    client address, pending command). The job is the worker's once taken, and no one else
    would ever start the run, so a Redis failure here is waited out (`recover`) and the
    claim asked again: CLAIM answers the same owner again when the worker already holds the
    run. None when Redis came back without its data (`epoch()`, the worker's view of Redis's
    lifetime, moved: whichever of the worker's loops noticed it first)."""
    key, lifetime = run_key(run_id), epoch()
    while True:
        try:
            owner = await scripts.claim(keys=[key, RUNNING], args=[worker_id, run_id, took])
            if owner != worker_id:
                return owner, "", "", ""
            config, address, pending = await client.hmget(key, "config", "client", "pending")
            return owner, config, address or "", pending or ""
        except (RedisError, OSError) as exc:
            log.warning("worker %s: Redis failed taking run %s (%s)", worker_id, run_id, exc)
            await recover()
            if epoch() != lifetime:
                return None


__all__ = ["HEADROOM", "Head", "Headroom", "JobTaker", "claim_run"]
