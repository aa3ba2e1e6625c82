"""The HTTP and WebSocket API (DESIGN.md, "HTTP and WebSocket contract").

Routes stay thin: run lifecycle lives in runs.RunRegistry, training in worker processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from websockets.exceptions import InvalidState

import boundarylab
from boundarylab.engine.config import CompareConfig, DatasetConfig, RunConfig
from boundarylab.engine.datasets import make_dataset
from boundarylab.server.fanout import Run
from boundarylab.server.messages import CONTROL_ACTIONS, PROGRESS_FIELDS, dumps
from boundarylab.server.middleware import GuardMiddleware, LoopLag, is_loopback
from boundarylab.server.runs import RegistryError, RunRegistry
from boundarylab.server.settings import Settings, get_settings
from boundarylab.server.stream import router as stream_router

log = logging.getLogger("boundarylab")


def frontend_dir() -> Path:
    """The static page: packaged copy in a wheel, else <repo>/frontend in a checkout."""
    packaged = Path(boundarylab.__file__).parent / "frontend"
    if packaged.is_dir():
        return packaged
    return Path(boundarylab.__file__).parents[2] / "frontend"


def plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


# Progress entries per run: the history a late viewer's snapshot carries stays a few MB.
MAX_REPORTS = 20_000


def _limit_errors(config: RunConfig, settings: Settings) -> list[dict[str, Any]]:
    """This deployment's limits, which may be lower than the schema's ceilings."""
    checks = [
        (("dataset", "n_samples"), config.dataset.n_samples, settings.max_samples),
        (("training", "iterations"), config.training.iterations, settings.max_iterations),
    ]
    errors = [
        {
            "type": "less_than_equal",
            "loc": ("body", *loc),
            "msg": f"Input should be less than or equal to {limit} (this server's limit)",
            "input": value,
            "ctx": {"le": limit},
        }
        for loc, value, limit in checks
        if value > limit
    ]
    training = config.training
    if training.iterations // training.report_every > MAX_REPORTS:
        least = -(-training.iterations // MAX_REPORTS)
        errors.append(
            {
                "type": "greater_than_equal",
                "loc": ("body", "training", "report_every"),
                "msg": f"Input should be at least {least} for {training.iterations} "
                f"iterations (at most {MAX_REPORTS} progress reports per run)",
                "input": training.report_every,
                "ctx": {"ge": least},
            }
        )
    return errors


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


def _history_csv(run: Run) -> str:
    lines = [",".join(PROGRESS_FIELDS)]
    for entry in run.history:
        cells = ("" if entry.get(k) is None else repr(entry[k]) for k in PROGRESS_FIELDS)
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def _registry(request: Request) -> RunRegistry:
    return request.app.state.registry  # type: ignore[no-any-return]


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _run(request: Request, run_id: str) -> Run:
    run = _registry(request).get(run_id)
    if run is None:
        raise HTTPException(404, f"no run with id {run_id[:64]!r} (it may have expired)")
    return run


Registry = Annotated[RunRegistry, Depends(_registry)]
AppSettings = Annotated[Settings, Depends(_settings)]
RunById = Annotated[Run, Depends(_run)]
router = APIRouter()


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response that can never carry NaN/Infinity (messages.dumps)."""
    return Response(dumps(body), status, headers=headers, media_type="application/json")


