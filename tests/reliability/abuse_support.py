"""Helpers of the abuse tests: clients that come from a chosen loopback address (all of
127.0.0.0/8 reaches a server on 127.0.0.1, so two addresses are two people), raw sockets."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from serverproc import ServerProcess

# A run that trains long enough to still be running while a test looks at it.
SLOW = {"training": {"iterations": 200_000, "report_every": 100, "steps_per_second": 200}}


def http_from(address: str) -> httpx.Client:
    """An HTTP client whose connections leave from `address` (a 127.x.y.z)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10)


def tcp_from(server: ServerProcess, address: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), 5, source_address=(address, 0))


def ws_from(server: ServerProcess, run_id: str, address: str = "127.0.0.1") -> ClientConnection:
    """A viewer of `run_id` connected from `address` (its handshake done, nothing read)."""
    url = f"{server.ws_base}/api/runs/{run_id}/stream"
    return connect(url, sock=tcp_from(server, address), max_size=None, open_timeout=10)


def close_code(ws: ClientConnection, timeout: float = 10.0) -> int | None:
    """Read until the server closes; its close code (None: still open after `timeout`)."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=max(0.01, deadline - time.monotonic()))
    except TimeoutError:
        return None
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else -1
    return None


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """Whether the server ends this connection within `timeout` (EOF or reset), reading and
    discarding whatever it sent."""
    sock.settimeout(0.5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True
    return False


def until(check: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy (returned) or `timeout` passes (None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    return None
