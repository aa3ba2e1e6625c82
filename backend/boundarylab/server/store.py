"""The default run store: every run in a dict in this process."""

from __future__ import annotations

import time

from boundarylab.server.run import Run


class MemoryRunStore:
    """Runs by id, oldest first; finished runs are forgotten after `retention_seconds`,
    beyond the newest `retention_count`, or once the finished runs hold more than
    `retention_bytes` (a run's size is Run.retained_bytes: 200 runs with a 20 000-entry
    history each are several hundred MB, so a count alone says little)."""

    def __init__(
        self, retention_seconds: float, retention_count: int, retention_bytes: int | None = None
    ) -> None:
        self.retention_seconds = retention_seconds
        self.retention_count = retention_count
        self.retention_bytes = retention_bytes
        self._runs: dict[str, Run] = {}

    def add(self, run: Run) -> None:
        self._runs[run.id] = run

    def get(self, run_id: str) -> Run | None:
        return self._runs.get(run_id)

    def runs(self) -> list[Run]:
        return list(self._runs.values())

    def active_count(self, client: str) -> int:
        return sum(1 for r in self._runs.values() if r.client == client and not r.done)

    def prune(self) -> list[str]:
        now = time.monotonic()
        finished = sorted(
            (r for r in self._runs.values() if r.done and r.finished_at is not None),
            key=lambda r: r.finished_at or 0.0,
        )
        surplus = len(finished) - self.retention_count
        # Newest first, the runs that fit the byte budget stay; the oldest go beyond it.
        kept_bytes, over_budget = 0, set()
        for run in reversed(finished):
            kept_bytes += run.retained_bytes()
            if self.retention_bytes is not None and kept_bytes > self.retention_bytes:
                over_budget.add(run.id)
        gone = [
            run.id
            for index, run in enumerate(finished)
            if index < surplus
            or run.id in over_budget
            or now - (run.finished_at or now) > self.retention_seconds
        ]
        for run_id in gone:
            del self._runs[run_id]
        return gone
