"""Pure ASGI middleware (security headers, body cap) and the event-loop lag ticker.

Not BaseHTTPMiddleware, which buffers responses and slows streaming.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from fastapi import HTTPException
from fastapi.responses import JSONResponse

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
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def is_loopback(bind_host: str) -> bool:
    """Whether a bind address only accepts connections from this machine."""
    if bind_host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(bind_host).is_loopback
    except ValueError:
        return False


def host_name(netloc: str) -> str:
    """ "example.org:8000" or "[::1]:8000" -> the bare lower-case name ("" if malformed)."""
    try:
        return (urlsplit(f"//{netloc}").hostname or "").lower()
    except ValueError:
        return ""


def same_site(origin: str, host: str, allowed_origins: Iterable[str]) -> bool:
    """Whether a browser's Origin is the host it is talking to, or a configured origin."""
    if host and urlsplit(origin).netloc.lower() == host.lower():
        return True
    return origin.rstrip("/") in {o.rstrip("/") for o in allowed_origins}


class GuardMiddleware:
    """Pure ASGI: security headers on every response and a cap on request bodies.

    Not BaseHTTPMiddleware, which buffers and slows streaming responses.
    """

    def __init__(self, app: Any, max_body_bytes: int, allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.allowed_origins = tuple(allowed_origins)
        origin_hosts = {host_name(urlsplit(o).netloc) for o in self.allowed_origins}
        self.allowed_hosts = LOOPBACK_NAMES | origin_hosts

    def _refusal(self, scope: Scope) -> str | None:
        """Why a request from a page on another site is refused, or None.

        A cross-site page may send "simple" POSTs (no CORS preflight), and an empty body is a
        valid run config, so unsafe methods must come from the serving host or an allowed
        origin. On a loopback-only server (`serve` sets app.state.loopback_only) the Host
        must also be a loopback name: DNS rebinding makes a hostile page's Origin and Host
        agree, but cannot make its Host "localhost".
        """
        headers = dict(scope.get("headers", []))
        host = headers.get(b"host", b"").decode("latin-1")
        state = getattr(scope.get("app"), "state", None)
        loopback_only = getattr(state, "loopback_only", False)
        if loopback_only and host and host_name(host) not in self.allowed_hosts:
            return f"host {host[:100]!r} refused: this server only answers to localhost"
        origin = headers.get(b"origin")
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS and origin:
            text = origin.decode("latin-1")
            if not same_site(text, host, self.allowed_origins):
                return f"cross-site request refused (origin {text[:100]})"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None and scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": refusal})
            return
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

        if refusal is not None:
            await JSONResponse({"detail": refusal}, 403)(scope, receive, send_with_headers)
            return
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
