"""What the scheduler reports becomes the run's state and its viewers' messages."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from boundarylab.engine.config import RunConfig
from boundarylab.server.fanout import Fanout, Viewer
from boundarylab.server.messages import encode, status_message
from boundarylab.server.recorder import RunRecorder
from boundarylab.server.run import Run
from boundarylab.server.store import MemoryRunStore

PROGRESS = {"type": "progress", "iteration": 100, "loss": 0.25, "train_accuracy": 0.75}
FRAME = {"type": "boundary", "iteration": 100, "encoding": "fake", "data": "AA=="}


def _setup() -> tuple[RunRecorder, Run, Fanout, list[Run]]:
    store, feed, ended = MemoryRunStore(60, 10), Fanout(), []
    run = Run("r", RunConfig(), "client", '{"train":{}}')
    store.add(run)
    return RunRecorder(store, feed, ended.append), run, feed, ended


def _texts(viewer: Viewer) -> list[dict]:
    out = []
    while viewer.pending():
        out.append(json.loads(asyncio.run(viewer.get()) or "null"))
    return out


def test_a_run_is_recorded_then_forwarded_and_its_end_waits_for_done() -> None:
    recorder, run, feed, ended = _setup()
    viewer = feed.subscribe("r", run.snapshot_text(), limit=5, ended=False)
    recorder.queued("r", 1)
    recorder.queued("r", 1)  # unchanged: not announced twice
    recorder.started("r")
    recorder.message("r", encode(status_message("running")))  # already announced
    recorder.message("r", encode(PROGRESS))
    recorder.message("r", encode(FRAME))
    assert run.iteration == 100 and run.latest["boundary"] == encode(FRAME).text
    recorder.message("r", encode(status_message("completed")))
    assert not run.done and not ended  # held back until the worker is done
    recorder.done("r", "completed", {"iteration": 100})
    assert run.status == "completed" and run.model == {"iteration": 100} and ended == [run]
    seen = _texts(viewer)
    assert [m["type"] for m in seen] == ["snapshot", "status", "status", "progress", "boundary",
                                         "status"]  # fmt: skip
    assert seen[1] == {"type": "status", "status": "queued", "position": 1}
    assert seen[2] == {"type": "status", "status": "running"} and seen[-1]["status"] == "completed"
    assert viewer.finished
    snapshot = json.loads(run.snapshot_text())
    assert snapshot["history"] == [{k: v for k, v in PROGRESS.items() if k != "type"}]
    assert snapshot["boundary"] == FRAME


def test_a_message_of_an_unknown_kind_is_logged_as_an_error_and_not_forwarded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder, run, feed, _ = _setup()
    viewer = feed.subscribe("r", run.snapshot_text(), limit=5, ended=False)
    recorder.started("r")
    with caplog.at_level(logging.ERROR, logger="boundarylab"):
        recorder.message("r", encode({"type": "heatmap", "iteration": 3}))
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert "'heatmap'" in caplog.records[0].getMessage() and "r" in caplog.records[0].getMessage()
    assert [m["type"] for m in _texts(viewer)] == ["snapshot", "status"]


def test_an_aborted_run_ends_with_the_reason_and_late_messages_are_ignored() -> None:
    recorder, run, _, ended = _setup()
    recorder.started("r")
    recorder.message("r", encode(status_message("cancelled", "from the worker")))
    recorder.aborted("r", "failed", "the worker process stopped unexpectedly")
    assert run.status == "failed" and run.message == "the worker process stopped unexpectedly"
    recorder.message("r", encode(PROGRESS))
    recorder.done("r", "completed", None)
    assert run.status == "failed" and run.history == [] and ended == [run]


def test_a_run_that_ends_without_a_final_status_gets_one() -> None:
    recorder, run, _, _ = _setup()
    recorder.started("r")
    recorder.done("r", "exploded", None)
    assert run.status == "failed" and run.message == "the run ended as 'exploded'"
