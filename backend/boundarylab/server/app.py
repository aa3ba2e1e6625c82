"""The HTTP API (the WebSocket stream is stream.py) and the app that serves it.

Routes stay thin: runs live in service.RunService, training in worker processes. Every JSON
answer is a typed response model (responses.py) rendered through messages.dumps, and every
refusal of the run service becomes its HTTP status in one handler (`HTTP_STATUS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

import boundarylab
from boundarylab.engine.config import (
    CompareConfig,
    DatasetConfig,
    RunConfig,
    schema_with_limits,
)
from boundarylab.engine.datafile import dataset_csv
from boundarylab.engine.knobs import RunPatch
from boundarylab.engine.presets import FEATURE_CONTRAST, PRESETS
from boundarylab.engine.script_export import NotExpressible, run_script
from boundarylab.engine.sweep import MAX_SWEEP_VALUES, SWEEP_FIELDS, SweepConfig
from boundarylab.server.checks import (
    build_dataset,
    cell_errors,
    check_budget,
    history_csv_text,
    invalid,
    with_limits,
)
from boundarylab.server.docs import add_docs
from boundarylab.server.errors import (
    Busy,
    Conflict,
    Invalid,
    Refusal,
    ShuttingDown,
    Unavailable,
)
from boundarylab.server.messages import CONTROL_ACTIONS, dumps, jsonable
from boundarylab.server.middleware import GuardMiddleware, HeadAsGet, LoopLag, trusted_hosts
from boundarylab.server.responses import (
    ChangeResult,
    ControlResult,
    DatasetPoints,
    Detail,
    Health,
    ModelExport,
    RunCreated,
    RunDetail,
    RunSummary,
    SweepPlan,
    WireJSON,
    WireRoute,
)
from boundarylab.server.run import Run
from boundarylab.server.service import RunService
from boundarylab.server.settings import DATA_ROUTES, Settings, get_settings
from boundarylab.server.stream import SocketCounts
from boundarylab.server.stream import router as stream_router

# The HTTP answer to each kind of refusal (errors.py); the most specific class wins.
HTTP_STATUS: dict[type[Refusal], int] = {
    Conflict: 409,
    Busy: 429,
    ShuttingDown: 503,
    Unavailable: 503,
    Invalid: 422,
}


def frontend_dir() -> Path:
    """The static page: packaged copy in a wheel, else <repo>/frontend in a checkout."""
    packaged = Path(boundarylab.__file__).parent / "frontend"
    if packaged.is_dir():
        return packaged
    return Path(boundarylab.__file__).parents[2] / "frontend"


def plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _service(request: Request) -> RunService:
    return request.app.state.service  # type: ignore[no-any-return]


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def _run(request: Request, run_id: str) -> Run:
    run = await _service(request).find(run_id)
    if run is None:
        raise HTTPException(404, f"no run with id {run_id[:64]!r} (it may have expired)")
    return run


Service = Annotated[RunService, Depends(_service)]
AppSettings = Annotated[Settings, Depends(_settings)]
RunById = Annotated[Run, Depends(_run)]
UNKNOWN_RUN: dict[int | str, dict[str, Any]] = {404: {"model": Detail}}
router = APIRouter(route_class=WireRoute)


async def _validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 body, encoded by messages.dumps: the NaN a client sent is echoed back
    in "input", and the default handler's strict encoder turned that into a 500."""
    assert isinstance(exc, RequestValidationError)
    return WireJSON({"detail": exc.errors()}, 422)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return WireJSON({"detail": exc.detail}, exc.status_code, headers=exc.headers)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refusal)
    if isinstance(exc, Invalid):  # as FastAPI's own 422, naming the field
        return await _validation_error(request, invalid(exc.loc, exc.message, exc.value))
    status = next(HTTP_STATUS[c] for c in type(exc).__mro__ if c in HTTP_STATUS)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return WireJSON({"detail": exc.message}, status, headers=headers)


@router.get("/vendor/plotly.min.js", include_in_schema=False)
async def plotly_bundle() -> FileResponse:
    return FileResponse(plotly_js(), media_type="text/javascript")


@router.get("/api/health", response_model=Health)
async def health(service: Service) -> dict[str, Any]:
    """Liveness, version, run counts and worker pool state."""
    counts, workers = service.counts(), service.workers()
    return {"status": "ok", "version": boundarylab.__version__, "runs": counts, "workers": workers}


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
    runs = service.runs()
    if not settings.list_all_runs:
        me = client_address(request)
        runs = [run for run in runs if run.client == me]
    return [run.summary() for run in runs]


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


debug_router = APIRouter(route_class=WireRoute)


@debug_router.get("/api/debug/loop-lag")
async def loop_lag(request: Request) -> dict[str, float | int]:
    """Event-loop lag measured by a 10 ms ticker since the last reset (for bench/)."""
    return request.app.state.loop_lag.stats()  # type: ignore[no-any-return]


@debug_router.post("/api/debug/loop-lag/reset")
async def loop_lag_reset(request: Request) -> dict[str, float | int]:
    request.app.state.loop_lag.samples.clear()
    return request.app.state.loop_lag.stats()  # type: ignore[no-any-return]


def build_service(settings: Settings) -> RunService:
    """The embedded service, or Redis mode's when BOUNDARYLAB_REDIS_URL is set (only then is
    redis imported)."""
    if settings.redis_url:
        from boundarylab.server.redis_service import build

        return build(settings)
    return RunService(settings)


def create_app(settings: Settings | None = None, service: RunService | None = None) -> FastAPI:
    """The app; `service` lets tests inject a RunService (e.g. thread workers, a fault)."""
    settings = settings or get_settings()
    service = service or build_service(settings)
    lag = LoopLag()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        # Only when someone can read it: otherwise no 10 ms wake-ups.
        ticker = asyncio.create_task(lag.run()) if settings.debug_routes else None
        try:
            yield
        finally:
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            await service.shutdown(5.0)

    app = FastAPI(
        title="Boundary Lab",
        version=boundarylab.__version__,
        description="Train a small NumPy network and stream its decision boundary live.",
        lifespan=lifespan,
        default_response_class=WireJSON,
        docs_url=None,  # docs.add_docs serves /docs without a CDN
        redoc_url=None,
    )
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Refusal, _refused)
    app.state.service = service
    app.state.settings = settings
    app.state.loop_lag = lag
    app.state.sockets = SocketCounts()
    # Added innermost first: the guard sees every request before the Host check.
    app.add_middleware(HeadAsGet)
    hosts = trusted_hosts(settings.allowed_hosts, settings.allowed_origins)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False)
    app.add_middleware(
        GuardMiddleware,
        max_body_bytes=settings.max_body_bytes,
        allowed_origins=settings.allowed_origins,
        larger_bodies=dict.fromkeys(DATA_ROUTES, settings.max_data_body_bytes),
    )
    app.include_router(router)
    if settings.debug_routes:
        app.include_router(debug_router)
    app.include_router(stream_router)
    add_docs(app)
    app.mount("/", StaticFiles(directory=frontend_dir(), html=True, check_dir=False), "frontend")
    return app


def serve(host: str | None = None, port: int | None = None, log_level: str | None = None) -> None:
    """Run the server with uvicorn (what `boundarylab serve` calls; see serving.py)."""
    from boundarylab.server.serving import run

    run(host, port, log_level)


app = create_app()
