"""Redis mode's shared vocabulary: key names, the Lua scripts that change a run's state
atomically, and how a run's events are written as stream entries. Replicas
(redis_service.py) and workers (redis_worker.py) both import it; nothing here holds state.

Keys (all under PREFIX):
  run:{id}          hash: config, client, dataset, created, owner (worker id, or "-" when
                    cancelled before a worker took it), claimed (when a worker took it, ms),
                    pending ("pause": start paused),
                    ended, model (final weights, JSON)
  run:{id}:log      list: every event of the run except conflated frames, in order (the
                    history a replica replays to build a snapshot; never trimmed)
  run:{id}:latest   hash: the latest message of each conflated kind (boundary, units)
  run:{id}:events   stream, capped (MAXLEN ~): every event, for replicas to follow live
  jobs              stream + consumer group "workers": one entry per submitted run
  active / running  sets of run ids (queued or running / running): the queue bound
  client:{address}  set of a client's queued or running run ids: its run limit
  runs, runs:{address}  sorted sets of every run held, and of a client's, by when each was
                    created: what GET /api/runs lists (the one of a client that has no run
                    left queued or running expires with its runs' retention)
  worker:{id}       string with a TTL, refreshed by the worker's heartbeat: alive while set
  workers           sorted set, worker id -> the time its heartbeat runs out (for counting
                    workers without scanning keys)
  worker:{id}:commands  stream of commands to the runs that worker holds
  room:paced, room:unpaced  hashes, worker id -> its load and room for one more run of
                    that kind (redis_admission: the least loaded worker with room takes it)
  epoch             a random value set once per Redis lifetime (current_epoch)

Every event is one JSON object in one field ("j"), the same text in the log, the latest
hash and the stream: {"e": "started"} | {"e": "message", "kind", "text", ...Encoded} |
{"e": "done", "status"} | {"e": "aborted", "status", "reason"}.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict
from typing import Any

from boundarylab.engine.knobs import Retune
from boundarylab.server.messages import Encoded, dumps

PREFIX = "bl:"
JOBS = PREFIX + "jobs"
GROUP = "workers"
ACTIVE = PREFIX + "active"
RUNNING = PREFIX + "running"
EVENTS_MAXLEN = 2000  # entries a run's live stream keeps: a replica far behind reloads
COMMANDS_MAXLEN = 1000
EPOCH = PREFIX + "epoch"  # set once per Redis lifetime: a new value means the data is gone
WORKER_TTL_MS = 3000  # a worker not heard from for this long is dead; its runs fail
WORKERS = PREFIX + "workers"  # sorted set: worker id -> when its heartbeat runs out (ms)
FINISHED = PREFIX + "finished"  # sorted set: finished run id -> when it ended (ms)
RUNS = PREFIX + "runs"  # sorted set: every run held -> when it was created (GET /api/runs)
CONNECT_TIMEOUT_S = 3.0


def run_key(run_id: str, part: str = "") -> str:
    return f"{PREFIX}run:{run_id}{':' + part if part else ''}"


def client_key(client: str) -> str:
    return f"{PREFIX}client:{client}"


def listed_key(client: str | None) -> str:
    """The sorted set GET /api/runs reads: `client`'s runs, or every run (None)."""
    return RUNS if client is None else f"{RUNS}:{client}"


def worker_key(worker_id: str, part: str = "") -> str:
    return f"{PREFIX}worker:{worker_id}{':' + part if part else ''}"


def run_keys(run_id: str, client: str) -> list[str]:
    """The KEYS of APPEND: the run's hash, log, latest, events, the sets it leaves, the
    finished runs' retention index (FINISHED, its sizes, their total), and the listings
    (every run's, the client's)."""
    return [
        run_key(run_id),
        run_key(run_id, "log"),
        run_key(run_id, "latest"),
        run_key(run_id, "events"),
        client_key(client),
        ACTIVE,
        RUNNING,
        FINISHED,
        FINISHED + ":bytes",
        FINISHED + ":total",
        RUNS,
        listed_key(client),
    ]


# -- events as entries -----------------------------------------------------------------------
def message_entry(message: Encoded) -> str:
    return json.dumps({"e": "message", **asdict(message)})


def entry_message(entry: dict[str, Any]) -> Encoded:
    fields = {k: v for k, v in entry.items() if k != "e"}
    return Encoded(**fields)


# -- commands as entries ---------------------------------------------------------------------
RETUNE = "retune"  # the action of a change of knobs; its values travel as JSON beside it


def command_fields(run_id: str, action: str | Retune) -> dict[str, str]:
    """A command to a run as the fields of an entry of its worker's command stream."""
    if isinstance(action, Retune):
        return {"run": run_id, "action": RETUNE, "values": json.dumps(asdict(action))}
    return {"run": run_id, "action": action}


