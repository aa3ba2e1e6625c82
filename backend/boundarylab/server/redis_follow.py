"""Redis mode, a replica's view of runs: rebuilt from Redis, then followed live.

A run is rebuilt by replaying its log (redis_keys: the run's hash, log, latest frames) as
RunEvents into the replica's recorder, and then followed: its capped events stream is read
with XREAD BLOCK from the last entry the rebuild saw, each entry reported as RunEvents, until
the run ends. The recorder is the embedded server's own (recorder.RunRecorder), so a
replica's run record and its viewers' messages are what the embedded server would have.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from boundarylab.engine.config import RunConfig
from boundarylab.server.interfaces import RunEvents, RunStore
from boundarylab.server.redis_keys import entry_message, run_key
from boundarylab.server.run import Run
from boundarylab.server.store import MemoryRunStore

log = logging.getLogger("boundarylab")
FOLLOW_BLOCK_MS = 2000


class RunFollower:
    """The runs one replica follows, each by a task reading its events stream."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.events: RunEvents | None = None  # set when the scheduler starts
        self._followers: dict[str, asyncio.Task[None]] = {}
        self._stopped = False

    def stop(self) -> None:
        """Stop following (the runs go on in Redis and the workers)."""
        self._stopped = True  # a cancellation redis-py turns into an error ends them too
        for task in list(self._followers.values()):
            task.cancel()

    async def load(self, run_id: str, store: RunStore) -> Run | None:
        """Run `run_id` as Redis holds it, rebuilt in `store` by replaying its log through
        RunEvents, then followed live from where the log ended; None if Redis has no such run.

        The hash, the log, the latest frames and the stream's last id are read in one
        MULTI: a worker's APPEND is atomic too, so nothing falls between replay and follow."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hgetall(run_key(run_id))
        pipe.lrange(run_key(run_id, "log"), 0, -1)
        pipe.hgetall(run_key(run_id, "latest"))
        pipe.xrevrange(run_key(run_id, "events"), count=1)
        fields, log_entries, latest, last = await pipe.execute()
        if not fields or "config" not in fields:
            return None
        known = store.get(run_id)  # loaded meanwhile by another request
        if known is not None:
            return known
        run = Run(
            run_id,
            RunConfig.model_validate_json(fields["config"]),
            fields["client"],
            fields["dataset"],
            created=float(fields["created"]),
        )
        store.add(run)
        for text in latest.values():  # the latest frames first: they change no state
            message = entry_message(json.loads(text))
            run.keep_latest(message)
        for text in log_entries:
            self._report(run_id, json.loads(text), fields.get("model"))
        if not run.done:
            self.follow(run_id, last[0][0] if last else "0")
        return run

    def follow(self, run_id: str, after: str = "0") -> None:
        """Report the run's events after stream id `after` until it ends."""
        if run_id not in self._followers:
            task = asyncio.create_task(self._follow(run_id, after))
            self._followers[run_id] = task
            task.add_done_callback(lambda _: self._followers.pop(run_id, None))

    async def _follow(self, run_id: str, after: str) -> None:
        stream = run_key(run_id, "events")
        while not self._stopped:
            try:
                got = await self.client.xread({stream: after}, count=200, block=FOLLOW_BLOCK_MS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarting: try again shortly
                log.warning("following run %s: %s", run_id, exc)
                await asyncio.sleep(0.5)
                continue
            for _, entries in got or []:
                for entry_id, fields in entries:
                    after = entry_id
                    entry = json.loads(fields["j"])
                    model = None
                    if entry["e"] == "done":
                        model = await self.client.hget(run_key(run_id), "model")
                    if self._report(run_id, entry, model):
                        return

    def _report(self, run_id: str, entry: dict[str, Any], model_json: str | None) -> bool:
        """One entry to RunEvents; True when it ended the run."""
        events = self.events
        assert events is not None, "start() first"
        kind = entry["e"]
        if kind == "message":
            events.message(run_id, entry_message(entry))
        elif kind == "started":
            events.started(run_id)
        elif kind == "done":
            model = json.loads(model_json) if model_json else None
            events.done(run_id, entry["status"], model)
            return True
        elif kind == "aborted":
            events.aborted(run_id, entry["status"], entry["reason"])
            return True
        return False

    def lost(self, reason: str) -> None:
        """Redis came back without its data: every run followed here ends `failed`, its
        viewers told `reason`."""
        assert self.events is not None
        for run_id, task in list(self._followers.items()):
            task.cancel()
            self.events.aborted(run_id, "failed", reason)
        self._followers.clear()


class MirrorStore(MemoryRunStore):
    """A replica's mirror of the runs it has seen: the embedded store (its own retention
    limits), which also forgets the finished runs Redis has forgotten (deleted past the
    shared retention budgets: redis_keys.APPEND), so every replica answers 404 for them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gone: set[str] = set()

    def finished_ids(self) -> list[str]:
        return [run.id for run in self.runs() if run.done]

    def forget(self, run_ids: list[str]) -> None:
        """Forget these runs now (Redis no longer has them); the next prune reports them,
        so the service forgets what it kept about them too."""
        for run_id in run_ids:
            if self._runs.pop(run_id, None) is not None:
                self._gone.add(run_id)

    def prune(self) -> list[str]:
        gone, self._gone = list(self._gone), set()
        return gone + super().prune()
