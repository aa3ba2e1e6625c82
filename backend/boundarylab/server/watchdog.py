"""The watchdog of the pool's workers: every WATCH_EVERY_S it kills a worker process that
stopped answering (frozen, stopped, stuck in C), or that still holds a run long after it
was told to cancel it, and hands it to the pool (pool.py), which ends its runs `failed`
with the reason its viewers read and starts a new worker in its place. A silent worker
that the kernel says is only waiting for a CPU (liveness.py) is spared for a while: on a
busy machine a worker at niceness 19 may get too little CPU to send its heartbeats.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

from boundarylab.server import liveness
from boundarylab.server.workerproc import Worker

log = logging.getLogger("boundarylab")
WATCH_EVERY_S = 0.5

HEARTBEAT_TIMEOUT_S = 10.0  # a worker silent this long is killed (see worker.HEARTBEAT_S)
# The same timeout bounds a cancel: a worker that still holds a run that long after it was
# told to cancel it is stuck in that run (a step it cannot leave), and is killed.

# Why a worker's runs failed (what its viewers read); {timeout}: the heartbeat timeout.
DIED = "the worker process stopped unexpectedly; start the run again"
SILENT = "its worker stopped answering for over {timeout:g} s and was replaced; start the run again"
IGNORED_CANCEL = (
    "its worker did not stop a cancelled run within {timeout:g} s and was replaced; "
    "start the run again"
)


class Watchdog:
    """Remembers when each cancelled run's worker must have let go of it, and judges
    `workers` against that and against `heartbeat_timeout` each round. `condemned(worker,
    reason)`: a worker it killed; `after()`: called after each round (the queue may move,
    as workers' loads change)."""

    def __init__(
        self,
        workers: Mapping[int, Worker],
        condemned: Callable[[Worker, str], None],
        after: Callable[[], None],
        heartbeat_timeout: float = HEARTBEAT_TIMEOUT_S,
    ) -> None:
        self.heartbeat_timeout = heartbeat_timeout
        self._workers, self._condemned, self._after = workers, condemned, after
        self._cancel_by: dict[str, float] = {}  # run id -> when its worker must have let go
        # worker index -> (its last_seen when sampled, its CPU seconds then): what it used
        # since it was last heard from tells starved from frozen.
        self._heard: dict[int, tuple[float, float | None]] = {}
        self._spared: set[int] = set()  # workers spared as starved (logged once per silence)
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = False

    def start(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(WATCH_EVERY_S, self.round)

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()

    def round(self) -> None:
        """Kill each worker process whose verdict is against it, hand it over, then call
        `after` and plan the next round."""
        now = time.monotonic()
        for worker in list(self._workers.values()):
            self._note_heard(worker)
            verdict = self.verdict(worker, now)
            if verdict is not None and worker.kill():
                log.error("worker %d %s; killed it", worker.index, verdict[0])
                worker.condemned = True
                # Its runs end now, without waiting for the pipe's EOF (which another holder
                # of the descriptor could delay); its late events are ignored.
                worker._detach()
                self._condemned(worker, verdict[1])
        if not self._stopped:
            self._after()
            self._timer = asyncio.get_running_loop().call_later(WATCH_EVERY_S, self.round)

    def cancel_sent(self, run_id: str) -> None:
        """A cancel went to the run's worker (the first one sets the deadline)."""
        self._cancel_by.setdefault(run_id, time.monotonic() + self.heartbeat_timeout)

    def forget(self, run_id: str) -> None:
        """The run is over (its worker let go, or the worker is gone)."""
        self._cancel_by.pop(run_id, None)

    def verdict(self, worker: Worker, now: float) -> tuple[str, str] | None:
        """None when the worker does its part; else (what it did, for the log; why its
        runs failed, for their viewers). Only a ready, uncondemned worker process is judged
        (a thread cannot be killed)."""
        if not worker.ready or worker.condemned or worker.mode != "process":
            return None
        silent = now - worker.last_seen
        if silent > self.heartbeat_timeout:
            if self._starved(worker, silent):
                return None
            return f"sent nothing for {silent:.1f} s", self._reason(SILENT)
        ignored = [r for r in worker.jobs if self._cancel_by.get(r, now) < now]
        if ignored:
            return f"ignored a cancel of {ignored[0]}", self._reason(IGNORED_CANCEL)
        return None

    def _note_heard(self, worker: Worker) -> None:
        """Sample a worker's CPU time whenever it was heard from since the last round."""
        heard = self._heard.get(worker.index)
        if heard is None or heard[0] != worker.last_seen:
            pid = worker.pid
            now = liveness.sample(pid) if pid is not None else None
            self._heard[worker.index] = (worker.last_seen, now.cpu_s if now else None)
            self._spared.discard(worker.index)

    def _starved(self, worker: Worker, silent: float) -> bool:
        """The silent worker is runnable and got little CPU since it was last heard from."""
        pid, heard = worker.pid, self._heard.get(worker.index)
        now = liveness.sample(pid) if pid is not None else None
        cpu_then = heard[1] if heard is not None and heard[0] == worker.last_seen else None
        if not liveness.starved(now, cpu_then, silent, self.heartbeat_timeout):
            return False
        if worker.index not in self._spared:
            self._spared.add(worker.index)
            log.warning("worker %d silent for %.1f s but only waiting for a CPU (the machine is "
                        "busy); not killed yet", worker.index, silent)  # fmt: skip
        return True

    def _reason(self, template: str) -> str:
        return template.format(timeout=self.heartbeat_timeout)