def command_action(fields: dict[str, str]) -> str | Retune:
    """The action of a command entry (command_fields' inverse)."""
    action = fields.get("action", "")
    if action == RETUNE:
        return Retune(**json.loads(fields.get("values", "{}")))
    return action


# -- scripts ---------------------------------------------------------------------------------
# Admission: a client's active runs and the queue are counted here, where every replica
# sees the same numbers, and the run is registered and queued in the same step.
# It is listed too (GET /api/runs), in every run's listing and its client's; the client's
# listing lives while the client has a run queued or running (APPEND expires it after).
# KEYS: run hash, client set, active, running, jobs, RUNS, listed_key(client). ARGV: run
# id, client limit, queue bound, config, client, dataset, created. Returns {"ok"} or
# {"client"|"queue", count}.
ADMIT = """
local mine = redis.call('SCARD', KEYS[2])
if mine >= tonumber(ARGV[2]) then return {'client', mine} end
local queued = redis.call('SCARD', KEYS[3]) - redis.call('SCARD', KEYS[4])
if queued >= tonumber(ARGV[3]) then return {'queue', queued} end
redis.call('HSET', KEYS[1], 'config', ARGV[4], 'client', ARGV[5], 'dataset', ARGV[6],
           'created', ARGV[7])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('XADD', KEYS[5], '*', 'run', ARGV[1])
redis.call('ZADD', KEYS[6], ARGV[7], ARGV[1])
redis.call('ZADD', KEYS[7], ARGV[7], ARGV[1])
redis.call('PERSIST', KEYS[7])
return {'ok', queued}
"""

# Taking a run: only one owner ever (a worker id, or "-" for cancelled while queued).
# KEYS: run hash, running. ARGV: owner, run id, and (a worker) the time it took the run in
# ms, which queue places use. Returns the owner in place.
CLAIM = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner or redis.call('HGET', KEYS[1], 'ended') then return owner or '' end
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
if ARGV[3] then redis.call('HSET', KEYS[1], 'claimed', ARGV[3]) end
if ARGV[1] ~= '-' then redis.call('SADD', KEYS[2], ARGV[2]) end
return ARGV[1]
"""

# A command for a run, where it is now (atomic with CLAIM, so none falls between "queued"
# and "taken"). KEYS: run hash. ARGV: action. Returns the owner (the worker to send it to),
# "!cancelled" when this call cancelled the queued run, or "" when it was kept for the start
# (pause: the run starts paused, as in the embedded pool; resume: forget that) or is moot.
ROUTE = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner or redis.call('HGET', KEYS[1], 'ended') then return owner or '' end
if ARGV[1] == 'cancel' then
  redis.call('HSET', KEYS[1], 'owner', '-')
  return '!cancelled'
elseif ARGV[1] == 'pause' then
  redis.call('HSET', KEYS[1], 'pending', 'pause')
elseif ARGV[1] == 'resume' then
  redis.call('HDEL', KEYS[1], 'pending')
end
return ''
"""

# One event of a run, everywhere it belongs, unless the run has ended (so a worker that was
# declared dead and comes back cannot write after the "failed" its reaper wrote).
# A run that ends joins the finished runs' index, and the oldest finished runs are deleted
# past the retention count or bytes (the sizes of their logs, points and weights), so the
# budgets hold over every replica and worker, as MemoryRunStore's do in one process. (The
# keys of those runs are built in the script: fine on one Redis, not on a Redis Cluster.)
# A worker numbers its runs' events (seq, from 1): one it writes again after Redis failed
# under a batch (a restart with persistence, a network fault) that Redis had already taken
# is skipped, so no viewer sees an event twice.
# KEYS: run_keys(). ARGV: entry JSON, conflated kind or "", final ("1" for done/aborted),
# events maxlen, retention seconds, run id, model JSON or "", retention count, retention
# bytes or "", seq or "".
APPEND = """
if redis.call('HGET', KEYS[1], 'ended') then return 0 end
if ARGV[10] ~= '' then
  if tonumber(ARGV[10]) <= tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') then
    return 1
  end
  redis.call('HSET', KEYS[1], 'seq', ARGV[10])
end
local id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 'j', ARGV[1])
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[1])
else
  redis.call('RPUSH', KEYS[2], ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'bytes', #ARGV[1])
end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'ended', '1')
  if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'model', ARGV[7]) end
  redis.call('SREM', KEYS[5], ARGV[6])
  redis.call('SREM', KEYS[6], ARGV[6])
  redis.call('SREM', KEYS[7], ARGV[6])
  for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
  -- The client's listing outlives its last run by the retention time (an expired run
  -- still in it is dropped by whoever lists it: redis_service.RedisRunService.list_runs).
  if redis.call('SCARD', KEYS[5]) == 0 then redis.call('EXPIRE', KEYS[12], ARGV[5]) end
  local size = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0') + #ARGV[7]
    + redis.call('HSTRLEN', KEYS[1], 'dataset')
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  redis.call('ZADD', KEYS[8], now, ARGV[6])
  redis.call('HSET', KEYS[9], ARGV[6], size)
  redis.call('INCRBY', KEYS[10], size)
  local prefix = string.sub(KEYS[1], 1, #KEYS[1] - #ARGV[6])
  local function forget(id)
    redis.call('DECRBY', KEYS[10], tonumber(redis.call('HGET', KEYS[9], id) or '0'))
    redis.call('HDEL', KEYS[9], id)
    redis.call('ZREM', KEYS[8], id)
    redis.call('ZREM', KEYS[11], id)
    local client = redis.call('HGET', prefix .. id, 'client')
    if client then redis.call('ZREM', KEYS[11] .. ':' .. client, id) end
    for _, part in ipairs({'', ':log', ':latest', ':events', ':watch'}) do
      redis.call('DEL', prefix .. id .. part)
    end
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[8], '-inf', now - ARGV[5] * 1000)) do
    forget(id)  -- expired: its keys are gone, its place in the index goes too
  end
  local budget = tonumber(ARGV[9])
  while redis.call('ZCARD', KEYS[8]) > tonumber(ARGV[8])
      or (budget and tonumber(redis.call('GET', KEYS[10]) or '0') > budget) do
    forget(redis.call('ZRANGE', KEYS[8], 0, 0)[1])  -- the oldest finished run
  end
end
return 1
"""