def _registry_error(exc: RegistryError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return _json({"detail": exc.message}, exc.status, headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 body, minus what would break it: the NaN a client sent is echoed back
    in "input", and the default handler's strict encoder turns that into a 500."""
    assert isinstance(exc, RequestValidationError)
    return _json({"detail": jsonable_encoder(exc.errors(), custom_encoder={Exception: str})}, 422)


@router.get("/vendor/plotly.min.js", include_in_schema=False)
async def plotly_bundle() -> FileResponse:
    return FileResponse(plotly_js(), media_type="text/javascript")


@router.get("/api/health")
async def health(registry: Registry, settings: AppSettings) -> dict[str, Any]:
    """Liveness, version, run counts and worker pool state."""
    return {
        "status": "ok",
        "version": boundarylab.__version__,
        "runs": registry.counts(),
        "workers": {
            "mode": registry.mode,
            "size": settings.max_running,
            "ready": registry.workers_ready(),
        },
    }


@router.get("/api/schema")
async def schema() -> dict[str, Any]:
    """The RunConfig JSON schema: defaults, limits, enums and a description per field.

    "x-compare" carries the comparison's own field (how many sizes, each size's bounds), so
    the page's comparison form reads its limits from here too.
    """
    compare = CompareConfig.model_json_schema()["properties"]["hidden_sizes"]
    return {**RunConfig.model_json_schema(), "x-compare": {"hidden_sizes": compare}}


@router.post("/api/datasets/preview")
async def preview(config: DatasetConfig, settings: AppSettings) -> Response:
    """The points a run with this `dataset` config would train and test on."""
    errors = _limit_errors(RunConfig.model_construct(dataset=config), settings)
    if errors:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"][2:])} for e in errors])
    return _json(await build_dataset(config))


@router.post("/api/runs", status_code=201)
async def create_run(
    request: Request, registry: Registry, settings: AppSettings, config: RunConfig | None = None
) -> Response:
    """Start a run (or queue it). Every field is optional: the article's defaults fill in."""
    config = config or RunConfig()
    errors = _limit_errors(config, settings)
    if errors:
        raise RequestValidationError(errors)
    dataset = await build_dataset(config.dataset, ("body", "dataset"))
    client = request.client.host if request.client else "unknown"
    try:
        run = registry.submit(config, client, dumps(dataset))
    except RegistryError as exc:
        return _registry_error(exc)
    body = run.summary()
    body["config"] = config.model_dump(mode="json")
    body["stream"] = f"/api/runs/{run.id}/stream"
    return _json(body, 201)


@router.get("/api/runs")
async def list_runs(registry: Registry) -> Response:
    """Summaries of the runs the server holds (finished ones until they expire)."""
    registry.prune()
    return _json([run.summary() for run in registry.runs()])


@router.get("/api/runs/{run_id}")
async def get_run(run: RunById) -> Response:
    """One run: status, config, iteration, latest metrics and the whole history."""
    detail = run.summary()
    detail["config"] = run.config.model_dump(mode="json")
    detail["history"] = run.history
    return _json(detail)


def _control_route(action: str) -> Callable[[RunById, Registry], Awaitable[Response]]:
    async def route(run: RunById, registry: Registry) -> Response:
        try:
            status = await registry.control(run, action)
        except RegistryError as exc:
            return _registry_error(exc)
        return _json({"id": run.id, "status": status, "iteration": run.iteration})

    route.__doc__ = f"{action.capitalize()} the run; answers its status once it applied."
    return route


for _action in sorted(CONTROL_ACTIONS):
    router.post(f"/api/runs/{{run_id}}/{_action}", name=f"{_action}_run")(_control_route(_action))


@router.get("/api/runs/{run_id}/model")
async def model(run: RunById, registry: Registry) -> Response:
    """Weights and config as JSON, exported now (while training) or at the end."""
    try:
        exported = await registry.export_model(run)
    except RegistryError as exc:
        return _registry_error(exc)
    if exported is None:
        raise HTTPException(409, f"run {run.id} has no weights yet (status {run.status})")
    headers = {"Content-Disposition": f'attachment; filename="boundarylab-{run.id}.json"'}
    return _json(exported, headers=headers)


@router.get("/api/runs/{run_id}/history.csv")
async def history_csv(run: RunById) -> Response:
    """iteration,loss,train_accuracy,test_loss,test_accuracy (empty where absent)."""
    headers = {"Content-Disposition": f'attachment; filename="boundarylab-{run.id}.csv"'}
    return Response(_history_csv(run), media_type="text/csv", headers=headers)


@router.get("/api/debug/loop-lag")
async def loop_lag(request: Request) -> dict[str, float | int]:
    """Event-loop lag measured by a 10 ms ticker since the last reset (for bench/)."""
    return request.app.state.loop_lag.stats()  # type: ignore[no-any-return]


@router.post("/api/debug/loop-lag/reset")
async def loop_lag_reset(request: Request) -> dict[str, float | int]:
    request.app.state.loop_lag.samples.clear()
    return request.app.state.loop_lag.stats()  # type: ignore[no-any-return]


def create_app(settings: Settings | None = None, registry: RunRegistry | None = None) -> FastAPI:
    """The app; `registry` lets tests inject a RunRegistry (e.g. thread workers, a fault)."""
    settings = settings or get_settings()
    registry = registry or RunRegistry(settings)
    lag = LoopLag()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await registry.start()
        ticker = asyncio.create_task(lag.run(), name="boundarylab-loop-lag")
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await registry.shutdown(5.0)

    app = FastAPI(
        title="Boundary Lab",
        version=boundarylab.__version__,
        description="Train a small NumPy network and stream its decision boundary live.",
        lifespan=lifespan,
    )
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.state.registry = registry
    app.state.settings = settings
    app.state.loop_lag = lag
    app.add_middleware(
        GuardMiddleware,
        max_body_bytes=settings.max_body_bytes,
        allowed_origins=settings.allowed_origins,
    )
    app.include_router(router)
    app.include_router(stream_router)
    app.mount("/", StaticFiles(directory=frontend_dir(), html=True, check_dir=False), "frontend")
    return app


def _configure_logging(level: str) -> None:
    logger = logging.getLogger("boundarylab")
    logger.setLevel(level.upper())
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


class GracefulServer(uvicorn.Server):
    """uvicorn's server, with runs cancelled before the sockets close (viewers get a last
    status), and a close that crosses the peer's own close not turned into a crash."""

    def __init__(self, config: uvicorn.Config, registry: RunRegistry) -> None:
        super().__init__(config)
        self.registry = registry

    async def shutdown(self, sockets: Any = None) -> None:
        await self.registry.cancel_all(2.0)
        for connection in list(self.server_state.connections):
            connection.shutdown = _tolerant_shutdown(connection)  # type: ignore[method-assign]
        await super().shutdown(sockets)


def _tolerant_shutdown(connection: Any) -> Callable[[], None]:
    """uvicorn's sans-I/O WebSocket protocol raises InvalidState when it sends its 1012
    close to a peer that has just sent its own close (seen when a viewer leaves as the
    server stops); that exception would abort the shutdown with exit code 1. The socket
    is closing either way, so close the transport and carry on."""
    original = connection.shutdown

    def shutdown() -> None:
        try:
            original()
        except InvalidState:
            connection.transport.close()

    return shutdown


def serve(host: str | None = None, port: int | None = None, log_level: str | None = None) -> None:
    """Run the server with uvicorn (what `boundarylab serve` calls)."""
    settings = get_settings()
    level = log_level or settings.log_level
    _configure_logging(level)
    target = app if app.state.settings is settings else create_app(settings)
    registry: RunRegistry = target.state.registry
    # Bound to loopback, only local names may reach us: the DNS-rebinding guard (middleware).
    target.state.loopback_only = is_loopback(host or settings.host)

    config = uvicorn.Config(
        target,
        host=host or settings.host,
        port=port or settings.port,
        log_level=level,
        ws_max_size=max(65536, 4 * settings.max_ws_message_bytes),
        timeout_graceful_shutdown=3,
    )
    GracefulServer(config, registry).run()


app = create_app()
