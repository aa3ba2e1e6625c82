"""The wire format: engine events become messages here, and every message the server
sends goes through `dumps`.

Browsers' `JSON.parse` rejects `NaN` and `Infinity`, so non-finite floats are mapped to
`null` here (the run's status message says why) and `json.dumps(..., allow_nan=False)` makes
a leak a loud error instead of a broken page.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import numpy as np

from boundarylab.engine.events import (
    ACTIONS,
    TERMINAL_STATUSES,
    BoundaryFrame,
    Grid,
    Progress,
    RunEvent,
    StatusChanged,
)

TERMINAL = TERMINAL_STATUSES
CONTROL_ACTIONS = ACTIONS
# How the bytes of a frame are laid out (events.BoundaryFrame), by number of classes.
BINARY_ENCODING = "p1-uint8-base64"
CLASSES_ENCODING = "class-conf-uint8-base64"
PROGRESS_FIELDS = ("iteration", "loss", "train_accuracy", "test_loss", "test_accuracy")


def finite(value: Any) -> Any:
    """Return `value` with every non-finite float (also inside lists/dicts) replaced by None.

    NumPy scalars and arrays become plain Python values (arrays: nested lists).
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, np.generic):
        return finite(value.item())
    if isinstance(value, np.ndarray):
        return finite(value.tolist())
    return value


def dumps(message: Any) -> str:
    """Serialise one message compactly; never emits NaN or Infinity."""
    return json.dumps(finite(message), allow_nan=False, separators=(",", ":"))


def status_message(status: str, message: str | None = None, **extra: Any) -> dict[str, Any]:
    """A `{"type": "status", ...}` message; `message` only when there is one."""
    out: dict[str, Any] = {"type": "status", "status": status}
    if message is not None:
        out["message"] = message
    out.update(extra)
    return out


def error_message(message: str) -> dict[str, Any]:
    """The reply to a client message the server cannot act on."""
    return {"type": "error", "message": message}


def grid_message(grid: Grid) -> dict[str, Any]:
    return {"x_min": grid.x_min, "x_max": grid.x_max, "y_min": grid.y_min,
            "y_max": grid.y_max, "nx": grid.nx, "ny": grid.ny}  # fmt: skip


def progress_message(event: Progress) -> dict[str, Any]:
    """`{"type": "progress", ...}`; test metrics only when the run has a test split."""
    out: dict[str, Any] = {"type": "progress", "iteration": event.iteration,
                           "loss": event.loss, "train_accuracy": event.train_accuracy}  # fmt: skip
    if event.test_loss is not None:
        out["test_loss"] = event.test_loss
        out["test_accuracy"] = event.test_accuracy
    return out


def event_message(event: RunEvent) -> dict[str, Any]:
    """The wire message of an engine event. An event type without a message here is a
    programming error, raised at once rather than dropped on the floor."""
    if isinstance(event, Progress):
        return progress_message(event)
    if isinstance(event, BoundaryFrame):
        encoding = BINARY_ENCODING if event.n_classes == 2 else CLASSES_ENCODING
        data = base64.b64encode(event.cells).decode("ascii")
        return {"type": "boundary", "iteration": event.iteration,
                "grid": grid_message(event.grid), "encoding": encoding, "data": data}  # fmt: skip
    if isinstance(event, StatusChanged):
        return status_message(event.status, event.message)
    raise TypeError(f"no wire message for {type(event).__name__}")
