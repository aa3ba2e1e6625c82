"""uvicorn's HTTP and WebSocket protocols with this server's input bounds.

uvicorn leaves a connection that never finishes its request headers open for ever, and its
WebSocket protocol answers every ping and queues every message however fast they come.
These subclasses add what a public server needs (built per deployment by `protocols`):

- HTTP: a deadline for the request headers (a silent or slowloris socket is closed), on a new
  connection and between keep-alive requests; the header size cap is h11's own
  (`h11_max_incomplete_event_size`, set in serving.py).
- WebSocket: a per-connection budget of incoming frames (data, ping, pong alike): a client
  past it is closed with 1008, so neither message nor ping floods cost the event loop; a
  text frame that is not UTF-8 is refused with one log line (uvicorn logs a traceback); and
  `scope["extensions"]["boundarylab.abort"]` lets the app cut a viewer whose send is stuck;
  a fixed kernel send buffer per connection (see GuardedWebSocketProtocol); and
  permessage-deflate compressed once for all viewers (deflate.py).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame

from boundarylab.server.deflate import extensions

log = logging.getLogger("boundarylab")
ABORT_EXTENSION = "boundarylab.abort"
POLICY_VIOLATION = 1008
INVALID_PAYLOAD = 1007


class FrameBudget:
    """A token bucket: `per_second` frames a second on average, bursts up to twice that."""

    def __init__(self, per_second: float) -> None:
        self.rate = per_second
        self.capacity = 2.0 * per_second
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def take(self) -> bool:
        """Spend one frame; False when the budget is exhausted."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class GuardedH11Protocol(H11Protocol):
    """h11 with a deadline on request headers (`header_timeout` seconds)."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_deadline()

    def _arm_header_deadline(self) -> None:
        self.loop.call_later(self.header_timeout, self._header_deadline_passed)

    def _header_deadline_passed(self) -> None:
        # IDLE: no request line and headers arrived since the deadline was armed (silent, or
        # dribbling them); an upgraded or busy connection has left IDLE.
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self.transport.close()


class GuardedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol with an incoming frame budget (`frames_per_second`) and
    a kernel send buffer of `send_buffer` bytes.

    Why the send buffer: Linux grows a socket's send buffer up to 4 MiB, so a finished run's
    whole snapshot (up to ~2 MB) left the process at once and the send "succeeded" for a
    client that never reads; the kernel then held it per socket, long after the server
    closed the connection (600 such sockets: over a GiB). With a fixed buffer, a client that
    does not read leaves the rest in the process, where the viewer stall timeout sees it
    and aborts the connection, which frees the kernel's share too.
    """

    frames_per_second: float = 20.0
    send_buffer: int = 128 * 1024
    deflate: str = "shared"  # the ws_deflate setting (deflate.extensions)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        chosen = extensions(self.deflate)
        if chosen is not None:
            self.conn.available_extensions = chosen
        self._budget = FrameBudget(self.frames_per_second)
        self._over_budget = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][ABORT_EXTENSION] = self.transport.abort  # type: ignore[index]

    def handle_events(self) -> None:
        if self._over_budget:
            return
        super().handle_events()

    def _within_budget(self) -> bool:
        if self._over_budget:
            return False
        if self._budget.take():
            return True
        self._over_budget = True
        log.warning("WebSocket client %s sent frames too fast: closed", _peer(self.client))
        self.conn.send_close(POLICY_VIOLATION, "too many messages")
        self.handle_parser_exception()
        return False

    def handle_text(self, event: Frame) -> None:
        if self._within_budget():
            super().handle_text(event)

    def send_receive_event_to_app(self) -> None:
        # Checked here, where a message is whole (one frame or reassembled fragments): a
        # sequence split across fragments is only invalid once joined. uvicorn would log a
        # traceback for each.
        if self.curr_msg_data_type == "text" and not self.close_sent:
            try:
                b"".join(self.frames).decode()
            except UnicodeDecodeError:
                log.warning("WebSocket client %s sent invalid UTF-8: closed", _peer(self.client))
                self.frames = []
                self.conn.send_close(INVALID_PAYLOAD, "invalid UTF-8")
                self.handle_parser_exception()
                return
        super().send_receive_event_to_app()

    def handle_bytes(self, event: Frame) -> None:
        if self._within_budget():
            super().handle_bytes(event)

    def handle_cont(self, event: Frame) -> None:
        if self._within_budget():
            super().handle_cont(event)

    def handle_ping(self) -> None:
        if self._within_budget():
            super().handle_ping()

    def handle_pong(self, event: Frame) -> None:
        if self._within_budget():
            super().handle_pong(event)


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "unknown"


def protocols(
    header_timeout: float, frames_per_second: float, send_buffer: int, deflate: str = "shared"
) -> tuple[type[GuardedH11Protocol], type[GuardedWebSocketProtocol]]:
    """The two protocol classes with this deployment's bounds."""
    http = type("HTTP", (GuardedH11Protocol,), {"header_timeout": header_timeout})
    bounds = {"frames_per_second": frames_per_second, "send_buffer": send_buffer,
              "deflate": deflate}  # fmt: skip
    ws = type("WebSocket", (GuardedWebSocketProtocol,), bounds)
    return http, ws
