"""Keeping the server's memory flat: expired runs are forgotten, and once nothing trains the
memory a burst of runs left is freed and handed back to the OS."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable

from boundarylab.server.interfaces import RunStore
from boundarylab.server.worker import release_heap

# After the last run ends: long enough for its viewers to drain and close.
TRIM_DELAY_S = 1.0


class Housekeeper:
    """Prunes `store` every so often; trims the heap a moment after the server went idle."""

    def __init__(
        self,
        store: RunStore,
        idle: Callable[[], bool],
        retention_seconds: float,
        forgotten: Callable[[list[str]], None] = lambda ids: None,
    ) -> None:
        self._store = store
        self._idle = idle
        self._period = min(30.0, retention_seconds / 2)
        self._forgotten = forgotten
        self._pruner: asyncio.Task[None] | None = None
        self._trim: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._pruner = asyncio.create_task(self._prune_forever(), name="boundarylab-pruner")

    async def stop(self) -> None:
        if self._trim is not None:
            self._trim.cancel()
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner

    def prune(self) -> None:
        """Forget finished runs past the retention limits now."""
        gone = self._store.prune()
        if gone:
            self._forgotten(gone)

    def run_ended(self) -> None:
        if self._trim is None and self._idle():
            loop = asyncio.get_running_loop()
            self._trim = loop.call_later(TRIM_DELAY_S, self._trim_when_idle)

    def _trim_when_idle(self) -> None:
        """Once nothing trains, free what a burst of runs left and return it to the OS.

        Closed WebSocket connections sit in reference cycles (the protocol and its parser
        generator) that only a full collection frees, and the next one may be far off: after
        bench/load.py ~280 of them were still alive, each with its permessage-deflate zlib
        state (~12 MiB in all). Then `release_heap` hands the freed pages back. Skipped
        while busy: a full collection is tens of milliseconds on the event loop, and freed
        blocks are about to be reused anyway.
        """
        self._trim = None
        if self._idle():
            gc.collect()
            release_heap()

    async def _prune_forever(self) -> None:
        while True:
            await asyncio.sleep(self._period)
            self.prune()
            self._trim_when_idle()
