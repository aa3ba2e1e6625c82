"""What the HTTP API answers: the JSON response class every route uses, and the response
models /openapi.json and /docs describe.

Optional keys (`message`, `position`, a progress entry's test metrics) are present only when
they have a value: routes declare `response_model_exclude_unset=True` and build their
answers from dicts that leave such keys out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi.datastructures import DefaultPlaceholder
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from boundarylab.engine.config import RunConfig
from boundarylab.engine.events import RunStatus
from boundarylab.server.messages import dumps


class WireJSON(JSONResponse):
    """JSON rendered by messages.dumps: compact, and never NaN or Infinity."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode()


class Detail(BaseModel):
    """An error: what went wrong, for a person."""

    detail: str


class RunCounts(BaseModel):
    running: int
    queued: int


class WorkerPoolState(BaseModel):
    mode: Literal["process", "thread", "redis"]
    size: int = Field(description="Runs that train at once.")
    ready: int = Field(description="Workers started and ready.")


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    runs: RunCounts
    workers: WorkerPoolState


class ProgressEntry(BaseModel):
    """Loss and accuracy after `iteration` updates; null where a value was not finite.
    `test_loss` and `test_accuracy` are present only when the run has a test split."""

    iteration: int
    loss: float | None
    train_accuracy: float | None
    test_loss: float | None = None
    test_accuracy: float | None = None


class RunSummary(BaseModel):
    id: str
    status: RunStatus
    iteration: int = Field(description="Updates done so far.")
    total: int = Field(description="Updates the run will do (training.iterations).")
    metrics: ProgressEntry | None = Field(description="The latest progress entry.")
    created: float = Field(description="When the run was submitted (Unix time).")
    message: str | None = Field(None, description="Why it failed, diverged or was cancelled.")
    position: int | None = Field(None, description="Place in the queue while queued (1 = next).")
    expected_wait_s: float | None = Field(
        None, description="While queued: about how many seconds until it starts."
    )


class RunCreated(RunSummary):
    config: RunConfig
    stream: str = Field(description="Path of the run's WebSocket stream.")


class SweepPlan(BaseModel):
    field: str = Field(description="The swept field's dotted path.")
    values: list[Any] = Field(description="Its value in each cell, as the schema holds it.")
    cells: list[RunConfig] = Field(description="Each cell's complete run config, in order.")


class Knobs(BaseModel):
    learning_rate: float
    reg_lambda: float
    steps_per_second: float | None = Field(description="null: as fast as the machine goes.")


class KnobsChange(BaseModel):
    """A person changed the run's learning rate, λ or pace while it trained."""

    iteration: int = Field(description="Applied after this many steps: from the next on.")
    changed: dict[str, float] = Field(description="The knobs turned, with their new values.")
    current: Knobs = Field(description="All three as they were from then on.")


class RunDetail(RunSummary):
    config: RunConfig = Field(description="The config the run started with.")
    history: list[ProgressEntry]
    changes: list[KnobsChange] = Field(description="Knobs turned while it trained, in order.")


class ChangeResult(BaseModel):
    id: str
    status: RunStatus
    applied: bool = Field(
        description="Whether the run applied the change before this answer (else it will, at "
        "its next step)."
    )
    changes: list[KnobsChange] = Field(description="Every change the run applied, in order.")


class ControlResult(BaseModel):
    id: str
    status: RunStatus
    iteration: int


class LayerWeights(BaseModel):
    W: list[list[float | None]] = Field(description="Weights, fan_in × fan_out.")
    b: list[float | None] = Field(description="Biases, fan_out.")


class ModelExport(BaseModel):
    """A run's network: its config, how far it trained, each layer's weights and biases."""

    config: RunConfig = Field(description="The config the run started with.")
    iteration: int
    changes: list[KnobsChange] = Field(
        [], description="Knobs turned while it trained (learning rate, λ, pace), in order."
    )
    layers: list[LayerWeights]


class DatasetPart(BaseModel):
    x: list[tuple[float, float]] = Field(description="Points (x1, x2).")
    y: list[int] = Field(description="Class of each point.")


class DatasetPoints(BaseModel):
    train: DatasetPart
    test: DatasetPart


class WireRoute(APIRoute):
    """A route whose JSON goes through WireJSON. Without an explicit class FastAPI renders
    a route with a response model through pydantic's own JSON encoder instead, and the
    server would have two encoders."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if isinstance(kwargs.get("response_class"), DefaultPlaceholder):
            kwargs["response_class"] = WireJSON
        super().__init__(path, endpoint, **kwargs)
