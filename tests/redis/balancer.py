"""A load balancer for the tests, on loopback: TCP round robin over the replicas' ports,
passing a connection to the next replica when one refuses it (as nginx's
`proxy_next_upstream error` does), so a client that reconnects after its replica died
reaches a live one at the same address, as the page does behind deploy/nginx.conf.

Bytes are copied as they are (HTTP and WebSocket alike); it runs its own event loop on a
thread. Every wait is bounded. Over one backend it is a TCP proxy whose connections a test
can cut (`cut`: every open one closed, new ones closed at once, until `restore`), as a
network fault cuts a process off from the server behind it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Callable, Sequence

CONNECT_S = 5.0


class Balancer:
    def __init__(self, backends: Sequence[int]) -> None:
        self.backends = list(backends)
        self._turn = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self.chosen: list[int] = []  # the backend port each connection went to, in order
        self._open: set[asyncio.StreamWriter] = set()  # both ends of every open connection
        self._cut = False
        ready = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(ready,), daemon=True,
                                        name="test-balancer")  # fmt: skip
        self._thread.start()
        if not ready.wait(30) or self._server is None:
            raise RuntimeError("the test balancer did not start")
        self.port = int(self._server.sockets[0].getsockname()[1])

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _main(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0)
        )
        ready.set()
        self._loop.run_forever()

    async def _upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A connection to the next replica in turn that accepts one."""
        start = next(self._turn)
        for i in range(len(self.backends)):
            port = self.backends[(start + i) % len(self.backends)]
            with contextlib.suppress(OSError, TimeoutError):
                opened = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port),
                                                CONNECT_S)  # fmt: skip
                self.chosen.append(port)
                return opened
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = None if self._cut else await self._upstream()
        if upstream is None:
            writer.close()
            return
        up_reader, up_writer = upstream
        ends = {writer, up_writer}
        self._open |= ends
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._open -= ends

    def cut(self) -> None:
        """Close every open connection, and each new one at once, until restore()."""

        def close_all() -> None:
            self._cut = True
            for end in self._open:
                end.close()

        self._in_loop(close_all)

    def restore(self) -> None:
        self._in_loop(lambda: setattr(self, "_cut", False))

    def _in_loop(self, action: Callable[[], object]) -> None:
        """Run `action` on the balancer's loop and wait (bounded) until it has run."""
        done = threading.Event()

        def run() -> None:
            try:
                action()
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        if not done.wait(10):
            raise RuntimeError("the test balancer's loop did not answer")

    def stop(self) -> None:
        def close() -> None:
            if self._server is not None:
                self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(close)
        self._thread.join(10)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until either side closes; then close the sink (the other pipe ends too)."""
    with contextlib.suppress(OSError, ConnectionError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    sink.close()
