"""Redis mode, a worker's outbound side: the WorkerLoop's events written to Redis in the
order the loop sent them (redis_worker.RedisWorker feeds them in).

Each event becomes one APPEND (redis_keys: the run's log or latest hash, plus its capped
events stream), a batch of them per round trip; a run's Done writes its final weights and
then acknowledges its job, so a job leaves the group's pending list only once its run has
ended. Heartbeats refresh the worker's key; a model export's reply goes on the list the
asking replica waits on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

from boundarylab.server.messages import CONFLATED_KINDS, dumps
from boundarylab.server.protocol import Done, Heartbeat, ModelReply, RunMessage
from boundarylab.server.redis_keys import GROUP, JOBS, Scripts, beat, message_entry

log = logging.getLogger("boundarylab")
BATCH = 256  # events per round trip to Redis
REPLY_TTL_S = 10  # an export's reply waits this long for the replica that asked


class EventWriter:
    """The events of one worker's runs, queued by `put` and written by `run`.

    `runs` is the worker's own map (run id -> (job id, client address)), shared: an event
    of a run not in it (dropped after Redis lost its data) is not written, and a Done
    takes the run out of it once written. `recover` waits until Redis answers again."""

    def __init__(
        self,
        client: Any,
        scripts: Scripts,
        worker_id: str,
        retention_s: float,
        runs: dict[str, tuple[str, str]],
        recover: Callable[[], Awaitable[None]],
    ) -> None:
        self.client, self.scripts, self.worker_id = client, scripts, worker_id
        self.retention_s = retention_s
        self.runs = runs
        self.exports: dict[int, str] = {}  # export request id -> the reply list's key
        self._recover = recover
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._numbers: dict[str, int] = {}  # run id -> its events numbered so far

    def put(self, event: Any) -> None:
        """An event from the WorkerLoop, or ("started", run id) when the worker took a run."""
        self._queue.put_nowait(event)

    def behind(self) -> bool:
        """Whether events are still waiting to be written."""
        return not self._queue.empty()

    async def run(self) -> None:
        """Write every event in order, a batch per round trip. A batch Redis failed to take
        is written again once it answers (events of runs it lost are dropped then); each
        event is numbered once, so what Redis took before it failed is not written twice."""
        while True:
            events = [await self._queue.get()]
            while not self._queue.empty() and len(events) < BATCH:
                events.append(self._queue.get_nowait())
            batch = [(event, self._number(event)) for event in events]
            while True:
                try:
                    await self._write(batch)
                    break
                except (RedisError, OSError) as exc:
                    log.warning("worker %s: writing events failed (%s)", self.worker_id, exc)
                    await self._recover()

    def _number(self, event: Any) -> int | None:
        """The event's number among its run's events (None: not a run's event)."""
        if isinstance(event, tuple):  # ("started", run_id)
            run_id = event[1]
        elif isinstance(event, RunMessage | Done):
            run_id = event.run_id
        else:
            return None
        number = self._numbers.get(run_id, 0) + 1
        if isinstance(event, Done):  # its last
            self._numbers.pop(run_id, None)
        else:
            self._numbers[run_id] = number
        return number

    async def _write(self, batch: list[tuple[Any, int | None]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for event, seq in batch:
            await self._queue_write(pipe, event, seq)
        await pipe.execute()
        ended = [e.run_id for e, _ in batch if isinstance(e, Done) and e.run_id in self.runs]
        acks = [self.runs.pop(run_id)[0] for run_id in ended]
        if acks:
            await self.client.xack(JOBS, GROUP, *acks)

    async def _queue_write(self, pipe: Any, event: Any, seq: int | None) -> None:
        if isinstance(event, tuple):  # ("started", run_id)
            await self._append(pipe, event[1], '{"e":"started"}', seq=seq)
        elif isinstance(event, RunMessage):
            message = event.message
            kind = message.kind if message.kind in CONFLATED_KINDS else ""
            await self._append(pipe, event.run_id, message_entry(message), conflated=kind,
                               seq=seq)  # fmt: skip
        elif isinstance(event, Done):
            entry = json.dumps({"e": "done", "status": event.status})
            await self._append(pipe, event.run_id, entry, final=True, seq=seq,
                               retention_s=self.retention_s, model=event.model)  # fmt: skip
        elif isinstance(event, Heartbeat):
            value = json.dumps({"runs": len(self.runs), "load": round(event.load, 3)})
            beat(pipe, self.worker_id, value)
        elif isinstance(event, ModelReply):
            reply = self.exports.pop(event.request_id, "")
            if reply:
                pipe.rpush(reply, dumps(event.model))
                pipe.expire(reply, REPLY_TTL_S)

    async def _append(self, pipe: Any, run_id: str, entry: str, **options: Any) -> None:
        """One event of a run this worker holds (redis_keys.APPEND), queued on `pipe`."""
        if run_id in self.runs:
            client = self.runs[run_id][1]
            await self.scripts.append(run_id, client, entry, pipe=pipe, **options)
