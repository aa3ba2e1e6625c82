"""What routes take from the app (FastAPI dependencies): its run service, its settings and
a run by the id in the path (404 when there is none)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from boundarylab.server.responses import Detail
from boundarylab.server.run import Run
from boundarylab.server.service import RunService
from boundarylab.server.settings import Settings


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
