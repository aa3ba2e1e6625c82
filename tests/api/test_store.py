"""The run record (run.Run) and the default run store: history as text, retention."""

from __future__ import annotations

import asyncio
import json

import pytest

from boundarylab.engine.config import RunConfig
from boundarylab.server.messages import dumps, encode
from boundarylab.server.run import Run
from boundarylab.server.store import MemoryRunStore


def _run(run_id: str = "r", client: str = "client") -> Run:
    return Run(run_id, RunConfig(), client, "{}")


def _progress(k: int) -> dict:
    return {"type": "progress", "iteration": k * 100, "loss": 0.1 / (k + 1), "train_accuracy": 0.5}


def test_a_runs_history_is_kept_as_json_text_and_reads_back_the_same() -> None:
    async def scenario() -> None:
        run = _run()
        messages = [_progress(k) for k in range(50)]
        for message in messages:
            run.add_progress(encode(message))
        entries = [{k: v for k, v in m.items() if k != "type"} for m in messages]
        assert run.history == entries and run.history_json() == dumps(entries)
        assert run.iteration == 4900 and run.metrics() == entries[-1]
        run.finish("completed", None)
        assert isinstance(run._history_text, str) and run._entries == []  # one block
        assert run.history == entries  # the same keys, order and floats, bit for bit
        assert run.history_json() == dumps(entries)
        assert run.metrics() == entries[-1]
        with pytest.raises(AssertionError, match="ended"):
            run.add_progress(encode(_progress(51)))

    asyncio.run(scenario())


def test_a_non_finite_loss_is_null_in_the_history() -> None:
    async def scenario() -> None:
        run = _run()
        run.add_progress(encode({**_progress(0), "loss": float("nan")}))
        assert json.loads(run.history_json()) == [{"iteration": 0, "loss": None,
                                                   "train_accuracy": 0.5}]  # fmt: skip

    asyncio.run(scenario())


def test_summary_has_message_and_position_only_when_set() -> None:
    async def scenario() -> None:
        run = _run()
        assert "message" not in run.summary() and "position" not in run.summary()
        run.position = 3
        assert run.summary()["position"] == 3
        run.finish("cancelled", "cancelled before it started")
        summary = run.summary()
        assert summary["message"] == "cancelled before it started" and "position" not in summary

    asyncio.run(scenario())


def test_store_counts_a_clients_active_runs() -> None:
    async def scenario() -> None:
        store = MemoryRunStore(retention_seconds=60, retention_count=10)
        for n, client in enumerate(["a", "a", "b"]):
            store.add(_run(f"r{n}", client))
        assert store.active_count("a") == 2 and store.active_count("b") == 1
        store.get("r0").finish("completed", None)  # type: ignore[union-attr]
        assert store.active_count("a") == 1
        assert [r.id for r in store.runs()] == ["r0", "r1", "r2"]

    asyncio.run(scenario())


def test_store_forgets_finished_runs_beyond_the_count_and_past_the_time() -> None:
    async def scenario() -> None:
        store = MemoryRunStore(retention_seconds=60, retention_count=2)
        for n in range(4):
            store.add(_run(f"r{n}"))
        for n in range(3):
            store.get(f"r{n}").finish("completed", None)  # type: ignore[union-attr]
        assert store.prune() == ["r0"]  # the oldest finished beyond 2; r3 still runs
        store.get("r1").finished_at -= 61  # type: ignore[operator,union-attr]
        assert store.prune() == ["r1"]
        assert [r.id for r in store.runs()] == ["r2", "r3"]

    asyncio.run(scenario())


def test_a_finished_runs_snapshot_is_built_once_while_watched_and_counted() -> None:
    run = _run()
    assert run.snapshot_text() is not run.snapshot_text()  # still running: built each time
    run.finish("completed", None)
    size = run.retained_bytes()
    first = run.snapshot_text()
    assert run.snapshot_text() is first  # every viewer shares it
    assert run.retained_bytes() == size + len(first)  # and the byte budget sees it
    run.drop_snapshots()  # its last viewer left
    assert run.retained_bytes() == size and run.snapshot_text() == first
