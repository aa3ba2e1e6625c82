"""The wire format's one home: engine events become messages in server/messages.py."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

import pytest

from app_client import strict_loads
from boundarylab.engine.events import BoundaryFrame, Grid, Progress, StatusChanged
from boundarylab.server.messages import dumps, event_message

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
