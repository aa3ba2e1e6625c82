"""The live stream: WS /api/runs/{id}/stream (messages.py is its wire format).

One handler per viewer: a sender drains the viewer's outbox (fanout.Viewer), a receiver
takes control messages; when either ends, the other is cancelled and the viewer dropped.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable

import anyio
from fastapi import APIRouter, WebSocket
from pydantic import ValidationError

from boundarylab.engine.knobs import RunPatch
from boundarylab.server.errors import Invalid, Refusal, TooManyViewers, Unavailable
from boundarylab.server.fanout import Viewer
from boundarylab.server.messages import CONTROL_ACTIONS, OPT_IN_KINDS, dumps, error_message
from boundarylab.server.middleware import same_site
from boundarylab.server.run import Run
from boundarylab.server.service import RunService
from boundarylab.server.settings import Settings
from boundarylab.server.sockets import SocketCounts
from boundarylab.server.transport import ABORT_EXTENSION

# WebSocket close codes (RFC 6455, plus one of the 4000-4999 private range).
POLICY_VIOLATION = 1008  # a cross-site page
TRY_AGAIN_LATER = 1013  # too many viewers; a viewer too slow to keep up
UNKNOWN_RUN = 4404
SET_ACTION = "set"  # {"action": "set", "training": {...}}: a change of knobs (engine/knobs.py)


def origin_allowed(websocket: WebSocket, settings: Settings) -> bool:
    """Same-host pages and configured origins may open the socket; browsers always send
    Origin, so a missing one is a non-browser client and cannot be a cross-site attack."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    return same_site(origin, websocket.headers.get("host", ""), settings.allowed_origins)


router = APIRouter()


def _abort(websocket: WebSocket) -> Callable[[], None] | None:
    """Cut the connection now, however full its buffers (transport.py provides it)."""
    return websocket.scope.get("extensions", {}).get(ABORT_EXTENSION)  # type: ignore[no-any-return]


@router.websocket("/api/runs/{run_id}/stream")
async def stream(websocket: WebSocket, run_id: str) -> None:
    """Snapshot first, then progress, frames and status changes until the run ends."""
    service: RunService = websocket.app.state.service
    settings: Settings = websocket.app.state.settings
    counts: SocketCounts = websocket.app.state.sockets
    address = websocket.client.host if websocket.client else "unknown"
    # Accept first so that every refusal reaches the client as a close code + reason.
    await websocket.accept()
    async with counts.hold(address, settings) as refused:
        if refused is not None:
            await websocket.close(TRY_AGAIN_LATER, refused)
            return
        await _stream(websocket, run_id, address, service, settings)


async def _stream(
    websocket: WebSocket, run_id: str, address: str, service: RunService, settings: Settings
) -> None:
    if not origin_allowed(websocket, settings):
        origin = websocket.headers.get("origin", "")[:100]
        await websocket.close(POLICY_VIOLATION, f"cross-site WebSocket refused (origin {origin})")
        return
    try:
        run = await service.find(run_id)
    except Refusal as exc:  # Redis mode: Redis does not answer now
        await websocket.close(TRY_AGAIN_LATER, exc.message[:120])
        return
    if run is None:
        await websocket.send_text(dumps(error_message(f"no run with id {run_id[:64]!r}")))
        await websocket.close(UNKNOWN_RUN, "unknown run")
        return
    views = frozenset(websocket.query_params.get("views", "").split(",")) & OPT_IN_KINDS
    try:
        viewer = await service.open_viewer(run, views, address)
    except (TooManyViewers, Unavailable) as exc:  # Unavailable: Redis mode, Redis is down
        await websocket.close(TRY_AGAIN_LATER, exc.message[:120])
        return
    abort = _abort(websocket)
    viewer.on_overflow = abort
    # The viewer keeps its slot until its connection is closed: a send returns once its
    # text is queued in the transport, so a finished run's snapshot is "sent" at once to a
    # client that never reads, and its slot would be free for another such client while the
    # snapshot still waits in this process.
    try:
        closing = await _serve_viewer(websocket, run, service, viewer, settings)
        if closing is not None:
            # The close frame waits for room in the socket too: a client that reads nothing
            # gets the stall time, then the connection is cut.
            with anyio.move_on_after(settings.viewer_stall_seconds) as scope:
                with contextlib.suppress(Exception):
                    await websocket.close(*closing)
            if scope.cancelled_caught and abort is not None:
                abort()
    finally:
        service.unsubscribe(run, viewer)


