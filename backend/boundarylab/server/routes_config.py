"""Routes about what a run will be, before it exists: the run schema the page and clients
read, a sweep's planned cells, a data set's points and its CSV."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Response
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from boundarylab.engine.config import CompareConfig, DatasetConfig, schema_with_limits
from boundarylab.engine.datafile import dataset_csv
from boundarylab.engine.presets import FEATURE_CONTRAST, PRESETS
from boundarylab.engine.sweep import MAX_SWEEP_VALUES, SWEEP_FIELDS, SweepConfig
from boundarylab.server.checks import build_dataset, cell_errors, with_limits
from boundarylab.server.deps import AppSettings
from boundarylab.server.responses import DatasetPoints, SweepPlan, WireRoute

router = APIRouter(route_class=WireRoute)


@router.get("/api/schema")
async def schema(settings: AppSettings) -> dict[str, Any]:
    """The RunConfig JSON schema: defaults, this server's limits, enums and a description
    per field.

    "x-compare" carries the comparison's own field (how many sizes, each size's bounds), so
    the page's comparison form reads its limits from here too. "x-presets" holds the named
    presets (engine/presets.py: title, description, the sections that differ from the
    defaults) and "x-feature-contrast" the pair the page links to (without, with features).
    """
    compare = CompareConfig.model_json_schema()["properties"]["hidden_sizes"]
    presets = {name: {"title": p.title, "description": p.description, "sections": p.sections}
               for name, p in PRESETS.items()}  # fmt: skip
    sweep = {"fields": SWEEP_FIELDS, "max_values": MAX_SWEEP_VALUES}
    return {**schema_with_limits(settings.limits()), "x-compare": {"hidden_sizes": compare},
            "x-presets": presets, "x-feature-contrast": list(FEATURE_CONTRAST),
            "x-sweep": sweep}  # fmt: skip


@router.post("/api/sweeps", response_model=SweepPlan)
async def plan_sweep(sweep: SweepConfig, settings: AppSettings) -> dict[str, Any]:
    """Check a sweep (one field by its dotted path, its values) and answer every cell's
    complete config, in order; a client starts each as a run. A bad value is a 422 at
    body.values.<i> naming the field and the value."""
    errors = []
    for i, cell in enumerate(sweep.cells()):
        for error in cell_errors(cell, settings):
            where = ".".join(str(part) for part in error["loc"])
            msg = f"{sweep.field} = {json.dumps(sweep.value_of(cell))} is not valid: {where}: "
            errors.append({**error, "loc": ("body", "values", i), "msg": msg + error["msg"]})
    if errors:
        raise RequestValidationError(errors)
    cells = [cell.model_dump(mode="json") for cell in sweep.cells()]
    return {"field": sweep.field, "values": [sweep.value_of(c) for c in sweep.cells()],
            "cells": cells}  # fmt: skip


@router.post("/api/datasets/preview", response_model=DatasetPoints)
async def preview(config: DatasetConfig, settings: AppSettings) -> dict[str, Any]:
    """The points a run with this `dataset` config would train and test on."""
    return await build_dataset(with_limits(DatasetConfig, config, settings))


@router.post(
    "/api/datasets/csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def dataset_csv_route(config: DatasetConfig, settings: AppSettings) -> Response:
    """The points of this `dataset` config as CSV: x1, x2, label, split (train or test), in
    an order that, uploaded as custom points with the same seed and test_fraction, trains
    the same run."""
    await preview(config, settings)  # the same checks and 422s as the preview
    text = await run_in_threadpool(dataset_csv, config)
    headers = {"Content-Disposition": 'attachment; filename="boundarylab-data.csv"'}
    return Response(text, media_type="text/csv", headers=headers)
