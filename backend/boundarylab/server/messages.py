"""The wire format's one home: engine events become messages here, every message is encoded
here (`dumps`), and the snapshot a viewer gets first is assembled here.

Browsers' `JSON.parse` rejects `NaN` and `Infinity`, so non-finite floats are mapped to
`null` here (the run's status message says why) and `json.dumps(..., allow_nan=False)` makes
a leak a loud error instead of a broken page. Every JSON body the server sends goes through
`dumps`: stream messages, HTTP responses (app.WireJSON), error bodies (middleware).
"""

from __future__ import annotations

import base64
import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel

from boundarylab.engine.events import (
    ACTIONS,
    TERMINAL_STATUSES,
    BoundaryFrame,
    Grid,
    KnobsChanged,
    Progress,
    RunEvent,
    StatusChanged,
    UnitsFrame,
)

TERMINAL = TERMINAL_STATUSES
CONTROL_ACTIONS = ACTIONS
# How the bytes of a frame are laid out (events.BoundaryFrame), by number of classes.
BINARY_ENCODING = "p1-uint8-base64"
CLASSES_ENCODING = "class-conf-uint8-base64"
PROGRESS_FIELDS = ("iteration", "loss", "train_accuracy", "test_loss", "test_accuracy")

# Kinds a viewer gets every one of, in order. `knobs`: a person changed the learning rate,
# λ or pace mid-run (engine/knobs.py); kept in the run's history of changes.
ORDERED_KINDS: tuple[str, ...] = ("progress", "status", "knobs")
# Kinds whose messages are kept as entries of the run's record (JSON without "type"):
# progress in its history, knobs in its changes.
ENTRY_KINDS: frozenset[str] = frozenset({"progress", "knobs"})
# Kinds of which a viewer only needs the latest: a slow viewer's outbox keeps one slot per
# kind, and the snapshot carries the latest of each under the kind's own name (null before
# the first). A new kind of frame is one more name here.
CONFLATED_KINDS: tuple[str, ...] = ("boundary", "units")
# Conflated kinds only a viewer that asked for them gets (WebSocket `?views=units`, or the
# client message {"view": "units", "on": true}): other clients pay nothing for them.
OPT_IN_KINDS: frozenset[str] = frozenset({"units"})
UNITS_ENCODING = "signed-uint8-base64"


def is_run_kind(kind: str) -> bool:
    """Whether a run may send messages of this kind (the server refuses any other)."""
    return kind in ORDERED_KINDS or kind in CONFLATED_KINDS


def jsonable(value: Any) -> Any:
    """`value` as plain JSON data: non-finite floats become None (also inside containers),
    NumPy scalars and arrays plain values and lists, pydantic models their JSON dump, enums
    their value, bytes text, and anything else its `str()` (e.g. the exception in a 422's
    `ctx`): a reply must always go out."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, BaseModel):
        return jsonable(value.model_dump(mode="json"))
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def dumps(message: Any) -> str:
    """Serialise one message compactly; never emits NaN or Infinity.

    Plain finite data (nearly every message) goes straight to the C encoder; only what it
    refuses (a NaN, a NumPy value, an exception object) takes the slower `jsonable` walk.
    """
    try:
        return json.dumps(message, allow_nan=False, separators=(",", ":"))
    except (ValueError, TypeError):
        return json.dumps(jsonable(message), allow_nan=False, separators=(",", ":"))


def status_message(status: str, message: str | None = None, **extra: Any) -> dict[str, Any]:
    """A `{"type": "status", ...}` message; `message` only when there is one."""
    out: dict[str, Any] = {"type": "status", "status": status}
    if message is not None:
        out["message"] = message
    out.update(extra)
    return out


def error_message(message: str, loc: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The reply to a client message the server cannot act on; `loc`: the field it names,
    as a path (a refused change of knobs: ["training", "learning_rate"])."""
    out: dict[str, Any] = {"type": "error", "message": message}
    if loc is not None:
        out["loc"] = list(loc)
    return out


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


def knobs_message(event: KnobsChanged) -> dict[str, Any]:
    """`{"type": "knobs", "iteration": k, "changed": {...}, "current": {...}}`: from step
    k + 1 on the run trains with `changed`; `current` holds learning_rate, reg_lambda and
    steps_per_second as they now are (steps_per_second null: unpaced)."""
    return {"type": "knobs", "iteration": event.iteration, "changed": dict(event.changed),
            "current": dict(event.current)}  # fmt: skip