async def _serve_viewer(
    websocket: WebSocket, run: Run, service: RunService, viewer: Viewer, settings: Settings
) -> tuple[int, str] | None:
    """Send and receive until either side ends; returns the close (code, reason) if any.

    A task group (not bare asyncio tasks) so that cancellation is structured: when one side
    ends the other is cancelled, and nothing outlives the connection.
    """
    ended: list[tuple[int, str] | None] = []

    async def side(loop: Callable[[], Awaitable[tuple[int, str] | None]]) -> None:
        ended.append(await loop())
        group.cancel_scope.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(side, lambda: _send_loop(websocket, viewer, settings))
        group.start_soon(side, lambda: _receive_loop(websocket, run, service, viewer, settings))
    return ended[0] if ended else None


async def _send_loop(
    websocket: WebSocket, viewer: Viewer, settings: Settings
) -> tuple[int, str] | None:
    """Drain the viewer's outbox; returns the close (code, reason), None if the client left.

    A send waits while the socket's buffer is full; one that waits past the stall time
    means the client does not read (or reads too slowly to ever catch up): it is cut off,
    not waited on, so it holds neither a slot nor its buffered snapshot for long."""
    try:
        while (text := await viewer.get()) is not None:
            with anyio.move_on_after(settings.viewer_stall_seconds) as scope:
                await websocket.send_text(text)
            if scope.cancelled_caught:
                abort = _abort(websocket)
                if abort is not None:
                    abort()
                return None
    except Exception:  # the client went away mid-send
        return None
    if viewer.overflowed:
        return TRY_AGAIN_LATER, "viewer too slow: too many unsent messages"
    return 1000, "run finished"


async def _receive_loop(
    websocket: WebSocket, run: Run, service: RunService, viewer: Viewer, settings: Settings
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
        if isinstance(data, dict) and "view" in data:
            _set_view(data, run, service, viewer)
            continue
        action = data.get("action") if isinstance(data, dict) else None
        if action == SET_ACTION:
            _set_knobs(data, run, service, viewer)
            continue
        # Only a string may be looked up: `[...] in frozenset` raises TypeError (unhashable).
        if not isinstance(action, str) or action not in CONTROL_ACTIONS:
            allowed = ", ".join(sorted([*CONTROL_ACTIONS, SET_ACTION]))
            viewer.put(dumps(error_message(f"unknown action {action!r}; use one of {allowed}")))
            continue
        try:
            service.request(run, action)
        except Refusal as exc:
            viewer.put(dumps(error_message(exc.message)))


def _set_knobs(data: dict, run: Run, service: RunService, viewer: Viewer) -> None:
    """`{"action": "set", "training": {...}}`: the PATCH /api/runs/{id} body's change, checked
    by the same model (engine/knobs.py) and sent by the same service call; every viewer
    learns of it from the run's `knobs` message. A refusal is an `error` naming the field."""
    try:
        patch = RunPatch.model_validate({k: v for k, v in data.items() if k != "action"})
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(str(part) for part in error["loc"])
            viewer.put(dumps(error_message(f"{'.'.join(loc)}: {error['msg']}", loc)))
        return
    try:
        service.retune(run, patch.training.retune())
    except Invalid as exc:
        viewer.put(dumps(error_message(f"{'.'.join(exc.loc)}: {exc.message}", exc.loc)))
    except Refusal as exc:
        viewer.put(dumps(error_message(exc.message)))


def _set_view(data: dict, run: Run, service: RunService, viewer: Viewer) -> None:
    """`{"view": "units", "on": true|false}`: start or stop getting an opt-in kind."""
    kind, on = data.get("view"), data.get("on")
    if not isinstance(kind, str) or kind not in OPT_IN_KINDS or not isinstance(on, bool):
        allowed = ", ".join(sorted(OPT_IN_KINDS))
        viewer.put(dumps(error_message(f'send {{"view": one of {allowed}, "on": true|false}}')))
        return
    service.set_views(run, viewer, viewer.views | {kind} if on else viewer.views - {kind})
