"""The HTTP and WebSocket API (DESIGN.md, "HTTP and WebSocket contract").

Routes stay thin: run lifecycle lives in runs.RunRegistry, training in worker processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import numpy as np
from fastapi import FastAPI, HTTPException, Request, Response, WebSocket
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

import boundarylab
from boundarylab.config import DatasetConfig, RunConfig
from boundarylab.datasets import make_dataset
from boundarylab.messages import CONTROL_ACTIONS, PROGRESS_FIELDS, dumps, error_message
from boundarylab.runs import RegistryError, Run, RunRegistry
from boundarylab.settings import Settings, get_settings

log = logging.getLogger("boundarylab")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
# FastAPI's /docs and /redoc pages load Swagger UI / ReDoc from a CDN with an inline script,
# which the page's CSP forbids; they are exempt from it (and need internet to render).
CSP_EXEMPT = ("/docs", "/redoc")


def frontend_dir() -> Path:
    """The static page: packaged copy in a wheel, else <repo>/frontend in a checkout."""
    packaged = Path(boundarylab.__file__).parent / "frontend"
    if packaged.is_dir():
        return packaged
    return Path(boundarylab.__file__).parents[2] / "frontend"


def plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


class GuardMiddleware:
    """Pure ASGI: security headers on every response and a cap on request bodies.

    Not BaseHTTPMiddleware, which buffers and slows streaming responses.
    """

    def __init__(self, app: Any, max_body_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exempt = scope["path"].startswith(CSP_EXEMPT)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not exempt:
                    headers.append((b"content-security-policy", CSP.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                message["headers"] = headers
            await send(message)

        too_large = f"the request body is larger than this server's limit of {self.max_body} bytes"
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                response = JSONResponse({"detail": "invalid Content-Length header"}, 400)
                await response(scope, receive, send_with_headers)
                return
            if int(length) > self.max_body:
                await JSONResponse({"detail": too_large}, 413)(scope, receive, send_with_headers)
                return
        received = 0

        async def counting_receive() -> Message:
            # Content-Length can be absent (chunked) or wrong: count what actually arrives.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise HTTPException(413, too_large)
            return message

        await self.app(scope, counting_receive, send_with_headers)


class LoopLag:
    """A ticker on the event loop: how late each 10 ms sleep wakes up is the loop's lag."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.samples: deque[float] = deque(maxlen=100_000)

    async def run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.samples.append(max(0.0, time.perf_counter() - start - self.interval))

    def stats(self) -> dict[str, float | int]:
        if not self.samples:
            return {"samples": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
        lag = np.array(self.samples) * 1000.0
        return {
            "samples": int(lag.size),
            "p50_ms": float(np.percentile(lag, 50)),
            "p99_ms": float(np.percentile(lag, 99)),
            "max_ms": float(lag.max()),
        }


def _limit_errors(config: RunConfig, settings: Settings) -> list[dict[str, Any]]:
    """This deployment's limits, which may be lower than the schema's ceilings."""
    checks = [
        (("dataset", "n_samples"), config.dataset.n_samples, settings.max_samples),
        (("training", "iterations"), config.training.iterations, settings.max_iterations),
    ]
    return [
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


def origin_allowed(websocket: WebSocket, settings: Settings) -> bool:
    """Same-host pages and configured origins may open the socket; browsers always send
    Origin, so a missing one is a non-browser client and cannot be a cross-site attack."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    host = websocket.headers.get("host", "").lower()
    if host and urlsplit(origin).netloc.lower() == host:
        return True
    return origin.rstrip("/") in {o.rstrip("/") for o in settings.allowed_origins}


def _get_run(request_or_ws: Request | WebSocket, run_id: str) -> Run:
    run = request_or_ws.app.state.registry.get(run_id)
    if run is None:
        raise HTTPException(404, f"no run with id {run_id[:64]!r} (it may have expired)")
    return run


def _run_detail(run: Run) -> dict[str, Any]:
    detail = run.summary()
    detail["config"] = run.config.model_dump(mode="json")
    detail["history"] = run.history
    return detail


def _registry_error(exc: RegistryError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return JSONResponse({"detail": exc.message}, exc.status, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 body, minus what would break it: the NaN a client sent is echoed back
    in "input", and the default handler's strict encoder turns that into a 500."""
    assert isinstance(exc, RequestValidationError)
    errors = jsonable_encoder(exc.errors(), custom_encoder={Exception: str})
    return Response(dumps({"detail": errors}), 422, media_type="application/json")


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
    app.add_middleware(GuardMiddleware, max_body_bytes=settings.max_body_bytes)
    _add_routes(app, registry, settings, lag)
    _add_stream(app, registry, settings)
    app.mount("/", StaticFiles(directory=frontend_dir(), html=True, check_dir=False), "frontend")
    return app


def _add_routes(app: FastAPI, registry: RunRegistry, settings: Settings, lag: LoopLag) -> None:
    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    async def plotly_bundle() -> FileResponse:
        return FileResponse(plotly_js(), media_type="text/javascript")

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
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

    @app.get("/api/schema")
    async def schema() -> dict[str, Any]:
        """The RunConfig JSON schema: defaults, limits, enums and a description per field."""
        return RunConfig.model_json_schema()

    @app.post("/api/datasets/preview")
    async def preview(config: DatasetConfig) -> Response:
        """The points a run with this `dataset` config would train and test on."""
        if config.n_samples > settings.max_samples:
            bad = RunConfig(dataset=config)
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"][2:])} for e in _limit_errors(bad, settings)]
            )
        return Response(dumps(await build_dataset(config)), media_type="application/json")

    @app.post("/api/runs", status_code=201)
    async def create_run(request: Request, config: RunConfig | None = None) -> Response:
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
        return Response(dumps(body), 201, media_type="application/json")

    @app.get("/api/runs")
    async def list_runs() -> Response:
        registry.prune()
        summaries = [run.summary() for run in registry.runs()]
        return Response(dumps(summaries), media_type="application/json")

    @app.get("/api/runs/{run_id}")
    async def get_run(request: Request, run_id: str) -> Response:
        detail = _run_detail(_get_run(request, run_id))
        return Response(dumps(detail), media_type="application/json")

    async def control(request: Request, run_id: str, action: str) -> Response:
        run = _get_run(request, run_id)
        try:
            status = await registry.control(run, action)
        except RegistryError as exc:
            return _registry_error(exc)
        return JSONResponse({"id": run.id, "status": status, "iteration": run.iteration})

    def control_route(action: str) -> Callable[[Request, str], Awaitable[Response]]:
        async def route(request: Request, run_id: str) -> Response:
            return await control(request, run_id, action)

        route.__doc__ = f"{action.capitalize()} the run; answers its status afterwards."
        return route

    for action in sorted(CONTROL_ACTIONS):
        app.post(f"/api/runs/{{run_id}}/{action}", name=f"{action}_run")(control_route(action))

    @app.get("/api/runs/{run_id}/model")
    async def model(request: Request, run_id: str) -> Response:
        """Weights and config as JSON, exported now (while training) or at the end."""
        run = _get_run(request, run_id)
        exported = await registry.export_model(run)
        if exported is None:
            raise HTTPException(409, f"run {run.id} has no weights yet (status {run.status})")
        headers = {"Content-Disposition": f'attachment; filename="boundarylab-{run.id}.json"'}
        return Response(dumps(exported), media_type="application/json", headers=headers)

    @app.get("/api/runs/{run_id}/history.csv")
    async def history_csv(request: Request, run_id: str) -> Response:
        run = _get_run(request, run_id)
        headers = {"Content-Disposition": f'attachment; filename="boundarylab-{run.id}.csv"'}
        return Response(_history_csv(run), media_type="text/csv", headers=headers)

    @app.get("/api/debug/loop-lag")
    async def loop_lag() -> dict[str, float | int]:
        """Event-loop lag measured by a 10 ms ticker since the last reset (for bench/)."""
        return lag.stats()

    @app.post("/api/debug/loop-lag/reset")
    async def loop_lag_reset() -> dict[str, float | int]:
        lag.samples.clear()
        return lag.stats()


def _add_stream(app: FastAPI, registry: RunRegistry, settings: Settings) -> None:
    @app.websocket("/api/runs/{run_id}/stream")
    async def stream(websocket: WebSocket, run_id: str) -> None:
        # Accept first so that every refusal reaches the client as a close code + reason.
        await websocket.accept()
        if not origin_allowed(websocket, settings):
            origin = websocket.headers.get("origin", "")[:100]
            await websocket.close(1008, f"cross-site WebSocket refused (origin {origin})")
            return
        run = registry.get(run_id)
        if run is None:
            await websocket.send_text(dumps(error_message(f"no run with id {run_id[:64]!r}")))
            await websocket.close(4404, "unknown run")
            return
        try:
            viewer = registry.subscribe(run)
        except RegistryError as exc:
            await websocket.close(1013, exc.message)
            return
        # A task group (not bare asyncio tasks) so that cancellation from the server is
        # structured: when either side ends, the other is cancelled and nothing outlives
        # the connection.
        ended: list[tuple[int, str] | None] = []

        async def side(loop: Callable[[], Awaitable[tuple[int, str] | None]]) -> None:
            ended.append(await loop())
            group.cancel_scope.cancel()

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(side, lambda: _send_loop(websocket, viewer))
                group.start_soon(
                    side, lambda: _receive_loop(websocket, run, registry, viewer, settings)
                )
        finally:
            registry.unsubscribe(run, viewer)
        closing = ended[0] if ended else None
        if closing is not None:
            with contextlib.suppress(Exception):
                await websocket.close(*closing)


async def _send_loop(websocket: WebSocket, viewer: Any) -> tuple[int, str] | None:
    """Drain the viewer's outbox; returns the close (code, reason), None if the client left."""
    try:
        while (text := await viewer.get()) is not None:
            await websocket.send_text(text)
    except Exception:  # the client went away mid-send
        return None
    if viewer.overflowed:
        return 1013, "viewer too slow: too many unsent messages"
    return 1000, "run finished"


async def _receive_loop(
    websocket: WebSocket, run: Run, registry: RunRegistry, viewer: Any, settings: Settings
) -> tuple[int, str] | None:
    """Control messages from the client; replies go through the outbox (one sender)."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return None
        if message.get("bytes") is not None:
            return 1003, "binary messages are not accepted; send JSON text"
        text = message.get("text") or ""
        if len(text.encode()) > settings.max_ws_message_bytes:
            return 1009, f"message larger than {settings.max_ws_message_bytes} bytes"
        try:
            data = json.loads(text)
        except ValueError:
            viewer.put(dumps(error_message('not JSON; send {"action": "pause"} or similar')))
            continue
        action = data.get("action") if isinstance(data, dict) else None
        # Only a string may be looked up: `[...] in frozenset` raises TypeError (unhashable).
        if not isinstance(action, str) or action not in CONTROL_ACTIONS:
            allowed = ", ".join(sorted(CONTROL_ACTIONS))
            viewer.put(dumps(error_message(f"unknown action {action!r}; use one of {allowed}")))
            continue
        try:
            registry.request(run, action)
        except RegistryError as exc:
            viewer.put(dumps(error_message(exc.message)))


def _configure_logging(level: str) -> None:
    logger = logging.getLogger("boundarylab")
    logger.setLevel(level.upper())
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


def serve(host: str | None = None, port: int | None = None, log_level: str | None = None) -> None:
    """Run the server with uvicorn (what `boundarylab serve` calls)."""
    import uvicorn

    settings = get_settings()
    level = log_level or settings.log_level
    _configure_logging(level)
    target = app if app.state.settings is settings else create_app(settings)
    registry: RunRegistry = target.state.registry

    class GracefulServer(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            # Before uvicorn drops the sockets: cancel runs so viewers get a last status.
            await registry.cancel_all(2.0)
            await super().shutdown(sockets)

    config = uvicorn.Config(
        target,
        host=host or settings.host,
        port=port or settings.port,
        log_level=level,
        ws_max_size=max(65536, 4 * settings.max_ws_message_bytes),
        timeout_graceful_shutdown=3,
    )
    GracefulServer(config).run()


app = create_app()
