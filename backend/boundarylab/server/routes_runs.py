"""Routes of runs: start one, list a client's own, read one (its history spliced in as the
JSON text it keeps), change its knobs, control it, export its weights, history as CSV and
the run as a script. Thin: the rules live in service.RunService."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from boundarylab.engine.config import RunConfig
from boundarylab.engine.knobs import RunPatch
from boundarylab.engine.script_export import NotExpressible, run_script
from boundarylab.server.checks import build_dataset, check_budget, history_csv_text, with_limits
from boundarylab.server.deps import UNKNOWN_RUN, AppSettings, RunById, Service
from boundarylab.server.messages import CONTROL_ACTIONS, dumps, jsonable
from boundarylab.server.responses import (
    ChangeResult,
    ControlResult,
    Detail,
    ModelExport,
    RunCreated,
    RunDetail,
    RunSummary,
    WireRoute,
)

router = APIRouter(route_class=WireRoute)


@router.post(
    "/api/runs",
    status_code=201,
    response_model=RunCreated,
    response_model_exclude_unset=True,
    responses={429: {"model": Detail}, 503: {"model": Detail}},
)
async def create_run(
    request: Request, service: Service, settings: AppSettings, config: RunConfig | None = None
) -> dict[str, Any]:
    """Start a run (or queue it). Every field is optional: the article's defaults fill in."""
    config = with_limits(RunConfig, config, settings)
    check_budget(config, settings)
    dataset = await build_dataset(config.dataset, ("body", "dataset"))
    run = await service.create(config, client_address(request), dumps(dataset))
    config_json = config.model_dump(mode="json")
    return {**run.summary(), "config": config_json, "stream": f"/api/runs/{run.id}/stream"}


def client_address(request: Request) -> str:
    """Who is asking: the peer's address (or the forwarding proxy's client, only when the
    operator named that proxy in BOUNDARYLAB_FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else "unknown"


@router.get("/api/runs", response_model=list[RunSummary], response_model_exclude_unset=True)
async def list_runs(
    request: Request, service: Service, settings: AppSettings
) -> list[dict[str, Any]]:
    """Summaries of the caller's own runs (every run with BOUNDARYLAB_LIST_ALL_RUNS).

    A run's id is the key to watching and controlling it, so the list hands out only the
    ids of the runs this client address created."""
    me = None if settings.list_all_runs else client_address(request)
    return [run.summary() for run in await service.list_runs(me)]


@router.get(
    "/api/runs/{run_id}",
    response_model=RunDetail,
    response_model_exclude_unset=True,
    responses=UNKNOWN_RUN,
)
async def get_run(run: RunById) -> Response:
    """One run: status, config, iteration, latest metrics and the whole history.

    The history (up to 20 000 entries, over a MB) is spliced in as the JSON text the run
    keeps: decoding and encoding it again took ~110 ms of the event loop per read, and a
    few dozen reads at once froze the server for everyone."""
    head = dumps({**run.summary(), "config": run.config.model_dump(mode="json")})
    body = f'{head[:-1]},"history":{run.history_json()},"changes":{run.changes_json()}}}'
    return Response(body, media_type="application/json")


@router.patch(
    "/api/runs/{run_id}",
    response_model=ChangeResult,
    responses={**UNKNOWN_RUN, 409: {"model": Detail}, 429: {"model": Detail}},
)
async def change_run(run: RunById, service: Service, patch: RunPatch) -> dict[str, Any]:
    """Change a running or paused run's learning rate, λ and/or pace from its next step on
    (only those: any other field is a 422 naming it). A queued or finished run is a 409.
    Answers once the run applied it (`applied`), or after 2 s."""
    applied = await service.change(run, patch.training.retune())
    return {"id": run.id, "status": run.status, "applied": applied, "changes": run.changes}


def _control_route(action: str) -> Callable[[RunById, Service], Awaitable[dict[str, Any]]]:
    async def route(run: RunById, service: Service) -> dict[str, Any]:
        status = await service.control(run, action)
        return {"id": run.id, "status": status, "iteration": run.iteration}

    route.__doc__ = f"{action.capitalize()} the run; answers its status once it applied."
    return route


for _action in sorted(CONTROL_ACTIONS):
    router.post(
        f"/api/runs/{{run_id}}/{_action}",
        name=f"{_action}_run",
        response_model=ControlResult,
        responses={**UNKNOWN_RUN, 409: {"model": Detail}, 429: {"model": Detail}},
    )(_control_route(_action))


@router.get(
    "/api/runs/{run_id}/model",
    response_model=ModelExport,
    responses={**UNKNOWN_RUN, 409: {"model": Detail}, 429: {"model": Detail}},
)
async def model(run: RunById, service: Service) -> Response:
    """Weights and config as JSON, exported now (while training) or at the end."""
    exported = await service.export_model(run)
    if exported is None:
        raise HTTPException(409, f"run {run.id} has no weights yet (status {run.status})")
    filename = f"boundarylab-{run.id}.json"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    # A 6x256 network is ~330k weights: encoded off the event loop.
    body = await run_in_threadpool(lambda: dumps(jsonable(exported)))
    return Response(body, media_type="application/json", headers=headers)


@router.get(
    "/api/runs/{run_id}/history.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **UNKNOWN_RUN},
)
async def history_csv(run: RunById) -> Response:
    """iteration,loss,train_accuracy,test_loss,test_accuracy (empty where absent); a run
    whose knobs were changed has a `change` column and a row for each change."""
    headers = {"Content-Disposition": f'attachment; filename="boundarylab-{run.id}.csv"'}
    history = run.history_json()  # decoded and written off the event loop: it can be MBs
    changes = run.changes
    text = await run_in_threadpool(lambda: history_csv_text(json.loads(history), changes))
    return Response(text, media_type="text/csv", headers=headers)


@router.get(
    "/api/runs/{run_id}/script",
    response_class=Response,
    responses={200: {"content": {"text/x-python": {}}}, **UNKNOWN_RUN, 409: {"model": Detail}},
)
async def script(run: RunById) -> Response:
    """The run as a standalone NumPy script that reproduces it (engine/script_export.py)."""
    try:
        text = run_script(run.config)
    except NotExpressible as exc:
        raise HTTPException(409, f"this run cannot be exported as a script: {exc}") from None
    headers = {"Content-Disposition": f'attachment; filename="boundarylab-{run.id}.py"'}
    return Response(text, media_type="text/x-python", headers=headers)
