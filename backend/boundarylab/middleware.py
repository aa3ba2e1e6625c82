"""Pure ASGI middleware (security headers, body cap) and the event-loop lag ticker.

Not BaseHTTPMiddleware, which buffers responses and slows streaming.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

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
