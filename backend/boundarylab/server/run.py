"""One run as the server holds it: what a client may ask about it, nothing about where it
trains (the scheduler's business) or who watches it (the feed's)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from boundarylab.engine.config import RunConfig
from boundarylab.server.messages import TERMINAL, Encoded, snapshot_text


def compact_model(value: Any) -> Any:
    """An exported model with every array of floats (nested lists) as a NumPy array.

    As nested Python lists a 6x256 network's ~330k weights took ~13 MB per retained run
    (a float object and a pointer each); as float64 arrays they take 8 bytes each. Lists of
    other things (ints such as layer sizes, strings) stay as they are, so the JSON export
    (messages.jsonable) gives back what the worker sent."""
    if isinstance(value, dict):
        return {key: compact_model(item) for key, item in value.items()}
    if isinstance(value, list) and value:
        try:
            array = np.asarray(value)
        except ValueError:  # ragged
            array = None
        if array is not None and array.dtype.kind == "f":
            return array
        return [compact_model(item) for item in value]
    return value


def _nbytes(value: Any) -> int:
    """Roughly what `value` (a compacted model) holds, for the retention byte budget."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    if isinstance(value, list):
        return 8 * len(value) + sum(_nbytes(v) for v in value)
    return 32


@dataclass(eq=False)
class Run:
    """A run's record. Its history is kept as JSON text, never as dicts.

    While the run trains, each progress entry is the JSON text its worker made; when it
    ends (`finish`) they are joined into one text. The server keeps up to 200 finished runs,
    and as ~200 small dicts each they were the bulk of what those cost (~70 KB a run, spread
    over the allocator's arenas); as text a run's history is ~20 KB in one block, and the
    snapshot splices it in as it is.
    """

    id: str
    config: RunConfig
    client: str
    dataset_text: str
    created: float = field(default_factory=time.time)
    status: str = "queued"
    message: str | None = None
    iteration: int = 0
    position: int | None = None
    expected_wait_s: float | None = None  # while queued: seconds until it should start
    model: dict[str, Any] | None = None
    started_at: float | None = None
    finished_at: float | None = None
    # The latest message of each conflated kind (messages.CONFLATED_KINDS), as JSON text.
    latest: dict[str, str] = field(default_factory=dict)
    _entries: list[str] = field(default_factory=list)
    # Changes of knobs (engine/knobs.py) applied, as the JSON text of their `knobs` entries;
    # `changes_asked` counts those sent to the worker (a run takes at most MAX_CHANGES).
    _changes: list[str] = field(default_factory=list)
    changes_asked: int = 0
    _history_text: str | None = None
    _last_entry: str | None = None
    # A finished run's snapshot by the views asked for, while it has viewers: it no longer
    # changes, and each of its viewers (and each refused one: the caps are checked after)
    # would otherwise build its own copy of up to ~2 MB on the event loop.
    _snapshots: dict[frozenset[str], str] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    # -- state changes ---------------------------------------------------------------------
    def add_progress(self, message: Encoded) -> None:
        assert message.entry is not None and self._history_text is None, "run has ended"
        self._entries.append(message.entry)
        self._last_entry = message.entry
        if message.iteration is not None:
            self.iteration = message.iteration

    def add_change(self, message: Encoded) -> None:
        assert message.entry is not None
        self._changes.append(message.entry)

    @property
    def change_count(self) -> int:
        return len(self._changes)

    def changes_json(self) -> str:
        """The changes of knobs, oldest first: ``[{"iteration", "changed", "current"}, …]``."""
        return f"[{','.join(self._changes)}]"

    @property
    def changes(self) -> list[dict[str, Any]]:
        return json.loads(self.changes_json())  # type: ignore[no-any-return]

    def keep_latest(self, message: Encoded) -> None:
        self.latest[message.kind] = message.text
        self._snapshots.clear()

    def start(self) -> None:
        self.status, self.position, self.started_at = "running", None, time.monotonic()
        self.expected_wait_s = None

    def finish(self, status: str, message: str | None) -> None:
        """The run ended: its final status, and its history folded into one text."""
        self.status, self.message, self.position = status, message, None
        self.expected_wait_s = None
        self.finished_at = time.monotonic()
        self._snapshots.clear()
        if self._history_text is None:
            self._history_text = self.history_json()
            self._entries = []

    def drop_snapshots(self) -> None:
        """Forget the finished run's built snapshots (its last viewer left)."""
        self._snapshots.clear()

    def notify(self) -> None:
        """Wake whoever waits for this run to change (control requests)."""
        event, self.changed = self.changed, asyncio.Event()
        event.set()

    # -- views -----------------------------------------------------------------------------
    @property
    def history(self) -> list[dict[str, Any]]:
        """The progress entries, oldest first (each without "type")."""
        return json.loads(self.history_json())  # type: ignore[no-any-return]

    def retained_bytes(self) -> int:
        """About what this run holds in memory: history, points, latest messages, weights."""
        texts = len(self.history_json()) + len(self.dataset_text) + len(self.changes_json())
        texts += sum(len(text) for text in self.latest.values())
        texts += sum(len(text) for text in self._snapshots.values())
        return texts + (_nbytes(self.model) if self.model is not None else 0)

    def history_json(self) -> str:
        if self._history_text is not None:
            return self._history_text
        return f"[{','.join(self._entries)}]"

    def metrics(self) -> dict[str, Any] | None:
        """The latest progress entry."""
        return json.loads(self._last_entry) if self._last_entry is not None else None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "iteration": self.iteration,
            "total": self.config.training.iterations,
            "metrics": self.metrics(),
            "created": self.created,
        }
        if self.message is not None:
            out["message"] = self.message
        if self.position is not None:
            out["position"] = self.position
        if self.expected_wait_s is not None:
            out["expected_wait_s"] = self.expected_wait_s
        return out

    def snapshot_text(self, views: frozenset[str] = frozenset()) -> str:
        """The `snapshot` message a viewer gets first (see messages.snapshot_text); `views`:
        the opt-in kinds (messages.OPT_IN_KINDS) this viewer asked for."""
        if self.done:
            if views not in self._snapshots:
                self._snapshots[views] = self._build_snapshot(views)
            return self._snapshots[views]
        return self._build_snapshot(views)

    def _build_snapshot(self, views: frozenset[str]) -> str:
        head = {
            "id": self.id,
            "config": self.config.model_dump(mode="json"),
            "status": self.status,
            "iteration": self.iteration,
        }
        tail: dict[str, Any] = {}
        if self.message is not None:
            tail["message"] = self.message
        if self.position is not None:
            tail["position"] = self.position
        if self.expected_wait_s is not None:
            tail["expected_wait_s"] = self.expected_wait_s
        return snapshot_text(head, self.history_json(), self.dataset_text, self.latest, tail,
                             views, self.changes_json())  # fmt: skip
