"""One run inside a worker: ``Slot`` (what the worker's loop holds per run: its handle, its
time bounds, its CPU) and ``EngineRun`` (the real run: a runloop.RunStepper whose typed
events become wire messages here, in the worker). worker.py interleaves the slots.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from boundarylab.engine.config import RunConfig
from boundarylab.engine.knobs import Retune
from boundarylab.server.messages import encode, event_message, status_message
from boundarylab.server.protocol import Done, EventWriter, RunMessage, Start

Emit = Callable[[dict[str, Any]], None]
NextCommand = Callable[[float], "str | Retune | None"]


class RunHandle(Protocol):
    """One run inside a worker, as a factory returns it: either a *stepped* run (has
    ``start``, ``tick``, ``command``, ``due_in`` and ``final``, like runloop.RunStepper),
    which the worker interleaves with its other runs, or a *blocking* one (``run()``, waiting
    through ``next_command``), which gets a thread of its own (test fakes)."""

    def export_model(self) -> dict[str, Any] | None: ...


# (config, emit, next_command) -> handle. `emit` takes a wire message (a dict with "type");
# tests pass their own factories to inject fakes and faults.
RunFactory = Callable[[RunConfig, Emit, NextCommand], Any]


class EngineRun:
    """The real thing: a `training.Trainer` driven by a `runloop.RunStepper`, its typed
    events turned into wire messages here, in the worker. A stepped run."""

    def __init__(self, config: RunConfig, emit: Emit, next_command: NextCommand) -> None:
        from boundarylab.engine.runloop import RunStepper

        self.stepper = RunStepper(config, lambda event: emit(event_message(event)))
        self.paced = self.stepper.paced

    @property
    def final(self) -> str | None:
        return self.stepper.final

    @property
    def paused(self) -> bool:
        return self.stepper.paused

    def stop(self, message: str) -> None:
        self.stepper.stop(message)

    def start(self) -> None:
        self.stepper.start()

    def tick(self) -> None:
        self.stepper.tick()

    def due_in(self) -> float | None:
        return self.stepper.due_in()

    def command(self, action: str | Retune) -> None:
        if action in ("frames_on", "frames_off"):
            self.stepper.frames_wanted = action == "frames_on"
        else:
            self.stepper.command(action)

    def export_model(self) -> dict[str, Any] | None:
        trainer = self.stepper.trainer
        return None if trainer is None else trainer.export_model()


def export_of(handle: Any) -> dict[str, Any] | None:
    if handle is None:
        return None
    try:
        model = handle.export_model()
        return model if isinstance(model, dict) else None
    except Exception:
        return None


class Slot:
    """One run the worker holds. A stepped run is ticked by the worker's loop; a blocking
    one runs in a thread and reads its commands from a queue."""

    def __init__(self, start: Start, factory: RunFactory, events: EventWriter) -> None:
        self.run_id = start.run_id
        self.events = events
        self.finished = False  # a blocking run's thread sent its Done
        self.crashed = False  # a stepped run raised: it is over
        self.limits = start.limits
        self.started = time.monotonic()
        self.cpu = 0.0  # CPU seconds its ticks took
        self.paused_since: float | None = None
        self._commands: queue.SimpleQueue[str | Retune] = queue.SimpleQueue()
        self.handle: Any = factory(start.config, self.emit, self._next_command)
        self.stepped = hasattr(self.handle, "tick")
        self.paced = bool(getattr(self.handle, "paced", False))
        if self.stepped:
            self.handle.start()
        else:
            thread = threading.Thread(target=self._run_blocking, daemon=True,
                                      name=f"boundarylab-run-{self.run_id[:8]}")  # fmt: skip
            thread.start()

    def emit(self, message: dict[str, Any]) -> None:
        self.events.send(RunMessage(self.run_id, encode(message)))

    def _next_command(self, timeout: float) -> str | Retune | None:
        try:
            return self._commands.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None

    def _run_blocking(self) -> None:
        status = "failed"
        try:
            status = self.handle.run()
        except Exception as exc:  # the run fails, the worker lives on for the others
            self.emit(status_message("failed", f"the run failed: {type(exc).__name__}: {exc}"))
        self.events.send(Done(self.run_id, status, export_of(self.handle)))
        self.finished = True

    def command(self, action: str | Retune) -> None:
        if self.stepped and not self.crashed:
            try:
                self.handle.command(action)
            except Exception as exc:
                message = f"the run failed: {type(exc).__name__}: {exc}"
                self.emit(status_message("failed", message))
                self.crashed = True
        elif action not in ("frames_on", "frames_off"):
            self._commands.put(action)

    def due_in(self) -> float | None:
        """Seconds until this run wants a tick; None when it has ended (a blocking run is
        never due: its thread does the work)."""
        if not self.stepped:
            return None if self.finished else math.inf
        if self.crashed:
            return None
        due: float | None = self.handle.due_in()
        return due

    def tick(self) -> None:
        """One tick of a stepped run; an exception from it fails this run alone."""
        try:
            self.handle.tick()
        except Exception as exc:
            self.emit(status_message("failed", f"the run failed: {type(exc).__name__}: {exc}"))
            self.crashed = True

    def over_limit(self, now: float) -> str | None:
        """Why this run must end now (one of its RunLimits is reached), or None."""
        if not self.stepped or self.crashed:
            return None
        paused = bool(getattr(self.handle, "paused", False))
        if not paused:
            self.paused_since = None
        elif self.paused_since is None:
            self.paused_since = now
        limits = self.limits
        if self.paused_since is not None and now - self.paused_since >= limits.pause_timeout:
            return (f"Released after {limits.pause_timeout:g} s paused (this server's pause "
                    "timeout); start it again to go on.")  # fmt: skip
        if now - self.started >= limits.max_seconds:
            return f"Stopped: runs on this server last at most {limits.max_seconds:g} s."
        if self.cpu >= limits.max_cpu_seconds:
            return (f"Stopped: the run used its {limits.max_cpu_seconds:g} CPU-seconds "
                    "(this server's budget per run).")  # fmt: skip
        return None

    def finish(self) -> None:
        """A stepped run has ended: send its Done with the final weights."""
        status = "failed" if self.crashed else self.handle.final or "failed"
        self.events.send(Done(self.run_id, status, export_of(self.handle)))
