"""`boundarylab serve`: the app under uvicorn, with a shutdown that tells viewers first."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from websockets.exceptions import InvalidState

from boundarylab.server.middleware import is_loopback
from boundarylab.server.service import RunService
from boundarylab.server.settings import get_settings
from boundarylab.server.transport import protocols

log = logging.getLogger("boundarylab")
# SIGTERM to exit within 5 s, even when the workers (at low priority) hardly get a CPU: runs
# are cancelled within CANCEL_S (aborted if their worker has not confirmed by then), viewers
# then get their final status (service.DRAIN_S), and workers that have not stopped
# SHUTDOWN_S after the signal are killed, which takes up to a second more on a machine busy
# enough to starve them.
SHUTDOWN_S = 3.0
CANCEL_S = 1.5


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

    def __init__(self, config: uvicorn.Config, service: RunService) -> None:
        super().__init__(config)
        self.service = service

    async def shutdown(self, sockets: Any = None) -> None:
        self.service.stop_by(time.monotonic() + SHUTDOWN_S)
        await self.service.cancel_all(CANCEL_S)
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


def run(host: str | None = None, port: int | None = None, log_level: str | None = None) -> None:
    """Serve the app (the module's own when the settings are the same) until stopped."""
    from boundarylab.server import app as app_module

    settings = get_settings()
    level = log_level or settings.log_level
    _configure_logging(level)
    target = app_module.app
    if target.state.settings is not settings:
        target = app_module.create_app(settings)
    bind = host or settings.host
    if not is_loopback(bind) and "*" not in settings.allowed_hosts:
        log.info(
            "listening on %s, but answering only to the host names %s (and the hosts of "
            "BOUNDARYLAB_ALLOWED_ORIGINS): set BOUNDARYLAB_ALLOWED_HOSTS to the names people "
            "use to reach this server",
            bind,
            ", ".join(settings.allowed_hosts),
        )
    http, ws = protocols(
        settings.header_timeout_seconds,
        settings.ws_frames_per_second,
        settings.ws_send_buffer_bytes,
        settings.ws_deflate,
    )
    config = uvicorn.Config(
        target,
        host=bind,
        port=port or settings.port,
        log_level=level,
        http=http,
        ws=ws,
        ws_max_size=max(65536, 4 * settings.max_ws_message_bytes),
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_keep_alive=settings.keep_alive_seconds,
        limit_concurrency=settings.limit_concurrency,
        # A client is its peer address unless the operator named the proxy it comes through:
        # uvicorn otherwise trusts X-Forwarded-For from 127.0.0.1, which anyone on this
        # machine (or a page's requests relayed by it) could forge to dodge per-client limits.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=",".join(settings.forwarded_allow_ips) or None,
        timeout_graceful_shutdown=1,  # then connections that do not close are cut
    )
    GracefulServer(config, target.state.service).run()
