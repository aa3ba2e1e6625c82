"""Wire helpers: every message the server sends goes through `dumps`.

Browsers' `JSON.parse` rejects `NaN` and `Infinity`, so non-finite floats are mapped to
`null` here (the run's status message says why) and `json.dumps(..., allow_nan=False)` makes
a leak a loud error instead of a broken page.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

TERMINAL = frozenset({"completed", "cancelled", "diverged", "failed"})
CONTROL_ACTIONS = frozenset({"pause", "resume", "step", "cancel"})
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
