"""The queue in front of the workers, shared fairly between clients (issue 11).

Whenever a place frees, the run to start is the queued run of the client that holds the
fewest running runs; between clients that hold as many, the run queued first. So one client
that queued many runs ahead of everyone takes turns with the others instead of holding
every worker while they wait; a client alone still gets every free place.

`order` is that rule applied again and again (each run it picks counts as running for its
client from then on): the order the queued runs start in if no running run ended first. The
pool starts `order(...)[0]` and tells each queued run its place in `order`, so a place
reported is the place dispatch keeps, until a running run ends and the counts change.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from boundarylab.server.capacity import REFERENCE, Calibration
from boundarylab.server.waits import honest_waits
from boundarylab.server.workerproc import Job

if TYPE_CHECKING:
    from boundarylab.server.interfaces import RunEvents


class FairQueue:
    """Queued jobs, kept in arrival order; `order` gives the order they start in."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}  # by run id, in arrival order (dicts keep it)

    def __len__(self) -> int:
        return len(self._jobs)

    def __bool__(self) -> bool:
        return bool(self._jobs)

    def __iter__(self) -> Iterator[Job]:
        """In arrival order."""
        return iter(list(self._jobs.values()))

    def add(self, job: Job) -> None:
        self._jobs[job.run_id] = job

    def remove(self, job: Job) -> None:
        del self._jobs[job.run_id]

    def find(self, run_id: str) -> Job | None:
        return self._jobs.get(run_id)

    def first(self, running: Mapping[str, int]) -> Job | None:
        """The job that starts next: of the client with the fewest `running` runs (a count
        by client), the oldest; ties between clients go to the older job."""
        best: tuple[int, int, Job] | None = None
        seen: set[str] = set()
        for arrival, job in enumerate(self._jobs.values()):
            if job.client in seen:
                continue  # a client's older job comes first
            seen.add(job.client)
            key = (running.get(job.client, 0), arrival)
            if best is None or key < best[:2]:
                best = (*key, job)
        return best[2] if best is not None else None

    def order(self, running: Mapping[str, int]) -> list[Job]:
        """Every queued job in the order they start: `first` picked again and again, each
        pick counted as running for its client. O(n log n) in the queue's length."""
        waiting: dict[str, deque[tuple[int, Job]]] = {}
        for arrival, job in enumerate(self._jobs.values()):
            waiting.setdefault(job.client, deque()).append((arrival, job))
        heap = [(running.get(c, 0), jobs[0][0], c) for c, jobs in waiting.items()]
        heapq.heapify(heap)
        ordered: list[Job] = []
        while heap:
            count, _, client = heapq.heappop(heap)
            jobs = waiting[client]
            ordered.append(jobs.popleft()[1])
            if jobs:
                heapq.heappush(heap, (count + 1, jobs[0][0], client))
        return ordered

    def tell_places(
        self,
        events: RunEvents,
        running: Iterable[Job],
        slots: int,
        calibration: Calibration = REFERENCE,
        cores: float | None = None,
    ) -> None:
        """Tell each queued run its place in `order` (given the `running` jobs) and its
        expected wait, when either changed enough (a simulation of the queue from the running
        runs' remaining time at the rates they make: waits.py; `slots`: runs that train at
        once; `calibration` and `cores`: this machine's, as waits.honest_waits takes them).
        The pool calls it at least every watchdog round, so a wait is told again
        when the machine's pace moves it by max(2 s, 20 %)."""
        running, now = list(running), time.monotonic()
        progress = [job.progress(now) for job in running]
        order = self.order(Counter(job.client for job in running))
        configs = [job.config for job in order]
        waits = honest_waits(progress, configs, slots, calibration, cores)
        for place, (job, wait) in enumerate(zip(order, waits, strict=True), start=1):
            wait = round(wait)
            moved = job.wait_s is None or abs(wait - job.wait_s) >= max(2.0, 0.2 * job.wait_s)
            if job.position != place or moved:
                job.position, job.wait_s = place, wait
                events.queued(job.run_id, place, wait)
