"""What the routes do with a request around the service: a config checked against this
server's limits and time bounds (422s that name the field), data sets built off the event
loop, and the history as CSV. Plain functions, so the routes in app.py stay thin.
"""

from __future__ import annotations

import csv
import io
from typing import Any, TypeVar

import numpy as np
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from boundarylab.engine.config import LIMITS_CONTEXT_KEY, DatasetConfig, RunConfig
from boundarylab.engine.datasets import make_dataset
from boundarylab.server.capacity import budget_errors
from boundarylab.server.messages import PROGRESS_FIELDS, change_text
from boundarylab.server.settings import Settings

Model = TypeVar("Model", bound=BaseModel)


def with_limits(model: type[Model], data: Model | None, settings: Settings) -> Model:
    """`data` (FastAPI's parse of the body against the schema's ceilings, or None for no
    body) validated again with this deployment's Limits as validation context, so the
    schema itself checks the lower limits; an error keeps its loc under "body"."""
    raw = {} if data is None else data.model_dump()
    try:
        return model.model_validate(raw, context={LIMITS_CONTEXT_KEY: settings.limits()})
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors) from None


def invalid(loc: tuple[str, ...], message: str, value: object) -> RequestValidationError:
    """A 422 naming the field at `loc` (within the body), as FastAPI's own."""
    error = {"type": "value_error", "loc": ("body", *loc), "msg": message, "input": value}
    return RequestValidationError([{**error, "ctx": {"error": message}}])


def check_budget(config: RunConfig, settings: Settings) -> None:
    """Refuse up front a run that cannot fit this server's time bounds (a 422 naming the
    field to change), rather than end it half-way."""
    errors = budget_errors(
        config, settings.max_run_seconds, settings.max_run_cpu_seconds, settings.max_frame_seconds
    )
    if errors:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", *loc),
                    "msg": message,
                    "input": value,
                    "ctx": {"error": message},
                }
                for loc, message, value in errors
            ]
        )


def dataset_json(data: Any) -> dict[str, Any]:
    """{"train": {"x": [[x1, x2], ...], "y": [...]}, "test": {...}} from a datasets.Dataset."""

    def part(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        return {"x": np.round(x, 6).tolist(), "y": y.astype(int).tolist()}

    return {"train": part(data.x_train, data.y_train), "test": part(data.x_test, data.y_test)}


async def build_dataset(cfg: DatasetConfig, loc: tuple[str, ...] = ("body",)) -> dict[str, Any]:
    """make_dataset off the event loop; its ValueError becomes a 422 naming the field."""
    try:
        data = await run_in_threadpool(make_dataset, cfg)
    except ValueError as exc:
        raise RequestValidationError(
            [{"type": "value_error", "loc": loc, "msg": str(exc), "input": None}]
        ) from exc
    return dataset_json(data)


def history_csv_text(
    history: list[dict[str, Any]], changes: list[dict[str, Any]] | None = None
) -> str:
    """iteration,loss,train_accuracy,test_loss,test_accuracy; empty where absent or null.

    A run whose knobs were changed (engine/knobs.py) gets one more column, `change`, and a
    row of its own for each change at the iteration it applied after ("learning_rate=0.05":
    from the next step on), below that iteration's progress row, metrics empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    changes = changes or []
    writer.writerow([*PROGRESS_FIELDS, *(["change"] if changes else [])])
    pending = iter(changes)
    change = next(pending, None)
    for entry in history:
        while change is not None and change["iteration"] < entry["iteration"]:
            writer.writerow([change["iteration"], "", "", "", "", change_text(change)])
            change = next(pending, None)
        row = ["" if entry.get(k) is None else entry[k] for k in PROGRESS_FIELDS]
        writer.writerow([*row, *([""] if changes else [])])
    while change is not None:
        writer.writerow([change["iteration"], "", "", "", "", change_text(change)])
        change = next(pending, None)
    return out.getvalue()


def cell_errors(cell: RunConfig, settings: Settings) -> list[dict[str, Any]]:
    """Why one sweep cell would be refused as a run here: this server's limits (the schema
    with its Limits as context) and its time bounds; locations within the config."""
    try:
        checked = RunConfig.model_validate(
            cell.model_dump(), context={LIMITS_CONTEXT_KEY: settings.limits()}
        )
    except ValidationError as exc:
        return [dict(e) for e in exc.errors()]
    budget = budget_errors(
        checked, settings.max_run_seconds, settings.max_run_cpu_seconds, settings.max_frame_seconds
    )
    return [
        {"type": "value_error", "loc": loc, "msg": message, "input": value}
        for loc, message, value in budget
    ]
