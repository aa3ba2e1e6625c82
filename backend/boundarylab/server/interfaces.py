"""The seams of the server: each Protocol here is one part that can be replaced alone.

    routes / stream ──> RunService ──> RunStore      runs, per-client counts, retention
                            │    └──> Scheduler     queue, workers, commands, exports
                            │              │ RunEvents (started, message, done, ...)
                            │              v
                            └──── RunRecorder ──> RunStore (the run's state)
                                             └──> RunFeed  (each run's messages to viewers)

The defaults keep everything in this process: store.MemoryRunStore, pool.WorkerPool
(workers that interleave many runs, admission by CPU headroom), fanout.Fanout.
docs/architecture.md ("Server") says which part each planned change replaces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from boundarylab.engine.config import RunConfig
    from boundarylab.engine.knobs import Retune
    from boundarylab.server.fanout import Viewer
    from boundarylab.server.messages import Encoded
    from boundarylab.server.run import Run


class RunEvents(Protocol):
    """What a scheduler reports about its runs, on the event loop, in order for each run."""

    def queued(self, run_id: str, position: int, wait_s: float | None = None) -> None:
        """The run waits; `position` 1 is next; `wait_s`: its expected wait in seconds."""

    def started(self, run_id: str) -> None:
        """A worker took the run."""

    def message(self, run_id: str, message: Encoded) -> None:
        """One message of the run, as its worker encoded it."""

    def done(self, run_id: str, status: str, model: dict[str, Any] | None) -> None:
        """The run ended on its own terms (its worker said so), with its final weights."""

    def aborted(self, run_id: str, status: str, reason: str) -> None:
        """The scheduler ended the run itself: cancelled in the queue, its worker died,
        the server is shutting down."""


class Scheduler(Protocol):
    """Runs the runs: the job queue, the workers, commands to a run and model exports.

    Admission lives here too (`check_capacity`), because only the scheduler knows what
    "full" means: a count of idle workers and queue places, or CPU headroom.
    """

    mode: str  # "process", "thread" or "redis"; reported by /api/health
    size: int  # workers it runs (each may train many runs at once)

    async def start(self, events: RunEvents) -> None: ...

    async def shutdown(self, timeout: float) -> None:
        """Stop every worker within `timeout` seconds (after `cancel_all`)."""

    async def cancel_all(self, reason: str, timeout: float) -> None:
        """Cancel every queued and running run; returns once each has ended (or was aborted
        when `timeout` passed) and takes no new run after."""

    def check_capacity(self) -> None:
        """Raise errors.Busy when a run submitted now could neither start nor wait."""

    def submit(self, run_id: str, config: RunConfig, *, client: str = "") -> None:
        """Start the run, or queue it (reported through RunEvents before this returns).
        `client`: the address that asked, so no client holds more than its share of the
        workers while others wait."""

    def control(self, run_id: str, action: str | Retune) -> None:
        """pause | resume | step | cancel for a queued or running run, or a change of a
        running run's knobs (engine.knobs.Retune) from its next step on; errors.Invalid
        when a raised pace does not fit what its worker has left."""

    def frames(self, run_id: str, wanted: bool) -> None:
        """Whether anyone can take the run's boundary frames now (its worker skips them when
        not; the first and the final frame are always made)."""

    async def export(self, run_id: str) -> dict[str, Any] | None:
        """The running run's weights now, or None when it is not running here."""

    def counts(self) -> dict[str, int]:
        """{"running": n, "queued": m}."""

    def ready(self) -> int:
        """Workers ready to train."""

    def worker_pids(self) -> list[int]: ...


class RunStore(Protocol):
    """Every run the server holds, by id, with their state (run.Run records)."""

    def add(self, run: Run) -> None: ...

    def get(self, run_id: str) -> Run | None: ...

    def runs(self) -> list[Run]:
        """Oldest first."""

    def active_count(self, client: str) -> int:
        """Queued or running runs of one client address."""

    def prune(self) -> list[str]:
        """Forget finished runs past the retention limits; returns their ids."""


class RunFeed(Protocol):
    """Each run's stream of messages to its viewers."""

    def publish(self, run_id: str, message: Encoded) -> None: ...

    def subscribe(
        self,
        run_id: str,
        snapshot: str,
        *,
        limit: int,
        ended: bool,
        views: frozenset[str] = frozenset(),
        address: str = "",
        per_address: int | None = None,
    ) -> Viewer:
        """A viewer whose first message is `snapshot`; errors.TooManyViewers past `limit`.
        `ended`: the run is over, the viewer gets the snapshot and closes. `views`: the
        opt-in kinds (messages.OPT_IN_KINDS) it gets."""

    def unsubscribe(self, run_id: str, viewer: Viewer) -> None: ...

    def end(self, run_id: str) -> None:
        """The run ended: its viewers send what they hold, then close."""

    def viewers(self, run_id: str) -> int: ...

    def viewers_of(self, run_id: str, kind: str) -> int:
        """How many of the run's viewers asked for the opt-in `kind`."""

    def unsent(self) -> int:
        """Messages waiting in every viewer's outbox."""
