"""What the scheduler reports becomes the run's state (RunStore) and its viewers' messages
(RunFeed), in that order: a viewer who joins between two messages gets a snapshot that
already holds the first and a stream that starts with the second."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from boundarylab.server.interfaces import RunFeed, RunStore
from boundarylab.server.messages import TERMINAL, Encoded, encode, is_run_kind, status_message
from boundarylab.server.run import Run, compact_model

log = logging.getLogger("boundarylab")


def config_summary(run: Run) -> str:
    d, m, t = run.config.dataset, run.config.model, run.config.training
    return (
        f"{d.kind} n={d.size} hidden={m.hidden_sizes} {m.activation} {m.loss} "
        f"{t.optimizer} lr={t.learning_rate} iterations={t.iterations} "
        f"pace={t.steps_per_second or 'max'}"
    )


class RunRecorder:
    """The RunEvents a scheduler reports to: records them and forwards them to viewers.

    A run's final status from its worker is held back until the worker says it is done
    (with the final weights), so a viewer who sees the end can fetch the model at once.
    """

    def __init__(self, store: RunStore, feed: RunFeed, on_end: Callable[[Run], None]) -> None:
        self._store = store
        self._feed = feed
        self._on_end = on_end
        self._endings: dict[str, Encoded] = {}

    def _live(self, run_id: str) -> Run | None:
        run = self._store.get(run_id)
        return None if run is None or run.done else run

    def queued(self, run_id: str, position: int, wait_s: float | None = None) -> None:
        run = self._live(run_id)
        if run is not None and (run.position, run.expected_wait_s) != (position, wait_s):
            run.position, run.expected_wait_s = position, wait_s
            extra = {"position": position}
            if wait_s is not None:
                extra["expected_wait_s"] = wait_s
            self._publish(run, encode(status_message("queued", **extra)))

    def started(self, run_id: str) -> None:
        run = self._live(run_id)
        if run is not None:
            run.start()
            log.info("run %s started: %s", run.id, config_summary(run))
            self._publish(run, encode(status_message("running")))

    def message(self, run_id: str, message: Encoded) -> None:
        run = self._live(run_id)
        if run is None:
            return
        if not is_run_kind(message.kind):
            log.error(
                "run %s sent a message of unknown kind %r; not forwarded to its viewers "
                "(a new kind belongs in messages.ORDERED_KINDS or CONFLATED_KINDS)",
                run_id,
                message.kind,
            )
            return
        if message.kind == "status":
            if message.status in TERMINAL:
                self._endings[run_id] = message
                return
            if message.status == run.status:
                return  # "running" was already announced when the run started
            run.status = str(message.status)
        elif message.kind == "progress":
            run.add_progress(message)
        elif message.kind == "knobs":
            run.add_change(message)
        else:
            run.keep_latest(message)
        self._publish(run, message)

    def done(self, run_id: str, status: str, model: dict[str, Any] | None) -> None:
        ending = self._endings.pop(run_id, None)
        run = self._live(run_id)
        if run is None:
            return
        run.model = compact_model(model)
        if ending is None:
            final = status if status in TERMINAL else "failed"
            why = None if final == "completed" else f"the run ended as {status!r}"
            ending = encode(status_message(final, why))
        self._finish(run, ending)

    def aborted(self, run_id: str, status: str, reason: str) -> None:
        self._endings.pop(run_id, None)
        run = self._live(run_id)
        if run is not None:
            self._finish(run, encode(status_message(status, reason)))

    def _publish(self, run: Run, message: Encoded) -> None:
        self._feed.publish(run.id, message)
        run.notify()

    def _finish(self, run: Run, final: Encoded) -> None:
        run.finish(str(final.status), final.detail)
        self._feed.publish(run.id, final)
        self._feed.end(run.id)
        seconds = (run.finished_at or 0.0) - (run.started_at or run.finished_at or 0.0)
        log.info(
            "run %s %s after %.2fs at iteration %d/%d%s",
            run.id,
            run.status,
            seconds,
            run.iteration,
            run.config.training.iterations,
            f": {run.message}" if run.message else "",
        )
        run.notify()
        self._on_end(run)
