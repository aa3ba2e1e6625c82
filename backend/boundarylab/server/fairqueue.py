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
from collections import deque
from collections.abc import Iterator, Mapping

from boundarylab.server.workerproc import Job


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
