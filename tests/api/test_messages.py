"""The wire format's one home: engine events become messages in server/messages.py."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

import numpy as np
import pytest

from app_client import strict_loads
from boundarylab.engine.config import RunConfig
from boundarylab.engine.events import BoundaryFrame, Grid, Progress, StatusChanged
from boundarylab.engine.training import Trainer
from boundarylab.server import messages
from boundarylab.server.messages import dumps, encode, event_message, status_message
from boundarylab.server.run import Run

GRID = Grid(-1.0, 1.0, -2.0, 2.0, nx=3, ny=2)


def test_progress_carries_test_metrics_only_with_a_split_and_never_nan() -> None:
    plain = event_message(Progress(5, math.nan, 0.5))
    assert plain == {"type": "progress", "iteration": 5, "loss": math.nan, "train_accuracy": 0.5}
    assert strict_loads(dumps(plain))["loss"] is None  # NaN travels as null
    split = event_message(Progress(5, 0.25, 0.5, math.inf, 0.75))
    assert strict_loads(dumps(split)) == {"type": "progress", "iteration": 5, "loss": 0.25,
                                          "train_accuracy": 0.5, "test_loss": None,
                                          "test_accuracy": 0.75}  # fmt: skip


@pytest.mark.parametrize(("classes", "encoding"), [(2, "p1-uint8-base64"),
                                                   (3, "class-conf-uint8-base64")])  # fmt: skip
def test_a_frame_is_base64_of_its_cells_with_the_encoding_of_its_class_count(
    classes: int, encoding: str
) -> None:
    cells = bytes(range(6 if classes == 2 else 12))
    message = event_message(BoundaryFrame(7, GRID, classes, cells))
    assert message["type"] == "boundary" and message["iteration"] == 7
    assert message["encoding"] == encoding
    assert base64.b64decode(message["data"]) == cells
    assert message["grid"] == {"x_min": -1.0, "x_max": 1.0, "y_min": -2.0, "y_max": 2.0,
                               "nx": 3, "ny": 2}  # fmt: skip


def test_status_has_a_message_only_when_there_is_one() -> None:
    assert event_message(StatusChanged("running")) == {"type": "status", "status": "running"}
    assert event_message(StatusChanged("failed", "why")) == {
        "type": "status",
        "status": "failed",
        "message": "why",
    }


def test_an_event_without_a_wire_message_fails_loudly() -> None:
    @dataclass
    class Unheard:
        iteration: int

    with pytest.raises(TypeError, match="Unheard"):
        event_message(Unheard(1))  # type: ignore[arg-type]


def test_dumps_is_compact_and_maps_whatever_json_refuses() -> None:
    assert dumps({"a": [1, 2.5, "x", None, True]}) == '{"a":[1,2.5,"x",null,true]}'
    odd = {
        "nan": math.nan,
        "inf": [math.inf, -math.inf],
        "np": np.float32(0.5),
        "arr": np.array([[1.0, np.nan]]),
        "int": np.int64(3),
        "tuple": (1, 2),
        "error": ValueError("bad value"),
        "bytes": b"\xffok",
    }
    assert strict_loads(dumps(odd)) == {
        "nan": None,
        "inf": [None, None],
        "np": 0.5,
        "arr": [[1.0, None]],
        "int": 3,
        "tuple": [1, 2],
        "error": "bad value",
        "bytes": "\ufffdok",
    }


def test_encode_keeps_what_the_server_reads_from_a_message() -> None:
    progress = encode({"type": "progress", "iteration": 7, "loss": math.nan, "train_accuracy": 1})
    assert progress.kind == "progress" and progress.iteration == 7 and not progress.conflated
    assert progress.text == '{"type":"progress","iteration":7,"loss":null,"train_accuracy":1}'
    assert progress.entry == '{"iteration":7,"loss":null,"train_accuracy":1}'
    status = encode(status_message("failed", "why"))
    assert (status.kind, status.status, status.detail) == ("status", "failed", "why")
    frame = encode({"type": "boundary", "iteration": 3, "data": "AA=="})
    assert frame.conflated and frame.iteration == 3 and frame.entry is None


def test_the_snapshot_keeps_its_keys_in_their_order() -> None:
    """The wire format the page reads: unchanged by the server's split into parts."""
    run = Run("r", RunConfig(), "client", '{"train":{"x":[],"y":[]}}')
    run.add_progress(encode({"type": "progress", "iteration": 100, "loss": 0.25,
                             "train_accuracy": 0.75}))  # fmt: skip
    frame = {"type": "boundary", "iteration": 100, "data": "AA=="}
    run.keep_latest(encode(frame))
    run.status, run.iteration, run.position = "running", 100, 2
    config = dumps(RunConfig().model_dump(mode="json"))
    assert run.snapshot_text() == (
        f'{{"type":"snapshot","id":"r","config":{config},"status":"running","iteration":100,'
        '"history":[{"iteration":100,"loss":0.25,"train_accuracy":0.75}],"changes":[],'
        '"position":2,'
        '"dataset":{"train":{"x":[],"y":[]}},'
        '"boundary":{"type":"boundary","iteration":100,"data":"AA=="}}'
    )
    fresh = Run("q", RunConfig(), "client", "{}")
    assert strict_loads(fresh.snapshot_text())["boundary"] is None


def test_a_new_conflated_kind_is_one_name_in_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """With "neurons" added to CONFLATED_KINDS, the snapshot carries the latest of each kind
    (a boundary frame is not evicted by a neurons frame) and the server accepts the kind."""
    monkeypatch.setattr(messages, "CONFLATED_KINDS", ("boundary", "neurons"))
    run = Run("r", RunConfig(), "client", "{}")
    assert strict_loads(run.snapshot_text())["neurons"] is None
    boundary = encode({"type": "boundary", "iteration": 1, "data": "b"})
    neurons = encode({"type": "neurons", "iteration": 1, "data": "n"})
    assert neurons.conflated and messages.is_run_kind("neurons")
    run.keep_latest(boundary)
    run.keep_latest(neurons)
    snapshot = strict_loads(run.snapshot_text())
    assert snapshot["boundary"]["data"] == "b" and snapshot["neurons"]["data"] == "n"
    assert list(snapshot)[-2:] == ["boundary", "neurons"]


def test_a_boundary_frame_encodes_as_dumps_would() -> None:
    """The frame's base64 is spliced in, not scanned: the text is dumps' to the byte, and data
    that would need escaping (never base64) still goes through dumps."""
    trainer = Trainer(RunConfig.model_validate({"view": {"resolution": 40}}))
    trainer.advance(200)
    message = event_message(trainer.boundary())
    assert encode(message).text == dumps(message)
    assert encode(message).iteration == 200
    odd = {**message, "data": 'a"b\\c\n\u00e9'}
    assert encode(odd).text == dumps(odd)
    assert strict_loads(encode(odd).text)["data"] == odd["data"]
    reordered = {"type": "boundary", "data": message["data"], "iteration": 1}
    assert encode(reordered).text == dumps(reordered)
