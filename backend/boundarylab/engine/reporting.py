"""What a live run tells its viewers: ``RunReports``, its status changes, progress reports,
frames (through framing.Framer) and the events that end it. Part of runloop.RunStepper,
which decides when; this module decides what is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from boundarylab.engine.events import RunEvent, StatusChanged
from boundarylab.engine.framing import Framer
from boundarylab.engine.training import Trainer


class RunReports:
    """One run's outgoing events, through ``emit``. ``status`` is the last status sent."""

    def __init__(self, emit: Callable[[RunEvent], None], framer: Framer) -> None:
        self.emit = emit
        self.framer = framer
        self.status = "queued"
        self._last_progress = -1

    def status_changed(self, status: Any, message: str | None = None) -> None:
        self.status = status
        self.emit(StatusChanged(status, message))

    def progress(self, trainer: Trainer) -> None:
        self.emit(trainer.report())
        self._last_progress = trainer.iteration

    def progress_and_frame(self, trainer: Trainer) -> None:
        """A report and a frame of the current state (a start, a step while paused)."""
        self.progress(trainer)
        self.framer.make(trainer)

    def end(self, trainer: Trainer) -> str | None:
        """The final events when the trainer has diverged or is done, and the end status
        ("diverged" | "completed"); None while it goes on."""
        if trainer.diverged_message is not None:
            self.progress(trainer)
            self.framer.final_units(trainer)
            self.status_changed("diverged", trainer.diverged_message)
            return "diverged"
        if not trainer.done:
            return None
        if self._last_progress != trainer.iteration:
            self.progress(trainer)
        if self.framer.last_iteration != trainer.iteration:
            self.framer.make(trainer)
        self.framer.final_units(trainer)
        self.status_changed("completed")
        return "completed"

    def cancelled(self, trainer: Trainer) -> None:
        """The events of a run cancelled by its viewer."""
        k, total = trainer.iteration, trainer.total
        self.framer.final_units(trainer)
        self.status_changed("cancelled", f"Cancelled at step {k} of {total}.")
