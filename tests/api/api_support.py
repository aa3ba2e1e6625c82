"""Helpers for the API tests: an app with thread workers and an optional fake run.

`FakeRun` follows the RunLoop contract (status, k=0 progress + frame, pacing through
next_command, pause/resume/step/cancel) without any maths, so the run service, the worker
pool, fan-out and control paths can be tested deterministically; the real engine is tested
separately.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

from app_client import Watched as Watched

# Re-exported: the tests of this folder import them from here.
from app_client import is_terminal as is_terminal
from app_client import make_client as make_client
from app_client import read_until as read_until
from app_client import strict_loads as strict_loads
from app_client import watch as watch
from boundarylab.engine.config import RunConfig
from boundarylab.server import messages

TERMINAL = messages.TERMINAL


class FakeRun:
    """A RunLoop look-alike: `iterations` steps of `report_every`, loss = 1/(1+k).

    With training.steps_per_second set it waits 1/steps_per_second per report through
    next_command, like the real loop does; training.seed == 13 makes it raise (a fault).
    """

    def __init__(self, config: RunConfig, emit: Callable[[dict], None], next_command: Any):
        self.config, self.emit, self.next_command = config, emit, next_command
        self.k = 0
        if config.training.seed == 13:
            raise RuntimeError("injected fault")

    def _report(self) -> None:
        self.emit(
            {
                "type": "progress",
                "iteration": self.k,
                "loss": 1 / (1 + self.k),
                "train_accuracy": 0.5,
            }
        )
        self.emit(
            {
                "type": "boundary",
                "iteration": self.k,
                "grid": {},
                "encoding": "fake",
                "data": str(self.k),
            }
        )

    def _advance(self) -> None:
        self.k = min(self.config.training.iterations, self.k + self.config.training.report_every)
        self._report()

    def run(self) -> str:
        t = self.config.training
        wait = 0.0 if t.steps_per_second is None else 1.0 / t.steps_per_second
        self.emit({"type": "status", "status": "running"})
        self._report()
        paused = False
        while self.k < t.iterations:
            cmd = self.next_command(3600.0 if paused else wait)
            if cmd == "cancel":
                self.emit({"type": "status", "status": "cancelled", "message": "cancelled"})
                return "cancelled"
            if cmd in ("pause", "resume"):
                paused = cmd == "pause"
                self.emit({"type": "status", "status": "paused" if paused else "running"})
            elif (cmd == "step" and paused) or (cmd is None and not paused):
                self._advance()
        self.emit({"type": "status", "status": "completed"})
        return "completed"

    def export_model(self) -> dict:
        config = self.config.model_dump(mode="json")
        return {"config": config, "iteration": self.k, "layers": [{"W": [[math.nan]], "b": [0.0]}]}


def worker_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("boundarylab-")}
