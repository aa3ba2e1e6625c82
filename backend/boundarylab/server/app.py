"""The app: its parts put together, the health route, the page's files, and how a refusal
becomes an HTTP answer. The routes of runs are routes_runs.py, those about what a run will
be (schema, sweeps, data sets) routes_config.py, the WebSocket stream.py.

Routes stay thin: runs live in service.RunService, training in worker processes. Every JSON
answer is a typed response model (responses.py) rendered through messages.dumps, and every
refusal of the run service becomes its HTTP status in one handler (`HTTP_STATUS`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

import boundarylab
from boundarylab.server import routes_config, routes_runs
from boundarylab.server.checks import invalid
from boundarylab.server.deps import Service
from boundarylab.server.docs import add_docs
from boundarylab.server.errors import Busy, Conflict, Invalid, Refusal, ShuttingDown, Unavailable
from boundarylab.server.middleware import GuardMiddleware, HeadAsGet, LoopLag, trusted_hosts
from boundarylab.server.responses import Health, WireJSON, WireRoute
from boundarylab.server.service import RunService
from boundarylab.server.settings import DATA_ROUTES, Settings, get_settings
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


def _lifespan(
    service: RunService, settings: Settings, lag: LoopLag
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start the service with the app; shut it down (runs cancelled, workers stopped) when
    the app stops."""

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

    return lifespan


def _add_guards(app: FastAPI, settings: Settings) -> None:
    """The middleware, added innermost first: the guard sees every request before the Host
    check."""
    app.add_middleware(HeadAsGet)
    hosts = trusted_hosts(settings.allowed_hosts, settings.allowed_origins)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False)
    app.add_middleware(
        GuardMiddleware,
        max_body_bytes=settings.max_body_bytes,
        allowed_origins=settings.allowed_origins,
        larger_bodies=dict.fromkeys(DATA_ROUTES, settings.max_data_body_bytes),
    )


def create_app(settings: Settings | None = None, service: RunService | None = None) -> FastAPI:
    """The app; `service` lets tests inject a RunService (e.g. thread workers, a fault)."""
    settings = settings or get_settings()
    service = service or build_service(settings)
    lag = LoopLag()
    app = FastAPI(
        title="Boundary Lab",
        version=boundarylab.__version__,
        description="Train a small NumPy network and stream its decision boundary live.",
        lifespan=_lifespan(service, settings, lag),
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
    app.state.sockets = service.sockets
    _add_guards(app, settings)
    for routes in (router, routes_config.router, routes_runs.router):
        app.include_router(routes)
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