def beat(pipe: Any, worker_id: str, value: str) -> None:
    """Queue a worker's heartbeat on `pipe`: its key for WORKER_TTL_MS more, and its place
    in WORKERS (scored by when that runs out, by the worker's clock)."""
    pipe.set(worker_key(worker_id), value, px=WORKER_TTL_MS)
    pipe.zadd(WORKERS, {worker_id: int(time.time() * 1000) + WORKER_TTL_MS})


async def live_workers(client: Any) -> int:
    """Workers whose heartbeat has not run out (dropping the others from WORKERS)."""
    now = int(time.time() * 1000)
    pipe = client.pipeline(transaction=False)
    pipe.zremrangebyscore(WORKERS, "-inf", now)
    pipe.zcard(WORKERS)
    return int((await pipe.execute())[1])


class Scripts:
    """The scripts above, registered on one client (sent by hash after the first call)."""

    def __init__(self, client: Any, keep: tuple[int, int | None] = (200, None)) -> None:
        """`keep`: the finished runs kept at most, by count and bytes (None: no budget)."""
        self.keep = keep
        self.admit = client.register_script(ADMIT)
        self.claim = client.register_script(CLAIM)
        self.route = client.register_script(ROUTE)
        self._append = client.register_script(APPEND)

    async def append(
        self,
        run_id: str,
        owner_client: str,
        entry: str,
        *,
        conflated: str = "",
        final: bool = False,
        retention_s: float = 3600.0,
        model: dict[str, Any] | None = None,
        seq: int | None = None,
        pipe: Any = None,
    ) -> Any:
        """Write one event of a run (APPEND): 1, or 0 when the run had already ended. `seq`:
        the event's number among its run's (a worker's), so a second write of it is
        skipped. With `pipe`, the call is queued on that pipeline (its result comes with
        execute())."""
        args = [
            entry,
            conflated,
            "1" if final else "0",
            EVENTS_MAXLEN,
            int(retention_s),
            run_id,
            dumps(model) if model is not None else "",
            self.keep[0],
            "" if self.keep[1] is None else self.keep[1],
            "" if seq is None else seq,
        ]
        keys = run_keys(run_id, owner_client)
        if pipe is not None:
            return await self._append(keys=keys, args=args, client=pipe)
        return int(await self._append(keys=keys, args=args))


async def current_epoch(client: Any) -> str:
    """This Redis's data generation: a random value set by whoever comes first. When Redis
    restarts without its data the value changes, and every run it held is lost: replicas
    and workers compare it to the one they started with and end those runs clearly."""
    await client.set(EPOCH, uuid.uuid4().hex, nx=True)
    return str(await client.get(EPOCH))


def connect(url: str) -> Any:
    """An asyncio client for `url` with bounded connect and read timeouts (a blocking read
    passes its own longer timeout)."""
    import redis.asyncio

    return redis.asyncio.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        health_check_interval=10,
        decode_responses=True,
    )


def check_reachable(url: str) -> str | None:
    """None when Redis at `url` answers a PING within a few seconds, else one line why not
    (what `boundarylab serve` and `boundarylab worker` print before exiting)."""
    import redis

    client = redis.Redis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=CONNECT_TIMEOUT_S
    )
    try:
        client.ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        return f"cannot reach Redis at {redact(url)}: {type(exc).__name__}: {exc}"
    finally:
        client.close()
    return None


def redact(url: str) -> str:
    """The URL without a password, for messages and logs."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.split('@', 1)[1]}"