def change_text(entry: Mapping[str, Any]) -> str:
    """A change entry as a person reads it: "learning_rate=0.05; reg_lambda=0"."""
    return "; ".join(f"{name}={value:g}" for name, value in entry["changed"].items())


def units_message(event: UnitsFrame) -> dict[str, Any]:
    """`{"type": "units", ...}`: every layer's heatmaps (byte = round(127.5 + 127.5·a/scale),
    so 128 ≈ 0) and every layer's weights; see engine/unitview.py."""
    layers = [
        [{"name": h.name, "scale": h.scale, "data": base64.b64encode(h.cells).decode("ascii")}
         for h in layer]
        for layer in event.layers
    ]  # fmt: skip
    weights = [{"W": W, "b": b} for W, b in event.weights]
    return {"type": "units", "iteration": event.iteration, "grid": grid_message(event.grid),
            "encoding": UNITS_ENCODING, "sizes": list(event.sizes), "layers": layers,
            "weights": weights}  # fmt: skip


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
    if isinstance(event, UnitsFrame):
        return units_message(event)
    if isinstance(event, StatusChanged):
        return status_message(event.status, event.message)
    if isinstance(event, KnobsChanged):
        return knobs_message(event)
    raise TypeError(f"no wire message for {type(event).__name__}")


@dataclass(frozen=True)
class Encoded:
    """A run's message, already JSON text, plus the few fields the server reads from it.

    Made where the message is made (in the worker), so the server's event loop only stores
    and forwards text. `entry` is a progress message as a history entry (JSON, no "type");
    `status` and `detail` are a status message's status and its "message". A `knobs`
    message has an `entry` too (the run keeps it among its changes).
    """

    kind: str
    text: str
    iteration: int | None = None
    entry: str | None = None
    status: str | None = None
    detail: str | None = None

    @property
    def conflated(self) -> bool:
        return self.kind in CONFLATED_KINDS


def encode(message: Mapping[str, Any]) -> Encoded:
    """Encode a run's message once, for every viewer and for the run's own record."""
    kind = str(message.get("type"))
    iteration = message.get("iteration")
    iteration = int(iteration) if isinstance(iteration, int | float) else None
    if kind in ENTRY_KINDS:
        entry = {k: v for k, v in message.items() if k != "type"}
        return Encoded(kind, dumps(message), iteration, entry=dumps(entry))
    if kind == "boundary":
        return Encoded(kind, _boundary_text(message), iteration)
    if kind == "status":
        detail = message.get("message")
        status = str(message.get("status"))
        return Encoded(kind, dumps(message), status=status, detail=detail)
    return Encoded(kind, dumps(message), iteration)


def _boundary_text(message: Mapping[str, Any]) -> str:
    """``dumps(message)`` of a boundary frame, its ~13 KiB of base64 spliced in rather than
    scanned by the JSON encoder for characters to escape (it has none; most of what
    encoding a frame cost). Anything else, or data that would need escaping, goes through
    ``dumps``."""
    data = message.get("data")
    keys = list(message)
    if not (isinstance(data, str) and keys and keys[-1] == "data" and data.isascii()
            and data.isprintable() and '"' not in data and "\\" not in data):  # fmt: skip
        return dumps(message)
    head = dumps({**message, "data": ""})  # ends with "data":""}
    return f'{head[:-2]}{data}"}}'


def snapshot_text(
    head: Mapping[str, Any],
    history_json: str,
    dataset_json: str,
    latest: Mapping[str, str],
    tail: Mapping[str, Any],
    views: frozenset[str] = frozenset(),
    changes_json: str = "[]",
) -> str:
    """The `snapshot` message: `head` (id, config, status, iteration), the history, the
    changes of knobs made so far (`changes`, entries of `knobs` messages), `tail`
    (message, position: only those that are set), the dataset and the latest message of
    each conflated kind (null before its first); an opt-in kind only when `views` has it.

    History, dataset and frames are already JSON: they are spliced in, not re-encoded.
    """
    more = f",{dumps(dict(tail))[1:-1]}" if tail else ""
    kinds = [k for k in CONFLATED_KINDS if k not in OPT_IN_KINDS or k in views]
    frames = "".join(f',"{kind}":{latest.get(kind) or "null"}' for kind in kinds)
    return (
        f'{{"type":"snapshot",{dumps(dict(head))[1:-1]},"history":{history_json},'
        f'"changes":{changes_json}{more},'
        f'"dataset":{dataset_json}{frames}}}'
    )
