"""Pure ASGI middleware (security headers, body cap, cross-site refusal, HEAD), the Host
names the server answers to, and the event-loop lag ticker.

Not BaseHTTPMiddleware, which buffers responses and slows streaming.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from fastapi import HTTPException

from boundarylab.server.responses import WireJSON

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
# Longest Content-Length taken as a number: int() of thousands of digits raised (a 500).
MAX_LENGTH_DIGITS = 18
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(bind_host: str) -> bool:
    """Whether a bind address only accepts connections from this machine."""
    if bind_host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(bind_host).is_loopback
    except ValueError:
        return False


def _host_pattern(name: str) -> str:
    """A name as TrustedHostMiddleware compares it: lower case, IPv6 literals bracketed
    (that is how they appear in a Host header)."""
    name = name.strip().lower().removeprefix("[").removesuffix("]")
    try:
        if ipaddress.ip_address(name).version == 6:
            return f"[{name}]"
    except ValueError:
        pass
    return name


def trusted_hosts(allowed_hosts: Iterable[str], allowed_origins: Iterable[str]) -> list[str]:
    """The Host names the server answers to: the loopback names always (the container's
    health check uses them), the configured ones, and the host of each allowed origin.

    This is the guard against DNS rebinding: a hostile page whose name now resolves to this
    server is same-origin to the browser (its Origin and Host agree), but its Host is its own
    name, never one of these. "*" turns the guard off.
    """
    names = list(allowed_hosts)
    if "*" in names:
        return ["*"]
    names += LOOPBACK_NAMES
    names += [urlsplit(origin).hostname or "" for origin in allowed_origins]
    return sorted({_host_pattern(n) for n in names if n})


def same_site(origin: str, host: str, allowed_origins: Iterable[str]) -> bool:
    """Whether a browser's Origin is the host it is talking to, or a configured origin."""
    if host and urlsplit(origin).netloc.lower() == host.lower():
        return True
    return origin.rstrip("/") in {o.rstrip("/") for o in allowed_origins}


def _with_security_headers(scope: Scope, send: Send) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            headers.append((b"content-security-policy", CSP.encode()))
            # No page may frame this one (clickjacking), the docs pages included.
            headers.append((b"x-frame-options", b"DENY"))
            headers.append((b"x-content-type-options", b"nosniff"))
            headers.append((b"referrer-policy", b"no-referrer"))
            message["headers"] = headers
        await send(message)

    return send_with_headers


class GuardMiddleware:
    """Security headers on every response, a cap on request bodies, and no state-changing
    request from a page on another site.

    A cross-site page may send "simple" POSTs (no CORS preflight), and an empty body is a
    valid run config, so unsafe methods must come from the serving host or an allowed
    origin. Requests without an Origin (curl, scripts) are not from a browser page.
    """

    def __init__(
        self,
        app: Any,
        max_body_bytes: int,
        allowed_origins: Iterable[str] = (),
        larger_bodies: Mapping[tuple[str, str], int] | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.allowed_origins = tuple(allowed_origins)
        # (method, path) -> the cap of a route that takes more (own data points).
        self.larger_bodies = dict(larger_bodies or {})

    def _cap(self, scope: Scope) -> int:
        return self.larger_bodies.get((scope["method"], scope["path"]), self.max_body)

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        """(status, why) when the request is refused before it reaches a route."""
        headers = dict(scope.get("headers", []))
        origin = headers.get(b"origin")
        if scope["method"] not in SAFE_METHODS and origin:
            host = headers.get(b"host", b"").decode("latin-1")
            text = origin.decode("latin-1")
            if not same_site(text, host, self.allowed_origins):
                return 403, f"cross-site request refused (origin {text[:100]})"
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return 400, "invalid Content-Length header"
            if len(length) > MAX_LENGTH_DIGITS or int(length) > self._cap(scope):
                return 413, self._too_large(self._cap(scope))
        return None

    @staticmethod
    def _too_large(cap: int) -> str:
        return f"the request body is larger than this server's limit of {cap} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_security_headers(scope, send)
        refusal = self._refusal(scope)
        if refusal is not None:
            status, why = refusal
            await WireJSON({"detail": why}, status)(scope, receive, send)
            return
        received, cap = 0, self._cap(scope)

        async def counting_receive() -> Message:
            # Content-Length can be absent (chunked) or wrong: count what actually arrives.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise HTTPException(413, self._too_large(cap))
            return message

        await self.app(scope, counting_receive, send)


class HeadAsGet:
    """HEAD answers as GET would, without the body (FastAPI's routes only match the methods
    they declare; a HEAD to a GET route fell through to the static files: 404)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


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
