"""Model exports from a running run's worker: a request with an id, its reply matched when
it arrives on the worker's event pipe (pool.py hands `ModelReply` events here)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from boundarylab.server.protocol import Export, ModelReply
from boundarylab.server.workerproc import Worker

EXPORT_WAIT_S = 10.0


class Exports:
    """Export requests waiting for their worker's reply."""

    def __init__(self) -> None:
        self._waiting: dict[int, asyncio.Future[dict[str, Any] | None]] = {}
        self._ids = itertools.count(1)

    async def fetch(self, worker: Worker, run_id: str) -> dict[str, Any] | None:
        """The run's weights now, from `worker`; None when the worker cannot take the
        request (too far behind) or does not answer within EXPORT_WAIT_S."""
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        if not worker.send(Export(request_id, run_id)):
            self._waiting.pop(request_id, None)
            return None
        try:
            return await asyncio.wait_for(future, EXPORT_WAIT_S)
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(request_id, None)

    def reply(self, event: ModelReply) -> None:
        """A worker's answer: resolves its request, if anyone still waits for it."""
        future = self._waiting.pop(event.request_id, None)
        if future is not None and not future.done():
            future.set_result(event.model)
